"""Training data: decoded HR images held in memory, random crops, LR made on the fly."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm"}


class DataError(Exception):
    """The training data could not be found or read."""


def find_images(dirs: Iterable[str | os.PathLike]) -> list[Path]:
    """All image files under ``dirs`` (recursive), sorted for reproducibility."""
    found: list[Path] = []
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            raise DataError(f"{d}: not a directory")
        found.extend(
            p for p in d.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
    return sorted(found)


def load_rgb_u8(path: Path) -> torch.Tensor:
    """Decode to a (3, H, W) uint8 tensor, EXIF orientation applied."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        arr = np.asarray(im.convert("RGB"))
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def downscale(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """Antialiased bicubic (a = -0.5) downscaling of a float [0,1] NCHW batch."""
    lr = F.interpolate(hr, scale_factor=1.0 / scale, mode="bicubic", antialias=True,
                       align_corners=False)
    return lr.clamp_(0.0, 1.0)


@dataclass
class ImageBank:
    """Decoded training images, each a (3, H, W) uint8 tensor of at least crop x crop."""

    images: list[torch.Tensor]
    sources: list[Path]

    @classmethod
    def from_dirs(
        cls,
        dirs: Sequence[str | os.PathLike],
        min_size: int,
        device: torch.device | str = "cpu",
        on_progress: Callable[[int, int], None] | None = None,
        shard: tuple[int, int] = (0, 1),
    ) -> "ImageBank":
        """Decode the images of ``dirs``; ``shard=(k, n)`` keeps every n-th file from the
        k-th (each rank of a distributed run gets its own share)."""
        paths = find_images(dirs)
        if not paths:
            raise DataError(f"no images found in {', '.join(str(d) for d in dirs)}")
        k, n = shard
        paths = paths[k::n]
        if not paths:
            raise DataError(f"shard {k}/{n}: no images left for this process "
                            f"(fewer images than processes)")
        images, sources = [], []
        for i, p in enumerate(paths):
            try:
                t = load_rgb_u8(p)
            except (OSError, ValueError, Image.DecompressionBombError):
                continue  # unreadable files are skipped; the count is reported by the caller
            if t.shape[1] >= min_size and t.shape[2] >= min_size:
                images.append(t.to(device))
                sources.append(p)
            if on_progress:
                on_progress(i + 1, len(paths))
        if not images:
            raise DataError(f"no readable images of at least {min_size}x{min_size} px found")
        return cls(images, sources)

    def __len__(self) -> int:
        return len(self.images)


def sample_batch(
    bank: ImageBank,
    batch: int,
    crop: int,
    scale: int,
    gen: torch.Generator,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random HR crops with flips / 90-degree rotations, and their LR versions.

    Returns ``(lr, hr)``: lr in [0, 1] of size crop/scale, hr in [-1, 1] of size crop.
    All randomness comes from ``gen`` (a CPU generator), so a batch sequence is
    reproducible and resumable regardless of the device.
    """
    if crop % scale:
        raise ValueError(f"crop {crop} is not a multiple of scale {scale}")
    idx = torch.randint(len(bank), (batch,), generator=gen).tolist()
    u = torch.rand(batch, 2, generator=gen).tolist()
    aug = torch.randint(8, (batch,), generator=gen).tolist()
    crops = []
    for i, (fy, fx), a in zip(idx, u, aug):
        img = bank.images[i]
        h, w = img.shape[1:]
        y = int(fy * (h - crop + 1))
        x = int(fx * (w - crop + 1))
        c = img[:, y : y + crop, x : x + crop]
        if a & 1:
            c = c.flip(2)
        if a & 2:
            c = c.flip(1)
        if a & 4:
            c = c.transpose(1, 2)
        crops.append(c)
    hr = torch.stack(crops).to(device, non_blocking=True).float().div_(255.0)
    lr = downscale(hr, scale)
    return lr, hr.mul_(2.0).sub_(1.0)
