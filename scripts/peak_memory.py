"""Peak resident memory of one forward pass of the inference network, against the
estimate ``Upscaler`` plans tiles with (docs/memory.md).

    python scripts/peak_memory.py fp32 512          # whole 512x512 LR image, fp32
    python scripts/peak_memory.py bf16 1024 --passes 3
    python scripts/peak_memory.py fp32 512 --band-rows 0   # last stage whole, as before
    python scripts/peak_memory.py bf16 1024 --keep-output  # a caller holding the last output
    python scripts/peak_memory.py bf16 1024 --kernels amx  # the fused AMX kernels (Upscaler's default in bf16)
    python scripts/peak_memory.py fp32 512 --kernels avx2  # the fused AVX2 fp32 kernels

Runs the default inference copy of the shipped SRResNet (BatchNorm folded, split tail,
last stage in row bands) the way ``Upscaler`` does on the CPU (glibc keeping freed memory,
channels_last, autocast for bf16) on a random S x S image, and prints the growth of the
process's peak resident set (``VmHWM`` after ``clear_refs``, over the resident set before
the first pass) next to ``srgan_cli.model.Prepared.activation_bytes`` (the unbanded estimate with ``--band-rows 0``).
"""

from __future__ import annotations

import argparse

import torch

from srgan_cli.distribution.loading import load_file
from srgan_cli.distribution.registry import resolve_model
from srgan_cli.inference.device import keep_freed_memory
from srgan_cli.inference.kernels.fused import FusedSRResNet
from srgan_cli.inference.kernels.fused_fp32 import Fp32SRResNet
from srgan_cli.inference.rewrite import inference_copy
from srgan_cli.model import Prepared


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {key} in /proc/self/status")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("precision", choices=["fp32", "bf16"])
    ap.add_argument("size", type=int, help="LR side in pixels")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--model", default="srresnet")
    ap.add_argument("--keep-output", action="store_true",
                    help="keep each pass's output alive while the next pass runs")
    ap.add_argument("--band-rows", type=int, default=None,
                    help="rows per band of the last stage; 0 = whole stage (default: auto)")
    ap.add_argument("--kernels", choices=["torch", "amx", "avx2"], default="torch",
                    help="amx: run the network through the fused AMX kernels (bf16 only); "
                    "avx2: the fused AVX2 kernels (fp32 only)")
    a = ap.parse_args()
    if a.kernels == "amx" and a.precision != "bf16":
        ap.error("--kernels amx computes in bf16")
    if a.kernels == "avx2" and a.precision != "fp32":
        ap.error("--kernels avx2 computes in fp32")
    keep_freed_memory()
    info = load_file(resolve_model(a.model), ours_only=True)
    net = info.net
    net = inference_copy(net, band_rows=a.band_rows).to(memory_format=torch.channels_last)
    if a.kernels == "amx":
        net = FusedSRResNet(net)
    elif a.kernels == "avx2":
        net = Fp32SRResNet(net)
    x = torch.rand(1, 3, a.size, a.size).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        base = _status("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current resident set
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            y = None
            for _ in range(a.passes):
                if not a.keep_output:
                    y = None
                y = net(x).float()
            del y
        peak = _status("VmHWM") - base
    banded = a.band_rows != 0
    est = Prepared(net, info.facts.memory, banded).activation_bytes(
        a.size, a.size, 2 if a.precision == "bf16" else 4)
    print(f"{a.precision} ({a.kernels} kernels) {a.size}x{a.size}, bands {a.band_rows}, {a.passes} passes"
          f"{' (outputs kept)' if a.keep_output else ''}: peak growth {peak / 1e6:.0f} MB, "
          f"estimate {est / 1e6:.0f} MB, ratio {peak / est:.2f}")


if __name__ == "__main__":
    main()
