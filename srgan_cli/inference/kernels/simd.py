"""Fused fp32 3x3 convolutions for CPUs without AMX (``simd.c``, AVX2 + FMA), built on
first use with the system's C compiler.

The fp32 counterpart of :mod:`srgan_cli.inference.kernels.amx`: one kernel computes a 3x3 convolution
with the bias, per-channel PReLU, residual add and 2x pixel shuffle folded into its
epilogue, on fp32 "padded NHWC" images ((H + 2, W + 2, C) with a stored zero border,
:func:`padded`). It needs an x86-64 CPU with AVX2 and FMA (every one since about 2013,
AMX ones included) and a C compiler (``$CC``, else ``cc``); :func:`available` and
:func:`unavailable_reason` say whether and why not. The shared object is cached beside the
AMX one (:func:`srgan_cli.inference.kernels.build.cache_dir`), keyed by the source's hash,
written atomically.

The library also holds :func:`clock_ghz`, a measured core clock (a chain of dependent
integer adds, one a cycle), used by the speed benchmark's peak FMA rate.
"""

from __future__ import annotations

import ctypes
import time
from pathlib import Path

import torch

from srgan_cli.inference.device import cpu_flags
from srgan_cli.inference.kernels import build
from srgan_cli.inference.kernels.build import ConvArgs, Loader, conv_args, shared_object

SOURCE = Path(__file__).with_name("simd.c")
FLAGS = ["-O3", "-shared", "-fPIC", "-fopenmp", "-mavx2", "-mfma"]
NEEDS = {"avx2", "fma"}
BLOCK = 16  # output channels per block of the kernel (CB in simd.c)
DTYPE = torch.float32



def _load() -> ctypes.CDLL:
    missing = NEEDS - cpu_flags()
    if missing:
        raise RuntimeError(f"the CPU has no {' + '.join(sorted(missing)).upper()}")
    lib = shared_object("srgan_simd", SOURCE, FLAGS)
    lib.srgan_conv3x3_f32.argtypes = [ctypes.POINTER(ConvArgs)]
    lib.srgan_conv3x3_f32.restype = None
    lib.srgan_conv3x3_wino_f32.argtypes = [ctypes.POINTER(ConvArgs), ctypes.c_int64]
    lib.srgan_conv3x3_wino_f32.restype = ctypes.c_int
    lib.srgan_add_chains.argtypes = [ctypes.c_int64, ctypes.c_int64]
    lib.srgan_add_chains.restype = ctypes.c_int64
    if lib.srgan_simd_block() != BLOCK:
        raise RuntimeError(f"srgan_simd: channel block {lib.srgan_simd_block()}, not {BLOCK}")
    return lib


_loader = Loader(_load)


def library() -> ctypes.CDLL:
    """The loaded kernels; raises RuntimeError with the reason when they cannot run here."""
    return _loader.library()


def unavailable_reason() -> str | None:
    return _loader.unavailable_reason()


def available() -> bool:
    return unavailable_reason() is None


def clock_ghz(threads: int | None = None, adds: int = 20_000_000, repeats: int = 7) -> float:
    """The core clock in GHz while ``threads`` cores (default: torch's threads) each run a
    chain of ``adds`` dependent integer adds (one a cycle on every x86-64 core since the
    P6): the fastest of ``repeats`` runs, since other processes taking a core only ever
    make a run slower. RuntimeError where the library cannot run."""
    lib = library()
    n = torch.get_num_threads() if threads is None else threads
    lib.srgan_add_chains(adds, n)  # wake the cores up to their running clock
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        lib.srgan_add_chains(adds, n)
        best = min(best, time.perf_counter() - t)
    return adds / best / 1e9


def padded(h: int, w: int, c: int) -> torch.Tensor:
    """An (h + 2, w + 2, c) fp32 image with a zero border (:func:`.build.padded`)."""
    return build.padded(h, w, c, DTYPE)


