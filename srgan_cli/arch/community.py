"""Community SR architectures (ESRGAN, Real-ESRGAN Compact, SwinIR, HAT, OmniSR, ...) as
one architecture, ``spandrel``: spandrel recognises a bare state dict and builds the
network (:mod:`srgan_cli.distribution.community_files`); this module states its facts.

Its networks have no known receptive radius, so tiles overlap by
:data:`srgan_cli.distribution.community_files.OVERLAP` LR pixels and are blended (docs/foreign_models.md); they
map [0, 1] to [0, 1]; their precisions are what spandrel says they support; their
activation memory is measured by one small forward pass when they are loaded. They run
as they are (a plain :class:`~srgan_cli.model.Model`), from their own files: never
written as our weights files (no metadata form), registered, nor converted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from srgan_cli.arch.base import UNIT_RANGE, ActivationMemory, Architecture, ModelFacts

NAME = "spandrel"
# Tensors of the largest size alive at once in a forward pass (a layer's input and output,
# a residual, one temporary): the memory estimate is this times the largest layer output.
LIVE_TENSORS = 4


@dataclass(frozen=True)
class SpandrelSpec:
    """What spandrel tells about a recognised network: its architecture id (e.g. ``ESRGAN``,
    ``Compact``, ``SwinIR``) and display name, size hints (e.g. ``64nf``, ``23nb``), scale,
    channels, parameters, the precisions it supports, the input sizes it accepts (a
    :class:`~srgan_cli.inference.tiling.SizeRule`: spandrel's size requirements, tiles aligned to
    its attention window) and the values per LR pixel of its largest layer output
    (measured)."""

    arch: str
    arch_name: str
    tags: tuple[str, ...]
    scale: int
    channels: int
    parameters: int
    precisions: tuple[str, ...]
    size: Any
    largest_per_px: int = 1

    def describe(self) -> str:
        tags = f" ({', '.join(self.tags)})" if self.tags else ""
        return f"{self.arch_name}{tags}, {self.parameters:,} parameters, recognised by spandrel"


class SpandrelArchitecture(Architecture):
    """Any single-image SR network spandrel recognises (:class:`SpandrelSpec`)."""

    name = NAME

    def owns(self, spec: Any) -> bool:
        return isinstance(spec, SpandrelSpec)

    def describe(self, spec: SpandrelSpec) -> ModelFacts:
        from srgan_cli.distribution import community_files

        return ModelFacts(
            arch=NAME, spec=spec, scale=spec.scale, channels=spec.channels,
            parameters=spec.parameters, flops_per_lr_pixel=None, receptive_radius=None,
            memory=ActivationMemory(plain=LIVE_TENSORS * max(spec.largest_per_px, 1)),
            tile_overlap=community_files.OVERLAP, size=spec.size, precisions=spec.precisions, output_range=UNIT_RANGE, summary=spec.describe())

    def recognise(self, state: Mapping) -> str | None:
        """spandrel's id of the architecture whose keys ``state`` has (e.g. ``ESRGAN``)."""
        import spandrel

        for support in spandrel.MAIN_REGISTRY.architectures("detection"):
            if support.architecture.detect(state):
                return str(support.architecture.id)
        return None

    def from_state_dict(self, state: Mapping, where: Any):
        """``(network, facts)``: the network spandrel builds (detected once), on the CPU in
        eval mode; None when spandrel does not recognise ``state``; a network it recognises
        but srgan does not run is a one-line :class:`~srgan_cli.errors.WeightsError`
        naming ``where``."""
        from srgan_cli.distribution import community_files
        from srgan_cli.inference.tiling import SizeRule

        built = community_files.spandrel_model(dict(state), where)
        if built is None:
            return None
        net, d = built
        req = d.size_requirements
        size = SizeRule(max(req.minimum, 1), req.multiple_of, req.square,
                        math.lcm(req.multiple_of, community_files.window(d.model)))
        spec = SpandrelSpec(
            arch=str(d.architecture.id), arch_name=d.architecture.name, tags=tuple(d.tags),
            scale=d.scale, channels=d.input_channels,
            parameters=sum(p.numel() for p in d.model.parameters()),
            precisions=("fp32", *(("bf16",) if d.supports_bfloat16 else ()),
                        *(("fp16",) if d.supports_half else ())),
            size=size, largest_per_px=community_files.largest_activation_per_px(net, size, d.input_channels))
        return net, self.describe(spec)


ARCH = SpandrelArchitecture()

__all__ = ["ARCH", "LIVE_TENSORS", "NAME", "SpandrelArchitecture", "SpandrelSpec"]
