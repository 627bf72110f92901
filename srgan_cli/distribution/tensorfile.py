"""Safetensors files: checking the header before anything is loaded, summarising it, loading
tensors with one-line errors, and checking a state dict against what a network expects.

Pickled files (``.pth``/``.pt``/``.ckpt``) are refused here without being opened by a
pickle loader.
"""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path
from typing import Any

from srgan_cli.errors import WeightsError


def looks_like_safetensors(path: str | os.PathLike) -> bool:
    """Whether ``path`` starts like a safetensors file (an 8-byte header length, then a
    JSON object); False for a pickle, an unreadable or a missing file."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{"


def check_header(path: str | os.PathLike) -> None:
    """Raise :class:`WeightsError` unless ``path`` starts like a whole safetensors file."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError as e:
        raise WeightsError(f"{path}: cannot read ({e.strerror or e})") from None
    # a safetensors file: 8-byte little-endian header length, then a JSON object. Its first
    # byte can be anything (0x80 included), so that shape is checked before the pickle test.
    n = struct.unpack("<Q", head[:8])[0] if len(head) >= 8 else 0
    if len(head) == 9 and head[8:9] == b"{" and 2 <= n:
        if n + 8 > os.path.getsize(path):
            raise WeightsError(f"{path}: truncated safetensors header")
        return
    if head[:2] == b"PK" or head[:1] == b"\x80":
        raise WeightsError(
            f"{path}: looks like a pickled PyTorch file; only .safetensors weights are "
            "loaded (pickles can run arbitrary code)"
        )
    raise WeightsError(f"{path}: not a safetensors file")


def _open_checked(path: str | os.PathLike, read, framework: str = "numpy"):
    """``read(f)`` on a safetensors file opened by safetensors itself (which checks the
    header against the file; nothing is loaded unless ``read`` loads it, torch is not
    needed unless ``framework`` is ``pt``), after refusing a
    missing or pickled file; any failure is a one-line :class:`WeightsError`."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such file")
    check_header(path)
    try:
        with safe_open(str(path), framework=framework) as f:
            return read(f)
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{path}: unreadable safetensors file ({_first_line(e)})") from None


def metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of any safetensors file (see :func:`_open_checked`)."""
    return _open_checked(path, lambda f: dict(f.metadata() or {}))


def summary(path: str | os.PathLike) -> tuple[int, int, dict[str, str]]:
    """(number of tensors, number of values, metadata) of any safetensors file (see
    :func:`_open_checked`). Pickled files are refused without being unpickled."""
    meta, shapes = _open_checked(path, lambda f: (dict(f.metadata() or {}),
                                                  [f.get_slice(k).get_shape() for k in f.keys()]))
    return len(shapes), sum(math.prod(s) for s in shapes), meta


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def load_tensors(path: str | os.PathLike) -> dict:
    """All tensors of a safetensors file (on the CPU), header checked first."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    check_header(path)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{path}: unreadable safetensors file ({e})") from None


def read(path: str | os.PathLike) -> tuple[dict, dict[str, str]]:
    """``(tensors on the CPU, metadata)`` of a safetensors file, its header parsed once
    (see :func:`_open_checked`)."""
    def everything(f):
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})

    return _open_checked(path, everything, framework="pt")


def check_state(state: dict, expected: dict, where: Any, what: Any,
                extra_ok: bool = False) -> None:
    """Raise :class:`WeightsError` unless ``state`` has every key of ``expected`` with the
    same shape (and no other key, unless ``extra_ok``). ``where``: the file; ``what``: the
    network it should fit."""
    missing = sorted(set(expected) - set(state))
    unexpected = [] if extra_ok else sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors (e.g. {unexpected[0]})")
        raise WeightsError(f"{where}: does not match {what}: {'; '.join(parts)}")
    for k, v in expected.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise WeightsError(f"{where}: tensor {k} has shape {tuple(state[k].shape)}, "
                               f"expected {tuple(v.shape)} for {what}")
