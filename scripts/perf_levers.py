"""Time one inference lever at a time on the synthetic photo (docs/performance.md).

Each configuration runs the generator on a whole W x H LR image (or in tiles) the given
number of times after one warm-up, and prints one JSON line: median seconds, output
MP/s and achieved GFLOP/s (the model's nominal FLOPs). Examples::

    python scripts/perf_levers.py eager-fp32             # the peer-repo baseline
    python scripts/perf_levers.py bf16-cl-fold-tail-split-band --mallopt  # Upscaler, bf16 CPUs
    python scripts/perf_levers.py bf16-cl-fold-tail --mallopt --tile 128
    python scripts/perf_levers.py bf16-cl-fold-tail --compile
    python scripts/perf_levers.py --profile bf16-cl-fold-tail-split --mallopt  # per-op times

Configuration names are dash-separated flags after the precision: ``cl`` channels_last,
``fold`` BatchNorm folded, ``tail`` sub-pixel tail (one 5x5 convolution, whole stage),
``split`` with ``tail``: that convolution as a 1x5 pass and a 5x1 sum, ``band`` with
``tail``: the last stage in row bands (the size-based default), ``head`` fp32 head,
``nograd`` use torch.no_grad instead of torch.inference_mode, ``amx`` (bf16, with ``fold``
and ``tail``) the fused AMX kernels of ``srgan_cli.inference.kernels.fused``; ``eager-fp32`` is plain fp32
NCHW no_grad. ``bf16-cl-fold-tail-split-band-amx --mallopt`` is what ``Upscaler`` runs by
default on an AMX CPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from srgan_cli.bench.speed import peak_rss_mb, synthetic_photo
from srgan_cli.distribution.loading import load_file
from srgan_cli.distribution.registry import resolve_model
from srgan_cli.inference.rewrite import inference_copy
from srgan_cli.inference.tiling import run_tiled


def build(config: str, weights: str):
    info = load_file(resolve_model(weights), ours_only=True)
    net = info.net
    if config == "eager-fp32":
        return net, None, False, True, info
    prec, *flags = config.split("-")
    net = inference_copy(net, fold_bn="fold" in flags, subpixel_tail="tail" in flags,
                         split_tail="split" in flags, band_rows=None if "band" in flags else 0,
                         fp32_head="head" in flags)
    cl = "cl" in flags
    if cl:
        net = net.to(memory_format=torch.channels_last)
    dtype = {"fp32": None, "bf16": torch.bfloat16}[prec]
    if "amx" in flags:
        from srgan_cli.inference.kernels.fused import FusedSRResNet

        net = FusedSRResNet(net)
    return net, dtype, cl, "nograd" in flags, info


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--model", default="srresnet")
    ap.add_argument("--size", default="512x512")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tile", type=int, default=0, help="LR tile (padded by 40), 0 = whole")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads; 0 = default")
    ap.add_argument("--compile", action="store_true", help="torch.compile the network first")
    ap.add_argument("--freeze", action="store_true",
                    help="with --compile: inductor freezing (weights as constants, prepacked "
                    "oneDNN convolutions with fused pointwise ops)")
    ap.add_argument("--mallopt", action="store_true",
                    help="keep freed memory in the process (srgan_cli.inference.device.keep_freed_memory)")
    ap.add_argument("--profile", action="store_true", help="print the top ops of one run")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.mallopt:
        from srgan_cli.inference.device import keep_freed_memory

        keep_freed_memory()
    if a.freeze:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
    w, h = (int(v) for v in a.size.split("x"))
    net, dtype, cl, nograd, info = build(a.config, a.model)
    x = torch.from_numpy(synthetic_photo(w, h)).permute(2, 0, 1)[None].contiguous()
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    compile_s = None
    if a.compile:
        t = time.perf_counter()
        net = torch.compile(net)
        with torch.inference_mode(), torch.autocast("cpu", dtype or torch.float32,
                                                    enabled=dtype is not None):
            net(x)  # compile for this shape (another shape would compile again)
        compile_s = time.perf_counter() - t

    def fwd(inp):
        if dtype is None:
            return net(inp).float()
        with torch.autocast("cpu", dtype=dtype):
            return net(inp).float()

    def once():
        ctx = torch.no_grad() if nograd else torch.inference_mode()
        with ctx:
            return run_tiled(fwd, x, info.spec.scale, a.tile, info.spec.receptive_radius())

    once()
    if a.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            once()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
        return
    secs = []
    for _ in range(a.runs):
        t = time.perf_counter()
        once()
        secs.append(time.perf_counter() - t)
    med = statistics.median(secs)
    out_mp = w * h * info.spec.scale**2 / 1e6
    print(json.dumps({
        "config": a.config, "size": a.size, "tile": a.tile, "threads": torch.get_num_threads(),
        "compile_s": compile_s, "freeze": a.freeze, "mallopt": a.mallopt, "seconds": [round(s, 3) for s in secs],
        "mp_per_s": round(out_mp / med, 3),
        "gflops": round(info.spec.flops_per_lr_pixel() * w * h / med / 1e9, 1),
        "peak_rss_mb": round(peak_rss_mb()), "torch": torch.__version__,
    }))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
