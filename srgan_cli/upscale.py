"""The ``Upscaler`` API: load a generator once, upscale many images.

An instance holds only its configuration and the loaded model; nothing about one call
carries into the next. Progress and notices go through callbacks; errors are raised as
:class:`~srgan_cli.errors.SrganError` subclasses, never swallowed.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from srgan_cli import imaging
from srgan_cli.device import (autocast_dtype, default_precision, keep_freed_memory,
                              release_freed_memory, resolve_device)
from srgan_cli.errors import ImageError, SrganError
from srgan_cli.files import remove_temporaries
from srgan_cli.models import default_model, real_model_for, resolve_model
from srgan_cli.nets.generator import to_unit_range
from srgan_cli.tiling import MIRRORS, run_tiled
from srgan_cli.weights import BARE, ModelInfo, load_model

TileCallback = Callable[[int, int], None]
EventCallback = Callable[[str], None]

TRIM_AFTER_BYTES = 256 << 20  # release kept activation memory after outputs this large
CPU_TILE_BUDGET = 1.5e9  # bytes of activations per tile on the CPU (and <= 1/4 of free memory)
MIN_TILE = 16
MAX_OUTPUT_SIDE = 2**31 - 1  # pixels: PNG's limit, and more than any encoder here takes
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
BORDERS = ("zero",) + MIRRORS
DEFAULT_BORDER = "symmetric"  # solid colours and tiny images stay right at the corners
#: LR pixels mirrored around the image by default (capped at the receptive radius): as
#: good as the whole radius on Set5/Set14 and solid colours (8 px left a saturated magenta's
#: corner 4 levels off in fp32), for 10% more work on a 512x512 image instead of 34%
#: (docs/benchmarks.md, "Borders").
MIRROR_PAD = 12
KERNELS = ("auto", "amx", "avx2", "torch")  # srgan_cli.nets.kernel_choice.KERNELS
@dataclass(frozen=True)
class UpscaleResult:
    source: Path | None
    output: Path | None
    in_size: tuple[int, int]
    out_size: tuple[int, int]
    tile: int  # the tile size actually used (0 = whole image)
    fp32_retries: int  # tiles recomputed in fp32 after a non-finite reduced-precision result


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


def activation_bytes_per_px(info: ModelInfo, banded: bool = False, value_bytes: int = 4) -> int:
    """Estimated peak activation bytes per LR pixel of one forward pass, as the model's
    descriptor declares it (:class:`~srgan_cli.arch.ActivationMemory`): the network as
    built, or (``banded``) its inference form with the largest stage in row bands, at
    ``value_bytes`` per value (2 for bf16/fp16, 4 for fp32)."""
    return info.descriptor.activation_bytes_per_px(banded, value_bytes)


def activation_bytes(info: ModelInfo, h: int, w: int, banded: bool = False,
                     value_bytes: int = 4) -> float:
    """Estimated peak activation bytes of one forward pass over an h x w LR tile."""
    return (h * w * activation_bytes_per_px(info, banded, value_bytes)
            + info.descriptor.memory.fixed_bytes(banded))


def tile_budget(device: torch.device) -> float:
    free = available_memory(device)
    return 0.5 * free if device.type == "cuda" else min(0.25 * free, CPU_TILE_BUDGET)


def auto_tile(info: ModelInfo, device: torch.device, pad: int, banded: bool = False,
              value_bytes: int = 4) -> int:
    """Largest tile (LR px, padding included in the memory count) that fits the budget."""
    room = tile_budget(device) - info.descriptor.memory.fixed_bytes(banded)
    per_px = activation_bytes_per_px(info, banded, value_bytes)
    side = int(math.sqrt(max(room, 0) / per_px)) - 2 * pad
    return max(side, MIN_TILE)


class Upscaler:
    """Upscale images with an SRResNet/SRGAN generator.

    ``precision``: ``auto`` (bf16 on CPUs with AMX/AVX512-BF16, fp32 on other CPUs and
    MPS, fp16 on CUDA), ``fp32``, ``bf16`` or ``fp16``; reduced precision runs under
    autocast, and a tile with NaN/Inf in its output is recomputed in fp32. With ``auto``,
    16-bit images run in fp32 (:meth:`precision_for`).
    ``optimise``: run an exact inference rewrite of the generator (BatchNorm folded into
    the convolutions, the last convolution moved before the last pixel shuffle; on the CPU
    also split into row and column passes, with the last stage run in row bands; see
    :mod:`srgan_cli.nets.inference`); ``False`` runs the network as trained.
    ``reuse_memory``: on the CPU, let glibc's malloc keep freed activation memory for reuse
    (:func:`srgan_cli.device.keep_freed_memory`; process-wide, memory is not returned to
    the system until exit), which avoids re-faulting hundreds of MB per forward pass.
    ``kernels``: ``auto`` runs the 3x3 convolutions through the fused AMX-BF16 kernels
    (:mod:`srgan_cli.nets.fused`: PReLU, residual adds and pixel shuffles folded into the
    convolutions) where they can run: CPU, bf16, ``optimise``, a CPU with AMX-BF16 and a
    C compiler to build them on first use; on CPUs without AMX, in fp32, the fused AVX2
    fp32 kernels (:mod:`srgan_cli.nets.fused_fp32`); otherwise PyTorch's own operators,
    with the reason in :attr:`kernels_note` (:mod:`srgan_cli.nets.kernel_choice`).
    ``amx`` and ``avx2`` insist (raise if they cannot run); ``torch`` never uses them.
    :attr:`kernels` says which path runs.
    ``tile``: LR pixels per tile, ``None`` = chosen from free memory, ``0`` = whole image.
    ``tile_pad``: context per side (default: the model descriptor's ``tile_pad``, its
    receptive radius, which makes tiling exact).
    ``tile_batch``: same-shaped tiles run together (useful on GPUs).
    ``alpha``: ``bicubic`` (default) or ``model`` for upscaling the alpha channel.
    ``model``: a registered name, ``.safetensors`` path or ``hf://`` URL; ``None`` = the
    registry's default model (:func:`srgan_cli.models.default_model`).
    ``realism``: ``R`` in [0, 1] runs a GAN model blended with the SRResNet it was
    fine-tuned from, ``(1 - R) x parent + R x GAN`` on every weight (:mod:`srgan_cli.realism`;
    1 = the GAN model, 0 = its parent, exactly); the parent is found by the sha256 the GAN
    file records, among the registered models, or given as ``parent`` (a file).
    ``None`` runs ``model`` as it is.
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

    def __init__(self, model: str | os.PathLike | None = None, *, device: str = "auto",
                 precision: str = "auto", tile: int | None = None, tile_pad: int | None = None,
                 tile_batch: int = 1, alpha: str = "bicubic", optimise: bool = True,
                 reuse_memory: bool = True, kernels: str = "auto",
                 realism: float | None = None, parent: str | os.PathLike | None = None,
                 border: str = DEFAULT_BORDER, border_pad: int | None = None,
                 outscale: float | None = None):
        try:
            self.device = resolve_device(device)
        except ValueError as e:
            raise SrganError(str(e)) from None
        _check_options(precision=precision, kernels=kernels, border=border, outscale=outscale,
                       alpha=alpha)
        if reuse_memory and self.device.type == "cpu":
            keep_freed_memory()
        self.model = default_model() if model is None else model
        self.weights_path = resolve_model(self.model)
        net, self.info = load_model(self.weights_path, "cpu")
        d = self.descriptor = self.info.descriptor
        self.realism, self.parent_path = realism, None
        if realism is not None:  # blended before any inference form is built from it
            from srgan_cli.realism import blended

            net, self.parent_path = blended(net, self.weights_path, self.info, realism, parent)
        on_cpu = self.device.type == "cpu"
        self.banded = optimise and on_cpu and d.inference.banded_on_cpu
        if optimise:  # computed on the CPU (ours folds BN in float64)
            net = d.inference_net(net, on_cpu)
        self.optimise = optimise
        self.net = net.to(self.device, memory_format=torch.channels_last)
        self._set_precision(precision)
        self._set_kernels(kernels)
        self.tile_pad = d.tile_pad if tile_pad is None else tile_pad
        self.border = border
        if border == "zero":
            self.border_pad = 0
        else:
            self.border_pad = (min(MIRROR_PAD, d.tile_pad) if border_pad is None
                               else max(0, int(border_pad)))
        self.tile = tile
        self.tile_batch = max(1, tile_batch)
        self.alpha = alpha
        self.outscale = None if outscale is None or outscale == self.scale else float(outscale)

    def _set_precision(self, precision: str) -> None:
        """:attr:`precision` (``auto``: the device's default, or fp32 where the model does
        not run in it) and :attr:`auto_precision`; a precision the model does not run in is
        refused."""
        d = self.descriptor
        if precision != "auto" and precision not in d.precisions:
            raise SrganError(f"{self.weights_path}: {d.arch} runs in "
                             f"{', '.join(d.precisions)}, not {precision}")
        self.precision = default_precision(self.device) if precision == "auto" else precision
        if self.precision not in d.precisions:
            self.precision = "fp32"
        self.auto_precision = precision == "auto"

    def _set_kernels(self, kernels: str) -> None:
        """:attr:`kernels` (``amx``, ``avx2`` or ``torch``) and :attr:`kernels_note`
        (:func:`srgan_cli.nets.kernel_choice.choose`); an insisted path that cannot run is
        an error."""
        from srgan_cli.nets.kernel_choice import Setting, choose

        d = self.descriptor
        setting = Setting(self.device.type, self.precision, self.optimise,
                          d.inference.fused is not None, d.arch)
        try:
            c = choose(self.net, kernels, setting, d)
        except ValueError as e:
            raise SrganError(str(e)) from None
        self.net, self.kernels, self.kernels_note = c.net, c.kernels, c.note

    @property
    def scale(self) -> int:
        return self.descriptor.scale

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
        if activation_bytes(self.info, h, w, self.banded, vb) <= tile_budget(self.device):
            return 0  # the whole image fits: no tiles, no recomputed overlap
        return auto_tile(self.info, self.device, self.tile_pad, self.banded, vb)

    def _value_bytes(self, precision: str | None = None) -> int:
        if autocast_dtype(precision or self.precision, self.device) is not None:
            return 2
        # The fused fp32 path keeps no PyTorch intermediates: its peak (895 MB for a whole
        # 536x536 pass) is under the 2-byte estimate (1197 MB; docs/performance.md).
        return 2 if self.kernels == "avx2" else 4

    def _fp32(self, x: torch.Tensor) -> torch.Tensor:
        """The network in fp32 on ``x``, in sub-tiles when a tile sized for 2-byte values
        would not fit the budget at 4 bytes (the redo of a non-finite reduced-precision
        tile). Sub-tiles carry the full receptive-field context, so the result is the same."""
        def run(t: torch.Tensor) -> torch.Tensor:
            return self.net(t.contiguous(memory_format=torch.channels_last)).float()

        h, w = x.shape[2], x.shape[3]
        if (self.tile is not None or not self.banded
                or activation_bytes(self.info, h, w, True) <= tile_budget(self.device)):
            return run(x)
        side = auto_tile(self.info, self.device, self.tile_pad, True)
        return run_tiled(run, x, self.scale, side, self.tile_pad, **self._tiling())

    def _tiling(self) -> dict:
        """How tiles are cut for this network: exactly (a known receptive radius), or
        blended over ``tile_pad`` (:func:`srgan_cli.tiling.run_tiled`), with the input
        sizes it accepts."""
        d = self.descriptor
        return {"blend": d.blend_tiles, "size": d.size_rule()}

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
        return to_unit_range(y, self.descriptor.output_range)

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
        lo, hi = out_range = self.descriptor.output_range
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
            for note in _notes(src, d, dst, fmt):
                on_event(note)
        planes, tile, retries = self.upscale_decoded(d, on_tile, on_event)
        imaging.write_image(dst, planes, fmt=fmt, quality=quality,
                            info={} if strip_metadata else d.info, png_level=png_level)
        out_size = (planes.shape[1], planes.shape[0])
        return UpscaleResult(src, dst, d.size, out_size, tile, retries)

    def upscale_files(self, jobs: Iterable[FileJob], *, overwrite: bool = False,
                      skip_existing: bool = False, fmt: str | None = None, quality: int = 95,
                      strip_metadata: bool = False,
                      max_pixels: int = imaging.DEFAULT_MAX_PIXELS, png_level: int = imaging.DEFAULT_PNG_LEVEL,
                      on_start: Callable[[Path], None] | None = None,
                      on_tile: TileCallback | None = None,
                      on_event: EventCallback | None = None,
                      overlap: bool = True) -> Iterator[FileOutcome]:
        """Upscale many files; yields one :class:`FileOutcome` per job, in job order.

        With ``overlap`` a reader thread decodes the next image and a writer thread
        encodes and writes the previous one while this thread runs the model on the
        current one (at most one image ahead and one behind). On the CPU, outputs of
        ``TRIM_AFTER_BYTES`` or more are written before the next image starts, so large
        images peak at about the memory of one image (plus the next one's decoded input).
        Errors are per file (``status == "error"``) and never stop the batch: an
        unexpected exception while one file is processed becomes that file's error.
        Each output is written atomically; temporary files that an earlier, killed run
        left beside these outputs are removed first. After a KeyboardInterrupt the jobs
        whose writes are under way are finished and yielded, then it is raised again.
        Whether an output exists is checked before decoding and again just before
        writing, so two jobs with the same output behave as they would one after the
        other. ``on_start``, ``on_tile`` and ``on_event`` are called on this thread.
        """
        if overwrite and skip_existing:
            raise SrganError("--overwrite and --skip-existing contradict each other: use one")
        call = _FilesCall(overwrite=overwrite, skip_existing=skip_existing, fmt=fmt,
                          quality=quality, strip_metadata=strip_metadata,
                          max_pixels=max_pixels, png_level=png_level, on_start=on_start,
                          on_tile=on_tile, on_event=on_event)
        jobs = list(jobs)
        remove_temporaries(job.dst for job in jobs if job.dst is not None)
        if not overlap:
            for job in jobs:
                pending = self._file_job(job, _done(call.read, job), call,
                                         lambda *a: _done(call.write, *a))
                yield _outcome(*pending)
            return
        yield from self._overlapped(jobs, call)

    def _overlapped(self, jobs: list[FileJob], call: _FilesCall) -> Iterator[FileOutcome]:
        """:meth:`upscale_files` with ``overlap``: reads one job ahead on a reader thread,
        writes one job behind on a writer thread (large outputs on this one)."""
        reader = ThreadPoolExecutor(1, thread_name_prefix="srgan-read")
        writer = ThreadPoolExecutor(1, thread_name_prefix="srgan-write")
        try:
            ahead = reader.submit(call.read, jobs[0]) if jobs else None
            queued: deque = deque()  # (job, seconds, result | error | None, write future)

            def submit_write(job: FileJob, planes: np.ndarray, info: dict) -> Future:
                if self._large_output(planes):
                    # A large image is written here, after the earlier writes and before
                    # the next image's activations exist: its encoder's copy must not add
                    # to them (the peak-memory bound of docs/memory.md holds per image).
                    for q in queued:
                        if q[3] is not None:
                            q[3].exception()  # wait; its result is reported in order later
                    return _done(call.write, job, planes, info)
                return writer.submit(call.write, job, planes, info)

            for i, job in enumerate(jobs):
                decoded = ahead
                if i + 1 < len(jobs):  # decode the next image while this one computes
                    ahead = reader.submit(call.read, jobs[i + 1])
                queued.append(self._file_job(job, decoded, call, submit_write))
                # Report finished jobs in order; keep at most one write in flight.
                while queued and (queued[0][3] is None or queued[0][3].done()
                                  or len(queued) > 1):
                    yield _outcome(*queued.popleft())
            while queued:
                yield _outcome(*queued.popleft())
        except KeyboardInterrupt:  # here, or thrown in at a yield by the caller
            reader.shutdown(wait=False, cancel_futures=True)
            while queued:  # the images being written are finished, and reported
                yield _outcome(*queued.popleft())
            raise
        finally:
            reader.shutdown(wait=True, cancel_futures=True)
            writer.shutdown(wait=True, cancel_futures=True)

    def _file_job(self, job: FileJob, decoded: Future, call: _FilesCall, submit_write):
        """Model step of one file job: (job, seconds so far, result | error | None, write)."""
        try:
            d, secs = decoded.result()
            if d is not _SKIP:
                self.check_output_size(job.src, d.size, call.max_pixels)
        except Exception as e:  # noqa: BLE001 - any failure is this file's error
            return job, 0.0, _as_error(job.src, e), None
        if d is _SKIP:
            return job, 0.0, None, None
        if call.on_start:
            call.on_start(job.src)
        if call.on_event:
            for note in _notes(job.src, d, job.dst, call.fmt):
                call.on_event(note)
        t = time.perf_counter()
        try:
            planes, tile, retries = self.upscale_decoded(d, call.on_tile, call.on_event)
        except Exception as e:  # noqa: BLE001 - any failure is this file's error
            return job, secs + time.perf_counter() - t, _as_error(job.src, e), None
        secs += time.perf_counter() - t
        res = UpscaleResult(job.src, job.dst, d.size, (planes.shape[1], planes.shape[0]), tile,
                            retries)
        return job, secs, res, submit_write(job, planes, {} if call.strip_metadata else d.info)


