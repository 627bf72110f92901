"""Real-world degradations for training pairs: Real-ESRGAN's first-order model, per crop.

``srgan train --degradation real`` makes each crop's LR as Real-ESRGAN's first degradation
stage does (Wang et al., 2021), in its fixed order, with its ranges by default:

1. **blur** the HR crop (probability ``blur_prob``) with a Gaussian kernel: isotropic, or
   anisotropic (probability ``blur_aniso_prob``: two sigmas drawn separately, rotated by a
   uniform angle), each sigma uniform in ``blur_sigma`` HR pixels; reflect padding;
2. **downscale** x4 with a kernel drawn uniformly from ``resize_modes`` (``bicubic`` and
   ``bilinear`` antialiased, as the clean pipeline's bicubic; ``area``: the box filter);
3. **noise** (probability ``noise_prob``): Gaussian (probability ``noise_gaussian_prob``,
   sigma uniform in ``noise_sigma`` on the 0-255 scale) or Poisson (the image's
   shot noise at 255 counts per unit, times a scale uniform in ``noise_poisson_scale``);
   the same noise in the three channels with probability ``noise_gray_prob``;
4. values clamped to [0, 1] and rounded to 8 bits, then **JPEG** (probability
   ``jpeg_prob``; Pillow, 4:2:0, quality uniform in ``jpeg_quality``). The JPEG's block
   grid starts at the crop's corner, unless (probability ``jpeg_shift_prob``) the crop is
   first reflect-padded by 0-15 LR pixels at the top and left, each drawn uniformly, and
   cropped back after decoding: the 8-px blocks and 16-px chroma blocks then fall at any
   phase against the crop's borders, as they do for a window inside a photo. (A network
   whose receptive field spans the crop can tell where its borders are and learn where
   the blocks lie from them.)
5. a **second pass** (probability ``second_prob``; off by default), after Real-ESRGAN's
   second-order model but at the LR size: the degraded LR is blurred again (probability
   ``second_blur_prob``, sigma uniform in ``second_blur_sigma`` *LR* pixels, isotropic or
   anisotropic as above), gets noise again (the first pass's probabilities and ranges) and
   a second JPEG (``jpeg_prob``, ``jpeg_quality``), as a photo shared, edited and
   saved again.

With probability ``clean_prob`` a crop skips all of it and gets the clean pipeline's
antialiased bicubic LR (no rounding). Unlike Real-ESRGAN there is no random intermediate
resize (the scale is the model's) and the second pass has no resize of its own.

Every random draw comes from the generator passed in (the run's data stream, which
checkpoints save), in a fixed count per batch, so a run's degraded crops are reproducible
and a resumed run continues with the same ones. The blur, resize and noise arithmetic
run on the crops' device (the noise is drawn on the CPU), the JPEG on the CPU; pixels may
differ across devices by float rounding.
"""

from __future__ import annotations

import dataclasses
import io
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from srgan_cli.errors import SrganError
from srgan_cli.train.data import downscale

RESIZE_MODES = ("bicubic", "bilinear", "area")
PIPELINES = ("clean", "real")
# uniform draws per crop: clean, blur, aniso, sigma x, sigma y, angle, resize mode, noise,
# gaussian, gray, noise level, jpeg, quality
_DRAWS = 13
JPEG_SHIFTS = 16  # block grid offsets 0..15: the 4:2:0 chroma blocks are 16 px


class DegradationError(SrganError):
    """A degradation spec cannot be parsed or is out of range."""


