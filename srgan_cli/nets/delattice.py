"""Lattice removal: a fixed output filter that takes the 4-px pattern locked to the LR grid
off a sub-pixel generator's output and keeps its texture (weights/README.md, "srgan-delattice").

The residual of the generator's output against the bicubic upscale of its input (which has
no lattice) is split into the scale^2 sub-pixel phases, and each phase's mean over a small
window of LR positions is subtracted from the output. What goes is what varies slowly on
each phase's own grid: the lattice (the phases' means differ) and any slow drift of the
colour away from the input's (their common mean); what stays is the texture and detail
that averages out within the window on every phase.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn


def phase_means(img: torch.Tensor, window: int, period: int = 4) -> torch.Tensor:
    """(N, C, period^2, H/period, W/period): each sub-pixel phase's mean over ``window`` x
    ``window`` positions of its own grid (LR pixels) around every LR position, per channel
    (a box filter with replicated edges) of the multiple-of-``period`` part of ``img``, in
    fp32."""
    n, c, hh, ww = img.shape
    p, h, w = period, hh // period, ww // period
    phases = (img.float()[..., :h * p, :w * p].reshape(n, c, h, p, w, p)
              .permute(0, 1, 3, 5, 2, 4).reshape(n, c * p * p, h, w))
    pad = window // 2
    return F.avg_pool2d(F.pad(phases, (pad, window - 1 - pad, pad, window - 1 - pad),
                              mode="replicate"), window, 1).reshape(n, c, p * p, h, w)


def _at_pixels(per_phase: torch.Tensor, period: int) -> torch.Tensor:
    """``per_phase`` ((N, C, period^2, h, w), as :func:`phase_means` gives it) laid out at
    each phase's pixels: an (N, C, h, period, w, period) view of an (N, C, h * period,
    w * period) image."""
    n, c, _, h, w = per_phase.shape
    return per_phase.view(n, c, period, period, h, w).permute(0, 1, 4, 2, 5, 3)


def _subtract_phases(img: torch.Tensor, per_phase: torch.Tensor, period: int) -> torch.Tensor:
    """``img`` (fp32 copy) minus ``per_phase`` at each phase's pixels; a remainder beyond the
    multiple of ``period`` is kept as it is."""
    n, c, _, h, w = per_phase.shape
    out = img.float().clone()
    out[..., :h * period, :w * period] -= _at_pixels(per_phase, period).reshape(
        n, c, h * period, w * period)
    return out


def remove_phase_offsets(img: torch.Tensor, window: int, period: int = 4) -> torch.Tensor:
    """``img`` (N, C, H, W, any range) without its local sub-pixel phase offsets: per
    channel, each of the ``period``^2 phases' local mean (:func:`phase_means`) minus the
    mean of those means is subtracted. A pattern locked to the LR grid whose amplitude
    changes slowly over ``window`` LR pixels goes; so do the phase offsets natural detail
    has at edges (on an image itself this is a measurement: ``scripts/phase_offsets_removed.py``).
    Only the multiple-of-``period`` part from the top left is changed."""
    local = phase_means(img, window, period)
    return _subtract_phases(img, local - local.mean(2, keepdim=True), period).to(img.dtype)


class Delattice(nn.Module):
    """``forward(x, y)``: the output ``y`` (in ``output_range``) of a x``scale`` network for
    the input ``x`` (in [0, 1]) minus each sub-pixel phase's mean residual against the
    bicubic upscale of ``x`` over ``window`` x ``window`` LR pixels, in fp32 whatever the
    autocast (the result stays fp32): a solid colour comes back exactly, and no pattern
    locked to the LR grid survives the window. Reaches ``window // 2`` LR pixels beyond the
    network's own receptive field (``GeneratorSpec.receptive_radius`` counts it)."""

    def __init__(self, window: int, scale: int,
                 output_range: tuple[float, float] = (-1.0, 1.0)) -> None:
        super().__init__()
        if window < 2:  # a 1-pixel window removes the whole residual: bicubic comes out
            raise ValueError(f"the lattice window must be at least 2 LR pixels, got {window}")
        self.window, self.scale, self.output_range = window, scale, output_range

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # autocast off where it exists (torch < 2.5 has none for MPS, even disabled)
        off = (torch.autocast(y.device.type, enabled=False) if y.device.type in ("cpu", "cuda")
               else contextlib.nullcontext())
        with off:
            lo, hi = self.output_range
            n, c, hh, ww = y.shape
            p, h, w = self.scale, x.shape[-2], x.shape[-1]  # (the output is exactly p x x)
            out = y.float().contiguous()  # fp32: not rounded back to bf16 at the end
            # sized from the input, not by a float scale factor: exports with dynamic sizes
            ref = F.interpolate(x.float(), size=(h * p, w * p), mode="bicubic",
                                align_corners=False)
            local = phase_means(out - ref.mul_(hi - lo).add_(lo), self.window, p)
            del ref  # the filter's copies of the output peak at about five
            # exact multiples: one subtraction into a new tensor, no copy of ``out`` first
            return (out.view(n, c, h, p, w, p) - _at_pixels(local, p)).view(n, c, hh, ww)

    def extra_repr(self) -> str:
        return f"window={self.window}, scale={self.scale}"


__all__ = ["Delattice", "phase_means", "remove_phase_offsets"]