@dataclass(frozen=True)
class FileJob:
    """One input of :meth:`Upscaler.upscale_files`; ``error`` reports a job that could
    not even be planned (e.g. no output name) in its place in the order;
    ``skip_existing`` skips this job when its output exists (as the call's own flag does
    for every job)."""

    src: Path
    dst: Path | None
    error: SrganError | None = None
    skip_existing: bool = False


@dataclass(frozen=True)
class FileOutcome:
    src: Path
    dst: Path | None
    status: str  # "ok", "skipped" or "error"
    result: UpscaleResult | None = None
    error: SrganError | None = None
    seconds: float = 0.0  # this file's decode + model + encode time (they overlap between files)


_SKIP = object()


@dataclass(frozen=True)
class _FilesCall:
    """The options of one :meth:`Upscaler.upscale_files` call: how its files are read
    and written, and its callbacks."""

    overwrite: bool
    skip_existing: bool
    fmt: str | None
    quality: int
    strip_metadata: bool
    max_pixels: int
    png_level: int
    on_start: Callable[[Path], None] | None
    on_tile: TileCallback | None
    on_event: EventCallback | None

    def _existing(self, job: FileJob, exists: bool) -> bool:
        """Whether ``job`` is skipped because its output exists; raises when it exists and
        may be neither skipped nor overwritten. ``exists`` is one look at the disk, so an
        output that appears meanwhile is skipped or refused, never half of each."""
        if exists and (self.skip_existing or job.skip_existing):
            return True
        if exists and not self.overwrite:
            raise SrganError(f"{job.dst}: already exists (use --overwrite)")
        return False

    def read(self, job: FileJob):
        """(decoded image or ``_SKIP``, seconds); raises the job's planned error."""
        t = time.perf_counter()
        if job.error is not None:
            raise job.error
        exists = job.dst.exists()
        if exists and (self.skip_existing or job.skip_existing):
            return _SKIP, 0.0
        imaging.output_format(job.dst, self.fmt)  # fail before the expensive part
        self._existing(job, exists)
        d = imaging.read_image(job.src, max_pixels=self.max_pixels)
        return d, time.perf_counter() - t

    def write(self, job: FileJob, planes: np.ndarray, info: dict):
        """(None or ``_SKIP`` when the output appeared meanwhile, seconds)."""
        t = time.perf_counter()
        if self._existing(job, job.dst.exists()):  # written meanwhile, e.g. by an earlier job
            return _SKIP, 0.0
        imaging.write_image(job.dst, planes, fmt=self.fmt, quality=self.quality, info=info,
                            png_level=self.png_level)
        return None, time.perf_counter() - t


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


