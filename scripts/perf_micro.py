"""Micro-timings quoted in docs/performance.md (CPU): an elementwise add on one
64x512x512 bf16 tensor with glibc's default malloc and with freed memory kept, PReLU on
the same tensor, the NaN/Inf check on a 2048x2048 RGB fp32 tile, full vs through the sum,
and the last stage's tail for a 512x512 input (256 maps at 1024x1024, bf16, channels_last):
one 5x5 convolution into 12 maps vs the split form (1x5 into 64 maps, then a 5x1 sum);
and writing one 2048x2048 output of the shipped model as PNG at zlib levels 6, 3 and 1
(``imaging.write_image``), and decoding its 512x512 input (``imaging.read_image``).

    python scripts/perf_micro.py            # default malloc first, then keep_freed_memory()
"""

import time

import torch


def ms(fn, n=20):
    fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n * 1e3


def main() -> None:
    from srgan_cli.device import keep_freed_memory

    x = torch.randn(1, 64, 512, 512).to(torch.bfloat16)
    y = torch.randn_like(x)
    w = torch.full((64,), 0.25, dtype=torch.bfloat16)
    tile = torch.randn(1, 3, 2048, 2048)
    with torch.inference_mode():
        print(f"add, default malloc:        {ms(lambda: x + y):7.2f} ms")
        print(f"prelu, default malloc:      {ms(lambda: torch.prelu(x, w)):7.2f} ms")
        keep_freed_memory()
        print(f"add, freed memory kept:     {ms(lambda: x + y):7.2f} ms")
        print(f"prelu, freed memory kept:   {ms(lambda: torch.prelu(x, w)):7.2f} ms")
        print(f"isfinite(y).all():          {ms(lambda: bool(torch.isfinite(tile).all())):7.2f} ms")
        print(f"isfinite(y.sum()):          {ms(lambda: bool(torch.isfinite(tile.sum()))):7.2f} ms")
        tail_timings()
    png_timings()


def tail_timings() -> None:
    import torch.nn.functional as F

    from srgan_cli.nets.inference import split_rows

    cl = torch.channels_last
    torch.manual_seed(0)
    x = torch.randn(1, 256, 1024, 1024).to(torch.bfloat16).contiguous(memory_format=cl)
    w = torch.randn(12, 256, 5, 5) * 0.01
    rows, cols, _ = split_rows(w, None)
    w5 = w.to(torch.bfloat16).contiguous(memory_format=cl)
    rows = rows.to(torch.bfloat16).contiguous(memory_format=cl)
    cols = cols.to(torch.bfloat16).contiguous(memory_format=cl)
    z = F.conv2d(x, rows, None, padding=(0, 2))
    t5 = ms(lambda: F.conv2d(x, w5, None, padding=2), 5)
    t_rows = ms(lambda: F.conv2d(x, rows, None, padding=(0, 2)), 5)
    t_cols = ms(lambda: F.conv2d(z, cols, None, padding=(2, 0)), 5)
    print(f"tail 5x5 conv, 256 -> 12:   {t5:7.2f} ms ({2 * 256 * 12 * 25 * 2**20 / t5 / 1e9:.2f} TFLOP/s)")
    print(f"tail 1x5 conv, 256 -> 64:   {t_rows:7.2f} ms")
    print(f"tail 5x1 sum, 64 -> 12:     {t_cols:7.2f} ms")
    print(f"split tail / 5x5 conv:      {t5 / (t_rows + t_cols):7.2f}x faster")



def png_timings() -> None:
    import tempfile
    from pathlib import Path

    import numpy as np

    from srgan_cli import Upscaler, imaging
    from srgan_cli.bench.speed import synthetic_photo

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.png"
        imaging.write_image(src, (synthetic_photo(512, 512) * 255 + 0.5).astype(np.uint8))
        d = imaging.read_image(src)
        print(f"decode 512x512 PNG:         {ms(lambda: imaging.read_image(src), 10):7.2f} ms")
        planes, _, _ = Upscaler().upscale_decoded(d)
        for level in (6, 3, 1):
            out = Path(tmp) / f"out{level}.png"
            t = ms(lambda: imaging.write_image(out, planes, png_level=level), 3)
            size = out.stat().st_size / 1e6
            print(f"write 2048x2048 PNG, level {level}: {t / 1e3:6.2f} s ({size:.2f} MB)")
        assert np.array_equal(imaging.read_image(Path(tmp) / "out1.png").rgb,
                              imaging.read_image(Path(tmp) / "out6.png").rgb)


if __name__ == "__main__":
    main()
