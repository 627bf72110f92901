"""Degraded benchmark sets (srgan_cli.bench.degraded, ``srgan benchmark --degrade``)."""

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import SHARED, needs_shared, photo_like
from PIL import Image

from srgan_cli.bench.datasets import Pair, load_dataset
from srgan_cli.bench.degraded import degrade_pair, degraded_sets, label, parse_degrade
from srgan_cli.bench.metrics import psnr
from srgan_cli.cli import main
from srgan_cli.errors import BenchmarkError


@pytest.fixture
def data_dir(tmp_path):
    root = tmp_path / "bench" / "Tiny"
    (root / "Tiny_HR").mkdir(parents=True)
    (root / "Tiny_LR_x4").mkdir()
    for i in range(2):
        hr = photo_like(96, 128, seed=40 + i)
        Image.fromarray(hr).save(root / "Tiny_HR" / f"b{i}.png")
        Image.fromarray(hr).resize((32, 24), Image.BICUBIC).save(root / "Tiny_LR_x4" / f"b{i}.png")
    return tmp_path / "bench"


def pair(seed=0, gray=False) -> Pair:
    hr = photo_like(128, 160, seed=seed)
    if gray:
        hr = np.asarray(Image.fromarray(hr).convert("L"))
    return Pair(f"p{seed}", np.zeros((32, 40) + hr.shape[2:], np.uint8), hr)


def remade(spec: str, p: Pair | None = None) -> np.ndarray:
    return degrade_pair(p or pair(), parse_degrade(spec)).lr


def test_specs_are_applied_in_the_canonical_order_whatever_the_order_written():
    assert parse_degrade("jpeg75+blur1") == [("blur", 1.0), ("jpeg", 75.0)]
    assert label(parse_degrade("JPEG75 + noise5 + blur0.5")) == "blur0.5+noise5+jpeg75"
    assert parse_degrade("none") is None and label(None) == "none"
    assert np.array_equal(remade("jpeg75+blur1"), remade("blur1+jpeg75"))


@pytest.mark.parametrize("spec, says", [
    ("jpeg", "not a step"), ("sharpen2", "not a step"), ("jpeg75+jpeg50", "given twice"),
    ("jpeg101", "1..100"), ("jpeg7.5", "integer"), ("noise0", "above 0"),
    ("clean+jpeg75", "leave it out"), ("clean3", "not a step"), ("", "not a step"),
])
def test_bad_degrade_specs_are_one_line_errors(spec, says):
    with pytest.raises(BenchmarkError) as e:
        parse_degrade(spec)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_degraded_sets_are_deterministic():
    for spec in ("clean", "jpeg50", "noise5", "blur1", "blur1+noise5+jpeg75"):
        a, b = remade(spec), remade(spec)
        assert np.array_equal(a, b), spec
        assert a.shape == (32, 40, 3) and a.dtype == np.uint8


def test_the_noise_differs_between_images_and_levels_but_not_between_runs():
    p0, p1 = pair(0), pair(1)
    n0 = remade("noise5", p0).astype(int) - remade("clean", p0).astype(int)
    n1 = remade("noise5", p1).astype(int) - remade("clean", p1).astype(int)
    assert not np.array_equal(n0, n1)
    assert np.std(n0) == pytest.approx(5.0, rel=0.15)  # sigma 5/255, rounded to levels
    assert np.std(remade("noise10", p0).astype(int) - remade("clean", p0).astype(int)) \
        == pytest.approx(10.0, rel=0.1)


def test_clean_is_the_antialiased_bicubic_downscale_of_the_hr():
    import torch
    import torch.nn.functional as F

    p = pair(2)
    x = torch.from_numpy(p.hr).permute(2, 0, 1)[None].float() / 255
    want = F.interpolate(x, size=(32, 40), mode="bicubic", antialias=True)
    want = (want.clamp(0, 1) * 255).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()
    assert np.array_equal(remade("clean", p), want)


def test_each_degradation_moves_the_lr_away_from_the_clean_lr_and_more_when_stronger():
    clean = remade("clean")

    def db(spec):
        return psnr(remade(spec), clean, crop_border=0)

    assert db("jpeg50") < db("jpeg75") < 60
    assert db("noise10") < db("noise5") < 60
    assert db("blur2") < db("blur1") < 60
    assert db("blur1+jpeg75") < db("blur1")


def test_the_blur_removes_detail():
    def detail(a):
        return float(np.abs(np.diff(a.astype(float), axis=1)).mean())

    assert detail(remade("blur2")) < detail(remade("blur1")) < 0.85 * detail(remade("clean"))


def test_gray_images_stay_gray_through_every_step():
    lr = remade("blur1+noise5+jpeg75", pair(3, gray=True))
    assert lr.shape == (32, 40) and lr.dtype == np.uint8


def test_degraded_sets_are_named_after_their_dataset_and_spec():
    loaded = {"tiny": [pair(0), pair(1)]}
    out = degraded_sets(loaded, ["none", "jpeg75+blur1", "noise5"])
    assert list(out) == ["tiny", "tiny+blur1+jpeg75", "tiny+noise5"]
    assert out["tiny"] is loaded["tiny"]
    assert all(q.hr is p.hr for q, p in zip(out["tiny+noise5"], loaded["tiny"]))


def test_benchmark_degrade_scores_against_the_clean_hr_and_labels_the_sets(data_dir, tmp_path):
    out, table = tmp_path / "r.json", tmp_path / "r.csv"
    r = CliRunner().invoke(main, ["benchmark", "tiny", "--data-dir", str(data_dir), "-m",
                                  "bicubic", "--degrade", "none", "--degrade", "jpeg50",
                                  "--degrade", "blur1+jpeg75", "--no-lpips", "--json", str(out),
                                  "--csv", str(table)])
    assert r.exit_code == 0, r.output
    recs = {x["dataset"]: x for x in json.loads(out.read_text())}
    assert list(recs) == ["tiny", "tiny+jpeg50", "tiny+blur1+jpeg75"]
    assert recs["tiny"]["psnr"] > recs["tiny+jpeg50"]["psnr"] > recs["tiny+blur1+jpeg75"]["psnr"]
    rows = list(csv.DictReader(table.open()))
    assert [row["dataset"] for row in rows] == list(recs)
    assert "tiny+jpeg50 PSNR" in r.output


def test_benchmark_refuses_a_bad_degrade_spec_before_loading_anything(tmp_path):
    r = CliRunner().invoke(main, ["benchmark", "tiny", "--data-dir", str(tmp_path / "none"),
                                  "-m", "bicubic", "--degrade", "jpeg75+fog3"])
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [
        "error: --degrade 'jpeg75+fog3': 'fog3' is not a step (none, clean, blurS, noiseS, "
        "jpegQ, joined by '+', e.g. blur1+jpeg75)"]


@needs_shared("datasets", "benchmark", "Set14")
def test_the_remade_clean_lr_is_the_datasets_own_lr_to_within_rounding_inside():
    """The sets' LR images are the antialiased bicubic downscale of their HR (MATLAB's
    imresize); ours matches them to one level in the interior (their borders pad otherwise)."""
    for ds in ("set5", "set14"):
        for p in load_dataset(ds, SHARED / "datasets" / "benchmark"):
            d = remade("clean", p).astype(int) - p.lr.astype(int)
            inner = d[2:-2, 2:-2]
            assert np.mean(inner == 0) > 0.85 and np.mean(np.abs(inner) <= 1) > 0.98, p.name
