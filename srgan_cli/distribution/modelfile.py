"""Generator weights as safetensors files with self-describing metadata.

A weights file carries, as string metadata, everything needed to rebuild the network
(``arch``, which selects the architecture in :mod:`srgan_cli.arch`, and that
architecture's keys, e.g. ``scale``, ``blocks``, ``width``, value ranges) and how it was
made (``stage``, ``iterations``, ``data``, ``date`` and free-form extras). Nothing is
inferred from the file name. Reading one is :func:`srgan_cli.load` (:mod:`srgan_cli.distribution.loading`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from srgan_cli import arch
from srgan_cli.files import atomic_write

FORMAT = "srgan/1"


def build_metadata(spec: Any, provenance: dict[str, Any]) -> dict[str, str]:
    """The metadata of a weights file: format, the architecture's keys for ``spec``, then
    ``provenance`` (non-strings as JSON; None left out)."""
    meta = {"format": FORMAT, **arch.of_spec(spec).metadata(spec)}
    for k, v in provenance.items():
        if v is None:
            continue
        meta[k] = v if isinstance(v, str) else json.dumps(v)
    return meta


def provenance_of(meta: dict[str, str]) -> dict[str, str]:
    """A weights file's metadata without its format and architecture keys (the ones its
    architecture reads, ``delattice`` included when the file has it): what a file made
    from it carries over, while its own spec writes the architecture keys afresh."""
    architecture, spec = arch.from_metadata(meta, "metadata")
    skip = {"format", *architecture.metadata(spec)}
    return {k: v for k, v in meta.items() if k not in skip}


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
