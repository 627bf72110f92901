"""Benchmark datasets laid out as ``<root>/<Name>/<Name>_HR/`` + ``<Name>_LR_x<s>/``."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from srgan_cli.errors import SrganError

KNOWN = {"set5": "Set5", "set14": "Set14", "bsd100": "BSD100", "urban100": "Urban100"}


class DatasetError(SrganError):
    """A benchmark dataset is missing or malformed."""


@dataclass
class Pair:
    name: str
    lr: np.ndarray  # uint8, (h, w, 3) or (h, w)
    hr: np.ndarray  # uint8, (h*s, w*s, ...) after mod-crop


IMAGE_SUFFIXES = {".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".ppm"}


def _images_in(d: Path) -> int:
    return sum(1 for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _find(root: Path, suffix: str) -> Path | None:
    """The folder named ``*<suffix>`` under ``root`` that directly holds the most images
    (archives may nest ``Set5_HR/Set5_HR/`` or put files at the top)."""
    cands = [d for d in [root, *root.rglob("*")]
             if d.is_dir() and d.name.lower().endswith(suffix.lower()) and _images_in(d)]
    return max(cands, key=_images_in) if cands else None


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        if im.mode not in ("L", "RGB"):
            im = im.convert("RGB")
        return np.array(im)


def _key(stem: str) -> str:
    """Image name without HR/LR/scale tags: 'baby_HR', 'baby_LR_x4', 'baby' -> 'baby'."""
    return re.sub(r"([_-](hr|lr|x\d|lrx\d|lr_x\d))+$", "", stem.lower())


def has_dataset(data_dir: Path | None, name: str) -> bool:
    if data_dir is None or not Path(data_dir).is_dir():
        return False
    want = KNOWN.get(name.lower(), name).lower()
    return any(d.is_dir() and d.name.lower() == want for d in Path(data_dir).iterdir())


def load_dataset(name: str, data_dir: str | os.PathLike, scale: int = 4) -> list[Pair]:
    """Read the HR/LR pairs of dataset ``name`` from ``data_dir``.

    The HR and LR folders are found by their ``_HR`` / ``_LR_x<scale>`` suffixes anywhere
    under ``<data_dir>/<Name>``; HR images are mod-cropped to the LR size times the scale.
    """
    canonical = KNOWN.get(name.lower(), name)
    root = Path(data_dir) / canonical
    if not root.is_dir():
        matches = [d for d in Path(data_dir).iterdir() if d.is_dir()
                   and d.name.lower() == name.lower()] if Path(data_dir).is_dir() else []
        if not matches:
            raise DatasetError(f"{root}: dataset {name!r} not found")
        root = matches[0]
    hr_dir, lr_dir = _find(root, "_HR"), _find(root, f"_LR_x{scale}")
    if hr_dir is None or lr_dir is None:
        raise DatasetError(f"{root}: expected folders *_HR and *_LR_x{scale}")
    pairs = []
    lr_by_key = {_key(p.stem): p for p in lr_dir.iterdir()
                 if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}
    for hr_path in sorted(p for p in hr_dir.iterdir()
                          if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
        k = _key(hr_path.stem)
        lr_path = lr_by_key.get(k) or lr_by_key.get(f"{k}x{scale}")  # DIV2K style '0801x4'
        if lr_path is None:
            raise DatasetError(f"{hr_path}: no LR counterpart in {lr_dir}")
        lr, hr = _load(lr_path), _load(hr_path)
        if lr.ndim != hr.ndim:
            lr = np.array(Image.fromarray(lr).convert("RGB" if hr.ndim == 3 else "L"))
        h, w = lr.shape[0] * scale, lr.shape[1] * scale
        if hr.shape[0] < h or hr.shape[1] < w:
            raise DatasetError(f"{hr_path}: HR {hr.shape[1]}x{hr.shape[0]} smaller than "
                               f"{scale}x the LR")
        pairs.append(Pair(hr_path.stem, lr, hr[:h, :w]))
    if not pairs:
        raise DatasetError(f"{hr_dir}: no images")
    return pairs
