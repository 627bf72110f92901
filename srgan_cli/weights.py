"""Generator weights as safetensors files with self-describing metadata.

A weights file carries, as string metadata, everything needed to rebuild the network
(``arch``, which selects the architecture in :mod:`srgan_cli.arch`, and that
architecture's keys, e.g. ``scale``, ``blocks``, ``width``, value ranges) and how it was
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

from srgan_cli import arch
from srgan_cli.arch import ModelDescriptor
from srgan_cli.files import atomic_write
from srgan_cli.tensorfile import load_tensors, metadata

FORMAT = "srgan/1"


@dataclass(frozen=True)
class ModelInfo:
    """Typed description of a weights file: its network's descriptor plus provenance."""

    descriptor: ModelDescriptor
    path: Path | None = None
    stage: str = "unknown"
    iterations: int | None = None
    data: str | None = None
    date: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def spec(self):
        """The architecture's own spec (a :class:`~srgan_cli.nets.generator.GeneratorSpec`
        for ours)."""
        return self.descriptor.spec

    @property
    def scale(self) -> int:
        return self.descriptor.scale


def build_metadata(spec: Any, provenance: dict[str, Any]) -> dict[str, str]:
    """The metadata of a weights file: format, the architecture's keys for ``spec``, then
    ``provenance`` (non-strings as JSON; None left out)."""
    meta = {"format": FORMAT, **arch.of_spec(spec).metadata(spec)}
    for k, v in provenance.items():
        if v is None:
            continue
        meta[k] = v if isinstance(v, str) else json.dumps(v)
    return meta


def save_generator(model: Any, path: str | os.PathLike, provenance: dict[str, Any]) -> None:
    """Write ``model`` (a network with a ``spec``) as safetensors with architecture +
    provenance metadata."""
    import torch
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu", torch.float32).contiguous()
             for k, v in model.state_dict().items() if v.is_floating_point()}
    # BN's num_batches_tracked is an integer counter only used in training; leave it out.
    meta = build_metadata(model.spec, provenance)
    atomic_write(Path(path), lambda tmp: save_file(state, str(tmp), metadata=meta))


def read_info(path: str | os.PathLike) -> ModelInfo:
    """Read only the metadata of a weights file; its ``arch`` selects the architecture
    (:func:`srgan_cli.arch.from_metadata`)."""
    path = Path(path)
    meta = metadata(path)
    iters = meta.get("iterations")
    return ModelInfo(
        descriptor=arch.from_metadata(meta, path),
        path=path,
        stage=meta.get("stage", "unknown"),
        iterations=int(iters) if iters and iters.isdigit() else None,
        data=meta.get("data"),
        date=meta.get("date"),
        metadata=meta,
    )


BARE = "bare state dict"  # the stage of a model read from a file without our metadata


def has_srgan_metadata(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a safetensors file with our metadata (``format`` or ``arch``),
    i.e. one of our weights files, rather than a bare state dict from elsewhere."""
    from srgan_cli.tensorfile import looks_like_safetensors

    if not looks_like_safetensors(path):
        return False
    meta = metadata(path)
    return "arch" in meta or "format" in meta


def load_model(path: str | os.PathLike, device: Any = "cpu") -> tuple[Any, ModelInfo]:
    """Any model file: one of our weights files (:func:`load_generator`), or a bare state
    dict, read by our code (safetensors, or ``torch.load(weights_only=True)``, which never
    runs pickled code: :func:`srgan_cli.foreign.read_state_dict`) and built by the
    architecture that recognises it (an SRResNet layout, or any single-image SR model
    spandrel recognises: :func:`srgan_cli.arch.load_state_dict`). One-line
    :class:`WeightsError` naming the file for anything else."""
    path = Path(path)
    if has_srgan_metadata(path):
        return load_generator(path, device)
    from srgan_cli.foreign import read_state_dict

    net, descriptor = arch.load_state_dict(read_state_dict(path), path)
    return net.to(device), ModelInfo(descriptor=descriptor, path=path, stage=BARE)


def read_model_info(path: str | os.PathLike) -> ModelInfo:
    """:func:`read_info` for our weights files; a bare state dict is loaded to know it."""
    return read_info(path) if has_srgan_metadata(path) else load_model(path)[1]


def load_generator(path: str | os.PathLike, device: Any = "cpu") -> tuple[Any, ModelInfo]:
    """Build the network described by ``path``'s metadata and load its weights.

    Every key and shape is checked; any mismatch raises :class:`WeightsError`.
    The model is returned in eval mode.
    """
    info = read_info(path)
    state = load_tensors(info.path)
    model = info.descriptor.architecture.load(info.spec, state, info.path)
    return model.to(device), info
