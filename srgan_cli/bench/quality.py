"""Quality benchmark: run a method over a dataset and score it with the paper's protocol."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from srgan_cli.bench.datasets import Pair
from srgan_cli.bench.metrics import grid_score, psnr, ssim
from srgan_cli.errors import BenchmarkError

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
    lpips: float | None
    images: int
    per_image: list[dict]
    # grid excess (dB): mean grid score of the outputs minus the HR images'
    # (srgan_cli.bench.metrics.grid_score); None where not measured
    grid: float | None = None

    def as_dict(self) -> dict:
        return {"dataset": self.dataset, "method": self.method, "scale": self.scale,
                "psnr": self.psnr, "ssim": self.ssim, "ssim_method": self.ssim_method,
                "lpips": self.lpips, "grid_excess": self.grid, "images": self.images,
                "per_image": self.per_image}


# AlexNet's fifth layer, the last LPIPS reads, needs an input of at least this many pixels a side
LPIPS_MIN_SIDE = 31
# Pixels left out on every side by PSNR, SSIM and LPIPS (the paper's protocol for x4; the
# grid score reads whole images)
CROP_BORDER = 4


def lpips_distance(model, sr: np.ndarray, hr: np.ndarray,
                   crop_border: int = CROP_BORDER) -> float:
    """LPIPS between two uint8 images (gray replicated to RGB), same border crop as PSNR.
    Raises ValueError for images too small for AlexNet."""
    import torch

    side = min(hr.shape[:2]) - 2 * crop_border
    if side < LPIPS_MIN_SIDE:
        raise ValueError(f"{min(hr.shape[:2])} px a side is too small for LPIPS (at least "
                         f"{LPIPS_MIN_SIDE + 2 * crop_border} px with the {crop_border}-px "
                         f"border crop; --no-lpips skips it)")

    def t(a: np.ndarray):
        a = a if a.ndim == 3 else np.repeat(a[..., None], 3, 2)
        if crop_border:
            a = a[crop_border:-crop_border, crop_border:-crop_border]
        return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float() / 255

    return float(model(t(sr), t(hr))[0])


def score(sr: np.ndarray, hr: np.ndarray, *, ssim_method: str | None = "daala",
          lpips_model=None) -> dict[str, float | None]:
    """One 8-bit SR image's scores against its HR image, as the benchmark reports them and
    training validation logs them: ``psnr`` and ``ssim`` (BT.601 Y, :data:`CROP_BORDER`
    crop; no ``ssim`` when ``ssim_method`` is None), ``grid_excess`` (whole images; None
    when too small to score) and, with ``lpips_model``, ``lpips`` (RGB, same crop; a
    ValueError for an image too small for it)."""
    row: dict[str, float | None] = {
        "psnr": psnr(sr, hr, crop_border=CROP_BORDER, test_y_channel=True)}
    if ssim_method is not None:
        row["ssim"] = ssim(sr, hr, crop_border=CROP_BORDER, test_y_channel=True,
                           method=ssim_method)
    row["grid_excess"] = _grid_excess(sr, hr)
    if lpips_model is not None:
        row["lpips"] = lpips_distance(lpips_model, sr, hr)
    return row


def mean_scores(rows: list[dict]) -> dict[str, float | None]:
    """The means of :func:`score` rows: ``psnr``, ``ssim`` and ``lpips`` (None when not
    scored) and ``grid_excess`` (None unless every image was scored)."""
    def mean(key: str) -> float | None:
        values = [r.get(key) for r in rows]
        return float(np.mean(values)) if values and None not in values else None

    return {k: mean(k) for k in ("psnr", "ssim", "lpips", "grid_excess")}


def baseline(kind: str, scale: int) -> Callable[[np.ndarray], np.ndarray]:
    resample = BASELINES[kind]

    def run(lr: np.ndarray) -> np.ndarray:
        im = Image.fromarray(lr)
        return np.asarray(im.resize((im.width * scale, im.height * scale), resample))

    return run


def evaluate(dataset: str, method: str, pairs: list[Pair], scale: int,
             fn: Callable[[np.ndarray], np.ndarray], *,
             ssim_method: str = "daala", lpips_model=None,
             on_output: Callable[[str, np.ndarray], None] | None = None) -> Record:
    """Mean Y-PSNR and SSIM over ``pairs`` with a 4-px border crop (the paper's protocol),
    the grid excess (whole images: each output's grid score minus its HR image's), plus
    LPIPS on RGB when ``lpips_model`` is given: :func:`score` per image, :func:`mean_scores`. ``on_output(name, sr)`` sees each SR image
    (for saving)."""
    rows = []
    for p in pairs:
        sr = fn(p.lr)
        if sr.shape != p.hr.shape:
            raise BenchmarkError(f"{dataset}/{p.name}: {method} gave {sr.shape}, HR is "
                                 f"{p.hr.shape}")
        try:
            rows.append({"image": p.name, **score(sr, p.hr, ssim_method=ssim_method,
                                                  lpips_model=lpips_model)})
        except ValueError as e:  # LPIPS of an image too small for it
            raise BenchmarkError(f"{dataset}/{p.name}: {e}") from None
        if on_output:
            on_output(p.name, sr)
    means = mean_scores(rows)
    return Record(dataset, method, scale, means["psnr"], means["ssim"], ssim_method,
                  means["lpips"], len(pairs), rows, grid=means["grid_excess"])


def _grid_excess(sr: np.ndarray, hr: np.ndarray) -> float | None:
    """One image's grid score minus its HR image's (None: too small to score)."""
    try:
        return grid_score(sr) - grid_score(hr)
    except ValueError:
        return None


def detail_box(img: np.ndarray, size: int) -> tuple[int, int, int]:
    """``(y, x, size)`` of the size x size window (clipped to the image) with the most
    horizontal detail (mean absolute difference of neighbouring pixels), on a grid of
    size/4 steps."""
    g = img.astype(np.float32) if img.ndim == 2 else img.astype(np.float32).mean(2)
    h, w = g.shape
    size = min(size, h, w)
    best, by, bx = -1.0, 0, 0
    step = max(size // 4, 1)
    for y in range(0, h - size + 1, step):
        for x in range(0, w - size + 1, step):
            v = float(np.abs(np.diff(g[y : y + size, x : x + size], axis=1)).mean())
            if v > best:
                best, by, bx = v, y, x
    return by, bx, size


def labelled_row(panels: dict[str, np.ndarray], font_size: int | None = None, gap: int = 4,
                 zoom: int = 1) -> "Image.Image":
    """Equal-sized images side by side on white, each under its label; ``zoom`` enlarges
    each panel by pixel repetition (no resampling). ``font_size`` None: Pillow's small
    bitmap font."""
    from PIL import ImageDraw, ImageFont

    font = ImageFont.load_default() if font_size is None else ImageFont.load_default(font_size)
    label_h = 14 if font_size is None else int(font_size * 1.5)
    crops = [Image.fromarray(a).convert("RGB") for a in panels.values()]
    if zoom > 1:
        crops = [c.resize((c.width * zoom, c.height * zoom), Image.NEAREST) for c in crops]
    w, h = crops[0].size
    strip = Image.new("RGB", (len(crops) * (w + gap), h + label_h), "white")
    draw = ImageDraw.Draw(strip)
    for k, (name, crop) in enumerate(zip(panels, crops)):
        strip.paste(crop, (k * (w + gap), label_h))
        draw.text((k * (w + gap) + 2, 1), name, fill="black", font=font)
    return strip


def compare_strip(hr: np.ndarray, panels: dict[str, np.ndarray], size: int = 160) -> "Image.Image":
    """Side-by-side crops (HR first, then each method) of the most detailed region."""
    by, bx, size = detail_box(hr, size)
    items = {"HR": hr, **panels}
    return labelled_row({name[:24]: img[by : by + size, bx : bx + size]
                         for name, img in items.items()})
