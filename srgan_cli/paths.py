"""Where the project's external data lives (never committed to the repo).

``SRGAN_SHARED_DIR`` points at a folder laid out like the project's ``../shared``:
``datasets/train``, ``datasets/benchmark/<Name>/``, ``weights/``. Without it, a
``shared`` folder next to the current directory or next to the source checkout is used.

:func:`cache_dir` is srgan's own cache (built AMX kernels, unpacked benchmark sets): it
follows the convention ``huggingface_hub`` and ``torch.hub`` use on every platform
(``$XDG_CACHE_HOME``, else ``~/.cache``), so all three caches sit side by side.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


def cache_dir() -> Path:
    """``$SRGAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/srgan``, else ``~/.cache/srgan``
    (read at call time; created by whoever writes into it)."""
    env = os.environ.get("SRGAN_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "srgan"


def shared_dir() -> Path | None:
    env = os.environ.get("SRGAN_SHARED_DIR")
    if env:
        p = Path(env)
        return p if p.is_dir() else None
    for cand in (Path.cwd().parent / "shared", REPO_DIR.parent / "shared"):
        if cand.is_dir():
            return cand.resolve()
    return None


def default_train_dirs() -> list[Path]:
    s = shared_dir()
    if s and (s / "datasets" / "train").is_dir():
        return [s / "datasets" / "train"]
    return []


def benchmark_dir(name: str) -> Path | None:
    """``<shared>/datasets/benchmark/<Name>`` if present (Name as in the archives)."""
    env = os.environ.get("SRGAN_BENCHMARK_DIR")
    roots = [Path(env)] if env else []
    s = shared_dir()
    if s:
        roots.append(s / "datasets" / "benchmark")
    for root in roots:
        for cand in root.iterdir() if root.is_dir() else ():
            if cand.is_dir() and cand.name.lower() == name.lower():
                return cand
    return None


def offline() -> bool:
    """``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set to a true value: nothing is
    downloaded (the Hub, torchvision's VGG19 weights)."""
    v = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return v.strip().lower() in {"1", "on", "yes", "true"}

