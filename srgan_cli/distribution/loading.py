"""The one loading path from a file to a :class:`~srgan_cli.model.Model` (a registered
name or an ``hf://`` URL is resolved to a file first: :func:`srgan_cli.api.load`).

A file with our metadata (a safetensors file whose metadata has ``arch`` or ``format``) is
built by the architecture its ``arch`` names, its header read once; any other file (a bare
state dict: safetensors, or ``torch.load(weights_only=True)``, which never runs pickled
code) by the first architecture that takes it: an SRResNet layout
(:mod:`srgan_cli.distribution.layouts`), else any single-image SR model spandrel recognises (detected
once). One-line :class:`~srgan_cli.errors.WeightsError` naming the file for anything else.
"""

from __future__ import annotations

import os
from pathlib import Path

from srgan_cli import arch
from srgan_cli.model import Model, Provenance


def load_file(path: str | os.PathLike, *, sha256: str | None = None,
              ours_only: bool = False) -> Model:
    """The model in the local file ``path`` (``sha256``: its digest, when already verified).
    ``ours_only``: refuse anything but one of our weights files (a safetensors file with
    our metadata; a pickle is refused without being opened by a pickle loader)."""
    from srgan_cli.distribution.community_files import read_state_dict, unwrap
    from srgan_cli.distribution.tensorfile import looks_like_safetensors, read

    path = Path(path)
    if ours_only or looks_like_safetensors(path):
        tensors, meta = read(path)
        if ours_only or "arch" in meta or "format" in meta:
            architecture, spec = arch.from_metadata(meta, path)
            net = architecture.load(spec, tensors, path)
            return architecture.model(net, architecture.describe(spec),
                                      Provenance(path, meta, sha256=sha256))
        state = unwrap(tensors, path)
    else:
        state = read_state_dict(path)
    architecture, net, facts = arch.from_state_dict(state, path)
    return architecture.model(net, facts, Provenance(path, bare=True, sha256=sha256))


def facts_of_file(path: str | os.PathLike):
    """The facts of the model in ``path``: from the metadata alone for our own files (no
    tensor is read), else by loading it."""
    from srgan_cli.distribution.tensorfile import looks_like_safetensors, metadata

    if looks_like_safetensors(path):
        meta = metadata(path)
        if "arch" in meta or "format" in meta:
            architecture, spec = arch.from_metadata(meta, path)
            return architecture.describe(spec)
    return load_file(path).facts


__all__ = ["facts_of_file", "load_file"]