def _notes(src: Path, d: imaging.Decoded, dst: Path, fmt: str | None) -> list[str]:
    """Notices about an input that is upscaled, but not all of it."""
    notes = []
    if d.frames > 1:
        notes.append(f"{src}: animated ({d.frames} frames); only the first frame is upscaled")
    out = imaging.output_format(dst, fmt)
    if d.alpha is not None and (out == "JPEG" or (out == "BMP" and d.mode == "LA")):
        notes.append(f"{dst}: {out} has no alpha channel; the transparency of {src} is dropped")
    return notes


def compressed_inputs_note(sources: Iterable[str | os.PathLike], info: ModelInfo,
                           threshold: int = imaging.LOW_JPEG_QUALITY) -> str | None:
    """The notice for a batch whose inputs include JPEGs saved at low quality (estimated
    from their quantisation tables, :func:`srgan_cli.imaging.jpeg_quality`, below
    ``threshold``), whose compression blocks a model trained on clean LR magnifies: the
    first such file, how many there are, and the registered model trained for real-world
    photos to use instead (:func:`srgan_cli.models.real_model_for`). None when there is no
    such input, when no registered model was trained with a real degradation (nothing to
    suggest), when ``info``'s model itself was, or when it is a community model (a file
    without srgan's metadata, which may be one). Only files named as JPEGs are opened,
    and only their headers; this is done once for the whole batch."""
    if info.metadata.get("degradation", "clean") != "clean" or info.stage == BARE:
        return None  # a real model already, or a community model: how it was trained is unknown
    try:
        model = real_model_for(info.stage)
    except SrganError:  # an unreadable registry is not this notice's to report
        return None
    if model is None:
        return None
    low = []
    for src in map(Path, sources):
        q = imaging.file_jpeg_quality(src) if src.suffix.lower() in imaging.JPEG_SUFFIXES else None
        if q is not None and q < threshold:
            low.append((src, q))
    if not low:
        return None
    src, q = low[0]
    which = (f"{src}: saved as JPEG at quality ~{q}" if len(low) == 1 else
             f"{len(low)} inputs were saved as JPEG below quality {threshold} ({src}: ~{q})")
    return (f"{which}, whose blocks this model magnifies; the {model.name!r} model is "
            f"trained for compressed photos (--model {model.name})")


