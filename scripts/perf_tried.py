"""Levers that were tried for issue 7 and not kept (docs/performance.md, "80%" target).

    python scripts/perf_tried.py fuse-add          # residual add fused into conv2 (private op)
    python scripts/perf_tried.py band-blocks 16 32 64 128   # residual blocks in row bands
    python scripts/perf_tried.py band-blocks 8 --size 32    # toy size (what CI runs)

Each runs the default inference network (bf16 autocast, channels_last, BN folded, split
tail, banded last stage, malloc keeping freed memory) on a whole 512x512 synthetic photo,
3 timed passes after a warm-up, alternating the plain network and the variant, and prints
the median milliseconds of each and the largest output difference.

``fuse-add``: each residual block's second convolution and the skip add run as one
oneDNN call, ``torch.ops.mkldnn._convolution_pointwise.binary(..., "add", ...)``
(a private PyTorch operator; PReLU cannot be fused this way, it has per-channel slopes).
``band-blocks R``: every residual block runs over horizontal bands of R rows (each with
the 2 rows of context its two 3x3 convolutions need), so the PReLU and add inputs are
smaller than the cache.
"""

from __future__ import annotations

import statistics
import sys
import time

import torch
from torch import nn

from srgan_cli.bench.speed import synthetic_photo
from srgan_cli.distribution.loading import load_file
from srgan_cli.distribution.registry import resolve_model
from srgan_cli.inference.device import keep_freed_memory
from srgan_cli.inference.rewrite import inference_copy


class FusedAddBlock(nn.Module):
    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.conv1, self.act, self.conv2 = block.conv1, block.act, block.conv2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.act(self.conv1(x))
        dt = t.dtype
        return torch.ops.mkldnn._convolution_pointwise.binary(
            t, x.to(dt), self.conv2.weight.to(dt), self.conv2.bias.to(dt), [1, 1], [1, 1],
            [1, 1], 1, "add", None, None, [], None)


class BandedBlock(nn.Module):
    def __init__(self, block: nn.Module, rows: int) -> None:
        super().__init__()
        self.conv1, self.act, self.conv2, self.rows = block.conv1, block.act, block.conv2, rows

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.shape[2]
        out = torch.empty_like(x)
        for r0 in range(0, h, self.rows):
            r1 = min(r0 + self.rows, h)
            a, b = max(r0 - 1, 0), min(r1 + 1, h)  # rows of conv1's output conv2 needs
            s, e = max(a - 1, 0), min(b + 1, h)  # rows of x those need
            t = self.act(self.conv1(x[:, :, s:e])[:, :, a - s:b - s])
            torch.add(self.conv2(t)[:, :, r0 - a:r1 - a], x[:, :, r0:r1], out=out[:, :, r0:r1])
        return out


def timed(net: nn.Module, x: torch.Tensor) -> tuple[float, torch.Tensor]:
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        y = net(x)
        secs = []
        for _ in range(3):
            t = time.perf_counter()
            net(x)
            secs.append(time.perf_counter() - t)
    return statistics.median(secs) * 1e3, y.float()


def main() -> None:
    what, *args = sys.argv[1:]
    size = 512
    if "--size" in args:
        i = args.index("--size")
        size, args = int(args[i + 1]), args[:i] + args[i + 2:]
    keep_freed_memory()
    net0 = load_file(resolve_model("srresnet"), ours_only=True).net
    x = torch.from_numpy(synthetic_photo(size, size)).permute(2, 0, 1)[None]
    x = x.contiguous(memory_format=torch.channels_last)

    def plain() -> nn.Module:
        return inference_copy(net0).to(memory_format=torch.channels_last)

    variants: list[tuple[str, nn.Module]] = []
    if what == "fuse-add":
        net = plain()
        net.body = nn.Sequential(*[FusedAddBlock(b) for b in net.body])
        variants = [("plain", plain()), ("fused add", net)] * 2
    elif what == "band-blocks":
        variants.append(("plain", plain()))
        for r in (int(v) for v in args):
            net = plain()
            net.body = nn.Sequential(*[BandedBlock(b, r) for b in net.body])
            variants.append((f"{r}-row bands", net))
        variants.append(("plain", plain()))
    else:
        raise SystemExit(f"unknown experiment {what!r} (fuse-add, band-blocks)")
    ref = None
    for name, net in variants:
        ms, y = timed(net, x)
        ref = y if ref is None else ref
        print(f"{name:14s} {ms:7.0f} ms   max |diff| vs plain {(y - ref).abs().max().item():.3g}",
              flush=True)


if __name__ == "__main__":
    main()
