"""Quality benchmark: run a method over a dataset and score it with the paper's protocol."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from srgan_cli.bench.datasets import Pair
from srgan_cli.bench.metrics import psnr, ssim

BASELINES = {"nearest": Image.NEAREST, "bicubic": Image.BICUBIC}

# The paper's Table 2 (x4): PSNR / SSIM.
PAPER = {
    ("set5", "nearest"): (26.26, 0.7552), ("set5", "bicubic"): (28.43, 0.8211),
    ("set5", "srresnet"): (32.05, 0.9019), ("set5", "srgan"): (29.40, 0.8472),
    ("set14", "nearest"): (24.64, 0.7100), ("set14", "bicubic"): (25.99, 0.7486),
    ("set14", "srresnet"): (28.49, 0.8184), ("set14", "srgan"): (26.02, 0.7397),
    ("bsd100", "nearest"): (25.02, 0.6606), ("bsd100", "bicubic"): (25.94, 0.6935),
    ("bsd100", "srresnet"): (27.58, 0.7620), ("bsd100", "srgan"): (25.16, 0.6688),
}


@dataclass
class Record:
    dataset: str
    method: str
    scale: int
    psnr: float
    ssim: float
    ssim_method: str
    images: int
    per_image: list[tuple[str, float, float]]


def baseline(kind: str, scale: int) -> Callable[[np.ndarray], np.ndarray]:
    resample = BASELINES[kind]

    def run(lr: np.ndarray) -> np.ndarray:
        im = Image.fromarray(lr)
        return np.asarray(im.resize((im.width * scale, im.height * scale), resample))

    return run


def evaluate(dataset: str, method: str, pairs: list[Pair], scale: int,
             fn: Callable[[np.ndarray], np.ndarray],
             on_image: Callable[[int, int], None] | None = None,
             ssim_method: str = "daala") -> Record:
    """Mean Y-PSNR and SSIM over ``pairs`` with a 4-px border crop (the paper's protocol)."""
    scores = []
    for i, p in enumerate(pairs):
        sr = fn(p.lr)
        if sr.shape != p.hr.shape:
            raise ValueError(f"{dataset}/{p.name}: {method} gave {sr.shape}, HR is {p.hr.shape}")
        scores.append((p.name, psnr(sr, p.hr, crop_border=4, test_y_channel=True),
                       ssim(sr, p.hr, crop_border=4, test_y_channel=True, method=ssim_method)))
        if on_image:
            on_image(i + 1, len(pairs))
    return Record(dataset, method, scale, float(np.mean([s[1] for s in scores])),
                  float(np.mean([s[2] for s in scores])), ssim_method, len(pairs), scores)
