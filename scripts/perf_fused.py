"""Timings of the fused AMX kernels (srgan_cli/inference/kernels/amx.c) on this CPU (docs/performance.md).

    python scripts/perf_fused.py micro [SIZE]    # one 3x3 layer: oneDNN (+ eager ops) vs fused
    python scripts/perf_fused.py stages [SIZE]   # a whole pass, split by kernel kind
    python scripts/perf_fused.py stages --source OLD.c   # the same with another kernel source
    python scripts/perf_fused.py stages --profile        # + PyTorch's ops in one pass, by shape

SIZE is the LR side (default 512). ``micro`` times, on a random SIZE x SIZE input with 64
maps in bf16 (channels_last for oneDNN): a 3x3 64 -> 64 convolution alone, + PReLU, + a
residual add, and the upsampling layer (64 -> 256 maps, pixel shuffle, PReLU), each as
eager PyTorch and as one fused kernel call; and a 2048^3 bf16 matmul. ``stages`` runs the
shipped SRResNet through ``FusedSRResNet`` and reports the time in each kind of kernel
call and in the rest (the head, the tail's oneDNN passes, the final shuffle). Median of 10
(micro) or 5 (stages) runs after warm-up; glibc keeps freed memory as in ``Upscaler``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from srgan_cli.inference.device import keep_freed_memory
from srgan_cli.inference.kernels import amx


def _median_ms(fn, runs: int) -> float:
    fn()
    fn()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return sorted(ts)[runs // 2] * 1e3


def micro(size: int) -> None:
    torch.manual_seed(0)
    c = 64
    x = torch.randn(1, c, size, size).bfloat16().contiguous(memory_format=torch.channels_last)
    res = torch.randn(1, c, size, size).bfloat16().contiguous(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(c, c, 3, padding=1).bfloat16().to(memory_format=torch.channels_last)
    up = torch.nn.Conv2d(c, 4 * c, 3, padding=1).bfloat16().to(memory_format=torch.channels_last)
    a = (torch.rand(c) * 0.3).bfloat16()
    pad = amx.padded(size, size, c)
    pad[1:-1, 1:-1] = x[0].permute(1, 2, 0)
    out = torch.empty(size, size, c, dtype=torch.bfloat16)
    res_hwc = res[0].permute(1, 2, 0)
    big = amx.padded(2 * size, 2 * size, c)
    k = amx.Conv3x3(conv.weight.float(), conv.bias.float())
    kp = amx.Conv3x3(conv.weight.float(), conv.bias.float(), a.float())
    ku = amx.Conv3x3(up.weight.float(), up.bias.float(), a.float().repeat_interleave(4),
                     shuffle=True)
    flops = size * size * c * c * 9 * 2
    rows = [
        ("oneDNN conv 64->64", lambda: conv(x), flops),
        ("oneDNN conv + eager PReLU", lambda: F.prelu(conv(x), a), flops),
        ("oneDNN conv + eager add", lambda: conv(x) + res, flops),
        ("fused conv (+ bias)", lambda: k(pad, out), flops),
        ("fused conv + PReLU", lambda: kp(pad, out), flops),
        ("fused conv + residual add", lambda: k(pad, out, res=res_hwc), flops),
        ("oneDNN conv 64->256 + eager shuffle + PReLU",
         lambda: F.prelu(F.pixel_shuffle(up(x), 2), a), 4 * flops),
        ("fused conv 64->256 + PReLU + shuffle", lambda: ku(pad, big[1:-1, 1:-1]), 4 * flops),
    ]
    with torch.inference_mode():
        for name, fn, fl in rows:
            ms = _median_ms(fn, 10)
            print(f"{name:45s} {ms:8.2f} ms  {fl / ms / 1e6:6.0f} GFLOP/s (convolution work)")
        m = torch.randn(2048, 2048, dtype=torch.bfloat16)
        ms = _median_ms(lambda: m @ m, 10)
        print(f"{'bf16 matmul 2048^3':45s} {ms:8.2f} ms  {2 * 2048**3 / ms / 1e6:6.0f} GFLOP/s")


def stages(size: int, profile: bool = False) -> None:
    from srgan_cli.distribution.loading import load_file
    from srgan_cli.distribution.registry import resolve_model
    from srgan_cli.inference.kernels.fused import FusedSRResNet
    from srgan_cli.inference.rewrite import inference_copy

    info = load_file(resolve_model("srresnet"), ours_only=True)
    net = info.net
    fused = FusedSRResNet(inference_copy(net).to(memory_format=torch.channels_last))
    x = torch.rand(1, 3, size, size).contiguous(memory_format=torch.channels_last)
    spent: dict[str, float] = {}
    call = amx.Conv3x3.__call__

    def timed(self, *args, **kw):
        t = time.perf_counter()
        out = call(self, *args, **kw)
        kind = (f"{self.cin}->{self.cout}" + (" +PReLU" if self.slope is not None else "")
                + (" +residual" if kw.get("res") is not None else "")
                + (" +shuffle" if self.shuffle else ""))
        spent[kind] = spent.get(kind, 0.0) + time.perf_counter() - t
        return out

    amx.Conv3x3.__call__ = timed
    totals, parts = [], []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        fused(x)
        for _ in range(5):
            spent.clear()
            t = time.perf_counter()
            fused(x)
            totals.append(time.perf_counter() - t)
            parts.append(dict(spent))
    i = sorted(range(5), key=totals.__getitem__)[2]
    total, part = totals[i], parts[i]
    flops = info.spec.flops_per_lr_pixel() * size * size
    print(f"{size}x{size} pass: {total * 1e3:.0f} ms ({flops / total / 1e9:.0f} GFLOP/s of the "
          f"network's {flops / 1e9:.0f} GFLOP); runs {', '.join(f'{t * 1e3:.0f}' for t in totals)} ms")
    for kind, secs in part.items():
        print(f"  fused {kind:28s} {secs * 1e3:7.1f} ms")
    print(f"  {'everything else':34s} {(total - sum(part.values())) * 1e3:7.1f} ms")
    if profile:  # what "everything else" is: the PyTorch ops (the kernels are invisible here)
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            with torch_profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
                fused(x)
        print(prof.key_averages(group_by_input_shape=True).table(
            sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=28,
            max_shapes_column_width=60))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["micro", "stages"])
    ap.add_argument("size", type=int, nargs="?", default=512)
    ap.add_argument("--source", type=Path, default=None,
                    help="build the kernels from this C file instead of srgan_cli/inference/kernels/amx.c")
    ap.add_argument("--profile", action="store_true",
                    help="stages: also profile PyTorch's ops in one pass, grouped by shape")
    a = ap.parse_args()
    if a.source is not None:
        amx.SOURCE = a.source.resolve()
    keep_freed_memory()
    try:
        amx.library()
    except RuntimeError as e:
        raise SystemExit(f"perf_fused.py: the fused AMX kernels cannot run here: {e}") from None
    if a.what == "micro":
        micro(a.size)
    else:
        stages(a.size, a.profile)


if __name__ == "__main__":
    main()
