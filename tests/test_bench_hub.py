"""Benchmark datasets fetched from a Hub-compatible HTTP server on 127.0.0.1 (never the
internet): the four datasets, each archive with a different layout, cached, offline, 404,
and a hostile archive."""

import io
import json
import tarfile

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import photo_like
from hubserver import hub_server  # noqa: F401  (fixture)
from PIL import Image

from srgan_cli.bench.datasets import load_dataset
from srgan_cli.cli import main


def _png(a: np.ndarray) -> bytes:
    b = io.BytesIO()
    Image.fromarray(a).save(b, "PNG")
    return b.getvalue()


def _targz(entries: dict[str, bytes]) -> bytes:
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w:gz") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return b.getvalue()


def _images(n: int, seed: int, gray: bool = False):
    out = []
    for i in range(n):
        hr = photo_like(40 + 4 * i, 48, seed=seed + i)
        if gray:
            hr = np.asarray(Image.fromarray(hr).convert("L"))
        lr = np.asarray(Image.fromarray(hr).resize((12, 10 + i), Image.BICUBIC))
        out.append((f"img{i:03d}", hr, lr))
    return out


# Each dataset's archives use another layout; the tool must find the HR / LR folders itself.
LAYOUTS = {
    "Set5": (lambda n: f"Set5_HR/{n}.png", lambda n: f"Set5_LR_x4/{n}.png"),
    "Set14": (lambda n: f"Set14/Set14_HR/{n}_HR.png", lambda n: f"Set14/Set14_LR_x4/{n}_LR_x4.png"),
    "BSD100": (lambda n: f"{n}.png", lambda n: f"{n}x4.png"),  # files at the archive's top
    "Urban100": (lambda n: f"Urban100_HR/Urban100_HR/{n}.png", lambda n: f"x4/Urban100_LR_x4/{n}.png"),
}


