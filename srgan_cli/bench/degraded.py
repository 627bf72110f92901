"""Degraded benchmark sets (``srgan benchmark --degrade``): deterministic LR images made
from each HR image, scored against the clean HR.

A spec is ``none`` (the dataset's own LR) or steps joined by ``+``, applied in this order
whatever the order written (Real-ESRGAN's: blur, downscale, noise, JPEG):

- ``blurS``: a Gaussian blur of sigma S LR pixels (S x 4 HR pixels) on the HR image
  before the downscale (isotropic, normalised, taps to +-3 sigma, reflect padding);
- the downscale itself, always: ``F.interpolate(hr, size=(h/4, w/4), mode='bicubic',
  antialias=True)`` (a = -0.5) in float32, clamped and rounded to 8 bits;
- ``noiseS``: Gaussian noise of sigma S/255 on the LR, independent per channel, from
  ``numpy.random.default_rng(zlib.crc32(b'<image name>:noiseS'))``, clamped and rounded;
- ``jpegQ``: a Pillow JPEG at quality Q (4:2:0 for colour), decoded again.

``clean`` is the downscale alone (the remade LR, to compare with the dataset's own).
Labels are canonical (``jpeg75+blur1`` is labelled ``blur1+jpeg75``); a degraded set is
named ``<dataset>+<label>`` in tables, JSON and CSV.
"""

from __future__ import annotations

import re
import zlib

import numpy as np
import torch

from srgan_cli.bench.datasets import Pair
from srgan_cli.errors import BenchmarkError
from srgan_cli.train.degrade import blur, gaussian_kernels, jpeg, kernel_size, resize

ORDER = ("clean", "blur", "noise", "jpeg")
_STEP = re.compile(r"^(clean|blur|noise|jpeg)(\d+(?:\.\d+)?)?$")


def parse_degrade(text: str) -> list[tuple[str, float]] | None:
    """``'none'`` -> None; else the steps of ``text`` in the order they are applied, as
    (kind, value) pairs. Raises :class:`BenchmarkError` (one line) for a bad spec."""
    text = text.strip().lower()
    if text == "none":
        return None
    steps: dict[str, float] = {}
    for token in text.split("+"):
        m = _STEP.match(token.strip())
        if m is None or (m.group(1) == "clean") != (m.group(2) is None):
            raise BenchmarkError(f"--degrade {text!r}: {token!r} is not a step (none, clean, "
                                 "blurS, noiseS, jpegQ, joined by '+', e.g. blur1+jpeg75)")
        kind, value = m.group(1), float(m.group(2) or 0)
        if kind in steps:
            raise BenchmarkError(f"--degrade {text!r}: {kind} given twice")
        if kind == "jpeg" and not (1 <= value <= 100 and value.is_integer()):
            raise BenchmarkError(f"--degrade {text!r}: JPEG quality must be an integer 1..100")
        if kind in ("blur", "noise") and value <= 0:
            raise BenchmarkError(f"--degrade {text!r}: {kind} needs a sigma above 0")
        steps[kind] = value
    if "clean" in steps and len(steps) > 1:
        raise BenchmarkError(f"--degrade {text!r}: 'clean' is the downscale alone; "
                             "leave it out when combining steps")
    return [(k, steps[k]) for k in ORDER if k in steps]


def label(steps: list[tuple[str, float]] | None) -> str:
    """The canonical name of parsed steps ('none' for None)."""
    if steps is None:
        return "none"
    return "+".join(k if k == "clean" else f"{k}{v:g}" for k, v in steps)


def degrade_pair(pair: Pair, steps: list[tuple[str, float]], scale: int = 4) -> Pair:
    """``pair`` with its LR remade from its HR by ``steps`` (:func:`parse_degrade`)."""
    hr = pair.hr
    x = torch.from_numpy(hr.astype(np.float32) / 255.0)
    x = x.permute(2, 0, 1)[None] if hr.ndim == 3 else x[None, None]
    for kind, value in steps:
        if kind == "blur":
            sigma = torch.tensor([value * scale])
            k = gaussian_kernels(sigma, sigma, torch.zeros(1), kernel_size(value * scale))
            x = blur(x, k)
    size = (hr.shape[0] // scale, hr.shape[1] // scale)
    lr = _to_u8(resize(x, size, "bicubic")[0])
    for kind, value in steps:
        if kind == "noise":
            rng = np.random.default_rng(zlib.crc32(f"{pair.name}:noise{value:g}".encode()))
            noisy = lr / 255.0 + rng.normal(0.0, value / 255.0, lr.shape)
            lr = (np.clip(noisy, 0.0, 1.0) * 255.0).round().astype(np.uint8)
        elif kind == "jpeg":
            lr = jpeg(lr, int(value))
    return Pair(pair.name, lr, hr)


def _to_u8(x: torch.Tensor) -> np.ndarray:
    """A (C, H, W) float tensor in [0, 1] as an 8-bit (H, W, C) or (H, W) array."""
    a = (x.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return a[..., 0].copy() if a.shape[2] == 1 else np.ascontiguousarray(a)


def degraded_sets(loaded: dict[str, list[Pair]], specs: list[str],
                  scale: int = 4) -> dict[str, list[Pair]]:
    """Each dataset of ``loaded`` once per spec, named ``<dataset>+<label>`` (``none``:
    the dataset as loaded, under its own name), datasets in turn."""
    parsed = [parse_degrade(s) for s in specs]
    out: dict[str, list[Pair]] = {}
    for ds, pairs in loaded.items():
        for steps in parsed:
            name = ds if steps is None else f"{ds}+{label(steps)}"
            out[name] = pairs if steps is None else [degrade_pair(p, steps, scale)
                                                    for p in pairs]
    return out
