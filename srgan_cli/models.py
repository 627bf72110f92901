"""Resolving ``--model`` to a weights file: a path, or a registered name.

The registry is data (``weights/models.json``); a registered model is served from the
copy shipped in ``weights/``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from srgan_cli.errors import WeightsError
from srgan_cli.paths import REPO_DIR

WEIGHTS_DIR = Path(os.environ.get("SRGAN_WEIGHTS_DIR", REPO_DIR / "weights"))
DEFAULT_MODEL = "srresnet"


@dataclass(frozen=True)
class RegistryEntry:
    name: str
    filename: str
    scale: int
    description: str


def registry() -> dict[str, RegistryEntry]:
    path = WEIGHTS_DIR / "models.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as e:
        raise WeightsError(f"{path}: unreadable model registry ({e})") from None
    return {
        name: RegistryEntry(name, e["filename"], int(e["scale"]), e.get("description", ""))
        for name, e in raw["models"].items()
    }


def resolve_model(name_or_path: str | os.PathLike) -> Path:
    """A local weights file for a model name or path; raises :class:`WeightsError`."""
    s = str(name_or_path)
    p = Path(s)
    if p.suffix or os.sep in s or p.exists():
        if not p.is_file():
            raise WeightsError(f"{p}: no such weights file")
        return p
    reg = registry()
    if s not in reg:
        known = ", ".join(sorted(reg)) or "none"
        raise WeightsError(f"unknown model {s!r} (registered: {known}; or pass a .safetensors path)")
    f = WEIGHTS_DIR / reg[s].filename
    if not f.is_file():
        raise WeightsError(f"model {s!r}: {f} is missing from this installation")
    return f
