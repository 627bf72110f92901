"""An inference-only copy of the generator: same function, less work per pixel.

Exact rewrites, applied to a copy (the trained model and training are untouched):

* **BatchNorm folding.** In eval mode ``bn(conv(x)) = conv'(x)`` with
  ``w' = w * g / sqrt(var + eps)`` and ``b' = (b - mean) * g / sqrt(var + eps) + beta``,
  so every BN after a convolution disappears (computed in float64, stored in the
  model's dtype).
* **Sub-pixel tail.** The last stage is ``tail(prelu(shuffle(conv(y))))`` where ``tail``
  is a 9x9 convolution with only 3 output maps at the full output resolution. Matrix
  engines (AMX, tensor cores) compute at least 16 output channels at a time, so 3 of
  them waste most of the work. A convolution after a 2x pixel shuffle equals a
  convolution before it with 4x the input and output maps, followed by the shuffle:
  a 5x5 kernel, 4C -> 12 maps at half the output resolution (the 9x9 taps land on a
  5x5 grid of low-resolution positions for each of the 4 output phases; the remaining
  taps are zeros). The per-channel PReLU commutes with the shuffle when each of its
  weights is repeated for the 4 sub-pixel maps. The full-resolution 64-map tensors
  (the shuffle's and the PReLU's outputs, the largest activations of the network) are
  never built.
* **Split tail.** That 5x5 convolution still has only 12 output maps, and oneDNN's AMX
  kernels run it at a third of their rate. It is computed as a 1x5 convolution into
  5 x 12 maps (one per kernel row; 64 with padding) plus a 5x1 convolution with one-hot
  taps that adds the rows up: 2.2x faster on an AMX CPU (docs/performance.md).
* **Bands.** The last stage (its 3x3 convolution, PReLU and tail) runs in horizontal
  bands of about :data:`BAND_BYTES` per 4C-map tensor, recomputing the rows its kernels
  reach across each band edge. Its 4C-map tensors at twice the input resolution were the
  peak of the whole pass; banding cuts the peak memory of a pass by 2x-2.8x (fp32,
  512x512, ``scripts/peak_memory.py``) at no measurable speed cost, which lets much larger
  tiles (or whole images) fit the memory budget.

All are checked against the plain network in ``tests/test_inference.py``.

An option, off by default, only matters under autocast: ``fp32_head`` runs the head in
fp32 (``Fp32``), so its output, and with it the whole residual stream (each block's
``x + f(x)`` and the global skip), stays in fp32 while the convolutions after the head
run in bf16/fp16. It costs 9% of the speed (docs/performance.md, lever table) and bf16
without it is already within 0.005 dB of fp32 on Set5, so it is not used by default.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from srgan_cli.nets.generator import SRResNet
from srgan_cli.nets.srresnet_spec import BAND_BYTES


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new convolution computing ``bn(conv(x))`` with ``bn`` in eval mode."""
    dtype = conv.weight.dtype
    w = conv.weight.detach().double()
    b = (conv.bias.detach().double() if conv.bias is not None
         else torch.zeros(w.shape[0], dtype=torch.float64, device=w.device))
    mean = bn.running_mean.detach().double()
    var = bn.running_var.detach().double()
    g = bn.weight.detach().double() if bn.weight is not None else torch.ones_like(mean)
    beta = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(mean)
    k = g / torch.sqrt(var + bn.eps)
    out = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                    conv.padding, conv.dilation, conv.groups, bias=True,
                    padding_mode=conv.padding_mode, device=w.device, dtype=dtype)
    with torch.no_grad():
        out.weight.copy_((w * k.view(-1, 1, 1, 1)).to(dtype))
        out.bias.copy_(((b - mean) * k + beta).to(dtype))
    return out


