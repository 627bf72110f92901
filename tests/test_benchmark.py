import json
import re

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import SHARED, needs_shared, photo_like
from PIL import Image

from srgan_cli.bench.datasets import DatasetError, load_dataset
from srgan_cli.cli import main


@pytest.fixture
def data_dir(tmp_path):
    root = tmp_path / "bench" / "Tiny"
    (root / "Tiny_HR").mkdir(parents=True)
    (root / "Tiny_LR_x4").mkdir()
    for i, (h, w) in enumerate([(42, 50), (40, 40)]):  # first one is not a multiple of 4
        hr = photo_like(h, w, seed=i)
        Image.fromarray(hr).save(root / "Tiny_HR" / f"a{i}.png")
        Image.fromarray(hr).resize((w // 4, h // 4), Image.BICUBIC).save(root / "Tiny_LR_x4" / f"a{i}.png")
    return tmp_path / "bench"


def test_dataset_is_found_by_folder_suffix_and_mod_cropped(data_dir):
    pairs = load_dataset("tiny", data_dir)
    assert [p.name for p in pairs] == ["a0", "a1"]
    assert pairs[0].hr.shape == (40, 48, 3) and pairs[0].lr.shape == (10, 12, 3)


def test_missing_dataset_is_a_clear_error(data_dir):
    with pytest.raises(DatasetError, match="not found"):
        load_dataset("set5", data_dir / "nowhere")


def test_benchmark_cli_json(tiny_weights, data_dir, tmp_path):
    out = tmp_path / "r.json"
    r = CliRunner().invoke(main, ["benchmark", "tiny", "--data-dir", str(data_dir), "--model",
                                  "bicubic", "--model", "nearest", "--model", str(tiny_weights),
                                  "--device", "cpu", "--json", str(out)])
    assert r.exit_code == 0, r.output
    recs = json.loads(out.read_text())
    assert {r["method"] for r in recs} == {"bicubic", "nearest", str(tiny_weights)}
    by = {r["method"]: r for r in recs}
    assert all(r["dataset"] == "tiny" and r["scale"] == 4 and r["images"] == 2 for r in recs)
    assert by["bicubic"]["psnr"] > by["nearest"]["psnr"]
    # nearest x4 is a pattern locked to the 4-px grid; bicubic is not
    assert by["nearest"]["grid_excess"] > by["bicubic"]["grid_excess"] + 5
    assert all(len(r["per_image"]) == 2 and "grid_excess" in r["per_image"][0] for r in recs)


@needs_shared("datasets", "benchmark", "Set14")
def test_baselines_reproduce_the_papers_table2(tmp_path):
    out = tmp_path / "r.json"
    r = CliRunner().invoke(main, ["benchmark", "set5", "set14", "--data-dir",
                                  str(SHARED / "datasets" / "benchmark"), "--model", "nearest",
                                  "--model", "bicubic", "--json", str(out)])
    assert r.exit_code == 0, r.output
    got = {(x["dataset"], x["method"]): (x["psnr"], x["ssim"])
           for x in json.loads(out.read_text())}
    paper = {("set5", "nearest"): (26.26, 0.7552), ("set5", "bicubic"): (28.43, 0.8211),
             ("set14", "nearest"): (24.64, 0.7100), ("set14", "bicubic"): (25.99, 0.7486)}
    for key, (p, s) in paper.items():
        assert abs(got[key][0] - p) <= 0.02, (key, got[key])
        assert abs(got[key][1] - s) <= 0.003, (key, got[key])


def test_benchmark_outputs_csv_saved_images_and_comparisons(tiny_weights, data_dir, tmp_path):
    import csv

    args = ["benchmark", "tiny", "--data-dir", str(data_dir), "--model", "nearest", "--model",
            str(tiny_weights), "--device", "cpu", "--no-lpips", "--csv", str(tmp_path / "r.csv"),
            "--save-images", str(tmp_path / "sr"), "--compare", str(tmp_path / "cmp")]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(tmp_path / "r.csv")))
    assert [x["method"] for x in rows] == ["nearest", str(tiny_weights)]
    assert all(x["lpips"] == "" and x["images"] == "2" for x in rows)
    saved = sorted(p.relative_to(tmp_path / "sr").as_posix() for p in (tmp_path / "sr").rglob("*.png"))
    assert saved == ["tiny/nearest/a0.png", "tiny/nearest/a1.png", "tiny/tiny/a0.png",
                     "tiny/tiny/a1.png"]
    with Image.open(tmp_path / "sr" / "tiny" / "nearest" / "a0.png") as im:
        assert im.size == (48, 40)
    strips = sorted((tmp_path / "cmp" / "tiny").iterdir())
    assert [p.name for p in strips] == ["a0.png", "a1.png"]
    with Image.open(strips[0]) as im:  # HR | bicubic | nearest | model, 40-px crops
        assert im.width == 4 * (40 + 4)


