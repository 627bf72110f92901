"""Training validation and the benchmark score with one function
(``bench.quality.score``): for the same model and images, ``val_psnr``, ``val_lpips`` and
``val_grid`` are the benchmark's PSNR, LPIPS and grid excess."""

import numpy as np
import pytest
import torch
from conftest import SHARED, needs_shared

from srgan_cli.bench.datasets import Pair
from srgan_cli.bench.quality import evaluate, mean_scores, score
from srgan_cli.bench.run import methods
from srgan_cli.distribution.modelfile import save_generator
from srgan_cli.nets.generator import GeneratorSpec, SRResNet
from srgan_cli.train.validation import load_pairs, sr_image, validate_metrics

LPIPS_FILE = SHARED / "weights" / "lpips-alexnet.safetensors"
SET5 = SHARED / "datasets" / "benchmark" / "Set5"


@pytest.fixture(scope="module")
def lpips():
    from srgan_cli.nets.lpips import LPIPS

    return LPIPS.load(LPIPS_FILE)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = SRResNet(GeneratorSpec(4, 2, 8))
    for m in net.modules():  # BN statistics that eval mode uses
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return net.eval()


@needs_shared("weights", "lpips-alexnet.safetensors")
@needs_shared("datasets", "benchmark", "Set5")
def test_training_validation_reports_the_benchmarks_numbers_for_the_same_outputs(model, lpips):
    pairs = load_pairs(SET5, 4)
    cpu = torch.device("cpu")
    val = validate_metrics(model, pairs, cpu, lpips)
    rec = evaluate("set5", "m", [Pair(f"i{k}", lr, hr) for k, (lr, hr) in enumerate(pairs)],
                   4, lambda lr: sr_image(model, lr, cpu), lpips_model=lpips)
    assert val["val_psnr"] == rec.psnr
    assert val["val_lpips"] == rec.lpips  # both crop 4 px (validation scored whole images)
    assert val["val_grid"] == rec.grid
    whole = np.mean([float(lpips(torch.from_numpy(sr_image(model, lr, cpu)).permute(2, 0, 1)[
        None].float() / 255, torch.from_numpy(hr).permute(2, 0, 1)[None].float() / 255)[0])
        for lr, hr in pairs])
    assert abs(whole - val["val_lpips"]) > 1e-4  # the crop matters: old logs differ


@needs_shared("weights", "lpips-alexnet.safetensors")
@needs_shared("datasets", "benchmark", "Set5")
def test_the_benchmark_run_of_a_weights_file_agrees_with_its_validation(model, lpips, tmp_path):
    """Through ``srgan benchmark``'s path (Upscaler, --border zero, fp32) the outputs differ
    from validation's only in how halves round to 8 bits."""
    path = tmp_path / "m.safetensors"
    save_generator(model, path, {"stage": "test"})
    run = methods([str(path)], device="cpu", precision="fp32", border="zero")[str(path)]
    pairs = load_pairs(SET5, 4)
    val = validate_metrics(model, pairs, torch.device("cpu"), lpips)
    rec = evaluate("set5", "m", [Pair(f"i{k}", lr, hr) for k, (lr, hr) in enumerate(pairs)],
                   4, run, lpips_model=lpips)
    assert abs(val["val_psnr"] - rec.psnr) < 1e-3
    assert abs(val["val_lpips"] - rec.lpips) < 1e-4
    assert abs(val["val_grid"] - rec.grid) < 1e-2


def test_one_score_row_has_every_metric_and_means_skip_what_was_not_scored():
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    sr = np.clip(hr.astype(int) + rng.integers(-8, 9, hr.shape), 0, 255).astype(np.uint8)
    row = score(sr, hr)
    assert set(row) == {"psnr", "ssim", "grid_excess"} and 25 < row["psnr"] < 40
    assert set(score(sr, hr, ssim_method=None)) == {"psnr", "grid_excess"}
    tiny = score(sr[:12, :12], hr[:12, :12], ssim_method=None)
    assert tiny["grid_excess"] is None  # too small for the grid score
    means = mean_scores([row, {**row, "psnr": row["psnr"] + 2, "grid_excess": None}])
    assert means["psnr"] == pytest.approx(row["psnr"] + 1)
    assert means["grid_excess"] is None and means["lpips"] is None


@needs_shared("weights", "lpips-alexnet.safetensors")
def test_validation_images_too_small_for_lpips_after_the_crop_are_scored_without_it(model,
                                                                                      lpips):
    from conftest import photo_like

    hr = photo_like(36, 48, seed=3)  # 28 px high after the 4-px crop: AlexNet needs 31
    lr = hr[::4, ::4].copy()
    val = validate_metrics(model, [(lr, hr)], torch.device("cpu"), lpips)
    assert "val_lpips" not in val and np.isfinite(val["val_psnr"])
    with pytest.raises(ValueError, match="too small for LPIPS"):
        score(sr_image(model, lr, torch.device("cpu")), hr, lpips_model=lpips)