@pytest.fixture
def hub(monkeypatch, tmp_path, hub_server):  # noqa: F811
    monkeypatch.setenv("HF_ENDPOINT", hub_server.url)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("SRGAN_DATA_CACHE", str(tmp_path / "srgan-data"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("SRGAN_BENCHMARK_DIR", raising=False)
    local = tmp_path / "local"  # the same images in the --data-dir layout, for comparison
    for k, (name, (hr_path, lr_path)) in enumerate(LAYOUTS.items()):
        imgs = _images(2 + k % 2, seed=100 * k, gray=(name == "Set14"))
        hr_files = {hr_path(n): _png(hr) for n, hr, _ in imgs}
        lr_files = {lr_path(n): _png(lr) for n, _, lr in imgs}
        hub_server.commit(f"eugenesiow/{name}", {
            f"data/{name}_HR.tar.gz": _targz(hr_files),
            f"data/{name}_LR_x4.tar.gz": _targz(lr_files),
        }, repo_type="dataset")
        for n, hr, lr in imgs:
            for sub, a in ((f"{name}_HR", hr), (f"{name}_LR_x4", lr)):
                (local / name / sub).mkdir(parents=True, exist_ok=True)
                Image.fromarray(a).save(local / name / sub / f"{n}.png")
    hub_server.local = local
    return hub_server


def _bench(*args):
    return CliRunner().invoke(main, ["benchmark", *map(str, args), "--no-lpips"])


def _records(path):
    return {(r["dataset"], r["method"]): r for r in json.loads(path.read_text())}


def test_four_datasets_from_the_hub_match_the_same_images_on_disk(hub, tmp_path):
    sets = ["set5", "set14", "bsd100", "urban100"]
    r = _bench(*sets, "--source", "hub", "-m", "bicubic", "-m", "nearest",
               "--json", tmp_path / "hub.json")
    assert r.exit_code == 0, r.output
    fetched = [p for m, p in hub.requests if m == "GET" and "/datasets/eugenesiow/" in p]
    assert len(fetched) == 8  # each HR and LR archive downloaded once
    r = _bench(*sets, "--source", "local", "--data-dir", hub.local, "-m", "bicubic",
               "-m", "nearest", "--json", tmp_path / "local.json")
    assert r.exit_code == 0, r.output
    got, want = _records(tmp_path / "hub.json"), _records(tmp_path / "local.json")
    assert len(got) == 8 and got.keys() == want.keys()
    for key, rec in got.items():
        assert rec["images"] == want[key]["images"] == (2 if key[0] in ("set5", "bsd100") else 3)
        assert rec["psnr"] == pytest.approx(want[key]["psnr"], abs=1e-9), key
        assert rec["ssim"] == pytest.approx(want[key]["ssim"], abs=1e-9), key


def test_second_run_uses_the_cache_with_the_server_stopped_and_offline(hub, tmp_path, monkeypatch):
    assert _bench("set14", "--source", "hub", "-m", "bicubic").exit_code == 0
    hub.stop()
    r = _bench("set14", "--source", "hub", "-m", "bicubic", "--json", tmp_path / "a.json")
    assert r.exit_code == 0, r.output
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = _bench("set14", "--source", "hub", "-m", "bicubic", "--json", tmp_path / "b.json")
    assert r.exit_code == 0, r.output
    assert _records(tmp_path / "a.json") == _records(tmp_path / "b.json")
    pairs = load_dataset("set14", tmp_path / "srgan-data")
    assert [p.name for p in pairs] == ["img000_HR", "img001_HR", "img002_HR"]
    assert pairs[0].hr.ndim == 2  # grayscale stays grayscale


def test_offline_with_nothing_cached_says_how_to_get_it(hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = _bench("bsd100", "--source", "hub", "-m", "bicubic")
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert "HF_HUB_OFFLINE" in r.output and "--data-dir" in r.output
    assert hub.requests == []


def test_server_unreachable_is_one_clear_line(hub):
    hub.stop()
    r = _bench("set5", "--source", "hub", "-m", "bicubic")
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert "cannot be reached" in r.output and "--data-dir" in r.output


def test_missing_archive_is_a_404_error(hub):
    hub.commit("eugenesiow/Set5", {"data/Set5_LR_x4.tar.gz": b"not used"}, repo_type="dataset")
    repo = hub.repos[("dataset", "eugenesiow/Set5")]
    head = repo.branches["main"]
    del repo.commits[head]["data/Set5_HR.tar.gz"]
    r = _bench("set5", "--source", "hub", "-m", "bicubic")
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert "data/Set5_HR.tar.gz" in r.output


def test_hostile_archive_from_the_hub_is_refused(hub, tmp_path):
    evil = _targz({"Set5_HR/ok.png": _png(photo_like(40, 48)), "../../escaped.png": b"x"})
    hub.commit("eugenesiow/Set5", {"data/Set5_HR.tar.gz": evil}, repo_type="dataset")
    r = _bench("set5", "--source", "hub", "-m", "bicubic")
    assert r.exit_code != 0 and "refusing archive member" in r.output
    assert not list(tmp_path.rglob("escaped.png"))
    assert not (tmp_path / "srgan-data" / "Set5" / "Set5_HR").exists()


def test_an_updated_archive_is_unpacked_again(hub, tmp_path):
    assert _bench("set5", "--source", "hub", "-m", "bicubic").exit_code == 0
    imgs = _images(4, seed=7)
    hub.commit("eugenesiow/Set5", {
        "data/Set5_HR.tar.gz": _targz({f"Set5_HR/{n}.png": _png(hr) for n, hr, _ in imgs}),
        "data/Set5_LR_x4.tar.gz": _targz({f"Set5_LR_x4/{n}.png": _png(lr) for n, _, lr in imgs}),
    }, repo_type="dataset")
    r = _bench("set5", "--source", "hub", "-m", "bicubic", "--json", tmp_path / "new.json")
    assert r.exit_code == 0, r.output
    assert _records(tmp_path / "new.json")[("set5", "bicubic")]["images"] == 4