@needs_shared("weights", "lpips-alexnet.safetensors")
def test_lpips_distance_properties():
    import torch

    from srgan_cli.nets.lpips import LPIPS

    model = LPIPS.load(SHARED / "weights" / "lpips-alexnet.safetensors")
    torch.manual_seed(0)
    a = torch.rand(1, 3, 64, 64)
    small = (a + 0.03 * torch.randn_like(a)).clamp(0, 1)
    large = (a + 0.3 * torch.randn_like(a)).clamp(0, 1)
    assert model(a, a).item() == 0.0
    assert 0 < model(a, small).item() < model(a, large).item()


def test_lpips_missing_weights_is_a_clear_error(tmp_path, monkeypatch):
    from srgan_cli.errors import WeightsError
    from srgan_cli.nets.lpips import LPIPS

    with pytest.raises(WeightsError, match="no such LPIPS weights file"):
        LPIPS.load(tmp_path / "none.safetensors")
    monkeypatch.setenv("SRGAN_SHARED_DIR", str(tmp_path))
    monkeypatch.delenv("SRGAN_LPIPS_WEIGHTS", raising=False)
    with pytest.raises(WeightsError, match="--lpips-weights"):
        LPIPS.load(None)


def test_speed_benchmark_json_carries_the_matmul_rate_of_each_path_precision(
        tiny_weights, tmp_path, cpu_kind):
    """On every CPU kind: ours runs in bf16 where the CPU has it (fp32 on AVX2-only CPUs),
    the baseline in fp32, and each record carries the matmul rate of its own precision."""
    out = tmp_path / "speed.json"
    r = CliRunner().invoke(main, ["benchmark", "--speed", "--model", str(tiny_weights),
                                  "--device", "cpu", "--size", "40x24", "--tile", "16",
                                  "--runs", "2", "--baseline", "eager-fp32", "--json", str(out)])
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    ours, base = data["results"]
    assert ours["label"].startswith("srgan upscale path (") and base["label"] == "baseline eager-fp32"
    assert ours["in_size"] == [40, 24] and ours["out_size"] == [160, 96] and ours["tile"] == 16
    assert len(ours["seconds"]) == 2 and ours["mp_per_s_min"] <= ours["mp_per_s_median"] <= ours["mp_per_s_max"]
    assert ours["gflops"] > 0 and ours["peak_rss_mb"] > 0
    has_bf16 = cpu_kind != "avx2"
    assert ours["precision"] == ("bf16" if has_bf16 else "fp32") and base["precision"] == "fp32"
    assert set(data["gemm_gflops"]) == {ours["precision"], "fp32"}
    for rec in (ours, base):
        assert rec["gemm_gflops"] == data["gemm_gflops"][rec["precision"]] > 0
    assert ("bf16_gemm_gflops" in data) == has_bf16
    assert "speed-up over the eager fp32 baseline" in r.output


def test_the_eager_baseline_runs_are_sized_by_time_and_announced_first(tiny_weights,
                                                                       tmp_path, monkeypatch):
    """A baseline slower than its time budget runs once after its warm-up, not --runs
    times, and the command says how long it will take before it starts."""
    from srgan_cli.bench import speed

    monkeypatch.setattr(speed, "BASELINE_BUDGET_S", 1e-9)
    out = tmp_path / "speed.json"
    r = CliRunner().invoke(main, ["benchmark", "--speed", "--model", str(tiny_weights),
                                  "--device", "cpu", "--size", "40x24", "--runs", "3",
                                  "--no-gemm", "--baseline", "eager-fp32", "--json", str(out)])
    assert r.exit_code == 0, r.output
    ours, base = json.loads(out.read_text())["results"]
    assert len(ours["seconds"]) == 3 and len(base["seconds"]) == 1 and base["runs"] == 1
    flat = " ".join(r.output.split())  # the note may wrap
    note = re.search(r"timing the eager fp32 baseline \(whole image\): about [\d.]+ s a run, "
                     r"1 warm-up \+ 1 timed run \(sized to \d+ s\), about \d+ s in all", flat)
    assert note and note.start() < flat.index("speed-up")


def test_the_baseline_plan_fits_the_budget_between_one_run_and_runs(tiny_weights):
    import torch

    import srgan_cli
    from srgan_cli.bench.speed import baseline_plan

    net = srgan_cli.load(tiny_weights).net
    x = torch.rand(1, 3, 20, 30)
    runs, per_run = baseline_plan(net, x, 5, budget_s=1e6)
    assert runs == 5 and per_run > 0
    assert baseline_plan(net, x, 5, budget_s=0)[0] == 1


def test_benchmark_needs_datasets_or_speed():
    r = CliRunner().invoke(main, ["benchmark"])
    assert r.exit_code == 2 and "--speed" in r.output


def test_synthetic_photo_is_deterministic():
    from srgan_cli.bench.speed import synthetic_photo

    a, b = synthetic_photo(32, 20), synthetic_photo(32, 20)
    assert a.shape == (20, 32, 3) and np.array_equal(a, b) and 0 <= a.min() and a.max() <= 1


