"""Throughput of the training data path: HR crops + augmentation + bicubic LR, patches/s.

    python scripts/perf_data.py DIR [DIR...] [--device cpu|cuda] [--crop 96] [--batch 16,256]
                                [--seconds 5] [--threads N]

Decodes the images of DIR once, then times ``sample_batch`` for the per-crop path (a
Python loop over crops, then one copy to the device) and the packed path (the decoded
images in one flat buffer on the device, crops cut with one gather) at each batch size.
Prints one JSON line per (layout, batch): patches/s and milliseconds per batch.
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
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    from srgan_cli.train.data import ImageBank, sample_batch

    dev = torch.device(a.device)
    t0 = time.perf_counter()
    plain = ImageBank.from_dirs(a.dirs, a.crop, packed=False)
    load_s = time.perf_counter() - t0
    packed = plain.pack(dev)
    px = sum(t.numel() // 3 for t in plain.images)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    for layout, bank in (("per-crop", plain), ("packed", packed)):
        for batch in (int(b) for b in a.batch.split(",")):
            gen = torch.Generator().manual_seed(0)
            sample_batch(bank, batch, a.crop, a.scale, gen, device=dev)  # warm-up
            sync()
            n, t = 0, time.perf_counter()
            while time.perf_counter() - t < a.seconds:
                sample_batch(bank, batch, a.crop, a.scale, gen, device=dev)
                n += 1
            sync()
            secs = time.perf_counter() - t
            print(json.dumps({"layout": layout, "device": str(dev), "batch": batch,
                              "crop": a.crop, "images": len(plain), "megapixels": round(px / 1e6, 1),
                              "decode_s": round(load_s, 1), "threads": torch.get_num_threads(),
                              "patches_per_s": round(n * batch / secs, 1),
                              "ms_per_batch": round(1000 * secs / n, 2)}), flush=True)


if __name__ == "__main__":
    main()
