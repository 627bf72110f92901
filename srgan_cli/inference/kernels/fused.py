"""SRResNet in bf16 with the fused AMX convolutions of :mod:`srgan_cli.inference.kernels.amx`.

Built from an :func:`~srgan_cli.inference.rewrite.inference_copy` (BatchNorm folded, the
sub-pixel tail), it runs every 3x3 convolution of the network through one kernel whose
epilogue also does what eager PyTorch runs as separate passes:

* residual block: ``conv1`` + bias + PReLU; ``conv2`` + bias + the block's input;
* ``fuse``: conv + bias + the head's output (the global skip);
* each upsampling stage but the last: conv + bias + PReLU, stored through the 2x pixel
  shuffle into the next stage's input (the per-channel PReLU commutes with the shuffle);
* the last stage: conv + bias + PReLU into the 4C maps that the split tail reads, in the
  same row bands as :class:`~srgan_cli.inference.rewrite.SubpixelTail`.

The head (9x9, 3 input maps) and the tail's 1x5 and 5x1 passes stay with oneDNN.
Activations live in bf16 NHWC buffers with a stored zero border (:func:`amx.padded`).

The kernels only compute in bf16: :meth:`FusedSRResNet.forward` uses them under CPU bf16
autocast (what ``Upscaler`` sets up for ``--precision bf16``) and runs the wrapped
inference copy otherwise (fp32, the fp32 redo of a non-finite tile) and for images
narrower than :data:`amx.MIN_WIDTH` pixels. Each path is checked against the plain fp32
network in ``tests/test_fused.py``.
"""

from __future__ import annotations

import torch
from torch import nn

from srgan_cli.inference.kernels import amx
from srgan_cli.inference.rewrite import SubpixelTail
from srgan_cli.nets.generator import SRResNet


def supported(net: SRResNet) -> str | None:
    """Why the kernels cannot run ``net``, or None if they can: what they declare they run
    (an inference copy with BatchNorm folded and the sub-pixel tail, width a multiple of
    32, the head not in fp32). Whether they run here at all is :func:`amx.library`; which
    kernels a network gets is decided in :mod:`srgan_cli.inference.kernels.choice`."""
    spec, form = net.spec, net.inference
    if spec.width % 32:
        return f"width {spec.width} is not a multiple of 32"
    if form is None:
        return "the network is not an inference copy (optimise=False)"
    if not form.subpixel_tail:
        return "the network has no sub-pixel tail (optimise=False)"
    if not form.fold_bn:
        return "BatchNorm is not folded"
    if form.fp32_head:
        return "the head runs in fp32 (fp32_head)"
    return None


def _slope(prelu: nn.PReLU, maps: int) -> torch.Tensor:
    w = prelu.weight.detach().float()
    return w.expand(maps).clone() if w.numel() == 1 else w


def _interior(p: torch.Tensor) -> torch.Tensor:
    return p[1:-1, 1:-1]


def _nchw(t: torch.Tensor) -> torch.Tensor:
    """An (H, W, C) view as (1, C, H, W) (channels_last strides)."""
    return t.permute(2, 0, 1).unsqueeze(0)


class FusedSRResNet(nn.Module):
    """``net`` (an inference copy) with its 3x3 convolutions run by the AMX kernels in bf16.

    ``ops`` is the kernel module (``padded``, ``Conv3x3``, ``library``, ``DTYPE``): a
    subclass swaps it (:class:`srgan_cli.inference.kernels.fused_fp32.Fp32SRResNet`, the AVX2 fp32
    kernels) together with :meth:`uses_kernels`."""

    ops = amx

    def __init__(self, net: SRResNet) -> None:
        super().__init__()
        why = supported(net)
        if why:
            raise ValueError(f"fused kernels cannot run this network: {why}")
        ops = self.ops
        ops.library()  # raises RuntimeError with the reason when the kernels cannot run
        self.net = net
        self.spec = net.spec
        c = net.spec.width
        self.blocks = [(ops.Conv3x3(b.conv1.weight, b.conv1.bias, _slope(b.act, c)),
                        ops.Conv3x3(b.conv2.weight, b.conv2.bias)) for b in net.body]
        self.fuse = ops.Conv3x3(net.fuse.conv.weight, net.fuse.conv.bias)
        self.ups = [ops.Conv3x3(u.conv.weight, u.conv.bias,
                                _slope(u.act, c).repeat_interleave(4), shuffle=True)
                    for u in net.up[:-1]]
        last: SubpixelTail = net.up[-1]
        self.last = last
        self.last_conv = ops.Conv3x3(last.conv.weight, last.conv.bias,
                                     _slope(last.act, last.conv.out_channels))

    @staticmethod
    def uses_kernels(x: torch.Tensor) -> bool:
        """Whether :meth:`forward` on ``x`` runs the AMX kernels (bf16 autocast, wide enough)."""
        return (x.device.type == "cpu" and torch.is_autocast_enabled("cpu")
                and torch.get_autocast_dtype("cpu") == torch.bfloat16
                and x.shape[-1] >= amx.MIN_WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.uses_kernels(x):
            return self.net(x)
        y = (self._one(x) if x.shape[0] == 1
             else torch.cat([self._one(x[i:i + 1]) for i in range(x.shape[0])]))
        return y if self.net.post is None else self.net.post(x, y)

    def _one(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        c, padded = self.spec.width, self.ops.padded
        head = padded(h, w, c)
        _interior(head).copy_(_nchw_to_hwc(self.net.head(x)))
        t, a, b = padded(h, w, c), padded(h, w, c), padded(h, w, c)
        cur = head
        for conv1, conv2 in self.blocks:
            conv1(cur, _interior(t))
            nxt = a if cur is not a else b
            conv2(t, _interior(nxt), res=_interior(cur))
            cur = nxt
        self.fuse(cur, _interior(t), res=_interior(head))
        y = t
        del head, a, b, cur
        for up in self.ups:
            hh, ww = y.shape[0] - 2, y.shape[1] - 2
            z = padded(2 * hh, 2 * ww, c)
            up(y, _interior(z))
            y = z
        hh, ww = y.shape[0] - 2, y.shape[1] - 2
        conv = self.last_conv

        def maps(r0: int, r1: int) -> torch.Tensor:
            out = torch.empty(r1 - r0, ww, conv.cout, dtype=self.ops.DTYPE)
            conv(y, out, rows=(r0, r1), out_row0=r0)
            return _nchw(out)

        return self.last.run(maps, hh, ww)


def _nchw_to_hwc(t: torch.Tensor) -> torch.Tensor:
    return t[0].permute(1, 2, 0)


def fused_or_reason(net: SRResNet, form: type[FusedSRResNet] = FusedSRResNet
                    ) -> tuple[nn.Module, str | None]:
    """``form(net)`` (the AMX kernels, or a subclass's: :mod:`.fused_fp32`) if its kernels
    can run ``net`` here, else ``net`` and the reason."""
    if not isinstance(net, SRResNet):
        return net, f"they run SRResNet, not {type(net).__name__}"
    why = supported(net)
    if why is None:
        try:
            return form(net), None
        except RuntimeError as e:
            why = str(e)
    return net, why


__all__ = ["FusedSRResNet", "fused_or_reason", "supported"]
