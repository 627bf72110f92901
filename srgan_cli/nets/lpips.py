"""LPIPS v0.1 (Zhang et al. 2018) with the AlexNet backbone, from a safetensors file.

The file holds torchvision's ``alexnet().features`` under ``features.*`` and the five LPIPS
linear heads under ``lin.lin{k}.model.1.weight``. Inputs are RGB in [0, 1]; they are mapped
to [-1, 1] and through LPIPS' fixed scaling layer before AlexNet.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from srgan_cli.errors import WeightsError

SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
TAPS = (1, 4, 7, 9, 11)  # ReLU outputs of torchvision's AlexNet features
WIDTHS = (64, 192, 384, 256, 256)
ENV = "SRGAN_LPIPS_WEIGHTS"


def default_weights() -> Path | None:
    env = os.environ.get(ENV)
    if env:
        return Path(env)
    from srgan_cli.paths import shared_dir

    s = shared_dir()
    p = s / "weights" / "lpips-alexnet.safetensors" if s else None
    return p if p and p.is_file() else None


class LPIPS(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        from torchvision.models import alexnet

        self.features = alexnet(weights=None).features
        self.lin = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in WIDTHS)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "LPIPS":
        path = Path(path) if path else default_weights()
        if path is None:
            raise WeightsError(
                "LPIPS needs AlexNet + LPIPS v0.1 weights: pass --lpips-weights PATH or set "
                f"{ENV} (a safetensors file with features.* and lin.lin0-4.model.1.weight)")
        from srgan_cli.distribution.tensorfile import load_tensors

        if not path.is_file():
            raise WeightsError(f"{path}: no such LPIPS weights file")
        state = load_tensors(path)
        model = cls()
        mapped = {k: v for k, v in state.items() if k.startswith("features.")}
        for i in range(5):
            key = f"lin.lin{i}.model.1.weight"
            if key not in state:
                raise WeightsError(f"{path}: missing {key}")
            mapped[f"lin.{i}.weight"] = state[key]
        try:
            missing, unexpected = model.load_state_dict(mapped, strict=False)
        except RuntimeError as e:
            raise WeightsError(f"{path}: LPIPS weights do not fit AlexNet ({e})") from None
        missing = [k for k in missing if k not in ("shift", "scale")]
        if missing or unexpected:
            raise WeightsError(f"{path}: LPIPS weights missing {missing} / unexpected {unexpected}")
        return model.eval()

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = (x * 2 - 1 - self.shift) / self.scale
        outs = []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in TAPS:
                outs.append(h / (h.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
            if i == TAPS[-1]:
                break
        return outs

    @torch.inference_mode()
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Distance per image for (N, 3, H, W) batches in [0, 1]."""
        total = 0
        for lin, fa, fb in zip(self.lin, self._taps(a), self._taps(b)):
            total = total + lin((fa - fb) ** 2).mean(dim=(2, 3))
        return total[:, 0]