def _tar(path, entries):
    """entries: (name, bytes | None for a symlink to /etc/passwd)."""
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("bad", ["../evil.png", "/abs/evil.png", "Set5_HR/../../evil.png", None])
def test_archive_escapes_and_links_are_refused(tmp_path, bad):
    from srgan_cli.bench.datasets import DatasetError
    from srgan_cli.bench.hubdata import extract_safely

    arc = tmp_path / "a.tar.gz"
    entries = [("Set5_HR/ok.png", b"x")]
    entries.append(("Set5_HR/link.png", None) if bad is None else (bad, b"evil"))
    _tar(arc, entries)
    dest = tmp_path / "out" / "Set5_HR"
    with pytest.raises(DatasetError, match="refusing"):
        extract_safely(arc, dest)
    assert not dest.exists() and not (tmp_path / "evil.png").exists()
    assert list((tmp_path / "out").iterdir()) == []  # the temporary folder is gone too


def test_nested_archive_layout_and_tagged_names_are_found(tmp_path):
    from srgan_cli.bench.hubdata import extract_safely

    hr, lr = photo_like(16, 20), photo_like(4, 5)
    import io

    def png(a):
        b = io.BytesIO()
        Image.fromarray(a).save(b, "PNG")
        return b.getvalue()

    _tar(tmp_path / "hr.tar.gz", [("Odd_HR/Odd_HR/bird_HR.png", png(hr))])
    _tar(tmp_path / "lr.tar.gz", [("bird_LR_x4.png", png(lr))])
    root = tmp_path / "data"
    extract_safely(tmp_path / "hr.tar.gz", root / "Odd" / "Odd_HR")
    extract_safely(tmp_path / "lr.tar.gz", root / "Odd" / "Odd_LR_x4")
    (pair,) = load_dataset("odd", root)
    assert pair.name == "bird_HR" and pair.hr.shape == (16, 20, 3) and pair.lr.shape == (4, 5, 3)


def test_lpips_min_side_is_the_smallest_image_alexnet_takes():
    import torch

    from srgan_cli.bench.quality import LPIPS_MIN_SIDE
    from srgan_cli.nets.lpips import LPIPS

    model = LPIPS().eval()  # random weights: only the shapes matter here
    x = torch.rand(1, 3, LPIPS_MIN_SIDE, LPIPS_MIN_SIDE)
    assert model(x, x).shape == (1,)
    with pytest.raises(RuntimeError):
        model(x[..., 1:, 1:], x[..., 1:, 1:])


@needs_shared("weights", "lpips-alexnet.safetensors")
def test_images_too_small_for_lpips_are_one_line_naming_the_image(tmp_path):
    root = tmp_path / "bench" / "Tiny"
    (root / "Tiny_HR").mkdir(parents=True)
    (root / "Tiny_LR_x4").mkdir()
    hr = photo_like(36, 36, seed=0)
    Image.fromarray(hr).save(root / "Tiny_HR" / "small.png")
    Image.fromarray(hr).resize((9, 9), Image.BICUBIC).save(root / "Tiny_LR_x4" / "small.png")
    r = CliRunner().invoke(main, ["benchmark", "tiny", "--data-dir", str(tmp_path / "bench"),
                                  "-m", "bicubic"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    line = r.output.strip().splitlines()[-1]
    assert "tiny/small" in line and "too small for LPIPS" in line and "--no-lpips" in line
    r = CliRunner().invoke(main, ["benchmark", "tiny", "--data-dir", str(tmp_path / "bench"),
                                  "-m", "bicubic", "--no-lpips"])
    assert r.exit_code == 0, r.output


def test_benchmark_without_models_scores_the_registry_default_model_too(tmp_path, tiny_weights,
                                                                        monkeypatch):
    """No -m: the registry's default model (whichever it is: here a user's tiny model),
    the SRResNet and bicubic, each once."""
    import srgan_cli.distribution.registry

    root = tmp_path / "bench" / "Tiny"
    (root / "Tiny_HR").mkdir(parents=True)
    (root / "Tiny_LR_x4").mkdir()
    hr = photo_like(48, 48, seed=0)
    Image.fromarray(hr).save(root / "Tiny_HR" / "a.png")
    Image.fromarray(hr).resize((12, 12), Image.BICUBIC).save(root / "Tiny_LR_x4" / "a.png")
    monkeypatch.setattr(srgan_cli.distribution.registry, "default_model", lambda *a: str(tiny_weights))
    out = tmp_path / "scores.json"
    r = CliRunner().invoke(main, ["benchmark", "tiny", "--data-dir", str(tmp_path / "bench"),
                                  "--no-lpips", "--device", "cpu", "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert [rec["method"] for rec in json.loads(out.read_text())] == [
        str(tiny_weights), "srresnet", "bicubic"]
