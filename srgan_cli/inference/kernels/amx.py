"""Fused AMX-BF16 3x3 convolutions (``amx.c``), built on first use with the system's C compiler.

Eager PyTorch runs SRResNet's per-channel PReLUs, residual adds and pixel shuffles as
separate passes over memory after each oneDNN convolution; together they took 35% of a
512x512 pass on an AMX CPU (docs/performance.md). ``amx.c`` computes a 3x3 convolution
with those folded into its epilogue. It needs x86-64 Linux with AMX-BF16 and a C compiler
(``$CC``, else ``cc``); :func:`available` says whether it can run here and
:func:`unavailable_reason` why not. The shared object is cached under
``kernels`` in srgan's cache folder (:func:`srgan_cli.paths.cache_dir`: ``$SRGAN_CACHE_DIR``,
else ``~/.cache/srgan``), keyed by the source's
hash, and written atomically.

Tensors handed to the kernel are bf16 "padded NHWC" images: (H + 2, W + 2, C) with a
zero border one pixel wide, so the kernel needs no bounds checks (:func:`padded`).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import torch

from srgan_cli.inference.device import cpu_has_amx
from srgan_cli.inference.kernels import build
from srgan_cli.inference.kernels.build import ConvArgs, Loader, conv_args, shared_object

SOURCE = Path(__file__).with_name("amx.c")
FLAGS = ["-O3", "-shared", "-fPIC", "-fopenmp", "-mamx-tile", "-mamx-bf16", "-mavx512f",
         "-mavx512bw", "-mavx512vl", "-mavx512bf16"]
MIN_WIDTH = 32  # the kernel works on 32-pixel blocks of a row
DTYPE = torch.bfloat16  # what the kernels read and write


def _load() -> ctypes.CDLL:
    if not cpu_has_amx():
        raise RuntimeError("the CPU has no AMX-BF16")
    lib = shared_object("srgan_amx", SOURCE, FLAGS)
    lib.srgan_conv3x3.argtypes = [ctypes.POINTER(ConvArgs)]
    lib.srgan_conv3x3.restype = None
    if lib.srgan_amx_request() != 0:
        raise RuntimeError("the kernel refused AMX tile state (arch_prctl)")
    return lib


_loader = Loader(_load)
cache_dir = build.cache_dir


def library() -> ctypes.CDLL:
    """The loaded kernels; raises RuntimeError with the reason when they cannot run here."""
    return _loader.library()


def unavailable_reason() -> str | None:
    return _loader.unavailable_reason()


def padded(h: int, w: int, c: int) -> torch.Tensor:
    """An (h + 2, w + 2, c) bf16 image with a zero border (:func:`.build.padded`)."""
    return build.padded(h, w, c, DTYPE)


def pack_weight(weight: torch.Tensor) -> torch.Tensor:
    """(O, C, 3, 3) -> bf16 [9][C / 2][O][2], the layout of the kernel's weight tiles."""
    o, c, kh, kw = weight.shape
    if (kh, kw) != (3, 3) or o % 32 or c % 32:
        raise ValueError(f"need a 3x3 kernel with channels in multiples of 32, got {tuple(weight.shape)}")
    w = weight.detach().float().permute(2, 3, 1, 0).reshape(9, c // 2, 2, o)
    return w.permute(0, 1, 3, 2).contiguous().to(torch.bfloat16)


class Conv3x3:
    """A 3x3 convolution (+ bias, PReLU, residual) on padded bf16 NHWC images.

    ``shuffle=True`` stores the output through a 2x pixel shuffle (PyTorch's channel
    order: map ``c * 4 + 2 * i + j`` goes to sub-pixel (i, j) of map c) into a padded
    image of twice the size with O / 4 maps; ``slope`` then has O entries (each shuffled
    map's slope repeated 4 times, the order of the maps before the shuffle).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, slope: torch.Tensor | None = None,
                 *, shuffle: bool = False) -> None:
        o = weight.shape[0]
        self.cin, self.cout, self.shuffle = weight.shape[1], o, shuffle
        if shuffle:
            # Reorder maps to (i, j, c) so that each 32-map chunk lands contiguously.
            perm = torch.arange(o).view(o // 4, 2, 2).permute(1, 2, 0).reshape(-1)
            weight, bias = weight[perm], bias[perm]
            slope = None if slope is None else slope[perm]
        self.w = pack_weight(weight)
        self.bias = bias.detach().float().contiguous()
        self.slope = None if slope is None else slope.detach().float().contiguous()
        self._offsets: dict[tuple[int, int], torch.Tensor] = {}

    def _chunk_off(self, out: torch.Tensor) -> torch.Tensor:
        key = (out.stride(0), out.stride(1))
        if key not in self._offsets:
            chunks = torch.arange(self.cout // 32)
            if self.shuffle:
                c4 = self.cout // 4
                g, half = chunks // (c4 // 32), chunks % (c4 // 32)
                i, j = g // 2, g % 2
                off = i * out.stride(0) + j * out.stride(1) + half * 32
            else:
                off = chunks * 32
            self._offsets[key] = off.to(torch.int64).contiguous()
        return self._offsets[key]

    def __call__(self, x: torch.Tensor, out: torch.Tensor, res: torch.Tensor | None = None,
                 rows: tuple[int, int] | None = None, out_row0: int = 0) -> torch.Tensor:
        """Compute into ``out``. ``x``: padded (H + 2, W + 2, cin). ``out``: (H', W', C')
        view of the interior of the destination (padded or not, channels contiguous);
        ``res``: (H, W, cout) like ``out``. ``rows``: only output rows [r0, r1) (at ``x``'s
        resolution); ``out``'s first row is then row ``out_row0``."""
        args = conv_args(self, x, out, res, rows, out_row0=out_row0, dtype=DTYPE, min_width=MIN_WIDTH)
        library().srgan_conv3x3(ctypes.byref(args))
        return out
