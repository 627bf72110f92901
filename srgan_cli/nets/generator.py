"""The SRResNet / SRGAN generator of Ledig et al. (CVPR 2017), Figure 4.

Layout (names are the state-dict prefixes)::

    head      9x9 conv, 3 -> C maps, PReLU
    body.i    B residual blocks: 3x3 conv, BN, PReLU, 3x3 conv, BN, + identity
    fuse      3x3 conv, BN, + skip from the head's output
    up.j      log2(scale) sub-pixel stages: 3x3 conv C -> 4C, PixelShuffle(2), PReLU
    tail      9x9 conv, C -> 3

Value ranges: the input (LR) is RGB in [0, 1]; the output lives in [-1, 1]
(the paper trains against HR scaled to [-1, 1]). ``SRResNet.forward`` returns the
raw [-1, 1] prediction; use :func:`to_unit_range` to map it back to [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

INPUT_RANGE = (0.0, 1.0)
OUTPUT_RANGE = (-1.0, 1.0)


@dataclass(frozen=True)
class GeneratorSpec:
    """Everything needed to rebuild a generator; stored in weight-file metadata."""

    scale: int = 4
    blocks: int = 16
    width: int = 64
    channels: int = 3

    def __post_init__(self) -> None:
        if self.scale not in (2, 4, 8):
            raise ValueError(f"scale must be 2, 4 or 8, got {self.scale}")
        if self.blocks < 1:
            raise ValueError(f"blocks must be >= 1, got {self.blocks}")
        if self.width < 1:
            raise ValueError(f"width must be >= 1, got {self.width}")
        if self.channels < 1:
            raise ValueError(f"channels must be >= 1, got {self.channels}")

    @property
    def up_stages(self) -> int:
        return int(math.log2(self.scale))

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def receptive_radius(self) -> int:
        """LR pixels each output pixel depends on, on each side.

        9x9 head (4) + 2 per residual block + 1 (fuse) + upsampling convs and the 9x9
        tail measured back in LR pixels (each 3x3 conv at scale s sees ceil(1/s) LR px).
        """
        r = 4 + 2 * self.blocks + 1
        s = 1
        for _ in range(self.up_stages):
            r += math.ceil(1 / s)  # the 3x3 conv before this stage's shuffle runs at scale s
            s *= 2
        r += math.ceil(4 / s)  # 9x9 tail at full scale
        return r

    def flops_per_lr_pixel(self) -> float:
        """Multiply-adds x 2 per LR pixel (convolutions only)."""
        c, k = self.width, self.channels
        macs = 81 * k * c  # head
        macs += self.blocks * 2 * 9 * c * c
        macs += 9 * c * c  # fuse
        area = 1
        for _ in range(self.up_stages):
            macs += area * 9 * c * 4 * c
            area *= 4
        macs += area * 81 * c * k
        return 2.0 * macs


class ResidualBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.act = nn.PReLU(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))


class Upsample(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(width, width * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.act = nn.PReLU(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


class Head(nn.Module):
    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, width, 9, padding=4)
        self.act = nn.PReLU(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class Fuse(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, padding=1)
        self.bn = nn.BatchNorm2d(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class SRResNet(nn.Module):
    """Generator network. ``forward`` maps LR in [0,1] to SR in [-1,1]."""

    def __init__(self, spec: GeneratorSpec | None = None) -> None:
        super().__init__()
        self.spec = spec or GeneratorSpec()
        c = self.spec.width
        self.head = Head(self.spec.channels, c)
        self.body = nn.Sequential(*[ResidualBlock(c) for _ in range(self.spec.blocks)])
        self.fuse = Fuse(c)
        self.up = nn.Sequential(*[Upsample(c) for _ in range(self.spec.up_stages)])
        self.tail = nn.Conv2d(c, self.spec.channels, 9, padding=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        y = self.fuse(self.body(h)) + h
        return self.tail(self.up(y))


def to_unit_range(y: torch.Tensor) -> torch.Tensor:
    """Map generator output from [-1, 1] to [0, 1] (clamped)."""
    return ((y + 1.0) * 0.5).clamp_(0.0, 1.0)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
