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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from srgan_cli.errors import WeightsError
from srgan_cli.files import atomic_write
from srgan_cli.nets.generator import INPUT_RANGE, OUTPUT_RANGE, GeneratorSpec, SRResNet
from srgan_cli.tensorfile import check_state, load_tensors, metadata

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


def save_generator(model: SRResNet, path: str | os.PathLike, provenance: dict[str, Any]) -> None:
    """Write ``model`` as safetensors with architecture + provenance metadata."""
    state = {k: v.detach().to("cpu", torch.float32).contiguous()
             for k, v in model.state_dict().items() if v.is_floating_point()}
    # BN's num_batches_tracked is an integer counter only used in training; leave it out.
    meta = build_metadata(model.spec, provenance)
    atomic_write(Path(path), lambda tmp: save_file(state, str(tmp), metadata=meta))


def read_info(path: str | os.PathLike) -> ModelInfo:
    """Read only the metadata of a weights file."""
    path = Path(path)
    meta = metadata(path)
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
    state = load_tensors(info.path)
    model = SRResNet(info.spec)
    expected = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
    check_state(state, expected, info.path, info.spec)
    model.load_state_dict(state, strict=False)
    model.eval()
    return model.to(device), info
