"""Training data: decoded HR images held in memory, random crops, LR made on the fly.

On a GPU the decoded images live in one flat uint8 buffer on the device
(:class:`PackedImages`) and a batch's crops, flips and rotations are one gather with
computed indices, followed by one batched bicubic downscale: no Python loop per crop and
no host-to-device copy of pixels. The crops are the same as the per-crop path's (same
random draws, same pixels), so a run's batch sequence does not depend on the layout.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from srgan_cli.nets.srresnet_spec import unit_to_output_

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
class PackedImages:
    """Images as one flat uint8 buffer (each image's (3, H, W) pixels in turn), with each
    image's start, height and width: what the batched crop gather indexes into."""

    flat: torch.Tensor  # (total,) uint8, on the bank's device
    offsets: torch.Tensor  # (n,) int64, on the CPU
    heights: torch.Tensor  # (n,) int64, on the CPU
    widths: torch.Tensor  # (n,) int64, on the CPU

    @classmethod
    def build(cls, images: Sequence[torch.Tensor], device: torch.device | str) -> "PackedImages":
        sizes = torch.tensor([t.numel() for t in images], dtype=torch.int64)
        offsets = torch.cumsum(sizes, 0) - sizes
        flat = torch.cat([t.reshape(-1).cpu() for t in images]).to(device)
        return cls(flat, offsets, torch.tensor([t.shape[1] for t in images]),
                   torch.tensor([t.shape[2] for t in images]))

    def views(self) -> list[torch.Tensor]:
        """Each image as a (3, H, W) view into :attr:`flat` (no copy)."""
        return [self.flat[o : o + 3 * h * w].view(3, h, w) for o, h, w in
                zip(self.offsets.tolist(), self.heights.tolist(), self.widths.tolist())]


@dataclass
class ImageBank:
    """Decoded training images, each a (3, H, W) uint8 tensor of at least crop x crop.

    With ``packed`` set, ``images`` are views into its flat buffer and :func:`sample_batch`
    cuts crops with one batched gather (the GPU path)."""

    images: list[torch.Tensor]
    packed: PackedImages | None = None

    def pack(self, device: torch.device | str | None = None) -> "ImageBank":
        """This bank in the packed layout, on ``device`` (default: where the images are)."""
        device = device if device is not None else self.images[0].device
        packed = PackedImages.build(self.images, device)
        return ImageBank(packed.views(), packed)

    @classmethod
    def from_dirs(
        cls,
        dirs: Sequence[str | os.PathLike],
        min_size: int,
        *,
        device: torch.device | str = "cpu",
        on_progress: Callable[[int, int], None] | None = None,
        shard: tuple[int, int] = (0, 1),
        packed: bool | None = None,
    ) -> "ImageBank":
        """Decode the images of ``dirs``; ``shard=(k, n)`` keeps every n-th file from the
        k-th (each rank of a distributed run gets its own share). ``packed`` (default: on
        any device but the CPU) holds them in one flat buffer on ``device``, decoded on the
        CPU and copied over once."""
        if packed is None:
            packed = torch.device(device).type != "cpu"
        paths = find_images(dirs)
        if not paths:
            raise DataError(f"no images found in {', '.join(str(d) for d in dirs)}")
        k, n = shard
        paths = paths[k::n]
        if not paths:
            raise DataError(f"shard {k}/{n}: no images left for this process "
                            f"(fewer images than processes)")
        images = []
        for i, p in enumerate(paths):
            try:
                t = load_rgb_u8(p)
            except (OSError, ValueError, Image.DecompressionBombError):
                continue  # unreadable files are skipped; the count is reported by the caller
            if t.shape[1] >= min_size and t.shape[2] >= min_size:
                images.append(t if packed else t.to(device))
            if on_progress:
                on_progress(i + 1, len(paths))
        if not images:
            raise DataError(f"no readable images of at least {min_size}x{min_size} px found")
        bank = cls(images)
        return bank.pack(device) if packed else bank

    def __len__(self) -> int:
        return len(self.images)


def sample_batch(
    bank: ImageBank,
    batch: int,
    crop: int,
    scale: int,
    gen: torch.Generator,
    *,
    device: torch.device | str = "cpu",
    degrade: Callable[[torch.Tensor, int, torch.Generator], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random HR crops with flips / 90-degree rotations, and their LR versions.

    Returns ``(lr, hr)``: lr in [0, 1] of size crop/scale, hr in the generator's output
    range ([-1, 1]) of size crop.
    All randomness comes from ``gen`` (a CPU generator), so a batch sequence is
    reproducible and resumable regardless of the device and of the bank's layout.
    A packed bank (:meth:`ImageBank.pack`) cuts the crops in one gather on its device.
    ``degrade(hr, scale, gen)`` (e.g. a :class:`srgan_cli.train.degrade.Degrader`) makes
    the LR instead of the clean antialiased bicubic downscale, drawing from ``gen`` after
    the crops' draws.
    """
    make_lr = downscale if degrade is None else (lambda x, s: degrade(x, s, gen))
    if crop % scale:
        raise ValueError(f"crop {crop} is not a multiple of scale {scale}")
    idx_t = torch.randint(len(bank), (batch,), generator=gen)
    u_t = torch.rand(batch, 2, generator=gen)
    aug_t = torch.randint(8, (batch,), generator=gen)
    if bank.packed is not None:
        hr = gather_crops(bank.packed, idx_t, u_t, aug_t, crop).to(device, non_blocking=True)
        hr = hr.float().div_(255.0)
        lr = make_lr(hr, scale)
        return lr, unit_to_output_(hr)
    idx, u, aug = idx_t.tolist(), u_t.tolist(), aug_t.tolist()
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
    lr = make_lr(hr, scale)
    return lr, unit_to_output_(hr)


def gather_crops(packed: PackedImages, idx: torch.Tensor, u: torch.Tensor, aug: torch.Tensor,
                 crop: int) -> torch.Tensor:
    """(B, 3, crop, crop) uint8 crops of ``packed`` in one indexed gather on its device.

    Crop b comes from image ``idx[b]`` at ``(y, x) = floor(u[b] * (H - crop + 1, W - crop +
    1))``; its augmentation ``aug[b]`` is the per-crop path's: bit 0 flips left-right, bit 1
    top-bottom, bit 2 then transposes. The flips and the transpose are folded into the
    source row and column of every output pixel, so one gather does it all.
    """
    dev = packed.flat.device
    b = idx.numel()
    h, w = packed.heights[idx], packed.widths[idx]
    # float64, as the per-crop path's Python arithmetic on the same float32 draws
    y = (u[:, 0].double() * (h - crop + 1)).floor().long()
    x = (u[:, 1].double() * (w - crop + 1)).floor().long()
    per = torch.stack([packed.offsets[idx], y, x, w, h * w, aug.long()], 1)
    if dev.type == "cuda":  # pinned + non-blocking: the host does not wait for the GPU here
        per = per.pin_memory().to(dev, non_blocking=True)
    off, y, x, w, hw, a = (per[:, k].view(b, 1, 1) for k in range(6))
    ar = torch.arange(crop, device=dev)
    i, j = ar.view(1, crop, 1), ar.view(1, 1, crop)
    t = (a & 4).bool()
    p, q = torch.where(t, j, i), torch.where(t, i, j)  # (b, crop, crop) after the transpose
    row = torch.where((a & 2).bool(), crop - 1 - p, p)
    col = torch.where((a & 1).bool(), crop - 1 - q, q)
    pix = off + (y + row) * w + (x + col)  # channel 0's flat index
    chan = torch.arange(3, device=dev).view(1, 3, 1, 1) * hw.view(b, 1, 1, 1)
    index = (pix.unsqueeze(1) + chan).view(-1)
    return packed.flat.index_select(0, index).view(b, 3, crop, crop)  # fastest gather on CPU
