"""Micro-timings quoted in docs/performance.md (CPU): an elementwise add on one
64x512x512 bf16 tensor with glibc's default malloc and with freed memory kept, PReLU on
the same tensor, the NaN/Inf check on a 2048x2048 RGB fp32 tile, full vs through the sum,
and the last stage's tail for a 512x512 input (256 maps at 1024x1024, bf16, channels_last):
one 5x5 convolution into 12 maps vs the split form (1x5 into 64 maps, then a 5x1 sum);
and writing one 2048x2048 output of the default model as PNG at zlib levels 6, 4 and 1
(``imaging.write_image``; the numbers of 2026-11-23 used 6, 3 and 1: ``--png-levels
6,3,1``), and decoding its 512x512 input (``imaging.read_image``).

    python scripts/perf_micro.py            # default malloc first, then keep_freed_memory()
    python scripts/perf_micro.py --size 16 --model srresnet   # toy sizes (what CI runs)

``--size N`` scales everything with the LR side N (default 512: the tensors above); PNG
levels: ``--png-levels`` (default 6,4,1); ``--model``: default, the registry's default.
"""

import argparse
import time

import torch


def ms(fn, n=20):
    fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n * 1e3


def main() -> None:
    from srgan_cli.inference.device import keep_freed_memory

    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512, help="LR side the sizes derive from")
    ap.add_argument("--png-levels", default="6,4,1")
    ap.add_argument("--model", default=None)
    a = ap.parse_args()
    n = a.size
    x = torch.randn(1, 64, n, n).to(torch.bfloat16)
    y = torch.randn_like(x)
    w = torch.full((64,), 0.25, dtype=torch.bfloat16)
    tile = torch.randn(1, 3, 4 * n, 4 * n)
    with torch.inference_mode():
        print(f"add, default malloc:        {ms(lambda: x + y):7.2f} ms")
        print(f"prelu, default malloc:      {ms(lambda: torch.prelu(x, w)):7.2f} ms")
        keep_freed_memory()
        print(f"add, freed memory kept:     {ms(lambda: x + y):7.2f} ms")
        print(f"prelu, freed memory kept:   {ms(lambda: torch.prelu(x, w)):7.2f} ms")
        print(f"isfinite(y).all():          {ms(lambda: bool(torch.isfinite(tile).all())):7.2f} ms")
        print(f"isfinite(y.sum()):          {ms(lambda: bool(torch.isfinite(tile.sum()))):7.2f} ms")
        tail_timings(2 * n)
    png_timings(n, [int(v) for v in a.png_levels.split(",")], a.model)


def tail_timings(side: int = 1024) -> None:
    import torch.nn.functional as F

    from srgan_cli.inference.rewrite import split_rows

    cl = torch.channels_last
    torch.manual_seed(0)
    x = torch.randn(1, 256, side, side).to(torch.bfloat16).contiguous(memory_format=cl)
    w = torch.randn(12, 256, 5, 5) * 0.01
    rows, cols, _ = split_rows(w, None)
    w5 = w.to(torch.bfloat16).contiguous(memory_format=cl)
    rows = rows.to(torch.bfloat16).contiguous(memory_format=cl)
    cols = cols.to(torch.bfloat16).contiguous(memory_format=cl)
    z = F.conv2d(x, rows, None, padding=(0, 2))
    t5 = ms(lambda: F.conv2d(x, w5, None, padding=2), 5)
    t_rows = ms(lambda: F.conv2d(x, rows, None, padding=(0, 2)), 5)
    t_cols = ms(lambda: F.conv2d(z, cols, None, padding=(2, 0)), 5)
    print(f"tail 5x5 conv, 256 -> 12:   {t5:7.2f} ms ({2 * 256 * 12 * 25 * side**2 / t5 / 1e9:.2f} TFLOP/s)")
    print(f"tail 1x5 conv, 256 -> 64:   {t_rows:7.2f} ms")
    print(f"tail 5x1 sum, 64 -> 12:     {t_cols:7.2f} ms")
    print(f"split tail / 5x5 conv:      {t5 / (t_rows + t_cols):7.2f}x faster")



def png_timings(n: int = 512, levels=(6, 4, 1), model: str | None = None) -> None:
    import tempfile
    from pathlib import Path

    import numpy as np

    from srgan_cli import Upscaler
    from srgan_cli.bench.speed import synthetic_photo
    from srgan_cli.imageio import imaging

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.png"
        imaging.write_image(src, (synthetic_photo(n, n) * 255 + 0.5).astype(np.uint8))
        d = imaging.read_image(src)
        print(f"decode {n}x{n} PNG:         {ms(lambda: imaging.read_image(src), 10):7.2f} ms")
        planes, _, _ = Upscaler(model).upscale_decoded(d)
        h, w = planes.shape[:2]
        for level in levels:
            out = Path(tmp) / f"out{level}.png"
            t = ms(lambda: imaging.write_image(out, planes, png_level=level), 3)
            size = out.stat().st_size / 1e6
            print(f"write {w}x{h} PNG, level {level}: {t / 1e3:6.2f} s ({size:.2f} MB)")
        first = imaging.read_image(Path(tmp) / f"out{levels[0]}.png").rgb
        assert all(np.array_equal(imaging.read_image(Path(tmp) / f"out{lv}.png").rgb, first)
                   for lv in levels)


if __name__ == "__main__":
    main()
