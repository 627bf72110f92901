"""The ``Upscaler`` API: load a model once, upscale many images and files.

:class:`Upscaler` is a :class:`~srgan_cli.inference.runner.Runner` (prepare, tile, retry in fp32,
quantise) that also takes a model by name, path or ``hf://`` URL (:func:`srgan_cli.load`),
blends a GAN model with its parent (``realism``), and reads and writes one file
(:meth:`Upscaler.upscale_file`; many files, with decoding and encoding overlapped with the
model: :func:`srgan_cli.batch.pipeline.upscale_files`).
Progress and notices go through callbacks; errors are raised as
:class:`~srgan_cli.errors.SrganError` subclasses, never swallowed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from srgan_cli.api import load
from srgan_cli.errors import SrganError
from srgan_cli.imageio import imaging
from srgan_cli.inference.runner import (
    DEFAULT_BORDER,
    EventCallback,
    Runner,
    TileCallback,
)
from srgan_cli.model import Model


@dataclass(frozen=True)
class UpscaleResult:
    source: Path | None
    output: Path | None
    in_size: tuple[int, int]
    out_size: tuple[int, int]
    tile: int  # the tile size actually used (0 = whole image)
    fp32_retries: int  # tiles recomputed in fp32 after a non-finite reduced-precision result


class Upscaler(Runner):
    """Upscale images and files with a model (:class:`~srgan_cli.inference.runner.Runner`'s options).

    ``model``: a loaded :class:`~srgan_cli.model.Model` (``srgan_cli.load(...)``), a
    registered name, a model file (ours, or a community model spandrel recognises) or an
    ``hf://`` URL; ``None`` = the registry's default model
    (:func:`srgan_cli.distribution.registry.default_model`).
    ``realism``: ``R`` in [0, 1] runs a GAN model blended with the SRResNet it was
    fine-tuned from, ``(1 - R) x parent + R x GAN`` on every weight (:mod:`srgan_cli.distribution.realism`;
    1 = the GAN model, 0 = its parent, exactly); the parent is found by the sha256 the GAN
    file records, among the registered models, or given as ``parent`` (a file).
    ``None`` runs ``model`` as it is.
    """

    def __init__(self, model: Model | str | os.PathLike | None = None, *, device: str = "auto",
                 precision: str = "auto", tile: int | None = None, tile_pad: int | None = None,
                 tile_batch: int = 1, alpha: str = "bicubic", optimise: bool = True,
                 reuse_memory: bool = True, kernels: str = "auto",
                 realism: float | None = None, parent: str | os.PathLike | None = None,
                 border: str = DEFAULT_BORDER, border_pad: int | None = None,
                 outscale: float | None = None):
        loaded = model if isinstance(model, Model) else load(model)
        self.realism, self.parent_path = realism, None
        if realism is not None:  # blended before any inference form is built from it
            from srgan_cli.distribution.realism import blended

            loaded, self.parent_path = blended(loaded, realism, parent)
        super().__init__(loaded, device=device, precision=precision, tile=tile,
                         tile_pad=tile_pad, tile_batch=tile_batch, alpha=alpha,
                         optimise=optimise, reuse_memory=reuse_memory, kernels=kernels,
                         border=border, border_pad=border_pad, outscale=outscale)

    @property
    def weights_path(self) -> Path | None:
        """The model's file."""
        return self.model.path

    def upscale_file(self, src: str | os.PathLike, dst: str | os.PathLike, *,
                     overwrite: bool = False, fmt: str | None = None, quality: int = 95,
                     strip_metadata: bool = False,
                     max_pixels: int = imaging.DEFAULT_MAX_PIXELS, png_level: int = imaging.DEFAULT_PNG_LEVEL,
                     on_tile: TileCallback | None = None,
                     on_event: EventCallback | None = None) -> UpscaleResult:
        """Read ``src``, upscale, write ``dst`` atomically. Raises :class:`SrganError`."""
        src, dst = Path(src), Path(dst)
        imaging.output_format(dst, fmt)  # fail before the expensive part
        if dst.exists() and not overwrite:
            raise SrganError(f"{dst}: already exists (use --overwrite)")
        d = imaging.read_image(src, max_pixels=max_pixels)
        self.check_output_size(src, d.size, max_pixels)
        if on_event:
            for note in input_notes(src, d, dst, fmt):
                on_event(note)
        planes, tile, retries = self.upscale_decoded(d, on_tile, on_event)
        imaging.write_image(dst, planes, fmt=fmt, quality=quality,
                            info={} if strip_metadata else d.info, png_level=png_level)
        out_size = (planes.shape[1], planes.shape[0])
        return UpscaleResult(src, dst, d.size, out_size, tile, retries)


def input_notes(src: Path, d: imaging.Decoded, dst: Path, fmt: str | None) -> list[str]:
    """Notices about an input that is upscaled, but not all of it."""
    notes = []
    if d.frames > 1:
        notes.append(f"{src}: animated ({d.frames} frames); only the first frame is upscaled")
    out = imaging.output_format(dst, fmt)
    if d.alpha is not None and (out == "JPEG" or (out == "BMP" and d.mode == "LA")):
        notes.append(f"{dst}: {out} has no alpha channel; the transparency of {src} is dropped")
    return notes


__all__ = ["UpscaleResult", "Upscaler", "input_notes"]
