"""Throughput of the training data path: HR crops + augmentation + bicubic LR, patches/s.

    python scripts/perf_data.py DIR [DIR...] [--device cpu|cuda] [--crop 96] [--batch 16,256]
                                [--seconds 5] [--threads N] [--layouts per-crop,packed]
                                [--degradation clean --degradation real ...]

Decodes the images of DIR once, then times ``sample_batch`` for the per-crop path (a
Python loop over crops, then one copy to the device) and the packed path (the decoded
images in one flat buffer on the device, crops cut with one gather) at each batch size,
for each ``--degradation`` (as ``srgan train --degradation``; default clean).
Prints one JSON line per (degradation, layout, batch): patches/s and milliseconds per batch.
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--crop", type=int, default=96)
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--batch", default="16,256")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--layouts", default="per-crop,packed")
    ap.add_argument("--degradation", action="append", default=None,
                    help="repeatable; as srgan train --degradation (default: clean)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    from srgan_cli.train.data import ImageBank, sample_batch
    from srgan_cli.train.degrade import Degrader, parse_degradation

    dev = torch.device(a.device)
    t0 = time.perf_counter()
    plain = ImageBank.from_dirs(a.dirs, a.crop, packed=False)
    load_s = time.perf_counter() - t0
    packed = plain.pack(dev)
    px = sum(t.numel() // 3 for t in plain.images)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    layouts = [(n, b) for n, b in (("per-crop", plain), ("packed", packed))
               if n in a.layouts.split(",")]
    for text in a.degradation or ["clean"]:
        spec = parse_degradation(text)
        degrade = Degrader(spec) if spec is not None else None
        for layout, bank in layouts:
            for batch in (int(b) for b in a.batch.split(",")):
                n, secs, best = _time(lambda gen: sample_batch(bank, batch, a.crop, a.scale, gen,
                                                         device=dev, degrade=degrade),
                                a.seconds, sync)
                print(json.dumps({"degradation": text, "layout": layout, "device": str(dev),
                                  "batch": batch,
                                  "crop": a.crop, "images": len(plain),
                                  "megapixels": round(px / 1e6, 1), "decode_s": round(load_s, 1),
                                  "threads": torch.get_num_threads(),
                                  "patches_per_s": round(n * batch / secs, 1),
                                  "ms_per_batch": round(1000 * secs / n, 2),
                                  "ms_per_batch_min": round(1000 * best, 2)}), flush=True)


def _time(fn, seconds: float, sync) -> tuple[int, float, float]:
    """Calls of ``fn(gen)`` for about ``seconds`` after one warm-up: (count, seconds, the
    fastest call's seconds: the least disturbed by other processes)."""
    gen = torch.Generator().manual_seed(0)
    fn(gen)
    sync()
    n, t, best = 0, time.perf_counter(), float("inf")
    while time.perf_counter() - t < seconds:
        t1 = time.perf_counter()
        fn(gen)
        sync()
        best = min(best, time.perf_counter() - t1)
        n += 1
    return n, time.perf_counter() - t, best


if __name__ == "__main__":
    main()