def _done(fn, *args) -> Future:
    """Run ``fn`` now; its result or exception in a completed Future."""
    f: Future = Future()
    try:
        f.set_result(fn(*args))
    except BaseException as e:  # noqa: BLE001 - handed on through the Future
        f.set_exception(e)
    return f


def _outcome(job: FileJob, secs: float, res, wrote: Future | None) -> FileOutcome:
    if isinstance(res, SrganError):
        return FileOutcome(job.src, job.dst, "error", error=res, seconds=secs)
    if res is None:
        return FileOutcome(job.src, job.dst, "skipped")
    try:
        flag, wsecs = wrote.result()
    except Exception as e:  # noqa: BLE001 - any failure is this file's error
        return FileOutcome(job.src, job.dst, "error", error=_as_error(job.src, e), seconds=secs)
    if flag is _SKIP:
        return FileOutcome(job.src, job.dst, "skipped")
    return FileOutcome(job.src, job.dst, "ok", result=res, seconds=secs + wsecs)


def _as_error(src: Path, e: Exception) -> SrganError:
    """``e`` as one file's one-line error: our own errors as they are, anything else
    (a bug, a library's unexpected exception) named by its type."""
    if isinstance(e, SrganError):
        return e
    text = " ".join(str(e).split())
    return ImageError(f"{src}: unexpected {type(e).__name__}" + (f": {text}" if text else ""))


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


def describe(info: ModelInfo) -> str:
    d = info.descriptor
    if info.stage == BARE:  # a file without our metadata: its architecture's words
        return f"{d.summary}" if d.arch == "spandrel" else f"{d.arch} x{d.scale} ({d.summary})"
    return f"{info.stage} x{d.scale} ({d.summary}), {info.iterations or '?'} iterations"


__all__ = ["Upscaler", "UpscaleResult", "describe", "auto_tile", "compressed_inputs_note"]
