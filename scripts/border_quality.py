"""Border quality of `srgan upscale` with and without reflection padding (issue 15).

For each benchmark set, each border mode (``zero``: the network's own zero padding, the default
before issue 23; ``symmetric``, the default since, ``reflect``, ``edge``: the image
mirrored/extended first, see ``Upscaler(border=)``) and each padding width (LR px; ``auto``
= the receptive radius, ``default`` = Upscaler's default, 8 px),
runs a model in fp32 on the set's LR images (whole image, no tiles) and reports, as means
over the images:

- whole-image Y-PSNR with the paper's protocol (4-px border crop), as `srgan benchmark`;
- the Y-PSNR of the 16-px frame at the image border (the outer 16 px of the x4 output,
  nothing cropped: that is where zero padding acts); grayscale images on raw values;

and, for each mode, the largest error (levels, 0-255) of solid-colour images of 64x64 and
1x1 pixels (the output should be the same colour everywhere).

    python scripts/border_quality.py                       # Set5, Set14, shipped srresnet
    python scripts/border_quality.py --borders zero,reflect --pads 8,16,auto \
        --json docs/results/border_padding.json
    python scripts/border_quality.py --datasets ""         # solid colours only
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
from PIL import Image

FRAME = 16
SOLIDS = [(20, 180, 240), (200, 60, 30), (128, 128, 128), (250, 250, 250), (5, 5, 5)]


def frame_psnr(sr: np.ndarray, hr: np.ndarray, frame: int = FRAME) -> float:
    from srgan_cli.bench.metrics import rgb_to_y

    a = rgb_to_y(sr) if sr.ndim == 3 else sr.astype(np.float64)
    b = rgb_to_y(hr) if hr.ndim == 3 else hr.astype(np.float64)
    mask = np.zeros(a.shape, bool)
    mask[:frame], mask[-frame:], mask[:, :frame], mask[:, -frame:] = True, True, True, True
    mse = float(np.mean((a[mask] - b[mask]) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="srresnet")
    ap.add_argument("--datasets", default="Set5,Set14")
    ap.add_argument("--borders", default="zero,symmetric,reflect,edge")
    ap.add_argument("--pads", default="auto",
                    help="comma-separated padding widths in LR px; auto = receptive radius; "
                    "default = Upscaler's default (8 px, or the radius when smaller)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    from srgan_cli import paths
    from srgan_cli.bench.datasets import load_dataset
    from srgan_cli.bench.metrics import psnr
    from srgan_cli.inference.upscale import Upscaler

    root = paths.shared_dir() / "datasets" / "benchmark"
    data = {name: load_dataset(name, root, 4) for name in a.datasets.split(",") if name}
    records = []
    runs = [(b, p) for b in a.borders.split(",") for p in (["0"] if b == "zero" else
                                                           a.pads.split(","))]
    radius = Upscaler(a.model, device="cpu", precision="fp32", border="zero").model.tile_pad
    for border, pad in runs:
        up = Upscaler(a.model, device="cpu", precision="fp32", tile=0, border=border,
                      border_pad={"auto": radius, "default": None}.get(pad) if not
                      pad.isdigit() else int(pad))
        for name, pairs in data.items():
            t = time.perf_counter()
            whole, frame = [], []
            for p in pairs:
                sr = np.asarray(up.upscale_image(Image.fromarray(p.lr)))
                whole.append(psnr(sr, p.hr, crop_border=4, test_y_channel=True))
                frame.append(frame_psnr(sr, p.hr))
            rec = {"dataset": name, "border": border, "border_pad": up.border_pad,
                   "model": a.model,
                   "precision": "fp32", "psnr": float(np.mean(whole)),
                   "frame_psnr": float(np.mean(frame)), "images": len(pairs),
                   "per_image": [{"image": p.name, "psnr": w, "frame_psnr": f}
                                 for p, w, f in zip(pairs, whole, frame)]}
            records.append(rec)
            print(f"{name} {border} {up.border_pad:2d} px: Y-PSNR {rec['psnr']:.4f} dB, "
                  f"{FRAME}-px frame {rec['frame_psnr']:.4f} dB "
                  f"({time.perf_counter() - t:.0f} s)", flush=True)
        for size in (64, 1):
            worst = 0
            for colour in SOLIDS:
                im = Image.new("RGB", (size, size), colour)
                out = np.asarray(up.upscale_image(im)).astype(int)
                worst = max(worst, int(np.abs(out - np.array(colour)).max()))
            print(f"solid {size}x{size} {border} {up.border_pad:2d} px: largest error "
                  f"{worst} levels ({len(SOLIDS)} colours)", flush=True)
            records.append({"solid": f"{size}x{size}", "border": border,
                            "border_pad": up.border_pad, "colours": SOLIDS,
                            "max_error": worst})
    records_sets = [r for r in records if "dataset" in r]
    print()
    if records_sets:
        _table(records_sets, list(data))
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(records, f, indent=2)
            f.write("\n")


def _table(records_sets: list[dict], names: list[str]) -> None:
    data = names
    print("| border | padding (LR px) | " + " | ".join(
        f"{n} Y-PSNR | {n} {FRAME}-px frame" for n in data) + " |")
    print("| --- " * (2 + 2 * len(data)) + "|")
    for key in dict.fromkeys((r["border"], r["border_pad"]) for r in records_sets):
        row = [r for r in records_sets if (r["border"], r["border_pad"]) == key]
        print(f"| {key[0]} | {key[1]} | " + " | ".join(
            f"{r['psnr']:.4f} | {r['frame_psnr']:.2f}" for r in row) + " |")


if __name__ == "__main__":
    main()
