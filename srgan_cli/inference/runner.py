"""Running a loaded :class:`~srgan_cli.model.Model` on images: :class:`Runner` prepares it for
a device and precision (:meth:`~srgan_cli.model.Model.prepare`), tiles, recomputes a
non-finite reduced-precision tile in fp32 and quantises. ``Model.upscale`` and
:class:`~srgan_cli.inference.upscale.Upscaler` (which also loads models by name and runs files)
run images through it.

An instance holds only its configuration and the prepared network; nothing about one call
carries into the next. Progress and notices go through callbacks; errors are raised as
:class:`~srgan_cli.errors.SrganError` subclasses, never swallowed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from srgan_cli.errors import ImageError, SrganError
from srgan_cli.imageio import imaging
from srgan_cli.inference.device import (
    autocast_dtype,
    default_precision,
    keep_freed_memory,
    release_freed_memory,
    resolve_device,
)
from srgan_cli.inference.kernels.choice import CHOICES as KERNELS
from srgan_cli.inference.kernels.choice import value_bytes
from srgan_cli.inference.tiling import MIRRORS, run_tiled
from srgan_cli.nets.generator import to_unit_range

TileCallback = Callable[[int, int], None]
EventCallback = Callable[[str], None]

TRIM_AFTER_BYTES = 256 << 20  # release kept activation memory after outputs this large
CPU_TILE_BUDGET = 1.5e9  # bytes of activations per tile on the CPU (and <= 1/4 of free memory)
MIN_TILE = 16
MAX_OUTPUT_SIDE = 2**31 - 1  # pixels: PNG's limit, and more than any encoder here takes
PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # tests/test_cli_options.py: arch.base's
BORDERS = ("zero",) + MIRRORS
DEFAULT_BORDER = "symmetric"  # solid colours and tiny images stay right at the corners
#: LR pixels mirrored around the image by default (capped at the receptive radius): as
#: good as the whole radius on Set5/Set14 and solid colours (8 px left a saturated magenta's
#: corner 4 levels off in fp32), for 10% more work on a 512x512 image instead of 34%
#: (docs/benchmarks.md, "Borders").
MIRROR_PAD = 12


def border_width(border: str, tile_pad: int, border_pad: int | None = None) -> int:
    """LR pixels mirrored around an image for ``border`` (0 for ``zero``): ``border_pad``
    when given, else :data:`MIRROR_PAD` or the network's context ``tile_pad`` if smaller."""
    if border == "zero":
        return 0
    return min(MIRROR_PAD, tile_pad) if border_pad is None else max(0, int(border_pad))


