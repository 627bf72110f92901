"""Generator weights as safetensors files with self-describing metadata.

A weights file carries, as string metadata, everything needed to rebuild the network
(``arch``, ``scale``, ``blocks``, ``width``, ``channels``, value ranges) and how it was
made (``stage``, ``iterations``, ``data``, ``date`` and free-form extras). Nothing is
inferred from the file name. Pickle-based files (``.pth``/``.pt``/``.ckpt``) are refused
without being opened by a pickle loader.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from srgan_cli.errors import WeightsError
from srgan_cli.nets.generator import INPUT_RANGE, OUTPUT_RANGE, GeneratorSpec, SRResNet

FORMAT = "srgan/1"
ARCH = "srresnet"
_ARCH_KEYS = ("scale", "blocks", "width", "channels")


@dataclass(frozen=True)
class ModelInfo:
    """Typed description of a weights file: architecture plus provenance."""

    spec: GeneratorSpec
    path: Path | None = None
    stage: str = "unknown"
    iterations: int | None = None
    data: str | None = None
    date: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def scale(self) -> int:
        return self.spec.scale


def _range_str(r: tuple[float, float]) -> str:
    return f"{r[0]:g},{r[1]:g}"


def build_metadata(spec: GeneratorSpec, provenance: dict[str, Any]) -> dict[str, str]:
    meta = {
        "format": FORMAT,
        "arch": ARCH,
        **{k: str(v) for k, v in spec.as_dict().items()},
        "input_range": _range_str(INPUT_RANGE),
        "output_range": _range_str(OUTPUT_RANGE),
    }
    for k, v in provenance.items():
        if v is None:
            continue
        meta[k] = v if isinstance(v, str) else json.dumps(v)
    return meta


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename into place; never leaves a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_generator(model: SRResNet, path: str | os.PathLike, provenance: dict[str, Any]) -> None:
    """Write ``model`` as safetensors with architecture + provenance metadata."""
    state = {k: v.detach().to("cpu", torch.float32).contiguous()
             for k, v in model.state_dict().items() if v.is_floating_point()}
    # BN's num_batches_tracked is an integer counter only used in training; leave it out.
    meta = build_metadata(model.spec, provenance)
    atomic_write(Path(path), lambda tmp: save_file(state, str(tmp), metadata=meta))


def _check_safetensors_header(path: Path) -> None:
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


def read_info(path: str | os.PathLike) -> ModelInfo:
    """Read only the metadata of a weights file."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such file")
    _check_safetensors_header(path)
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{path}: unreadable safetensors file ({e})") from None
    return _info_from_metadata(path, meta)


def _info_from_metadata(path: Path, meta: dict[str, str]) -> ModelInfo:
    if meta.get("arch") != ARCH:
        raise WeightsError(
            f"{path}: metadata does not describe an {ARCH} generator "
            f"(arch={meta.get('arch')!r}); expected keys: arch, {', '.join(_ARCH_KEYS)}"
        )
    try:
        spec = GeneratorSpec(**{k: int(meta[k]) for k in _ARCH_KEYS})
    except KeyError as e:
        raise WeightsError(f"{path}: metadata lacks {e.args[0]!r}") from None
    except ValueError as e:
        raise WeightsError(f"{path}: bad architecture metadata ({e})") from None
    for key, expected in (("input_range", INPUT_RANGE), ("output_range", OUTPUT_RANGE)):
        if key in meta and meta[key] != _range_str(expected):
            raise WeightsError(f"{path}: unsupported {key} {meta[key]!r}")
    iters = meta.get("iterations")
    return ModelInfo(
        spec=spec,
        path=path,
        stage=meta.get("stage", "unknown"),
        iterations=int(iters) if iters and iters.isdigit() else None,
        data=meta.get("data"),
        date=meta.get("date"),
        metadata=meta,
    )


def load_generator(
    path: str | os.PathLike, device: torch.device | str = "cpu"
) -> tuple[SRResNet, ModelInfo]:
    """Build the generator described by ``path``'s metadata and load its weights.

    Every key and shape is checked; any mismatch raises :class:`WeightsError`.
    The model is returned in eval mode.
    """
    info = read_info(path)
    try:
        state = load_file(str(info.path))
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{info.path}: unreadable safetensors file ({e})") from None
    model = SRResNet(info.spec)
    expected = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors (e.g. {unexpected[0]})")
        raise WeightsError(f"{info.path}: does not match {info.spec}: {'; '.join(parts)}")
    for k, v in expected.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise WeightsError(
                f"{info.path}: tensor {k} has shape {tuple(state[k].shape)}, "
                f"expected {tuple(v.shape)} for {info.spec}"
            )
    model.load_state_dict(state, strict=False)
    model.eval()
    return model.to(device), info
