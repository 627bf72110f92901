"""srgan_cli.bench.run: where the benchmark data is, scoring with saved images and comparison
strips, the result table and CSV, and refusing models the benchmark cannot score."""

import csv

import pytest
import torch
from conftest import photo_like
from PIL import Image

from srgan_cli import paths
from srgan_cli.bench import run
from srgan_cli.bench.quality import Record
from srgan_cli.distribution.modelfile import save_generator
from srgan_cli.errors import BenchmarkError
from srgan_cli.nets.generator import GeneratorSpec, SRResNet


@pytest.fixture
def tiny_set(tmp_path):
    root = tmp_path / "bench" / "Tiny"
    (root / "Tiny_HR").mkdir(parents=True)
    (root / "Tiny_LR_x4").mkdir()
    for i in range(2):
        hr = photo_like(32, 40, seed=i)
        Image.fromarray(hr).save(root / "Tiny_HR" / f"im{i}.png")
        Image.fromarray(hr).resize((10, 8), Image.BICUBIC).save(root / "Tiny_LR_x4" / f"im{i}.png")
    return tmp_path / "bench"


def test_a_named_data_dir_or_the_environment_wins_over_the_shared_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "shared_dir", lambda: tmp_path / "shared")
    monkeypatch.delenv("SRGAN_BENCHMARK_DIR", raising=False)
    assert run.data_dir(None) == (tmp_path / "shared" / "datasets" / "benchmark", False)
    assert run.data_dir(tmp_path / "mine") == (tmp_path / "mine", True)
    monkeypatch.setenv("SRGAN_BENCHMARK_DIR", str(tmp_path / "env"))
    assert run.data_dir(None) == (tmp_path / "env", True)
    monkeypatch.delenv("SRGAN_BENCHMARK_DIR")
    monkeypatch.setattr(paths, "shared_dir", lambda: None)
    assert run.data_dir(None) == (None, False)


def test_model_paths_become_file_name_safe_labels():
    assert run.safe_name("weights/my model.safetensors") == "my_model"
    assert run.safe_name("srgan R=0.5") == "srgan_R_0.5"


def test_scoring_saves_outputs_and_strips_with_bicubic_even_when_not_scored(tiny_set, tmp_path):
    loaded = run.load_datasets(["Tiny"], tiny_set, source="local")
    methods = run.methods(["nearest"])
    seen = []
    records = run.score(loaded, methods, save_images=tmp_path / "sr",
                        compare_dir=tmp_path / "cmp", on_record=seen.append)
    assert [(r.dataset, r.method, r.images) for r in records] == [("tiny", "nearest", 2)]
    assert seen == records
    assert sorted(p.name for p in (tmp_path / "sr" / "tiny" / "nearest").iterdir()) == [
        "im0.png", "im1.png"]
    assert not (tmp_path / "sr" / "tiny" / "bicubic").exists()  # only scored methods are kept
    strip = Image.open(tmp_path / "cmp" / "tiny" / "im0.png")
    assert strip.width > 3 * strip.height // 2  # HR | bicubic | nearest side by side


def _record(ds, method, psnr, lpips=None, grid=None):
    return Record(ds, method, 4, psnr, 0.8, "daala", lpips, 5, [], grid=grid)


def test_the_table_shows_the_papers_numbers_only_beside_its_own_ssim():
    records = [_record("set5", "bicubic", 28.4321, 0.3, -0.44),
               _record("set5", "mine", 30.0, 0.2, 12.06)]
    table = run.quality_table(records, ["bicubic", "mine"], ["set5"], "daala", with_lpips=True)
    assert [c for c, _ in table.columns] == ["method", "set5 PSNR", "set5 SSIM", "set5 LPIPS",
                                             "set5 grid dB"]
    assert table.rows == [["bicubic", "28.43 [28.43]", "0.8000 [0.8211]", "0.3000", "-0.4"],
                          ["mine", "30.00", "0.8000", "0.2000", "+12.1"]]
    standard = run.quality_table(records, ["bicubic"], ["set5"], "standard", with_lpips=False)
    assert standard.rows == [["bicubic", "28.43 [28.43]", "0.8000", "-0.4"]]


def test_csv_has_one_row_per_dataset_and_method(tmp_path):
    path = tmp_path / "r.csv"
    run.write_csv(path, [_record("set5", "a", 30.0),
                         _record("set14", "a", 27.0, 0.25, grid=4.81234)])
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert [(r["dataset"], r["psnr"], r["lpips"], r["grid_excess"]) for r in rows] == [
        ("set5", "30.0000", "", ""), ("set14", "27.0000", "0.25000", "4.812")]


def test_a_model_of_another_scale_is_refused_by_name(tmp_path):
    path = tmp_path / "x2.safetensors"
    torch.manual_seed(0)
    save_generator(SRResNet(GeneratorSpec(scale=2, blocks=1, width=8)), path,
                   {"stage": "test", "iterations": 0, "data": "none"})
    with pytest.raises(BenchmarkError, match=r"x2.safetensors: scale x2; only x4"):
        run.methods([str(path)], device="cpu")
