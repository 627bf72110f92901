"""Validation during training: mean Y-PSNR (the paper's protocol), LPIPS and grid excess
of the generator's 8-bit outputs on a benchmark folder such as Set5."""

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


def _sr_u8(model: SRResNet, lr: np.ndarray, device: torch.device) -> torch.Tensor:
    """The model's 8-bit output (1, 3, H, W) for an (h, w, 3) uint8 LR image, on the CPU."""
    x = torch.from_numpy(lr).permute(2, 0, 1)[None].float().div(255).to(device)
    return output_to_unit(model(x).float(), 255.0).clamp(0, 255).round().to(torch.uint8).cpu()


@torch.inference_mode()
def validate(model: SRResNet, pairs, device: torch.device) -> float:
    """Mean Y-PSNR (paper protocol: BT.601 luma, 4 px border) over ``pairs``, fp32."""
    from srgan_cli.bench.metrics import psnr

    was_training = model.training
    model.eval()
    scores = [psnr(_sr_u8(model, lr, device)[0].permute(1, 2, 0).numpy(), hr,
                   crop_border=model.spec.scale) for lr, hr in pairs]
    model.train(was_training)
    return float(np.mean(scores))


@torch.inference_mode()
def validate_lpips(model: SRResNet, pairs, lpips_model, device: torch.device) -> float:
    """Mean LPIPS (AlexNet) of the 8-bit SR outputs against HR, on the CPU."""
    was_training = model.training
    model.eval()
    outs = [_sr_u8(model, lr, device) for lr, _ in pairs]
    model.train(was_training)
    return _mean_lpips(lpips_model, outs, pairs)


def _mean_lpips(lpips_model, outs: list[torch.Tensor], pairs) -> float:
    return float(np.mean([
        float(lpips_model(o.float().div(255),
                          torch.from_numpy(hr).permute(2, 0, 1)[None].float().div(255))[0])
        for o, (_, hr) in zip(outs, pairs)]))


@torch.inference_mode()
def validate_metrics(model: SRResNet, pairs, device: torch.device,
                     lpips_model=None) -> dict[str, float]:
    """``val_psnr`` (as :func:`validate`), ``val_grid`` (grid excess over the HR images, dB:
    :func:`srgan_cli.bench.metrics.grid_excess`) and, with ``lpips_model``, ``val_lpips``
    (as :func:`validate_lpips`), from one pass of the model over ``pairs``."""
    from srgan_cli.bench.metrics import grid_excess, psnr

    was_training = model.training
    model.eval()
    outs = [_sr_u8(model, lr, device) for lr, _ in pairs]
    model.train(was_training)
    hwc = [o[0].permute(1, 2, 0).numpy() for o in outs]
    rec = {"val_psnr": float(np.mean([psnr(o, hr, crop_border=model.spec.scale)
                                       for o, (_, hr) in zip(hwc, pairs)])),
           "val_grid": grid_excess(hwc, [hr for _, hr in pairs])}
    if lpips_model is not None:
        rec["val_lpips"] = _mean_lpips(lpips_model, outs, pairs)
    return rec
