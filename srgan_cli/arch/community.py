"""Community SR architectures (ESRGAN, Real-ESRGAN Compact, SwinIR, HAT, OmniSR, ...) as
one architecture, ``spandrel``: spandrel recognises a bare state dict and builds the
network (:mod:`srgan_cli.foreign`); this module describes it to the rest of the program.

Its networks have no known receptive radius, so tiles overlap by
:data:`srgan_cli.foreign.OVERLAP` LR pixels and are blended (docs/foreign_models.md); they
map [0, 1] to [0, 1]; their precisions are what spandrel says they support; their
activation memory is measured by one small forward pass when they are loaded. They are
run from their own files and never written as our weights files (no metadata form), nor
converted (nothing to convert: they run as they are).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from srgan_cli.arch.base import UNIT_RANGE, ActivationMemory, Architecture, ModelDescriptor

NAME = "spandrel"
# Tensors of the largest size alive at once in a forward pass (a layer's input and output,
# a residual, one temporary): the memory estimate is this times the largest layer output.
LIVE_TENSORS = 4


class SpandrelArchitecture(Architecture):
    """Any single-image SR network spandrel recognises; its spec is the
    :class:`~srgan_cli.foreign.ForeignInfo` of the loaded file."""

    name = NAME

    def owns(self, spec: Any) -> bool:
        from srgan_cli.foreign import ForeignInfo

        return isinstance(spec, ForeignInfo)

    def describe(self, spec: Any, largest_per_px: int = 0) -> ModelDescriptor:
        from srgan_cli import foreign

        precisions = ("fp32", *(("bf16",) if spec.supports_bfloat16 else ()),
                      *(("fp16",) if spec.supports_half else ()))
        size = spec.size
        return ModelDescriptor(
            arch=NAME, spec=spec, scale=spec.scale, in_channels=spec.in_channels,
            out_channels=spec.out_channels, parameters=spec.parameters,
            flops_per_lr_pixel=None, receptive_radius=None,
            memory=ActivationMemory(plain=LIVE_TENSORS * max(largest_per_px, 1)),
            architecture=self, tile_overlap=foreign.OVERLAP,
            multiple_of=size.multiple_of, min_size=max(size.minimum, 1), square=size.square,
            tile_align=size.align, precisions=precisions, input_range=UNIT_RANGE,
            output_range=foreign.OUTPUT_RANGE, summary=spec.describe())

    def recognise(self, state: Mapping) -> str | None:
        """spandrel's id of the architecture whose keys ``state`` has (e.g. ``ESRGAN``)."""
        import spandrel

        for support in spandrel.MAIN_REGISTRY.architectures("detection"):
            if support.architecture.detect(state):
                return str(support.architecture.id)
        return None

    def load_state_dict(self, state: Mapping, where: Any):
        """``(network, descriptor)``: the network spandrel builds, on the CPU in eval mode;
        refusals are one-line :class:`~srgan_cli.errors.WeightsError`\\ s naming ``where``."""
        from srgan_cli import foreign

        net, info = foreign.from_state_dict(dict(state), where)
        return net, self.describe(info, foreign.largest_activation_per_px(net, info))


ARCH = SpandrelArchitecture()

__all__ = ["ARCH", "LIVE_TENSORS", "NAME", "SpandrelArchitecture"]