def subpixel_kernel(weight: torch.Tensor, bias: torch.Tensor | None,
                    r: int = 2) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The kernel of ``conv(pixel_shuffle(x, r))`` rewritten as ``pixel_shuffle(conv'(x), r)``.

    ``weight`` is (O, C, k, k) with odd ``k`` and 'same' padding ``k // 2``. Returns the
    (O*r*r, C*r*r, k', k') weight, the bias and the padding ``k' // 2`` of ``conv'``.
    Output phase (p, q) at LR position (i, j) is HR pixel (r*i + p, r*j + q); a tap at HR
    offset d from it reads LR position i + floor((p + d) / r), sub-pixel (p + d) mod r.
    """
    o, c, k, k2 = weight.shape
    if k != k2 or k % 2 == 0:
        raise ValueError(f"need an odd square kernel, got {k}x{k2}")
    h = k // 2
    lo, hi = (0 - h) // r, (r - 1 + h) // r  # LR offsets reached by any phase
    pad = max(-lo, hi)
    kk = 2 * pad + 1
    w = weight.detach().double()
    out = torch.zeros(o, r, r, c, r, r, kk, kk, dtype=torch.float64, device=w.device)
    for p in range(r):
        for q in range(r):
            for dy in range(-h, h + 1):
                u, a = divmod(p + dy, r)
                for dx in range(-h, h + 1):
                    v, b = divmod(q + dx, r)
                    out[:, p, q, :, a, b, u + pad, v + pad] = w[:, :, dy + h, dx + h]
    # PixelShuffle reads input map (ch * r + a) * r + b for HR sub-pixel (a, b) of map ch.
    new_w = out.reshape(o * r * r, c * r * r, kk, kk).to(weight.dtype)
    new_b = None
    if bias is not None:
        new_b = bias.detach().repeat_interleave(r * r)
    return new_w, new_b, pad


def split_rows(weight: torch.Tensor, bias: torch.Tensor | None,
               align: int = 16) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """A k x k convolution with few output maps as a 1 x k convolution then a k x 1 sum.

    ``weight`` is (O, C, k, k). The first convolution, (M, C, 1, k), computes for every
    kernel row dy and output map o the horizontal partial sum into map ``dy * O + o``
    (M = k * O rounded up to ``align`` with zero maps: matrix engines work in blocks of
    16 output channels, and k * O fills them where O alone does not). The second, (O, M,
    k, 1) with one-hot taps, adds the k rows up with their vertical offsets, and the bias.
    """
    o, c, k, k2 = weight.shape
    if k != k2:
        raise ValueError(f"need a square kernel, got {k}x{k2}")
    m = -(-k * o // align) * align
    w = weight.detach()
    rows = torch.zeros(m, c, 1, k, dtype=w.dtype, device=w.device)
    rows[: k * o] = w.permute(2, 0, 1, 3).reshape(k * o, c, 1, k)
    cols = torch.zeros(o, m, k, 1, dtype=w.dtype, device=w.device)
    for dy in range(k):
        cols[torch.arange(o), dy * o + torch.arange(o), dy, 0] = 1
    return rows, cols, None if bias is None else bias.detach().clone()


class SubpixelTail(nn.Module):
    """``tail(prelu(shuffle(conv(y))))`` computed as ``shuffle(tail'(prelu'(conv(y))))``.

    ``tail'`` (the sub-pixel kernel, 4C -> 4 * channels maps) runs as a 1 x k convolution
    into k * 4 * channels maps and a k x 1 sum (:func:`split_rows`) when ``split``. With
    ``band_rows`` (None: about :data:`BAND_BYTES` per 4C-map band; 0: whole image) the
    stage runs in horizontal bands, recomputing the few rows the kernels reach across a
    band edge, so its 4C-map tensors, the largest of the network, never exist at once.
    """

    def __init__(self, conv: nn.Conv2d, prelu: nn.PReLU, tail: nn.Conv2d, r: int = 2, *,
                 split: bool = True, band_rows: int | None = None) -> None:
        super().__init__()
        self.band_rows = band_rows
        self.conv = copy.deepcopy(conv)
        self.act = nn.PReLU(conv.out_channels, device=prelu.weight.device,
                            dtype=prelu.weight.dtype)
        with torch.no_grad():
            w = prelu.weight.detach()
            self.act.weight.copy_(w.repeat_interleave(r * r) if w.numel() > 1 else w)
        wt, bt, pad = subpixel_kernel(tail.weight, tail.bias, r)
        self.pad = pad
        if split:
            rows, cols, bias = split_rows(wt, bt)
            self.tail = _conv(rows, None, (0, pad))
            self.sum = _conv(cols, bias, (pad, 0))
        else:
            self.tail = _conv(wt, bt, (pad, pad))
            self.sum = nn.Identity()
        self.shuffle = nn.PixelShuffle(r)

    def _after_act(self, t: torch.Tensor) -> torch.Tensor:
        return self.sum(self.tail(t))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        n, _, h, w = y.shape
        c = self.conv.padding[0]  # rows the 3x3 convolution reaches

        def maps(a: int, b: int) -> torch.Tensor:
            s, e = max(a - c, 0), min(b + c, h)
            return self.act(self.conv(y[:, :, s:e])[:, :, a - s:b - s])

        return self.run(maps, h, w)

    def run(self, maps: Callable[[int, int], torch.Tensor], h: int, w: int) -> torch.Tensor:
        """The stage from ``maps(a, b)``, rows [a, b) of ``act(conv(y))`` (an NCHW tensor
        of 4C maps), for an h x w input: whole or in bands (see the class docstring)."""
        rows = self.band_rows
        if rows is None:
            rows = max(16, BAND_BYTES // (self.conv.out_channels * w * 4))
        if rows == 0 or rows >= h:
            return self.shuffle(self._after_act(maps(0, h)))
        k = self.pad  # rows the tail reaches above and below
        out = None
        for r0 in range(0, h, rows):
            r1 = min(r0 + rows, h)
            a, b = max(r0 - k, 0), min(r1 + k, h)  # rows of the 4C maps this band needs
            q = self._after_act(maps(a, b))[:, :, r0 - a:r1 - a]
            if out is None:
                out = torch.empty(q.shape[0], q.shape[1], h, w, dtype=q.dtype,
                                  device=q.device, memory_format=torch.channels_last)
            out[:, :, r0:r1] = q
        return self.shuffle(out)


def _conv(weight: torch.Tensor, bias: torch.Tensor | None,
          padding: tuple[int, int]) -> nn.Conv2d:
    """A Conv2d holding ``weight`` (O, C, kh, kw) and ``bias``."""
    o, c, kh, kw = weight.shape
    conv = nn.Conv2d(c, o, (kh, kw), padding=padding, bias=bias is not None,
                     device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(weight)
        if bias is not None:
            conv.bias.copy_(bias)
    return conv


class Fp32(nn.Module):
    """Runs ``inner`` in fp32 even inside an autocast region."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return self.inner(x.float())