def pack_weight(weight: torch.Tensor) -> torch.Tensor:
    """(O, C, 3, 3) -> fp32 [O / 16][9][C][16], the order the kernel reads its weights in."""
    o, c, kh, kw = weight.shape
    if (kh, kw) != (3, 3) or o % BLOCK:
        raise ValueError(f"need a 3x3 kernel with output channels in multiples of {BLOCK}, "
                         f"got {tuple(weight.shape)}")
    w = weight.detach().float().permute(2, 3, 1, 0).reshape(9, c, o // BLOCK, BLOCK)
    return w.permute(2, 0, 1, 3).contiguous()


#: Winograd F(m x m, 3x3) by output tile side m: G of U = G g G^T (simd.c has B and A).
WINO_G = {
    2: torch.tensor([[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]],
                    dtype=torch.float64),
    4: torch.tensor([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                     [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
                    dtype=torch.float64),
}
WINO_MAX_CIN = 1024  # WMAX_CIN in simd.c
#: The tile the kernels use by default (docs/performance.md: F(4x4) measured faster than
#: F(2x2), and within the tolerance of the fp32 path on Set5/Set14).
WINO_DEFAULT = 4


def pack_winograd(weight: torch.Tensor, m: int = WINO_DEFAULT) -> torch.Tensor:
    """(O, C, 3, 3) -> the Winograd F(m x m, 3x3) weights U = G g G^T in fp32,
    [O / 16][(m + 2)^2][C][16] (computed in float64)."""
    o, c, kh, kw = weight.shape
    if m not in WINO_G:
        raise ValueError(f"Winograd tiles are {' or '.join(map(str, WINO_G))} pixels, not {m}")
    if (kh, kw) != (3, 3) or o % BLOCK or c % 8 or c > WINO_MAX_CIN:
        raise ValueError(f"Winograd needs a 3x3 kernel, output channels in multiples of "
                         f"{BLOCK}, input channels in multiples of 8 up to {WINO_MAX_CIN}, "
                         f"got {tuple(weight.shape)}")
    g, t = WINO_G[m], m + 2
    u = torch.einsum("ik,ockl,jl->ijco", g, weight.detach().double(), g)  # (t, t, C, O)
    u = u.reshape(t * t, c, o // BLOCK, BLOCK).permute(2, 0, 1, 3)
    return u.float().contiguous()


class Conv3x3:
    """A 3x3 convolution (+ bias, PReLU, residual) on padded fp32 NHWC images; the same
    interface as :class:`srgan_cli.inference.kernels.amx.Conv3x3` (``shuffle=True``: stored through a 2x
    pixel shuffle, ``slope`` with O entries in the order of the maps before the shuffle).
    ``winograd``: the output tile m of Winograd F(m x m, 3x3), 2 or 4 (2.25x or 4x fewer
    multiplies), 0 for the direct convolution; None: :data:`WINO_DEFAULT` where the
    channels allow it, else direct."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, slope: torch.Tensor | None = None,
                 *, shuffle: bool = False, winograd: int | None = None) -> None:
        o, c = weight.shape[:2]
        if winograd is None:
            winograd = WINO_DEFAULT if c % 8 == 0 and c <= WINO_MAX_CIN else 0
        self.winograd = int(winograd)
        if shuffle and (o // 4) % BLOCK:
            raise ValueError(f"a shuffled convolution needs output channels in multiples of "
                             f"{4 * BLOCK}, got {o}")
        self.cin, self.cout, self.shuffle = weight.shape[1], o, shuffle
        if shuffle:
            # Reorder maps to (i, j, c) so that each block of 16 lands contiguously.
            perm = torch.arange(o).view(o // 4, 2, 2).permute(1, 2, 0).reshape(-1)
            weight, bias = weight[perm], bias[perm]
            slope = None if slope is None else slope[perm]
        self.w = pack_winograd(weight, self.winograd) if self.winograd else pack_weight(weight)
        self.bias = bias.detach().float().contiguous()
        self.slope = None if slope is None else slope.detach().float().contiguous()
        self._offsets: dict[tuple[int, int], torch.Tensor] = {}

    def _chunk_off(self, out: torch.Tensor) -> torch.Tensor:
        key = (out.stride(0), out.stride(1))
        if key not in self._offsets:
            blocks = torch.arange(self.cout // BLOCK)
            if self.shuffle:
                per = self.cout // 4 // BLOCK  # blocks per sub-pixel (i, j)
                g, part = blocks // per, blocks % per
                off = (g // 2) * out.stride(0) + (g % 2) * out.stride(1) + part * BLOCK
            else:
                off = blocks * BLOCK
            self._offsets[key] = off.to(torch.int64).contiguous()
        return self._offsets[key]

    def __call__(self, x: torch.Tensor, out: torch.Tensor, res: torch.Tensor | None = None,
                 rows: tuple[int, int] | None = None, out_row0: int = 0) -> torch.Tensor:
        """Compute into ``out`` (see :meth:`srgan_cli.inference.kernels.amx.Conv3x3.__call__`; fp32)."""
        args = conv_args(self, x, out, res, rows, out_row0=out_row0, dtype=DTYPE, min_width=1)
        lib = library()
        if self.winograd:
            if lib.srgan_conv3x3_wino_f32(ctypes.byref(args), self.winograd) != 0:
                raise MemoryError("the Winograd kernel could not allocate its buffers")
        else:
            lib.srgan_conv3x3_f32(ctypes.byref(args))
        return out
