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
