"""The types every architecture declares: :class:`ModelFacts` (what the program asks about a
network of one spec), :class:`ActivationMemory` and the :class:`Architecture` base class.
A loaded network with its facts and provenance is a :class:`srgan_cli.model.Model`.
Nothing here imports torch at module level.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from srgan_cli.errors import WeightsError

PRECISIONS = ("fp32", "bf16", "fp16")
UNIT_RANGE = (0.0, 1.0)


@dataclass(frozen=True)
class ActivationMemory:
    """Estimated peak activation memory of one forward pass, per LR pixel.

    ``plain``: values per LR pixel of the network as built, counted at 4 bytes each
    whatever the precision. ``banded``: values per LR pixel of the inference form that runs
    its largest stage in row bands (None: it has none), at the precision's bytes per value
    times ``heap_slack`` (peak resident memory over live tensor bytes, measured), plus
    ``banded_fixed`` bytes whatever the size.
    """

    plain: int
    banded: int | None = None
    banded_fixed: int = 0
    heap_slack: float = 1.0

    def bytes_per_px(self, banded: bool = False, value_bytes: int = 4) -> int:
        if not banded or self.banded is None:
            return self.plain * 4
        return math.ceil(self.banded * value_bytes * self.heap_slack)

    def fixed_bytes(self, banded: bool = False) -> int:
        return self.banded_fixed if banded and self.banded is not None else 0


@dataclass(frozen=True)
class ModelFacts:
    """Everything the program asks about a network of one spec, declared by its
    architecture (without loading it: a registry entry has facts too).

    ``channels``: input and output maps. ``receptive_radius``: LR pixels on each side that
    an output pixel depends on; None means unbounded or unknown, and tiles then overlap by
    ``tile_overlap`` pixels and are blended. ``size``: the input sizes it accepts and where
    tiles may start (a :class:`srgan_cli.inference.tiling.SizeRule`; None: any size, anywhere).
    ``output_range``: the raw output's value range (inputs
    are RGB in [0, 1]). ``summary``: the architecture's own words for the spec (e.g.
    "16 blocks, width 64").
    """

    arch: str
    spec: Any
    scale: int
    channels: int
    parameters: int
    flops_per_lr_pixel: float | None
    receptive_radius: int | None
    memory: ActivationMemory
    tile_overlap: int = 16
    size: Any = None
    precisions: tuple[str, ...] = PRECISIONS
    output_range: tuple[float, float] = UNIT_RANGE
    summary: str = ""

    @property
    def tile_pad(self) -> int:
        """Context per side of a tile: the receptive radius (tiling is then exact), else
        :attr:`tile_overlap`."""
        return self.tile_overlap if self.receptive_radius is None else self.receptive_radius

    @property
    def blend_tiles(self) -> bool:
        """Whether tiles are blended over their overlap (no known receptive radius) rather
        than cut exactly."""
        return self.receptive_radius is None

    def size_rule(self):
        """The input sizes the network accepts, for :func:`srgan_cli.inference.tiling.run_tiled`."""
        if self.size is not None:
            return self.size
        from srgan_cli.inference.tiling import SizeRule

        return SizeRule()


class Architecture:
    """One architecture: recognises its state dicts, builds its network from a spec, loads
    a network into a :class:`~srgan_cli.model.Model`, and writes and reads its spec as a
    weights file's metadata and as a registry entry's ``spec`` block.

    Subclasses set :attr:`name` and implement what they support; a method left as it is
    here raises or answers "not supported".
    """

    name: str = ""

    def describe(self, spec: Any) -> ModelFacts:
        """The facts of a network of ``spec``."""
        raise NotImplementedError

    def build(self, spec: Any):
        """A new network (``torch.nn.Module``) of ``spec`` with random weights."""
        raise NotImplementedError

    def owns(self, spec: Any) -> bool:
        """Whether ``spec`` is this architecture's kind of spec."""
        return False

    # ---------------------------------------------------------------- loading

    def recognise(self, state: Mapping) -> str | None:
        """What this architecture calls a bare state dict it knows (a layout or a
        sub-architecture), or None."""
        return None

    def from_state_dict(self, state: Mapping, where: Any):
        """``(network, facts)`` of a bare state dict (no metadata), on the CPU in eval
        mode; None when it is not this architecture's; a one-line :class:`WeightsError`
        naming ``where`` when it is but cannot be loaded."""
        return None

    def load(self, spec: Any, state: Mapping, where: Any):
        """The network of ``spec`` with ``state`` loaded (every key and shape checked;
        :class:`WeightsError` naming ``where``), in eval mode on the CPU."""
        raise NotImplementedError

    def model(self, net, facts: ModelFacts, provenance):
        """The :class:`~srgan_cli.model.Model` of a loaded network (the plain one: run as
        it is; an architecture with inference rewrites returns its own kind)."""
        from srgan_cli.model import Model

        return Model(net, facts, provenance)

    # ---------------------------------------------------------------- metadata

    def metadata(self, spec: Any) -> dict[str, str]:
        """The string metadata that rebuilds ``spec`` (``arch`` first)."""
        raise WeightsError(f"the {self.name} architecture is not written as a weights file")

    def spec_from_metadata(self, meta: Mapping[str, str], where: Any) -> Any:
        """The spec a file's metadata describes; :class:`WeightsError` naming ``where``."""
        raise WeightsError(f"{where}: the {self.name} architecture is not read from metadata")

    def spec_block(self, spec: Any) -> dict[str, Any]:
        """The spec as a registry entry's ``spec`` object (``arch`` first)."""
        raise WeightsError(f"the {self.name} architecture is not registered")

    def spec_from_block(self, block: Mapping[str, Any], where: Any) -> Any:
        """The spec from a registry entry's ``spec`` object."""
        raise WeightsError(f"{where}: the {self.name} architecture is not registered")
