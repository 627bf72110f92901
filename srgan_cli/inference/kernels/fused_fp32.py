"""SRResNet in fp32 with the fused AVX2 convolutions of :mod:`srgan_cli.inference.kernels.simd`.

The same network as :class:`~srgan_cli.inference.kernels.fused.FusedSRResNet` (every 3x3 convolution
one kernel, with bias, PReLU, the residual adds and the pixel shuffles in its epilogue;
the head and the split tail stay with oneDNN), on fp32 activations: the fast path of
CPUs without AMX (``--kernels avx2``; ``auto`` there, in fp32). The kernels only compute
in fp32: under autocast :meth:`Fp32SRResNet.forward` runs the wrapped inference copy.
"""

from __future__ import annotations

import torch

from srgan_cli.inference.kernels import simd
from srgan_cli.inference.kernels.fused import FusedSRResNet, fused_or_reason
from srgan_cli.nets.generator import SRResNet


class Fp32SRResNet(FusedSRResNet):
    """``net`` (an inference copy) with its 3x3 convolutions run by the AVX2 kernels in fp32."""

    ops = simd

    @staticmethod
    def uses_kernels(x: torch.Tensor) -> bool:
        """Whether :meth:`forward` on ``x`` runs the kernels (fp32 on the CPU, no autocast)."""
        return (x.device.type == "cpu" and x.dtype == torch.float32
                and not torch.is_autocast_enabled("cpu"))


def fp32_or_reason(net: SRResNet) -> tuple[torch.nn.Module, str | None]:
    """``Fp32SRResNet(net)`` if the kernels can run ``net`` here, else ``net`` and the reason."""
    return fused_or_reason(net, Fp32SRResNet)


__all__ = ["Fp32SRResNet", "fp32_or_reason"]
