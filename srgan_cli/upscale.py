"""The ``Upscaler`` API: load a generator once, upscale many images.

The instance holds only immutable configuration and the loaded model; nothing about
one call carries into the next. Progress is reported through callbacks.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from srgan_cli import imaging
from srgan_cli.device import resolve_device
from srgan_cli.errors import SrganError
from srgan_cli.models import DEFAULT_MODEL, resolve_model
from srgan_cli.nets.generator import to_unit_range
from srgan_cli.tiling import run_tiled
from srgan_cli.weights import ModelInfo, load_generator

TileCallback = Callable[[int, int], None]
DEFAULT_TILE = 256  # LR pixels; bounds memory on large photos (pad 40 adds ~70% work)


@dataclass(frozen=True)
class UpscaleResult:
    source: Path | None
    output: Path | None
    in_size: tuple[int, int]
    out_size: tuple[int, int]


class Upscaler:
    """Upscale images with an SRResNet/SRGAN generator.

    >>> up = Upscaler("srresnet", device="cpu")         # doctest: +SKIP
    >>> big = up.upscale_image(Image.open("photo.jpg"))  # doctest: +SKIP
    """

    def __init__(self, model: str | os.PathLike = DEFAULT_MODEL, device: str = "auto",
                 precision: str = "fp32", tile: int | None = None, tile_pad: int | None = None):
        try:
            self.device = resolve_device(device)
        except ValueError as e:
            raise SrganError(str(e)) from None
        self.weights_path = resolve_model(model)
        net, self.info = load_generator(self.weights_path, self.device)
        self.net = net.to(memory_format=torch.channels_last)
        if precision not in ("fp32", "bf16", "fp16"):
            raise SrganError(f"unknown precision {precision!r} (fp32, bf16, fp16)")
        self.precision = precision
        self.tile = DEFAULT_TILE if tile is None else tile
        radius = self.info.spec.receptive_radius()
        self.tile_pad = radius if tile_pad is None else tile_pad

    @property
    def scale(self) -> int:
        return self.info.spec.scale

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        ctx = (torch.autocast(self.device.type, dtype=dtype) if dtype else contextlib.nullcontext())
        with ctx:
            y = self.net(x.contiguous(memory_format=torch.channels_last))
        return y.float()

    @torch.inference_mode()
    def upscale_tensor(self, x: torch.Tensor, on_tile: TileCallback | None = None) -> torch.Tensor:
        """LR RGB batch (N, 3, H, W) in [0,1] -> SR in [0,1] of (N, 3, sH, sW), on CPU."""
        x = x.to(self.device, torch.float32)
        y = run_tiled(self._forward, x, self.scale, self.tile, self.tile_pad, on_tile)
        return to_unit_range(y).cpu()

    def upscale_decoded(self, d: imaging.Decoded, on_tile: TileCallback | None = None) -> Image.Image:
        x = torch.from_numpy(d.rgb).permute(2, 0, 1)[None]
        y = self.upscale_tensor(x, on_tile)[0].permute(1, 2, 0).numpy()
        alpha = None
        if d.alpha is not None:
            a = torch.from_numpy(d.alpha)[None, None]
            alpha = F.interpolate(a, scale_factor=self.scale, mode="bicubic",
                                  align_corners=False)[0, 0].clamp(0, 1).numpy()
        return imaging.encode(y, alpha, d.mode)

    def upscale_image(self, im: Image.Image, on_tile: TileCallback | None = None) -> Image.Image:
        """Upscale a PIL image; the result has the same mode family (RGB, L, RGBA, LA)."""
        return self.upscale_decoded(imaging.decode(im), on_tile)

    def upscale_file(self, src: str | os.PathLike, dst: str | os.PathLike, *,
                     overwrite: bool = False, fmt: str | None = None, quality: int = 95,
                     on_tile: TileCallback | None = None) -> UpscaleResult:
        """Read ``src``, upscale, write ``dst`` atomically. Raises :class:`SrganError`."""
        src, dst = Path(src), Path(dst)
        imaging.output_format(dst, fmt)  # fail before the expensive part
        if dst.exists() and not overwrite:
            raise SrganError(f"{dst}: already exists (use --overwrite)")
        d = imaging.read_image(src)
        out = self.upscale_decoded(d, on_tile)
        imaging.write_image(out, dst, fmt, quality, d.info)
        h, w = d.rgb.shape[:2]
        return UpscaleResult(src, dst, (w, h), out.size)


def describe(info: ModelInfo) -> str:
    s = info.spec
    return f"{info.stage} x{s.scale} (B={s.blocks}, C={s.width}), {info.iterations or '?'} iterations"


__all__ = ["Upscaler", "UpscaleResult", "describe"]