@dataclass(frozen=True)
class DegradationSpec:
    """The ranges and probabilities of ``--degradation real`` (Real-ESRGAN's first stage)."""

    blur_prob: float = 1.0
    blur_sigma: tuple[float, float] = (0.2, 3.0)  # HR pixels
    blur_aniso_prob: float = 0.35
    resize_modes: tuple[str, ...] = RESIZE_MODES
    noise_prob: float = 1.0
    noise_gaussian_prob: float = 0.5  # else Poisson
    noise_sigma: tuple[float, float] = (1.0, 30.0)  # 0-255 scale
    noise_poisson_scale: tuple[float, float] = (0.05, 3.0)
    noise_gray_prob: float = 0.4
    jpeg_prob: float = 1.0
    jpeg_quality: tuple[float, float] = (30.0, 95.0)
    jpeg_shift_prob: float = 0.0
    clean_prob: float = 0.0
    second_prob: float = 0.0
    second_blur_prob: float = 0.8
    second_blur_sigma: tuple[float, float] = (0.2, 1.0)  # LR pixels

    def second_pass(self) -> "DegradationSpec":
        """The spec the second pass draws from: its own blur, the rest as the first's
        (no clean crops, no block-grid shift, no further pass)."""
        return dataclasses.replace(self, blur_prob=self.second_blur_prob,
                                   blur_sigma=self.second_blur_sigma, clean_prob=0.0,
                                   jpeg_shift_prob=0.0, second_prob=0.0)

    def check(self) -> "DegradationSpec":
        """This spec, or :class:`DegradationError` naming the first value out of range."""
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name.endswith("_prob") and not 0.0 <= v <= 1.0:
                raise DegradationError(f"{f.name} = {v:g}: a probability must be in [0, 1]")
            if isinstance(v, tuple) and f.name != "resize_modes" and not 0 <= v[0] <= v[1]:
                raise DegradationError(f"{f.name} = {v[0]:g}:{v[1]:g}: expected 0 <= low <= high")
        for name in ("blur_sigma", "second_blur_sigma"):
            if getattr(self, name)[0] <= 0:
                raise DegradationError(f"{name}: sigmas must be above 0")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise DegradationError("jpeg_quality: qualities must be in 1..100")
        bad = [m for m in self.resize_modes if m not in RESIZE_MODES]
        if bad or not self.resize_modes:
            raise DegradationError(f"resize_modes: {'+'.join(bad) or 'none given'} "
                                   f"(choose from {'+'.join(RESIZE_MODES)})")
        return self


def parse_degradation(text: str) -> DegradationSpec | None:
    """``'clean'`` -> None (the paper's bicubic pipeline); ``'real'`` -> the defaults;
    ``'real,KEY=VALUE,...'`` -> the defaults with those fields changed. Ranges are
    ``LOW:HIGH`` (one number: a fixed value), ``resize_modes`` is ``bicubic+area``, the rest
    single numbers. Raises :class:`DegradationError` with one line saying what is wrong."""
    name, *items = [t.strip() for t in text.split(",")]
    if name not in PIPELINES:
        raise DegradationError(f"{text!r}: starts with {name!r}; expected "
                               f"{' or '.join(PIPELINES)} (then ,KEY=VALUE...)")
    if name == "clean":
        if items:
            raise DegradationError(f"{text!r}: 'clean' takes no settings")
        return None
    fields = {f.name: f for f in dataclasses.fields(DegradationSpec)}
    changes: dict[str, object] = {}
    for item in items:
        key, sep, value = (s.strip() for s in item.partition("="))
        if not sep or key not in fields:
            raise DegradationError(f"{item!r}: expected KEY=VALUE with KEY one of "
                                   f"{', '.join(fields)}")
        changes[key] = _value(key, value, fields[key].default)
    return dataclasses.replace(DegradationSpec(), **changes).check()


def _value(key: str, value: str, default: object) -> object:
    """One setting's value, parsed like its default."""
    try:
        if key == "resize_modes":
            return tuple(m.strip() for m in value.split("+") if m.strip())
        if isinstance(default, tuple):
            lo, _, hi = value.partition(":")
            return (float(lo), float(hi or lo))
        return float(value)
    except ValueError:
        raise DegradationError(f"{key}={value!r}: expected "
                               + ("LOW:HIGH or one number" if isinstance(default, tuple)
                                  else "a number")) from None


