"""The SRGAN discriminator of Ledig et al. (2017), Figure 4.

Eight 3x3 convolutions (k3n64s1, k3n64s2, k3n128s1, k3n128s2, k3n256s1, k3n256s2,
k3n512s1, k3n512s2), BatchNorm after all but the first, LeakyReLU(0.2); then dense 1024,
LeakyReLU, dense 1. ``forward`` returns logits (train with BCE-with-logits); the paper's
sigmoid is ``torch.sigmoid(logits)``. The dense layer fixes the input size (96x96 HR
crops in the paper).

Also here: a U-Net discriminator that judges each pixel (``srgan train --discriminator
unet``), not the paper's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
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


class UNetDiscriminator(nn.Module):
    """A U-Net discriminator with spectral normalisation that judges every pixel (after
    the one Real-ESRGAN trains with, Wang et al. 2021, Sec. 3.2; our own code): a 3x3
    convolution, three stride-2 4x4 convolutions (``width`` x 2, 4, 8 channels), three
    stages of bilinear x2 + 3x3 convolution back to full resolution, each added to the
    encoder's output of that resolution, two 3x3 convolutions and a 1-channel 3x3 head.
    LeakyReLU(0.2) after each but the head; every convolution but the first and the head
    spectrally normalised, no BatchNorm. ``forward`` returns per-pixel logits (N, H, W)
    for any input whose sides are multiples of 8: the losses average them as they average
    the per-image logits of :class:`Discriminator`."""

    def __init__(self, channels: int = 3, width: int = 64) -> None:
        super().__init__()
        from torch.nn.utils.parametrizations import spectral_norm

        w = width
        self.stem = nn.Conv2d(channels, w, 3, 1, 1)
        self.down = nn.ModuleList(
            spectral_norm(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False))
            for c_in, c_out in ((w, 2 * w), (2 * w, 4 * w), (4 * w, 8 * w)))
        self.up = nn.ModuleList(
            spectral_norm(nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False))
            for c_in, c_out in ((8 * w, 4 * w), (4 * w, 2 * w), (2 * w, w)))
        self.tail = nn.Sequential(
            spectral_norm(nn.Conv2d(w, w, 3, 1, 1, bias=False)), nn.LeakyReLU(0.2, True),
            spectral_norm(nn.Conv2d(w, w, 3, 1, 1, bias=False)), nn.LeakyReLU(0.2, True),
            nn.Conv2d(w, 1, 3, 1, 1))
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1], (N, 3, H, W) with H and W multiples of 8 -> logits (N, H, W)."""
        if x.shape[-1] % 8 or x.shape[-2] % 8:
            raise ValueError(f"the U-Net discriminator needs sides that are multiples of 8, "
                             f"got {tuple(x.shape[-2:])}")
        skips = [self.act(self.stem(x))]
        for conv in self.down:
            skips.append(self.act(conv(skips[-1])))
        y = skips.pop()
        for conv in self.up:
            y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
            y = self.act(conv(y)) + skips.pop()
        return self.tail(y)[:, 0]


# what each ``srgan train --discriminator`` needs of the crop size (the paper's dense layer
# sees crop/16 x crop/16 features; the U-Net downsamples three times)
CROP_MULTIPLE = {"vgg": 16, "unet": 8}


def build_discriminator(kind: str, crop: int) -> nn.Module:
    """The discriminator ``srgan train --discriminator`` names, for ``crop``-px HR crops."""
    return UNetDiscriminator() if kind == "unet" else Discriminator(crop)
