"""Validation during training: mean Y-PSNR (the paper's protocol), LPIPS and grid excess
of the generator's 8-bit outputs on a benchmark folder such as Set5, scored by the
benchmark's own function (:func:`srgan_cli.bench.quality.score`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from srgan_cli.errors import TrainError
from srgan_cli.nets.generator import SRResNet
from srgan_cli.nets.srresnet_spec import output_to_unit


def load_pairs(val_dir: Path, scale: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(LR, HR) uint8 pairs of a benchmark folder such as ``.../Set5`` (``*_HR``, ``*_LR_x4``)."""
    from srgan_cli.bench.datasets import DatasetError, load_dataset

    try:
        pairs = load_dataset(val_dir.name, val_dir.parent, scale)
    except (DatasetError, OSError) as e:
        raise TrainError(f"validation data: {e}") from None
    return [(_rgb(p.lr), _rgb(p.hr)) for p in pairs]


def _rgb(a: np.ndarray) -> np.ndarray:
    return a if a.ndim == 3 else np.repeat(a[..., None], 3, axis=2)


def sr_image(model: SRResNet, lr: np.ndarray, device: torch.device) -> np.ndarray:
    """The model's 8-bit output (H, W, 3) for an (h, w, 3) uint8 LR image (the network run
    whole, its convolutions' zero padding at the borders)."""
    x = torch.from_numpy(lr).permute(2, 0, 1)[None].float().div(255).to(device)
    y = output_to_unit(model(x).float(), 255.0).clamp(0, 255).round().to(torch.uint8).cpu()
    return y[0].permute(1, 2, 0).numpy()


@torch.inference_mode()
def validate(model: SRResNet, pairs, device: torch.device) -> float:
    """Mean Y-PSNR (paper protocol: BT.601 luma, 4 px border) over ``pairs``, fp32."""
    return validate_metrics(model, pairs, device)["val_psnr"]


@torch.inference_mode()
def validate_lpips(model: SRResNet, pairs, lpips_model,
                   device: torch.device) -> float | None:
    """Mean LPIPS (AlexNet) of the 8-bit SR outputs against HR, as the benchmark scores it
    (None when an image is too small for it)."""
    return validate_metrics(model, pairs, device, lpips_model).get("val_lpips")


@torch.inference_mode()
def validate_metrics(model: SRResNet, pairs, device: torch.device,
                     lpips_model=None) -> dict[str, float | None]:
    """``val_psnr``, ``val_grid`` (grid excess over the HR images, dB; None when an image
    is too small to score) and, with ``lpips_model``, ``val_lpips`` (left out when an image
    is too small for LPIPS after the crop, under 39 px a side), from one pass of the
    model over ``pairs``: each output scored by the benchmark's own
    :func:`srgan_cli.bench.quality.score` (same crops and preprocessing; no SSIM), so the
    numbers are what ``srgan benchmark`` reports for the same outputs."""
    from srgan_cli.bench.quality import mean_scores, score

    was_training = model.training
    model.eval()
    outs = [sr_image(model, lr, device) for lr, _ in pairs]
    model.train(was_training)
    try:
        rows = [score(o, hr, ssim_method=None, lpips_model=lpips_model)
                for o, (_, hr) in zip(outs, pairs)]
    except ValueError:  # an image too small for LPIPS after the crop: scored without it
        rows = [score(o, hr, ssim_method=None) for o, (_, hr) in zip(outs, pairs)]
    means = mean_scores(rows)
    rec = {"val_psnr": means["psnr"], "val_grid": means["grid_excess"]}
    if means["lpips"] is not None:
        rec["val_lpips"] = means["lpips"]
    return rec
