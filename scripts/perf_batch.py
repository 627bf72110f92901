"""Directory throughput of srgan_cli.batch.pipeline.upscale_files with and without the I/O threads.

    python scripts/perf_batch.py make DIR [N] [--size S]  # N synthetic SxS PNGs (100, 512)
    python scripts/perf_batch.py time DIR OUT --overlap/--no-overlap [--limit N] [--png-level L]
                                 [--model M]

``time`` loads the default model (or ``--model``) once, upscales the PNGs of DIR into OUT (overwriting)
and prints one JSON line: images, wall seconds, images/s and output MP/s.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make(d: Path, n: int, size: int = 512) -> None:
    from srgan_cli.bench.speed import synthetic_photo

    d.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        arr = (synthetic_photo(size, size, seed=i) * 255 + 0.5).astype(np.uint8)
        Image.fromarray(arr).save(d / f"img{i:03d}.png")


def run(d: Path, out: Path, overlap: bool, limit: int | None, png_level: int,
        model: str | None = None) -> None:
    from srgan_cli import Upscaler
    from srgan_cli.batch.pipeline import FileJob, upscale_files

    t0 = time.perf_counter()
    up = Upscaler(model)
    srcs = sorted(d.glob("*.png"))[:limit]
    jobs = [FileJob(s, out / s.name) for s in srcs]
    t1 = time.perf_counter()
    outcomes = list(upscale_files(up, jobs, overwrite=True, overlap=overlap, png_level=png_level))
    t2 = time.perf_counter()
    ok = [o for o in outcomes if o.status == "ok"]
    mp = sum(o.result.out_size[0] * o.result.out_size[1] for o in ok) / 1e6
    print(json.dumps({"overlap": overlap, "png_level": png_level, "images": len(ok), "precision": up.precision,
                      "load_s": round(t1 - t0, 2), "batch_s": round(t2 - t1, 2),
                      "images_per_s": round(len(ok) / (t2 - t1), 3),
                      "mp_per_s": round(mp / (t2 - t1), 3)}))


def _opt(args: list[str], name: str, default):
    return type(default)(args[args.index(name) + 1]) if name in args else default


if __name__ == "__main__":
    from srgan_cli.imageio.imaging import DEFAULT_PNG_LEVEL

    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "make":
        n = int(args[1]) if len(args) > 1 and not args[1].startswith("-") else 100
        make(Path(args[0]), n, _opt(args, "--size", 512))
    else:
        limit = _opt(args, "--limit", 0) or None
        run(Path(args[0]), Path(args[1]), "--no-overlap" not in args, limit,
            _opt(args, "--png-level", DEFAULT_PNG_LEVEL), _opt(args, "--model", "") or None)
