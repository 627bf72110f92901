"""What the fused-kernel libraries share (:mod:`.amx`, :mod:`.simd`): building a C source
with the system's compiler into a shared object cached by the hash of its source and flags
(written atomically), loading it once per process (or remembering why it cannot be), and
the zero-bordered "padded NHWC" images the kernels read and write.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shlex
import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import torch

from srgan_cli.files import atomic_write


def cache_dir() -> Path:
    """Where built kernels are kept: ``kernels`` in srgan's cache folder
    (:func:`srgan_cli.paths.cache_dir`)."""
    from srgan_cli.paths import cache_dir as srgan_cache

    return srgan_cache() / "kernels"


def compile_library(dst: Path, source: Path, flags: list[str]) -> None:
    """Compile ``source`` with ``flags`` into the shared object ``dst`` (atomically) with
    ``$CC``, else ``cc``/``gcc``; RuntimeError with the compiler's first error line."""
    cc = shlex.split(os.environ.get("CC", "")) or [shutil.which("cc") or shutil.which("gcc") or ""]
    if not cc[0]:
        raise RuntimeError("no C compiler (set CC, or install gcc)")

    def compile_to(tmp: Path) -> None:
        try:
            proc = subprocess.run([*cc, *flags, str(source), "-o", str(tmp)],
                                  capture_output=True, text=True)
        except OSError as e:
            raise RuntimeError(f"cannot run the C compiler {cc[0]!r}: {e.strerror}") from None
        if proc.returncode != 0:
            msg = (proc.stderr.strip().splitlines() or ["no output"])[0]
            raise RuntimeError(f"{Path(cc[0]).name} failed: {msg}")

    atomic_write(dst, compile_to)


def shared_object(prefix: str, source: Path, flags: list[str]) -> ctypes.CDLL:
    """``source`` built with ``flags`` (once: cached under :func:`cache_dir` by the hash of
    both) and loaded."""
    digest = hashlib.sha256(source.read_bytes() + " ".join(flags).encode()).hexdigest()[:16]
    path = cache_dir() / f"{prefix}_{digest}.so"
    if not path.exists():
        compile_library(path, source, flags)
    return ctypes.CDLL(str(path))


class Loader:
    """Runs ``load`` (returns the library, or raises RuntimeError/OSError saying why it
    cannot run here) once per process, thread-safely, and remembers the library or the
    reason."""

    def __init__(self, load: Callable[[], ctypes.CDLL]) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._lib: ctypes.CDLL | None = None
        self._reason: str | None = None

    def library(self) -> ctypes.CDLL:
        """The loaded library; RuntimeError with the reason when it cannot run here."""
        with self._lock:
            if self._lib is None and self._reason is None:
                try:
                    self._lib = self._load()
                except (RuntimeError, OSError) as e:
                    self._reason = str(e)
            if self._lib is None:
                raise RuntimeError(self._reason)
            return self._lib

    def unavailable_reason(self) -> str | None:
        try:
            self.library()
        except RuntimeError as e:
            return str(e)
        return None


def padded(h: int, w: int, c: int, dtype: torch.dtype) -> torch.Tensor:
    """An (h + 2, w + 2, c) image of ``dtype`` with a zero border; its interior,
    ``t[1:-1, 1:-1]``, is left uninitialised for a kernel to fill."""
    t = torch.empty(h + 2, w + 2, c, dtype=dtype)
    t[0].zero_()
    t[-1].zero_()
    t[:, 0].zero_()
    t[:, -1].zero_()
    return t


__all__ = ["Loader", "cache_dir", "compile_library", "padded", "shared_object"]


class ConvArgs(ctypes.Structure):
    """The argument block of amx.c's and simd.c's 3x3 convolutions (one struct in both)."""

    _fields_ = [
        ("inp", ctypes.c_void_p), ("in_row", ctypes.c_int64), ("cin", ctypes.c_int64),
        ("width", ctypes.c_int64), ("row0", ctypes.c_int64), ("row1", ctypes.c_int64),
        ("w", ctypes.c_void_p), ("cout", ctypes.c_int64), ("bias", ctypes.c_void_p),
        ("slope", ctypes.c_void_p), ("res", ctypes.c_void_p), ("res_row", ctypes.c_int64),
        ("res_px", ctypes.c_int64), ("out", ctypes.c_void_p), ("out_row", ctypes.c_int64),
        ("out_px", ctypes.c_int64), ("chunk_off", ctypes.c_void_p), ("threads", ctypes.c_int64),
    ]


def conv_args(conv, x: torch.Tensor, out: torch.Tensor, res: torch.Tensor | None,
              rows: tuple[int, int] | None, *, out_row0: int, dtype: torch.dtype,
              min_width: int) -> ConvArgs:
    """Check the views a fused 3x3 convolution (``conv``: an ``amx.Conv3x3`` or
    ``simd.Conv3x3``) is called with and make its :class:`ConvArgs`; a one-line
    ValueError names what is wrong. ``x``: padded (H + 2, W + 2, cin); ``out``: (H', W',
    C') view, channels contiguous; ``res``: (H, W, cout); ``rows``: output rows [r0, r1)
    only, ``out``'s first row being row ``out_row0``."""
    name = {torch.bfloat16: "bf16", torch.float32: "fp32"}[dtype]
    h, w = x.shape[0] - 2, x.shape[1] - 2
    if (x.dtype != dtype or x.dim() != 3 or x.shape[2] != conv.cin
            or x.stride(2) != 1 or x.stride(1) != conv.cin):
        raise ValueError(f"input must be a padded {name} NHWC image")
    if w < min_width:
        raise ValueError(f"width {w} < {min_width}")
    r0, r1 = rows or (0, h)
    step = 2 if conv.shuffle else 1
    if not 0 <= r0 <= r1 <= h or out_row0 > r0:
        raise ValueError(f"rows {r0}:{r1} outside 0:{h} or before the output's first row")
    need = ((r1 - out_row0) * step, w * step, conv.cout // (4 if conv.shuffle else 1))
    if (out.dtype != dtype or out.dim() != 3 or out.stride(2) != 1
            or any(have < n for have, n in zip(out.shape, need))):
        raise ValueError(f"output must be a {name} view of at least {need} with "
                         "contiguous channels")
    if res is not None and (res.dtype != dtype or res.stride(2) != 1
                            or tuple(res.shape) != (h, w, conv.cout)):
        raise ValueError(f"residual must be a {name} ({h}, {w}, {conv.cout}) view")
    off = conv._chunk_off(out)
    base = out.data_ptr() - out_row0 * out.stride(0) * step * out.element_size()
    return ConvArgs(
        x.data_ptr(), x.stride(0), conv.cin, w, r0, r1, conv.w.data_ptr(), conv.cout,
        conv.bias.data_ptr(), 0 if conv.slope is None else conv.slope.data_ptr(),
        0 if res is None else res.data_ptr(), 0 if res is None else res.stride(0),
        0 if res is None else res.stride(1), base, out.stride(0) * step,
        out.stride(1) * step, off.data_ptr(), torch.get_num_threads())
