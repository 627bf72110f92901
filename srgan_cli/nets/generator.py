"""The SRResNet / SRGAN generator of Ledig et al. (CVPR 2017), Figure 4, as torch modules;
its spec and numbers are in :mod:`srgan_cli.nets.srresnet_spec`, its facts in
:mod:`srgan_cli.arch.srresnet`.

Layout (names are the state-dict prefixes)::

    head      9x9 conv, 3 -> C maps, PReLU
    body.i    B residual blocks: 3x3 conv, BN, PReLU, 3x3 conv, BN, + identity
    fuse      3x3 conv, BN, + skip from the head's output
    up.j      log2(scale) sub-pixel stages: 3x3 conv C -> 4C, PixelShuffle(2), PReLU
    tail      9x9 conv, C -> 3

Value ranges: the input (LR) is RGB in [0, 1]; the output lives in [-1, 1]
(the paper trains against HR scaled to [-1, 1]). ``SRResNet.forward`` returns the
raw [-1, 1] prediction; use :func:`to_unit_range` to map it back to [0, 1].
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from srgan_cli.nets.delattice import Delattice

# The spec and the layout's numbers (no torch; the architecture reads them too).
from srgan_cli.nets.srresnet_spec import INPUT_RANGE, OUTPUT_RANGE, GeneratorSpec


class ResidualBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.act = nn.PReLU(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))


class Upsample(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(width, width * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.act = nn.PReLU(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


class Head(nn.Module):
    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, width, 9, padding=4)
        self.act = nn.PReLU(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class Fuse(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, padding=1)
        self.bn = nn.BatchNorm2d(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class SRResNet(nn.Module):
    """Generator network. ``forward`` maps LR in [0,1] to SR in [-1,1]. ``inference``: the
    rewrites of an inference copy (:class:`~srgan_cli.inference.rewrite.InferenceOptions`),
    None for the network as trained."""

    inference = None

    def __init__(self, spec: GeneratorSpec | None = None) -> None:
        super().__init__()
        self.spec = spec or GeneratorSpec()
        c = self.spec.width
        self.head = Head(self.spec.channels, c)
        self.body = nn.Sequential(*[ResidualBlock(c) for _ in range(self.spec.blocks)])
        self.fuse = Fuse(c)
        self.up = nn.Sequential(*[Upsample(c) for _ in range(self.spec.up_stages)])
        self.tail = nn.Conv2d(c, self.spec.channels, 9, padding=4)
        # the lattice-removal output filter (no weights), with spec.delattice
        self.post = (Delattice(self.spec.delattice, self.spec.scale, OUTPUT_RANGE)
                     if self.spec.delattice else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        y = self.fuse(self.body(h)) + h
        y = self.tail(self.up(y))
        return y if self.post is None else self.post(x, y)


def to_unit_range(y: torch.Tensor,
                  output_range: tuple[float, float] = OUTPUT_RANGE) -> torch.Tensor:
    """Map a network's output from ``output_range`` (default ours, [-1, 1]) to [0, 1],
    clamped."""
    lo, hi = output_range
    return ((y - lo) * (1.0 / (hi - lo))).clamp_(0.0, 1.0)


def count_parameters(model: nn.Module) -> int:
    """Values of every parameter of ``model`` (a built network: the ground truth)."""
    return sum(p.numel() for p in model.parameters())


__all__ = ["GeneratorSpec", "INPUT_RANGE", "OUTPUT_RANGE", "SRResNet", "TIE_MODES",
           "count_parameters", "tie_phases", "to_unit_range"]


TIE_MODES = ("off", "dc", "resize", "mixed")


@torch.no_grad()
def tie_phases(model: nn.Module, mode: str = "dc") -> nn.Module:
    """Project every sub-pixel stage of ``model`` (in place) onto a subspace of convolutions
    whose four phases cannot drift apart; returns ``model``.

    ``dc``: the convolutions that map a constant input to a constant output: the four
    phases of each output map get the same bias and, for each input map, the same sum of
    taps (a phase's excess is taken off its taps evenly: the least-squares projection). A
    generator so tied cannot paint a pattern locked to the LR grid on a flat area.

    ``resize``: exactly resize-convolution (nearest x2, then one 3x3 convolution at the
    higher resolution; Odena et al. 2016, as ESRGAN upsamples) written as a sub-pixel
    convolution: each phase's 3x3 LR filter is a sum of the taps of one shared 3x3 kernel
    (phase 0 of an axis sees offsets -1 | 0 and +1 merged, phase 1 sees -1 and 0 merged |
    +1), one bias: the least-squares kernel, so the projection is orthogonal and
    idempotent. A subset of ``dc``; the weights keep the paper's layout, so every inference
    path runs them as they are.

    ``mixed``: ``resize`` on the first (LR to 2x) stage, ``dc`` on the later ones, whose
    phases make only the finest (2-px) part of the 4-px lattice.
    """
    if mode not in TIE_MODES:
        raise ValueError(f"unknown phase tie {mode!r} ({', '.join(TIE_MODES)})")
    if mode == "off":
        return model
    stages = [m for m in model.modules() if isinstance(m, Upsample)]
    for k, module in enumerate(stages):
        conv, r = module.conv, module.shuffle.upscale_factor
        w = conv.weight  # (C*r*r, C_in, k, k); output map c*r*r + phase
        co, ci, kh, kw = w.shape
        resize = mode == "resize" or (mode == "mixed" and k == 0)
        if resize and (r, kh, kw) == (2, 3, 3):
            wp = w.view(co // 4, 4, ci, 9).transpose(1, 2).reshape(co // 4, ci, 36)
            # the shared 3x3 kernel that fits best (least squares), then its sub-pixel form
            fitted = (wp.double() @ _resize_projection().to(w.device).T).to(w.dtype)
            fitted = fitted.view(co // 4, ci, 4, 9).transpose(1, 2)
            w.copy_(fitted.reshape(co, ci, kh, kw))
        else:
            wp = w.view(co // (r * r), r * r, ci, kh * kw)
            sums = wp.sum(-1, keepdim=True)
            wp.sub_((sums - sums.mean(1, keepdim=True)) / (kh * kw))
        if conv.bias is not None:
            b = conv.bias.view(co // (r * r), r * r)
            b.copy_(b.mean(1, keepdim=True).expand_as(b))
    return model


@functools.cache
def _resize_projection() -> torch.Tensor:
    """(36, 36) orthogonal projection onto the sub-pixel forms of resize-convolutions
    (computed once: ``tie_phases`` runs after every training step)."""
    merge = _resize_merge()
    return merge @ torch.linalg.pinv(merge)


def _resize_merge() -> torch.Tensor:
    """(phase x LR tap, kernel tap) 0/1 matrix, float64: which taps of the 3x3 kernel that
    follows a nearest x2 upsampling fall on which tap of each phase's 3x3 LR filter."""
    rows = ((0, 1, 1), (1, 1, 2))  # kernel offset index -> LR offset index, per phase
    m = torch.zeros(36, 9, dtype=torch.float64)
    for a in range(2):
        for b in range(2):
            for ky in range(3):
                for kx in range(3):
                    m[(a * 2 + b) * 9 + rows[a][ky] * 3 + rows[b][kx], ky * 3 + kx] = 1
    return m
