"""Image-quality metrics following the paper's evaluation protocol.

All functions take numpy arrays of shape (H, W, 3) RGB or (H, W) grayscale with values
on the 0-255 scale (uint8 or float). They are plain functions with explicit arguments:
``crop_border`` pixels are removed from every side and ``test_y_channel`` converts RGB
to ITU-R BT.601 luma first (grayscale images are compared on their raw values).
"""

from __future__ import annotations

import math

import numpy as np


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 luma, 16-235 range: Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255."""
    img = np.asarray(img, dtype=np.float64)
    return 16.0 + (65.481 * img[..., 0] + 128.553 * img[..., 1] + 24.966 * img[..., 2]) / 255.0


def _prepare(img: np.ndarray, crop_border: int, test_y_channel: bool) -> np.ndarray:
    img = np.asarray(img, dtype=np.float64)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 3 and test_y_channel:
        img = rgb_to_y(img)
    if crop_border > 0:
        img = img[crop_border:-crop_border, crop_border:-crop_border, ...]
    return img


def psnr(
    img1: np.ndarray, img2: np.ndarray, *, crop_border: int = 4, test_y_channel: bool = True
) -> float:
    """Peak signal-to-noise ratio in dB (peak 255). Identical images give ``inf``."""
    if np.shape(img1) != np.shape(img2):
        raise ValueError(f"shape mismatch: {np.shape(img1)} vs {np.shape(img2)}")
    a = _prepare(img1, crop_border, test_y_channel)
    b = _prepare(img2, crop_border, test_y_channel)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(255.0**2 / mse)
