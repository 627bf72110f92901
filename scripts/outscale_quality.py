"""`--outscale S` for S > 4: the x4 model once then resized up, or the model twice (x16)
then resized down? Measured on benchmark HR images downscaled by S (issue 15).

For each HR image of the sets (mod-cropped to a multiple of 8), LR = HR downscaled x8
with Pillow's bicubic filter (antialiased when reducing, like MATLAB's imresize). Then:

- bicubic:  LR resized x8 with Pillow's bicubic filter (the baseline);
- once:     the model x4, then resized x2 (antialiased bicubic, `Upscaler(outscale=8)`,
            what `srgan upscale --outscale 8` does);
- twice:    the model x4 on LR, the model x4 again on that 8-bit output (x16), then
            resized down x2 with the same antialiased bicubic filter.

Y-PSNR with the paper's protocol (BT.601 luma, border crop: 8 px here, the scale) and
the time of each method on this machine, fp32, whole images.

    python scripts/outscale_quality.py --json docs/results/outscale_x8.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from PIL import Image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="srresnet")
    ap.add_argument("--datasets", default="Set5,Set14")
    ap.add_argument("--scale", type=int, default=8)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    from srgan_cli import paths
    from srgan_cli.bench.datasets import load_dataset
    from srgan_cli.bench.metrics import psnr
    from srgan_cli.inference.runner import resize_planes
    from srgan_cli.inference.upscale import Upscaler

    s = a.scale
    root = paths.shared_dir() / "datasets" / "benchmark"
    up4 = Upscaler(a.model, device="cpu", precision="fp32", tile=0)
    once = Upscaler(a.model, device="cpu", precision="fp32", tile=0, outscale=s)
    records = []
    for name in a.datasets.split(","):
        rows = []
        for p in load_dataset(name, root, 4):
            hr = p.hr[: p.hr.shape[0] // s * s, : p.hr.shape[1] // s * s]
            him = Image.fromarray(hr)
            size = (him.width, him.height)
            lr = him.resize((him.width // s, him.height // s), Image.BICUBIC)
            out, secs = {}, {}
            t = time.perf_counter()
            out["bicubic"] = np.asarray(lr.resize(size, Image.BICUBIC))
            secs["bicubic"] = time.perf_counter() - t
            t = time.perf_counter()
            out["once"] = np.asarray(once.upscale_image(lr))
            secs["once"] = time.perf_counter() - t
            t = time.perf_counter()
            x16 = np.asarray(up4.upscale_image(up4.upscale_image(lr)))
            planes = resize_planes(x16 if x16.ndim == 3 else x16[..., None], size)
            out["twice"] = planes if x16.ndim == 3 else planes[..., 0]
            secs["twice"] = time.perf_counter() - t
            row = {"image": p.name}
            for k, v in out.items():
                assert v.shape == hr.shape, (k, v.shape, hr.shape)
                row[k] = psnr(v, hr, crop_border=s, test_y_channel=True)
                row[f"{k}_s"] = secs[k]
            rows.append(row)
        rec = {"dataset": name, "scale": s, "model": a.model, "precision": "fp32",
               "images": len(rows), "per_image": rows}
        for k in ("bicubic", "once", "twice"):
            rec[k] = float(np.mean([r[k] for r in rows]))
            rec[f"{k}_seconds"] = float(np.sum([r[f"{k}_s"] for r in rows]))
        records.append(rec)
        print(f"{name} x{s}: Y-PSNR bicubic {rec['bicubic']:.2f} dB, model once + resize "
              f"{rec['once']:.2f} dB ({rec['once_seconds']:.1f} s), model twice + resize "
              f"{rec['twice']:.2f} dB ({rec['twice_seconds']:.1f} s)", flush=True)
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(records, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
