"""Comparison crops HR | bicubic | SRResNet | SRGAN for the README (docs/images/).

    python scripts/compare_crops.py                      # registered srresnet and srgan
    python scripts/compare_crops.py --srgan weights/srgan_x4.safetensors --out /tmp/crops
    python scripts/compare_crops.py --extra SRGAN-resize=srgan-resize --window flat --zoom 3 \
        --size 64 --out docs/images/lattice --prefix flat_    # the lattice on flat areas
    python scripts/compare_crops.py --degrade jpeg75 --extra SRResNet-real=srresnet-real \
        --out docs/images/real --prefix jpeg75_    # JPEG inputs (issue 22)

Three images with fine texture: Set14's baboon (img_001) and comic (img_005), with the
benchmark's own LR images, and one photograph from ../shared/datasets/train/photos
(default photo_001.jpg, a kitten on a lawn), mod-cropped to a multiple of 4 and downscaled
x4 by antialiased bicubic (the training pipeline's ``downscale``) so that it has a ground
truth. That photograph is one of the training images (the models saw crops of its HR).

Each model runs in fp32 (the paper protocol of ``srgan benchmark``). Each strip shows the
same window of every output: the ``--size`` x ``--size`` HR window with the most detail
(``srgan_cli.bench.quality.detail_box``; ``--window flat``: the one with the least, where a
lattice shows most), enlarged ``--zoom`` times by pixel repetition; ``--extra LABEL=MODEL``
adds panels. ``--degrade SPEC`` (as ``srgan benchmark --degrade``, e.g. ``jpeg75``) remakes
every LR from its HR with those degradations (``srgan_cli.bench.degraded``) before the models
see it; the HR panel and the scores stay those of the clean HR. ``--highpass`` shows each
panel's luma minus its Gaussian blur (sigma 2 HR px), x8 around mid-grey: what is left of
fine texture, noise and any pattern locked to the LR grid, made visible.
Writes ``<out>/compare_baboon.png``, ``compare_comic.png``, ``compare_<photo stem>.png`` and prints each image's full-image Y-PSNR per method.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from srgan_cli import paths
from srgan_cli.bench.datasets import Pair, load_dataset
from srgan_cli.bench.degraded import degrade_pair, parse_degrade
from srgan_cli.bench.metrics import psnr
from srgan_cli.bench.quality import baseline, detail_box, labelled_row
from srgan_cli.errors import SrganError
from srgan_cli.files import atomic_write
from srgan_cli.inference.upscale import Upscaler
from srgan_cli.train.data import downscale, load_rgb_u8
from srgan_cli.train.degrade import blur, gaussian_kernels, kernel_size

SET14 = {"img_001": "baboon", "img_005": "comic"}


def photo_pair(path: Path, scale: int = 4) -> Pair:
    hr = load_rgb_u8(path)
    h, w = hr.shape[1] // scale * scale, hr.shape[2] // scale * scale
    hr = hr[:, :h, :w]
    lr = downscale(hr[None].float() / 255, scale)[0]
    lr_u8 = lr.mul(255).round().clamp(0, 255).to(torch.uint8)
    return Pair(path.stem, lr_u8.permute(1, 2, 0).numpy().copy(), hr.permute(1, 2, 0).numpy().copy())


def flat_box(img: np.ndarray, size: int) -> tuple[int, int, int]:
    """``(y, x, size)`` of the size x size window with the least detail (mean absolute
    difference of neighbouring pixels) that is not saturated, on a grid of size/4 steps."""
    g = img.astype(np.float32) if img.ndim == 2 else img.astype(np.float32).mean(2)
    h, w = g.shape
    size = min(size, h, w)
    best, by, bx = np.inf, 0, 0
    step = max(size // 4, 1)
    for y in range(0, h - size + 1, step):
        for x in range(0, w - size + 1, step):
            win = g[y : y + size, x : x + size]
            v = float(np.abs(np.diff(win, axis=1)).mean() + np.abs(np.diff(win, axis=0)).mean())
            if 16 < win.mean() < 240 and v < best:
                best, by, bx = v, y, x
    return by, bx, size


def highpass(img: np.ndarray, sigma: float = 2.0, gain: float = 8.0) -> np.ndarray:
    """Luma (mean of the channels) minus its Gaussian blur (the training degradations'
    kernel and reflect-padded blur), times ``gain`` around 128, as uint8."""
    y = torch.from_numpy(img.astype(np.float32))
    y = (y.mean(2) if y.ndim == 3 else y)[None, None]
    s = torch.tensor([sigma])
    low = blur(y, gaussian_kernels(s, s, torch.zeros(1), kernel_size(sigma)))
    return ((y - low) * gain + 128).clamp(0, 255).round().to(torch.uint8)[0, 0].numpy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--srresnet", default="srresnet", help="SRResNet model (name or file)")
    ap.add_argument("--srgan", default="srgan", help="SRGAN model (name or file)")
    ap.add_argument("--photo", default="photo_001.jpg",
                    help="file name in ../shared/datasets/train/photos, or a path")
    ap.add_argument("--out", type=Path, default=Path("docs/images"))
    ap.add_argument("--extra", action="append", default=[], metavar="LABEL=MODEL",
                    help="another panel: a label and a model (name or file); repeatable")
    ap.add_argument("--window", choices=("detail", "flat"), default="detail",
                    help="the window shown: the most detailed one, or the flattest")
    ap.add_argument("--prefix", default="", help="prefix of the strips' file names")
    ap.add_argument("--size", type=int, default=200, help="HR pixels per panel side")
    ap.add_argument("--zoom", type=int, default=1, help="enlarge panels by pixel repetition")
    ap.add_argument("--font-size", type=int, default=16)
    ap.add_argument("--highpass", action="store_true",
                    help="show luma minus its Gaussian blur (sigma 2 px), x8 around mid-grey")
    ap.add_argument("--degrade", default="none",
                    help="remake the LR images with these degradations (as srgan benchmark "
                         "--degrade: jpeg75, noise5, blur1+jpeg75...); default: none")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--overwrite", action="store_true", help="replace existing strips")
    args = ap.parse_args()

    shared = paths.shared_dir()
    if shared is None:
        print("error: ../shared not found (set SRGAN_SHARED_DIR)", file=sys.stderr)
        return 1
    photo = Path(args.photo)
    if not photo.is_file():
        photo = shared / "datasets" / "train" / "photos" / args.photo
    try:
        set14 = {p.name: p for p in load_dataset("set14", shared / "datasets" / "benchmark")}
        images = {label: set14[name] for name, label in SET14.items()}
        if not photo.is_file():
            raise SrganError(f"{photo}: no such photograph")
        images[photo.stem] = photo_pair(photo)
        steps = parse_degrade(args.degrade)
        if steps is not None:
            images = {k: degrade_pair(v, steps) for k, v in images.items()}
        models = {"SRResNet": Upscaler(args.srresnet, device=args.device, precision="fp32"),
                  "SRGAN": Upscaler(args.srgan, device=args.device, precision="fp32")}
        for item in args.extra:
            label, sep, model = item.partition("=")
            if not sep or not label or not model:
                raise SrganError(f"--extra {item!r}: expected LABEL=MODEL")
            models[label] = Upscaler(model, device=args.device, precision="fp32")
    except (SrganError, KeyError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for label, up in models.items():
        print(f"{label}: {up.weights_path}", file=sys.stderr)
    bicubic = baseline("bicubic", 4)
    args.out.mkdir(parents=True, exist_ok=True)
    for label, pair in images.items():
        dst = args.out / f"{args.prefix}compare_{label}.png"
        if dst.exists() and not args.overwrite:
            print(f"error: {dst}: already exists (use --overwrite)", file=sys.stderr)
            return 1
        outputs = {"bicubic": bicubic(pair.lr)}
        for name, up in models.items():
            outputs[name] = np.asarray(up.upscale_image(Image.fromarray(pair.lr)))
        y, x, s = (detail_box(pair.hr, args.size) if args.window == "detail"
                   else flat_box(pair.hr, args.size))
        panels = {"HR": pair.hr, **outputs}
        crops = {k: v[y : y + s, x : x + s] for k, v in panels.items()}
        if args.highpass:
            crops = {k: highpass(v) for k, v in crops.items()}
        strip = labelled_row(crops,
                             font_size=args.font_size, zoom=args.zoom)
        atomic_write(dst, lambda tmp: strip.save(tmp, format="PNG", optimize=True))
        scores = ", ".join(f"{k} {psnr(v, pair.hr, crop_border=4, test_y_channel=True):.2f} dB"
                           for k, v in outputs.items())
        print(f"{dst}: window {s}x{s} at ({x}, {y}) of {pair.hr.shape[1]}x{pair.hr.shape[0]}; "
              f"Y-PSNR {scores}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
