"""The SRGAN discriminator of Ledig et al. (2017), Figure 4.

Eight 3x3 convolutions (k3n64s1, k3n64s2, k3n128s1, k3n128s2, k3n256s1, k3n256s2,
k3n512s1, k3n512s2), BatchNorm after all but the first, LeakyReLU(0.2); then dense 1024,
LeakyReLU, dense 1. ``forward`` returns logits (train with BCE-with-logits); the paper's
sigmoid is ``torch.sigmoid(logits)``. The dense layer fixes the input size (96x96 HR
crops in the paper).
"""

from __future__ import annotations

import torch
from torch import nn

LAYOUT = ((64, 1), (64, 2), (128, 1), (128, 2), (256, 1), (256, 2), (512, 1), (512, 2))


class Discriminator(nn.Module):
    def __init__(self, crop: int = 96, channels: int = 3) -> None:
        super().__init__()
        if crop % 16:
            raise ValueError(f"crop must be a multiple of 16, got {crop}")
        layers: list[nn.Module] = []
        c_in = channels
        for i, (c_out, stride) in enumerate(LAYOUT):
            layers.append(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=i == 0))
            if i:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            c_in = c_out
        self.features = nn.Sequential(*layers)
        side = crop // 16
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(512 * side * side, 1024),
                                  nn.LeakyReLU(0.2, inplace=True), nn.Linear(1024, 1))
        self.crop = crop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1], (N, 3, crop, crop) -> logits (N,)."""
        return self.head(self.features(x))[:, 0]
