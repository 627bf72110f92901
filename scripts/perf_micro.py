"""Micro-timings quoted in docs/performance.md (CPU): an elementwise add on one
64x512x512 bf16 tensor with glibc's default malloc and with freed memory kept, PReLU on
the same tensor, and the NaN/Inf check on a 2048x2048 RGB fp32 tile, full vs through the sum.

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


if __name__ == "__main__":
    main()