@dataclass(frozen=True)
class InferenceOptions:
    """The rewrites an inference copy was made with (see :func:`inference_copy`); the copy
    declares them as its ``inference`` attribute (a network as trained has None)."""

    fold_bn: bool = True
    subpixel_tail: bool = True
    split_tail: bool = True
    band_rows: int | None = None
    fp32_head: bool = False


def inference_copy(model: SRResNet, *, fold_bn: bool = True, subpixel_tail: bool = True,
                   split_tail: bool = True, band_rows: int | None = None,
                   fp32_head: bool = False) -> SRResNet:
    """An eval-mode copy of ``model`` with BN folded and the sub-pixel tail (split into
    row and column passes and run in bands unless ``split_tail=False`` /
    ``band_rows=0``; see :class:`SubpixelTail`), and, if asked, the fp32 head.

    The copy computes the same function as ``model.eval()`` up to float rounding; it
    cannot be trained (BN statistics are gone) and its state dict differs. Its
    ``inference`` attribute declares the options it was made with
    (:class:`InferenceOptions`).
    """
    net = copy.deepcopy(model).eval()
    net.inference = InferenceOptions(fold_bn, subpixel_tail, split_tail, band_rows, fp32_head)
    if fold_bn:
        for block in net.body:
            block.conv1 = fold_conv_bn(block.conv1, block.bn1)
            block.conv2 = fold_conv_bn(block.conv2, block.bn2)
            block.bn1 = nn.Identity()
            block.bn2 = nn.Identity()
        net.fuse.conv = fold_conv_bn(net.fuse.conv, net.fuse.bn)
        net.fuse.bn = nn.Identity()
    if subpixel_tail:
        last = net.up[-1]
        net.up[-1] = SubpixelTail(last.conv, last.act, net.tail, 2, split=split_tail,
                                 band_rows=band_rows)
        net.tail = nn.Identity()
    if fp32_head:
        net.head = Fp32(net.head)
    for p in net.parameters():
        p.requires_grad_(False)
    return net


__all__ = ["BAND_BYTES", "Fp32", "InferenceOptions", "SubpixelTail", "fold_conv_bn",
           "inference_copy",
           "split_rows", "subpixel_kernel"]