def available_memory(device: torch.device) -> int:
    """Free bytes for activations: CUDA free memory, else MemAvailable from /proc/meminfo."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


def tile_budget(device: torch.device) -> float:
    free = available_memory(device)
    return 0.5 * free if device.type == "cuda" else min(0.25 * free, CPU_TILE_BUDGET)


def auto_tile(prepared, device: torch.device, pad: int, value_bytes: int = 4) -> int:
    """Largest tile (LR px, padding included in the memory count) that fits the budget, for
    a :class:`~srgan_cli.model.Prepared` network at ``value_bytes`` per value."""
    room = tile_budget(device) - prepared.fixed_bytes
    side = int(math.sqrt(max(room, 0) / prepared.bytes_per_px(value_bytes))) - 2 * pad
    return max(side, MIN_TILE)


class Runner:
    """Upscale images with a loaded :class:`~srgan_cli.model.Model`.

    ``precision``: ``auto`` (bf16 on CPUs with AMX/AVX512-BF16, fp32 on other CPUs and
    MPS, fp16 on CUDA), ``fp32``, ``bf16`` or ``fp16``; reduced precision runs under
    autocast, and a tile with NaN/Inf in its output is recomputed in fp32. With ``auto``,
    16-bit images run in fp32 (:meth:`precision_for`).
    ``optimise``: run an exact inference rewrite of the generator (BatchNorm folded into
    the convolutions, the last convolution moved before the last pixel shuffle; on the CPU
    also split into row and column passes, with the last stage run in row bands; see
    :mod:`srgan_cli.inference.rewrite`); ``False`` runs the network as trained.
    ``reuse_memory``: on the CPU, let glibc's malloc keep freed activation memory for reuse
    (:func:`srgan_cli.inference.device.keep_freed_memory`; process-wide, memory is not returned to
    the system until exit), which avoids re-faulting hundreds of MB per forward pass.
    ``kernels``: ``auto`` runs the 3x3 convolutions through the fused AMX-BF16 kernels
    (:mod:`srgan_cli.inference.kernels.fused`: PReLU, residual adds and pixel shuffles folded into the
    convolutions) where they can run: CPU, bf16, ``optimise``, a CPU with AMX-BF16 and a
    C compiler to build them on first use; on CPUs without AMX, in fp32, the fused AVX2
    fp32 kernels (:mod:`srgan_cli.inference.kernels.fused_fp32`); otherwise PyTorch's own operators,
    with the reason in :attr:`kernels_note` (:mod:`srgan_cli.inference.kernels.choice`). ``amx`` and
    ``avx2`` insist (raise if they cannot run); ``torch`` never uses them. :attr:`kernels`
    says which path runs.
    ``tile``: LR pixels per tile, ``None`` = chosen from free memory, ``0`` = whole image.
    ``tile_pad``: context per side (default: the model's ``tile_pad``, its
    receptive radius, which makes tiling exact).
    ``tile_batch``: same-shaped tiles run together (useful on GPUs).
    ``alpha``: ``bicubic`` (default) or ``model`` for upscaling the alpha channel.
    ``border``: ``symmetric`` (default), ``reflect`` or ``edge`` first extend the image by
    ``border_pad`` mirrored LR pixels (default :data:`MIRROR_PAD`, 12, or the receptive
    radius when smaller; the radius itself, 40 for SRResNet, measured no better) and crop
    them from the result, which keeps solid colours and tiny images right at the corners; ``zero`` runs the network on the image as it is,
    with its convolutions' zero padding at the borders (the network's raw behaviour: a
    64x64 solid image's corners come back up to 37 levels off, for 0.009 dB more Set5
    PSNR; docs/benchmarks.md, "Borders").
    ``outscale``: output size as a multiple of the input size, any positive number: the
    model's output is resized to round(outscale x input size) with an antialiased bicubic
    filter (``None``: the model's scale).
    """

    def __init__(self, model, *, device: str = "auto", precision: str = "auto",
                 tile: int | None = None, tile_pad: int | None = None, tile_batch: int = 1,
                 alpha: str = "bicubic", optimise: bool = True, reuse_memory: bool = True,
                 kernels: str = "auto", border: str = DEFAULT_BORDER,
                 border_pad: int | None = None, outscale: float | None = None):
        try:
            self.device = resolve_device(device)
        except ValueError as e:
            raise SrganError(str(e)) from None
        _check_options(precision=precision, kernels=kernels, border=border, outscale=outscale,
                       alpha=alpha)
        if reuse_memory and self.device.type == "cpu":
            keep_freed_memory()
        self.model = model
        self._set_precision(precision)
        self.optimise = optimise
        self.prepared = model.prepare(self.device, self.precision, optimise=optimise,
                                      kernels=kernels)
        self.net = self.prepared.net
        self.kernels, self.kernels_note = self.prepared.kernels, self.prepared.kernels_note
        self.tile_pad = model.tile_pad if tile_pad is None else tile_pad
        self.border = border
        self.border_pad = border_width(border, model.tile_pad, border_pad)
        self.tile = tile
        self.tile_batch = max(1, tile_batch)
        self.alpha = alpha
        self.outscale = None if outscale is None or outscale == self.scale else float(outscale)

    def _set_precision(self, precision: str) -> None:
        """:attr:`precision` (``auto``: the device's default, or fp32 where the model does
        not run in it) and :attr:`auto_precision`; a precision the model does not run in is
        refused."""
        m = self.model
        if precision != "auto" and precision not in m.precisions:
            raise SrganError(f"{m.path or 'the model'}: {m.arch} runs in "
                             f"{', '.join(m.precisions)}, not {precision}")
        self.precision = default_precision(self.device) if precision == "auto" else precision
        if self.precision not in m.precisions:
            self.precision = "fp32"
        self.auto_precision = precision == "auto"

    @property
    def scale(self) -> int:
        return self.model.scale

    def precision_for(self, bits: int) -> str:
        """The precision an image of ``bits`` bits per channel runs in: with ``auto``,
        16-bit images run in fp32 (bf16 keeps 8 significant bits, fp16 11: both would
        truncate a 16-bit image), others in :attr:`precision`."""
        if bits > 8 and self.auto_precision:
            return "fp32"
        return self.precision

    def tile_for(self, h: int, w: int, precision: str | None = None) -> int:
        """The tile size a call will start with for an h x w LR image."""
        if self.tile is not None:
            return self.tile
        h, w = h + 2 * self.border_pad, w + 2 * self.border_pad
        vb = self._value_bytes(precision or self.precision)
        if self.prepared.activation_bytes(h, w, vb) <= tile_budget(self.device):
            return 0  # the whole image fits: no tiles, no recomputed overlap
        return auto_tile(self.prepared, self.device, self.tile_pad, vb)

    def _value_bytes(self, precision: str | None = None) -> int:
        if autocast_dtype(precision or self.precision, self.device) is not None:
            return 2
        return value_bytes(self.kernels) or 4  # the fused fp32 kernels plan with 2

    def _fp32(self, x: torch.Tensor) -> torch.Tensor:
        """The network in fp32 on ``x``, in sub-tiles when a tile sized for 2-byte values
        would not fit the budget at 4 bytes (the redo of a non-finite reduced-precision
        tile). Sub-tiles carry the full receptive-field context, so the result is the same."""
        def run(t: torch.Tensor) -> torch.Tensor:
            return self.net(t.contiguous(memory_format=torch.channels_last)).float()

        h, w = x.shape[2], x.shape[3]
        if (self.tile is not None or not self.prepared.sized_by_value_bytes
                or self.prepared.activation_bytes(h, w) <= tile_budget(self.device)):
            return run(x)
        side = auto_tile(self.prepared, self.device, self.tile_pad)
        return run_tiled(run, x, self.scale, side, self.tile_pad, **self._tiling())

    def _tiling(self) -> dict:
        """How tiles are cut for this network: exactly (a known receptive radius), or
        blended over ``tile_pad`` (:func:`srgan_cli.inference.tiling.run_tiled`), with the input
        sizes it accepts."""
        return {"blend": self.model.blend_tiles, "size": self.model.size_rule()}

    # ----------------------------------------------------------------- tensors

    def _forward_fn(self, retries: list[int],
                    precision: str | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
        dtype = autocast_dtype(precision or self.precision, self.device)

        def forward(x: torch.Tensor) -> torch.Tensor:
            x = x.contiguous(memory_format=torch.channels_last)
            if dtype is None:
                return self.net(x).float()
            with torch.autocast(self.device.type, dtype=dtype):
                y = self.net(x)
            y = y.float()
            # NaN/Inf anywhere makes the sum non-finite (a sum that merely overflows only
            # costs a needless fp32 redo); 25x faster than isfinite(y).all() on big tiles.
            if not bool(torch.isfinite(y.sum())):
                retries[0] += 1
                y = self._fp32(x)
            return y

        return forward

    @torch.inference_mode()
    def _run(self, x: torch.Tensor, on_tile: TileCallback | None,
             on_event: EventCallback | None, store=None,
             precision: str | None = None) -> tuple[torch.Tensor | None, int, int]:
        """(SR in [-1,1] on the CPU or None with ``store``, tile used, fp32 retries).

        On a CUDA out-of-memory error the tile is halved and the whole image redone.
        """
        x = x.to(self.device, torch.float32)
        tile = self.tile_for(x.shape[2], x.shape[3], precision)
        while True:
            retries = [0]
            try:
                y = run_tiled(self._forward_fn(retries, precision), x, self.scale, tile,
                              self.tile_pad, on_tile=on_tile, batch=self.tile_batch,
                              store=store, margin=self.border_pad, mirror=self.border,
                              **self._tiling())
                return (None if y is None else y.cpu()), tile, retries[0]
            except torch.OutOfMemoryError:
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                tile = (tile or max(x.shape[2], x.shape[3])) // 2
                if tile < MIN_TILE:
                    raise SrganError(f"out of memory on {self.device} even with "
                                     f"{MIN_TILE}-pixel tiles") from None
                if on_event:
                    on_event(f"out of memory on {self.device}; retrying with --tile {tile}")

    def upscale_tensor(self, x: torch.Tensor, on_tile: TileCallback | None = None) -> torch.Tensor:
        """LR RGB batch (N, 3, H, W) in [0,1] -> SR (N, 3, sH, sW) in [0,1], on the CPU."""
        y, _, _ = self._run(x, on_tile, None)
        return to_unit_range(y, self.model.output_range)

    # ----------------------------------------------------------------- images

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """(width, height) of the output for an input of ``size`` (width, height)."""
        w, h = size
        if self.outscale is None:
            return w * self.scale, h * self.scale
        return max(1, round(w * self.outscale)), max(1, round(h * self.outscale))

    def check_output_size(self, src: str | os.PathLike, size: tuple[int, int],
                          max_pixels: int = imaging.DEFAULT_MAX_PIXELS) -> None:
        """Refuse, before any model work, an output larger than the model's output for the
        largest input ``max_pixels`` allows (0: no limit but the encoders')."""
        w, h = self.output_size(size)
        limit = max_pixels * self.scale ** 2
        if max(w, h) > MAX_OUTPUT_SIDE or (max_pixels and w * h > limit):
            raise ImageError(f"{src}: the output would be {w}x{h} pixels ({w * h / 1e6:.4g} MP), "
                             + (f"more than --max-pixels {max_pixels} x {self.scale}x"
                                f"{self.scale} allows" if max_pixels else "too large to write")
                             + "; use a smaller --outscale")

    def upscale_decoded(self, d: imaging.Decoded, on_tile: TileCallback | None = None,
                        on_event: EventCallback | None = None) -> tuple[np.ndarray, int, int]:
        """Upscale a decoded image into (H, W, C) uint8/uint16 planes (C: L, LA, RGB, RGBA),
        resized to ``outscale`` x the input size when set. Returns (planes, tile used, fp32
        retries); see :meth:`_model_pass`."""
        self.check_output_size("image", d.size, max_pixels=0)
        planes, tile, retries = self._model_pass(d, on_tile, on_event)
        if self.outscale is not None:
            planes = resize_planes(planes, self.output_size(d.size))
        return planes, tile, retries

    def _model_pass(self, d: imaging.Decoded, on_tile: TileCallback | None = None,
                    on_event: EventCallback | None = None) -> tuple[np.ndarray, int, int]:
        """Upscale a decoded image into (H, W, C) uint8/uint16 planes (C: L, LA, RGB, RGBA).

        Each tile is quantised as it is produced, so no float copy of the full output is
        ever held. After a large output on the CPU (:meth:`_large_output`) the memory malloc
        kept for the activations is handed back, so encoding the image does not stack on
        it. Returns (planes, tile used, fp32 retries).
        """
        s = self.scale
        h, w = d.rgb.shape[:2]
        n_color = 1 if d.mode in ("L", "LA") else 3
        n_alpha = 0 if d.alpha is None else 1
        peak = 65535 if d.bits == 16 else 255
        planes = np.empty((h * s, w * s, n_color + n_alpha), np.uint16 if d.bits == 16 else np.uint8)
        precision = self.precision_for(d.bits)
        lo, hi = out_range = self.model.output_range
        gain = peak / (hi - lo)

        def quantise(y: torch.Tensor, gray: bool) -> np.ndarray:
            v = y[0].permute(1, 2, 0).float()  # HWC; contiguous when y is channels_last
            if gray:  # gray went through the model as R = G = B
                v = to_unit_range(v, out_range).mean(2, keepdim=True).mul_(peak)
            else:  # round(clamp((v - lo) / (hi - lo), 0, 1) * peak), in two passes
                v = v.mul(gain).add_(-lo * gain).clamp_(0.0, peak)
            return v.add_(0.5).to(torch.uint8 if peak == 255 else torch.int32).cpu().numpy()

        def store_color(t, y):
            planes[t.y0 * s : t.y1 * s, t.x0 * s : t.x1 * s, :n_color] = quantise(y, n_color == 1)

        def store_alpha(t, y):
            planes[t.y0 * s : t.y1 * s, t.x0 * s : t.x1 * s, n_color:] = quantise(y, True)

        x = torch.from_numpy(d.rgb).permute(2, 0, 1)[None]
        _, tile, retries = self._run(x, on_tile, on_event, store_color, precision)
        if d.alpha is not None:
            a = torch.from_numpy(d.alpha)[None, None]
            if self.alpha == "model":
                _, _, r2 = self._run(a.expand(1, 3, -1, -1), None, on_event, store_alpha,
                                     precision)
                retries += r2
            else:
                up = F.interpolate(a, scale_factor=s, mode="bicubic", align_corners=False)
                planes[..., n_color] = (up[0, 0].clamp_(0, 1).mul_(peak).add_(0.5)
                                        .to(torch.int32).numpy())
        if self._large_output(planes):
            release_freed_memory()
        return planes, tile, retries

    def _large_output(self, planes: np.ndarray) -> bool:
        """A CPU output of ``TRIM_AFTER_BYTES`` or more: its activations' memory goes back
        before encoding, and in a folder it is written before the next image starts."""
        return self.device.type == "cpu" and planes.nbytes >= TRIM_AFTER_BYTES

    def upscale_image(self, im: Image.Image, on_tile: TileCallback | None = None) -> Image.Image:
        """Upscale a PIL image; the result keeps L / LA / RGB / RGBA (8 bits; 16-bit gray
        stays I;16)."""
        planes, _, _ = self.upscale_decoded(imaging.decode(im), on_tile)
        return imaging.to_pil(planes)



def _check_options(*, precision: str, kernels: str, border: str, outscale: float | None,
                   alpha: str) -> None:
    """Refuse an :class:`Upscaler` option value it does not know."""
    if precision not in PRECISIONS:
        raise SrganError(f"unknown precision {precision!r} ({', '.join(PRECISIONS)})")
    if kernels not in KERNELS:
        raise SrganError(f"unknown kernels {kernels!r} ({', '.join(KERNELS)})")
    if border not in BORDERS:
        raise SrganError(f"unknown border {border!r} ({', '.join(BORDERS)})")
    if outscale is not None and not (outscale > 0 and math.isfinite(outscale)):
        raise SrganError(f"outscale must be a positive number, got {outscale!r}")
    if alpha not in ("bicubic", "model"):
        raise SrganError(f"unknown alpha mode {alpha!r} (bicubic, model)")




def resize_planes(planes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, C) uint8/uint16 planes resized to ``size`` (width, height) with an
    antialiased bicubic filter (a low-pass filter scaled to the reduction when
    shrinking), rounded back to the same type."""
    w, h = size
    if (planes.shape[1], planes.shape[0]) == (w, h):
        return planes
    peak = 65535 if planes.dtype == np.uint16 else 255
    x = torch.from_numpy(planes.astype(np.float32)).permute(2, 0, 1)[None]
    y = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False, antialias=True)
    y = y[0].permute(1, 2, 0).clamp_(0, peak).add_(0.5).to(torch.int32).numpy()
    return y.astype(planes.dtype)




__all__ = ["Runner", "auto_tile", "available_memory", "resize_planes", "tile_budget"]
