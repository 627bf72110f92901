"""The public Python API's entry point: :func:`load` (``srgan_cli.load``) resolves a
registered name, an ``hf://`` URL or a path to a local file (:mod:`srgan_cli.distribution.registry`) and
loads it (:func:`srgan_cli.distribution.loading.load_file`). :class:`~srgan_cli.inference.upscale.Upscaler` and
the command line load through it.
"""

from __future__ import annotations

import os

from srgan_cli.distribution.loading import load_file
from srgan_cli.model import Model


def load(model: str | os.PathLike | None = None) -> Model:
    """The model ``model`` names: a registered name (verified by its sha256; downloaded
    when needed), an ``hf://owner/repo/file[@revision]`` URL or a local file; None: the
    registry's default model. On the CPU, in eval mode, as trained."""
    from srgan_cli.distribution.registry import default_model, resolve_source

    path, sha256 = resolve_source(default_model() if model is None else model)
    return load_file(path, sha256=sha256)


__all__ = ["load"]