def format_degradation(spec: DegradationSpec | None) -> str:
    """The spec as the text :func:`parse_degradation` reads (only what differs from
    the defaults)."""
    if spec is None:
        return "clean"
    parts = ["real"]
    for f in dataclasses.fields(spec):
        v = getattr(spec, f.name)
        if v == f.default:
            continue
        if f.name == "resize_modes":
            parts.append(f"{f.name}={'+'.join(v)}")
        elif isinstance(v, tuple):
            parts.append(f"{f.name}={v[0]:g}:{v[1]:g}")
        else:
            parts.append(f"{f.name}={v:g}")
    return ",".join(parts)


# --------------------------------------------------------------------------- primitives


def gaussian_kernels(sigma_x: torch.Tensor, sigma_y: torch.Tensor, theta: torch.Tensor,
                     size: int) -> torch.Tensor:
    """(B, size, size) normalised Gaussian kernels with standard deviations ``sigma_x``
    and ``sigma_y`` (pixels) along axes rotated by ``theta`` (radians)."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    c, s = torch.cos(theta.double()).view(-1, 1, 1), torch.sin(theta.double()).view(-1, 1, 1)
    u, v = c * xx + s * yy, -s * xx + c * yy
    sx, sy = sigma_x.double().view(-1, 1, 1), sigma_y.double().view(-1, 1, 1)
    k = torch.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))
    return (k / k.sum((1, 2), keepdim=True)).float()


def kernel_size(sigma: float) -> int:
    """Odd kernel size holding +-3 sigma (at least 3 taps)."""
    return 2 * max(1, math.ceil(3 * sigma)) + 1


def blur(img: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Each image of a (B, C, H, W) batch convolved with its own (B, k, k) kernel,
    reflect-padded (kernels wider than the image are cut to it), as one grouped
    convolution (on 2 Zen 4 cores 19x19 taps on 16 96x96 crops take 5 ms, an FFT 18-51)."""
    b, c, h, w = img.shape
    k = kernels.shape[-1]
    pad = min(k // 2, h - 1, w - 1)
    if pad < k // 2:
        kernels = kernels[:, k // 2 - pad : k // 2 + pad + 1, k // 2 - pad : k // 2 + pad + 1]
        kernels = kernels / kernels.sum((1, 2), keepdim=True)
    x = F.pad(img, (pad, pad, pad, pad), mode="reflect").reshape(1, b * c, h + 2 * pad,
                                                                 w + 2 * pad)
    weight = kernels.to(img).flip(-1, -2).repeat_interleave(c, 0).unsqueeze(1)
    return F.conv2d(x, weight, groups=b * c).view(b, c, h, w)


def resize(img: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """Resize a float batch with ``mode`` (bicubic and bilinear antialiased; area)."""
    if mode == "area":
        return F.interpolate(img, size=size, mode="area")
    return F.interpolate(img, size=size, mode=mode, antialias=True, align_corners=False)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """A uint8 (H, W, 3) or (H, W) image through a Pillow JPEG at ``quality`` (4:2:0 for
    colour, Pillow's standard tables), decoded again."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=int(quality), subsampling="4:2:0")
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB" if img.ndim == 3 else "L"))


def shifted_jpeg(img: np.ndarray, quality: int, top: int, left: int) -> np.ndarray:
    """:func:`jpeg` of ``img`` reflect-padded by ``top`` rows and ``left`` columns, the
    padding removed again: the block grid starts ``top``, ``left`` pixels before the
    image's corner (edge padding where the image is too small to reflect)."""
    if not top and not left:
        return jpeg(img, quality)
    h, w = img.shape[:2]
    mode = "reflect" if top < h and left < w else "edge"
    pad = ((top, 0), (left, 0)) + ((0, 0),) * (img.ndim - 2)
    return jpeg(np.pad(img, pad, mode=mode), quality)[top:top + h, left:left + w]


def quantize(img: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and round to the 8-bit levels."""
    return img.clamp(0.0, 1.0).mul(255.0).round().div(255.0)


# --------------------------------------------------------------------------- the pipeline


@dataclass
class _Draws:
    """One batch's random choices, each a (B,) tensor (see :meth:`Degrader.draw`)."""

    clean: torch.Tensor  # bool
    blurred: torch.Tensor  # bool
    kernels: torch.Tensor  # (B, k, k); a delta where there is no blur
    mode: torch.Tensor  # index into resize_modes
    noise: torch.Tensor  # bool
    gaussian: torch.Tensor  # bool (else Poisson)
    gray: torch.Tensor  # bool
    level: torch.Tensor  # sigma (0-1 scale) or Poisson scale
    jpeg: torch.Tensor  # bool
    quality: torch.Tensor  # int
    shift: torch.Tensor | None = None  # (B, 2) int: the block grid's offset (top, left)


class Degrader:
    """Makes LR crops from HR crops with a :class:`DegradationSpec`'s random degradations."""

    def __init__(self, spec: DegradationSpec) -> None:
        self.spec = spec.check()
        self.ksize = kernel_size(spec.blur_sigma[1])
        self.second = Degrader(spec.second_pass()) if spec.second_prob > 0 else None

    def draw(self, batch: int, gen: torch.Generator) -> _Draws:
        """The batch's choices: ``_DRAWS`` uniforms per crop from ``gen``, always."""
        s = self.spec
        u = torch.rand(batch, _DRAWS, generator=gen, dtype=torch.float64)

        def between(col, lo_hi):
            return lo_hi[0] + u[:, col] * (lo_hi[1] - lo_hi[0])

        sx = between(3, s.blur_sigma)
        sy = torch.where(u[:, 2] < s.blur_aniso_prob, between(4, s.blur_sigma), sx)
        kernels = gaussian_kernels(sx, sy, (u[:, 5] * 2 - 1) * math.pi, self.ksize)
        delta = torch.zeros_like(kernels[0])
        delta[self.ksize // 2, self.ksize // 2] = 1.0
        blurred = u[:, 1] < s.blur_prob
        kernels = torch.where(blurred.view(-1, 1, 1), kernels, delta)
        gaussian = u[:, 8] < s.noise_gaussian_prob
        level = torch.where(gaussian, between(10, s.noise_sigma) / 255.0,
                            between(10, s.noise_poisson_scale))
        n_modes = len(s.resize_modes)
        shift = None
        if s.jpeg_shift_prob > 0:  # drawn only then: a run without it keeps its stream
            v = torch.rand(batch, 3, generator=gen, dtype=torch.float64)
            shift = torch.where((v[:, :1] < s.jpeg_shift_prob),
                                (v[:, 1:] * JPEG_SHIFTS).long().clamp_(max=JPEG_SHIFTS - 1), 0)
        return _Draws(shift=shift, clean=u[:, 0] < s.clean_prob, blurred=blurred, kernels=kernels,
                      mode=(u[:, 6] * n_modes).long().clamp_(max=n_modes - 1),
                      noise=u[:, 7] < s.noise_prob, gaussian=gaussian,
                      gray=u[:, 9] < s.noise_gray_prob, level=level,
                      jpeg=u[:, 11] < s.jpeg_prob,
                      quality=between(12, s.jpeg_quality).round().long())

    def __call__(self, hr: torch.Tensor, scale: int, gen: torch.Generator) -> torch.Tensor:
        """LR (B, 3, H/scale, W/scale) in [0, 1] from an HR float batch in [0, 1]; every
        random draw from ``gen`` (a CPU generator)."""
        d = self.draw(hr.shape[0], gen)
        size = (hr.shape[2] // scale, hr.shape[3] // scale)
        x = blur(hr, d.kernels.to(hr.device)) if d.blurred.any() else hr
        lr = torch.empty(hr.shape[0], hr.shape[1], *size, device=hr.device)
        for k, mode in enumerate(self.spec.resize_modes):
            sel = (d.mode == k).nonzero().flatten()
            if sel.numel():
                lr[sel.to(hr.device)] = resize(x[sel.to(hr.device)], size, mode)
        lr = quantize(self._noise(lr, d, gen))
        lr = self._jpeg(lr, d)
        if self.second is not None:  # drawn only then: a run without it keeps its stream
            lr = self.second.again(lr, gen, self.spec.second_prob)
        clean = d.clean.to(hr.device).view(-1, 1, 1, 1)
        return torch.where(clean, downscale(hr, scale), lr) if d.clean.any() else lr

    def again(self, lr: torch.Tensor, gen: torch.Generator, prob: float) -> torch.Tensor:
        """The second pass (this degrader holds :meth:`DegradationSpec.second_pass`) on
        the crops of an LR batch that draw it (probability ``prob``, drawn first): blur,
        noise, 8 bits, JPEG; the others unchanged."""
        chosen = torch.rand(lr.shape[0], generator=gen, dtype=torch.float64)
        d = self.draw(lr.shape[0], gen)
        x = blur(lr, d.kernels.to(lr.device)) if d.blurred.any() else lr
        x = self._jpeg(quantize(self._noise(x, d, gen)), d)
        return torch.where((chosen < prob).to(lr.device).view(-1, 1, 1, 1), x, lr)

    def _noise(self, lr: torch.Tensor, d: _Draws, gen: torch.Generator) -> torch.Tensor:
        """Gaussian or Poisson noise where drawn; a fixed-size Gaussian field is always
        drawn from ``gen``, Poisson counts only for the crops that use them."""
        b, c, h, w = lr.shape
        field = torch.randn(b, c, h, w, generator=gen)
        field = torch.where(d.gray.view(-1, 1, 1, 1), field[:, :1].expand(-1, c, -1, -1), field)
        noise = field * d.level.float().view(-1, 1, 1, 1)
        poisson = (d.noise & ~d.gaussian).nonzero().flatten()
        if poisson.numel():
            x = lr[poisson.to(lr.device)].cpu().clamp(0.0, 1.0)
            gray = d.gray[poisson].view(-1, 1, 1, 1)
            x = torch.where(gray, _luma(x).expand_as(x), x)
            counts = torch.poisson(x * 255.0, generator=gen)
            shot = (counts / 255.0 - x) * d.level[poisson].float().view(-1, 1, 1, 1)
            noise[poisson] = torch.where(gray, shot[:, :1].expand_as(shot), shot)
        noise = torch.where(d.noise.view(-1, 1, 1, 1), noise, torch.zeros(()))
        return lr + noise.to(lr.device)

    def _jpeg(self, lr: torch.Tensor, d: _Draws) -> torch.Tensor:
        """JPEG round trips of the crops drawn for one, on the CPU."""
        idx = d.jpeg.nonzero().flatten().tolist()
        if not idx:
            return lr
        u8 = lr[d.jpeg.nonzero().flatten().to(lr.device)].mul(255.0).round().to(torch.uint8)
        u8 = u8.permute(0, 2, 3, 1).cpu().numpy()
        shifts = d.shift.tolist() if d.shift is not None else [(0, 0)] * len(d.quality)
        out = [shifted_jpeg(u8[j], int(d.quality[i]), *shifts[i]) for j, i in enumerate(idx)]
        back = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float().div(255.0)
        lr = lr.clone()
        lr[d.jpeg.nonzero().flatten().to(lr.device)] = back.to(lr.device)
        return lr


def _luma(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of a (B, 3, H, W) batch in [0, 1], as (B, 1, H, W)."""
    w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)
