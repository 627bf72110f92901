"""PyTorch's fp32 path, the fused AVX2 fp32 path and OpenVINO f32 timed in one process
(issue 25; docs/performance.md, "The fused AVX2 kernels").

    python scripts/perf_simd.py                  # 512x512, median of 3 after 1 warm-up
    python scripts/perf_simd.py --size 256 --runs 5 --paths avx2 openvino
    python scripts/perf_simd.py --paths bf16     # PyTorch's bf16 path (CPUs with AVX512-BF16)

Each srgan path is ``Upscaler.upscale_decoded`` on ``srgan benchmark --speed``'s synthetic
photo (tiles as the Upscaler plans them, the default 12-pixel mirrored border, 8-bit
quantisation), like ``srgan benchmark --speed``; OpenVINO runs the same network (as
trained, converted by ``openvino.convert_model``) in f32 with the latency hint on the whole
image in one request (``srgan_cli.bench.speed.openvino_baseline``). Output megapixels per
second, and each path's speed over OpenVINO's.
"""

from __future__ import annotations

import argparse

import torch

from srgan_cli.bench.speed import hardware, measure, openvino_baseline, synthetic_photo
from srgan_cli.distribution.loading import load_file
from srgan_cli.imageio.imaging import Decoded
from srgan_cli.inference.device import cpu_model
from srgan_cli.inference.upscale import Upscaler

PATHS = {"torch": ("fp32", "torch"), "avx2": ("fp32", "avx2"), "bf16": ("bf16", "torch")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512, help="LR side")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--model", default="srresnet")
    ap.add_argument("--paths", nargs="+", default=["torch", "avx2", "openvino"],
                    choices=[*PATHS, "openvino"])
    a = ap.parse_args()
    s = a.size
    rgb = synthetic_photo(s, s)
    d = Decoded(rgb, None, "RGB")
    common = dict(device=torch.device("cpu"), in_size=(s, s), scale=4, flops_per_px=None,
                  runs=a.runs)
    results = {}
    for name in a.paths:
        if name == "openvino":
            up = Upscaler(a.model, device="cpu", precision="fp32")
            net = load_file(up.weights_path).net
            x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
            run, version = openvino_baseline(net.eval(), x)
            results[name] = measure(f"OpenVINO {version.split('-')[0]} f32", run, model=a.model,
                                    precision="fp32", tile=0, **common)
            continue
        precision, kernels = PATHS[name]
        up = Upscaler(a.model, device="cpu", precision=precision, kernels=kernels)
        tile = up.tile_for(s, s)
        results[name] = measure(f"srgan {precision}, {up.kernels} kernels", lambda: up.upscale_decoded(d),
                                model=a.model, precision=precision, tile=tile, **common)
    hw = hardware(torch.device("cpu"))
    print(f"{cpu_model()}, {hw['torch_threads']} threads, torch {hw['torch']}, {s}x{s} LR, "
          f"median of {a.runs} after 1 warm-up")
    ov = results.get("openvino")
    for r in results.values():
        vs = f", {r.mp_per_s_median / ov.mp_per_s_median:.2f}x OpenVINO" if ov else ""
        print(f"  {r.label:32s} tile {r.tile or 'whole':>5}: {r.mp_per_s_median:.3f} MP/s out "
              f"({', '.join(f'{t:.2f}' for t in r.seconds)} s){vs}")


if __name__ == "__main__":
    main()
