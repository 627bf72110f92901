"""Time and size of `srgan upscale`'s PNG output at each zlib level, on real photos
(docs/performance.md, "PNG level"): how `--png-level`'s default was chosen.

    python scripts/png_level.py                          # 4 training photos, 512x512 LR
    python scripts/png_level.py --photos 6 --levels 1,6,9 --json png_levels.json
    python scripts/png_level.py --images a.jpg b.png --side 128 --model srresnet

Each photo (default: the first ``--photos`` of ../shared/datasets/train/photos) is
centre-cropped to ``--side`` x ``--side`` px, upscaled once with ``--model`` (default: the
registry's default model, default options, as `srgan upscale` runs it), and its output is
written with ``srgan_cli.imageio.imaging.write_image`` at each level, ``--repeat`` times (median
seconds). Prints a Markdown table: per level, the mean seconds per image, the total size,
both relative to level 6 (Pillow's and zlib's default), and checks that every level
decodes to the same pixels.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def _inputs(a) -> list[Path]:
    if a.images:
        return [Path(p) for p in a.images]
    from srgan_cli import paths

    return sorted((paths.shared_dir() / "datasets" / "train" / "photos").glob("*.jpg"))[:a.photos]


def _crop(path: Path, side: int) -> Image.Image:
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        s = min(side, w, h)
        return im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))


def _time_levels(planes: np.ndarray, levels: list[int], repeat: int, tmp: Path) -> dict:
    from srgan_cli.imageio import imaging

    out, ref = {}, None
    imaging.write_image(tmp / "warm-up.png", planes[:64, :64], png_level=levels[0])
    for level in levels:
        dst = tmp / f"out{level}.png"
        secs = []
        for _ in range(repeat):
            t = time.perf_counter()
            imaging.write_image(dst, planes, png_level=level)
            secs.append(time.perf_counter() - t)
        pixels = np.asarray(Image.open(dst))
        ref = pixels if ref is None else ref
        assert np.array_equal(pixels, ref), f"level {level} decodes to other pixels"
        out[level] = (statistics.median(secs), dst.stat().st_size)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", nargs="*", default=None, help="photos (default: training photos)")
    ap.add_argument("--photos", type=int, default=4)
    ap.add_argument("--side", type=int, default=512, help="LR crop side, px")
    ap.add_argument("--levels", default="0,1,2,3,4,6")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--model", default=None, help="default: the registry's default model")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()

    from srgan_cli import Upscaler
    from srgan_cli.inference.device import cpu_model

    levels = [int(v) for v in a.levels.split(",")]
    up = Upscaler(a.model)
    per_image = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in _inputs(a):
            planes = np.asarray(up.upscale_image(_crop(path, a.side)))
            timed = _time_levels(planes, levels, a.repeat, Path(tmp))
            per_image.append({"image": path.name, "size": list(planes.shape[1::-1]),
                              "levels": {str(k): {"seconds": s, "bytes": b}
                                         for k, (s, b) in timed.items()}})
            print(f"{path.name} {planes.shape[1]}x{planes.shape[0]}: " + ", ".join(
                f"L{k} {s:.2f} s {b / 1e6:.2f} MB" for k, (s, b) in timed.items()), flush=True)
    base = "6" if 6 in levels else str(levels[0])
    print(f"\nCPU: {cpu_model()}; model {up.model} ({up.precision}); {len(per_image)} images\n")
    print(f"| level | seconds per image (mean) | MB in all | time vs level {base} | "
          f"size vs level {base} |\n| --- | --- | --- | --- | --- |")
    tot = {k: (np.mean([r["levels"][k]["seconds"] for r in per_image]),
               sum(r["levels"][k]["bytes"] for r in per_image)) for k in map(str, levels)}
    for k, (s, b) in tot.items():
        print(f"| {k} | {s:.3f} | {b / 1e6:.2f} | {s / tot[base][0]:.2f}x | "
              f"{b / tot[base][1] - 1:+.1%} |")
    if a.json:
        a.json.write_text(json.dumps({"cpu": cpu_model(), "model": str(up.model),
                                      "precision": up.precision, "images": per_image},
                                     indent=2) + "\n")


if __name__ == "__main__":
    main()
