"""Image-quality metrics following the paper's evaluation protocol.

All functions take numpy arrays of shape (H, W, 3) RGB or (H, W) grayscale with values
on the 0-255 scale (uint8 or float). They are plain functions with explicit arguments:
``crop_border`` pixels are removed from every side and ``test_y_channel`` converts RGB
to ITU-R BT.601 luma first (grayscale images are compared on their raw values).
"""

from __future__ import annotations

import math

import numpy as np

# BT.601 luma weights of R, G, B on the 0-255 scale (the paper's protocol)
Y_WEIGHTS = (65.481, 128.553, 24.966)


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 luma, 16-235 range: Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255."""
    img = np.asarray(img, dtype=np.float64)
    r, g, b = Y_WEIGHTS
    return 16.0 + (r * img[..., 0] + g * img[..., 1] + b * img[..., 2]) / 255.0


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


# --------------------------------------------------------------------------- SSIM

_K1, _K2 = 0.01, 0.03


def _integer_gaussian_taps(sigma: float, max_len: int) -> np.ndarray:
    """Symmetric integer taps summing to 256 (the daala ``dump_ssim`` window).

    The half-length is where a truncated tap would fall below half a unit of the 1/256
    precision; it is capped below ``max_len`` (the image's smaller side).
    """
    s = math.sqrt(0.5 * math.pi) * sigma / 256.0
    half = 0 if s >= 1 else int(math.floor(sigma * math.sqrt(-2.0 * math.log(s))))
    if half >= max_len:
        half = max_len - 1
    c = np.arange(1, half + 1, dtype=np.float64)
    side = np.floor(256.0 * np.exp(-0.5 * c * c / (sigma * sigma)) / (math.sqrt(2 * math.pi) * sigma) + 0.5)
    centre = 256.0 - 2.0 * side.sum()
    return np.concatenate([side[::-1], [centre], side])


def _correlate_zero(img: np.ndarray, taps: np.ndarray, axis: int) -> np.ndarray:
    """Correlate along ``axis``; pixels outside the image contribute nothing."""
    half = len(taps) // 2
    n = img.shape[axis]
    out = np.zeros_like(img)
    for k, t in enumerate(taps):
        off = k - half  # source index = dest index + off
        lo, hi = max(0, -off), min(n, n - off)
        if lo >= hi:
            continue
        dst = [slice(None)] * img.ndim
        src = [slice(None)] * img.ndim
        dst[axis] = slice(lo, hi)
        src[axis] = slice(lo + off, hi + off)
        out[tuple(dst)] += t * img[tuple(src)]
    return out


def ssim_daala(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """SSIM as daala's ``dump_ssim`` computes it, on one 2-D plane.

    Gaussian window with sigma = 1.5 * H / 256 (H = plane height), integer taps summing
    to 256, only the taps that fall inside the image used at the borders, and the local
    scores averaged with the total tap weight at each pixel.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    h, w = a.shape
    taps = _integer_gaussian_taps(h * 1.5 / 256.0, min(h, w))

    def blur(x):
        return _correlate_zero(_correlate_zero(x, taps, 1), taps, 0)

    wsum = blur(np.ones_like(a))
    mx, my = blur(a), blur(b)
    x2, y2, xy = blur(a * a), blur(b * b), blur(a * b)
    c1 = (peak * _K1) ** 2 * wsum * wsum
    c2 = (peak * _K2) ** 2 * wsum * wsum
    num = (2 * mx * my + c1) * (2 * (xy * wsum - mx * my) + c2)
    den = (mx * mx + my * my + c1) * ((x2 * wsum - mx * mx) + (y2 * wsum - my * my) + c2)
    return float(np.sum(wsum * num / den) / np.sum(wsum))


def ssim_standard(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """The common SSIM (Wang et al. 2004): 11x11 Gaussian, sigma 1.5, 'valid' region."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    x = np.arange(11) - 5
    g = np.exp(-(x * x) / (2 * 1.5**2))
    g /= g.sum()

    def blur(img):
        rows = sum(g[k] * img[:, k : img.shape[1] - 10 + k] for k in range(11))
        return sum(g[k] * rows[k : rows.shape[0] - 10 + k, :] for k in range(11))

    c1, c2 = (_K1 * peak) ** 2, (_K2 * peak) ** 2
    mx, my = blur(a), blur(b)
    vx, vy, cxy = blur(a * a) - mx * mx, blur(b * b) - my * my, blur(a * b) - mx * my
    m = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(m.mean())


SSIM_METHODS = ("daala", "standard")  # what ssim(method=) computes; the first is the paper's


def ssim(img1: np.ndarray, img2: np.ndarray, *, crop_border: int = 4,
         test_y_channel: bool = True, method: str = "daala") -> float:
    """SSIM on luma (or the raw grayscale plane) after cropping ``crop_border`` px.

    ``method='daala'`` is the paper's (daala ``dump_ssim``); ``'standard'`` the usual
    11x11 sigma-1.5 version, which gives lower values on SR outputs.
    """
    if np.shape(img1) != np.shape(img2):
        raise ValueError(f"shape mismatch: {np.shape(img1)} vs {np.shape(img2)}")
    a = _prepare(img1, crop_border, test_y_channel)
    b = _prepare(img2, crop_border, test_y_channel)
    if a.ndim == 3:  # RGB without luma conversion: mean over channels
        return float(np.mean([ssim(a[..., c], b[..., c], crop_border=0, method=method)
                              for c in range(a.shape[2])]))
    if method == "daala":
        return ssim_daala(a, b)
    if method == "standard":
        return ssim_standard(a, b)
    raise ValueError(f"unknown SSIM method {method!r} (daala, standard)")


# --------------------------------------------------------------------------- grid score

GRID_PERIOD = 4  # the x4 models' LR pixel grid
_GRID_NEIGHBOURHOOD = 7  # 7x7 window of bins around each grid bin (the bin itself left out)


def grid_score(img: np.ndarray, period: int = GRID_PERIOD) -> float:
    """Periodic-artifact score in dB of one image: how far the power spectrum of its luma
    stands above its surroundings at the ``period``-pixel lattice's frequencies.

    BT.601 luma (a gray image: its raw values), cropped to a multiple of ``period`` in each
    axis, minus its mean, times a 2-D Hann window, |FFT|^2; at each of the period^2 - 1 bins
    (u, v) in {0, H/p, ..., (p-1)H/p} x {0, W/p, ...} except (0, 0): 10 log10(power at the
    bin / median power of its 7x7 neighbourhood without the bin), the neighbourhood wrapping
    around the spectrum's edges; the score is the mean of these. Natural images score about 0;
    a pattern locked to the grid scores high. Compare a model with the HR images it is scored
    against (:func:`grid_excess`).
    """
    a = np.asarray(img, dtype=np.float64)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    y = rgb_to_y(a) if a.ndim == 3 else a
    h, w = (y.shape[0] // period) * period, (y.shape[1] // period) * period
    if h < 2 * _GRID_NEIGHBOURHOOD or w < 2 * _GRID_NEIGHBOURHOOD:
        raise ValueError(f"image {y.shape[1]}x{y.shape[0]} too small for the grid score")
    y = y[:h, :w]
    y = y - y.mean()
    window = np.outer(np.hanning(h), np.hanning(w))
    power = np.abs(np.fft.fft2(y * window)) ** 2
    tiny = np.finfo(np.float64).tiny
    half = _GRID_NEIGHBOURHOOD // 2
    offsets = [(dy, dx) for dy in range(-half, half + 1) for dx in range(-half, half + 1)
               if (dy, dx) != (0, 0)]
    scores = []
    for i in range(period):
        for j in range(period):
            if i == 0 and j == 0:
                continue
            u, v = i * h // period, j * w // period
            ring = np.array([power[(u + dy) % h, (v + dx) % w] for dy, dx in offsets])
            scores.append(10.0 * math.log10((power[u, v] + tiny) / (np.median(ring) + tiny)))
    return float(np.mean(scores))


def grid_excess(outputs, references, period: int = GRID_PERIOD) -> float:
    """Grid excess in dB: the mean :func:`grid_score` of ``outputs`` minus that of
    ``references`` (the HR images they are compared with)."""
    outs = [grid_score(o, period) for o in outputs]
    refs = [grid_score(r, period) for r in references]
    if not outs or not refs:
        raise ValueError("grid excess needs at least one image")
    return float(np.mean(outs) - np.mean(refs))


LOCAL_GRID_TILE = 64  # HR pixels per side of the squares the local grid score is taken on


def tile_grid_scores(img: np.ndarray, tile: int = LOCAL_GRID_TILE,
                     period: int = GRID_PERIOD) -> np.ndarray:
    """:func:`grid_score` of each whole ``tile`` x ``tile`` square of ``img``, in rows from
    the top left (a remainder at the right and bottom is left out): where in the image the
    4-px pattern is. A lattice over a small part of an image moves the whole-image score
    little (its peaks are diluted by the rest of the spectrum) but scores high on its tiles,
    and so does a pattern a filter leaves near edges."""
    a = np.asarray(img)
    h, w = a.shape[0] // tile, a.shape[1] // tile
    if h == 0 or w == 0:
        raise ValueError(f"image {a.shape[1]}x{a.shape[0]} smaller than one {tile}-px tile")
    return np.array([grid_score(a[i * tile:(i + 1) * tile, j * tile:(j + 1) * tile], period)
                     for i in range(h) for j in range(w)])


def local_grid_excess(outputs, references, tile: int = LOCAL_GRID_TILE,
                      period: int = GRID_PERIOD, reference_scores=None) -> dict[str, float]:
    """Local grid excess: each output tile's :func:`grid_score` minus that of the same tile
    of its reference (the HR image, same size), over all tiles of all images: ``mean`` and
    ``p90`` (dB) and ``over_6db`` (the share of tiles more than 6 dB above their reference,
    the lattice issue's bound). ``reference_scores``: the references' own
    :func:`tile_grid_scores`, when several models are scored against the same images."""
    if reference_scores is None:
        reference_scores = [tile_grid_scores(r, tile, period) for r in references]
    diffs = []
    for out, ref, ref_scores in zip(outputs, references, reference_scores, strict=True):
        if np.asarray(out).shape[:2] != np.asarray(ref).shape[:2]:
            raise ValueError("local grid excess needs outputs of the references' size")
        diffs.append(tile_grid_scores(out, tile, period) - ref_scores)
    if not diffs:
        raise ValueError("local grid excess needs at least one image")
    d = np.concatenate(diffs)
    return {"mean": float(d.mean()), "p90": float(np.percentile(d, 90)),
            "over_6db": float(np.mean(d > 6.0)), "tiles": int(d.size)}
