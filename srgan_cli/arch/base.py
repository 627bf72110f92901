"""The types every architecture declares: :class:`ModelDescriptor` (what the program asks
about a network), :class:`ActivationMemory`, :class:`InferenceForm` and the
:class:`Architecture` base class. Nothing here imports torch at module level.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
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
class InferenceForm:
    """How a loaded network is run: ``rewrite`` names the exact inference rewrite (None:
    the network runs as built), ``banded_on_cpu`` whether that rewrite runs its largest
    stage in row bands on the CPU (then :attr:`ActivationMemory.banded` applies), ``fused``
    names the fused CPU kernels of the architecture (None: it has none; whether they run
    a given spec is :meth:`ModelDescriptor.fused_blocker`)."""

    rewrite: str | None = None
    banded_on_cpu: bool = False
    fused: str | None = None


@dataclass(frozen=True)
class ModelDescriptor:
    """Everything the program asks about one network, declared by its architecture.

    ``receptive_radius``: LR pixels on each side that an output pixel depends on; None
    means unbounded or unknown, and tiles then overlap by ``tile_overlap`` pixels and are
    blended. ``multiple_of`` / ``min_size`` / ``square``: what each side of an input must
    be; ``tile_align``: tiles start at multiples of it (window-attention networks).
    ``output_range``: the raw output's value range ((0, 1) for most community models).
    ``summary``: the architecture's own words for the spec (e.g. "16 blocks, width 64").
    """

    arch: str
    spec: Any
    scale: int
    in_channels: int
    out_channels: int
    parameters: int
    flops_per_lr_pixel: float | None
    receptive_radius: int | None
    memory: ActivationMemory
    architecture: Architecture = field(repr=False, compare=False)
    tile_overlap: int = 16
    multiple_of: int = 1
    min_size: int = 1
    square: bool = False
    tile_align: int = 1
    precisions: tuple[str, ...] = PRECISIONS
    input_range: tuple[float, float] = UNIT_RANGE
    output_range: tuple[float, float] = UNIT_RANGE
    inference: InferenceForm = InferenceForm()
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
        """The input sizes the network accepts, for :func:`srgan_cli.tiling.run_tiled`."""
        from srgan_cli.tiling import SizeRule

        return SizeRule(self.min_size, self.multiple_of, self.square, self.tile_align)

    def activation_bytes_per_px(self, banded: bool = False, value_bytes: int = 4) -> int:
        return self.memory.bytes_per_px(banded, value_bytes)

    def build(self):
        """A new network of this spec (random weights, train mode)."""
        return self.architecture.build(self.spec)

    def inference_net(self, net, on_cpu: bool):
        """The exact inference form of ``net`` (a loaded network of this spec)."""
        return self.architecture.inference_net(net, on_cpu)

    def fused_blocker(self) -> str | None:
        """Why the fused CPU kernels cannot run this spec in its inference form (None:
        they can, given a CPU and a build that run them)."""
        return self.architecture.fused_blocker(self.spec)

    def fused_or_reason(self, net):
        """``net`` (an inference form) run by the fused CPU kernels if they can run it here,
        else ``net`` and the reason."""
        return self.architecture.fused_or_reason(net)


class Architecture:
    """One architecture: builds its network from a spec, reads and writes the spec as
    metadata, recognises and converts state dicts, and describes a spec.

    Subclasses set :attr:`name` and implement what they support; a method left as it is
    here raises or answers "not supported".
    """

    name: str = ""
    #: metadata keys that describe the network (besides ``arch``), in the order written
    metadata_keys: tuple[str, ...] = ()
    #: state-dict layouts this architecture can recognise and convert
    layouts: tuple[str, ...] = ()

    def describe(self, spec: Any) -> ModelDescriptor:
        raise NotImplementedError

    def build(self, spec: Any):
        """A new network (``torch.nn.Module``) of ``spec`` with random weights."""
        raise NotImplementedError

    def owns(self, spec: Any) -> bool:
        """Whether ``spec`` is this architecture's kind of spec."""
        return False

    # ---------------------------------------------------------------- metadata

    def metadata(self, spec: Any) -> dict[str, str]:
        """The string metadata that rebuilds ``spec`` (``arch`` first)."""
        raise NotImplementedError

    def spec_from_metadata(self, meta: Mapping[str, str], where: Any) -> Any:
        """The spec a file's metadata describes; :class:`WeightsError` naming ``where``."""
        raise WeightsError(f"{where}: the {self.name} architecture is not read from metadata")

    def registry_fields(self, spec: Any) -> dict[str, int]:
        """The spec as a registry entry's architecture keys."""
        raise NotImplementedError

    def spec_from_fields(self, fields: Mapping[str, Any], where: Any) -> Any:
        """The spec from a registry entry's architecture keys."""
        raise WeightsError(f"{where}: the {self.name} architecture has no registry fields")

    # ---------------------------------------------------------------- state dicts

    def expected_state(self, spec: Any) -> dict[str, tuple[int, ...]]:
        """Names and shapes of the tensors a weights file of ``spec`` holds."""
        raise NotImplementedError

    def load(self, spec: Any, state: Mapping, where: Any):
        """The network of ``spec`` with ``state`` loaded (every key and shape checked;
        :class:`WeightsError` naming ``where``), in eval mode on the CPU."""
        raise NotImplementedError

    def recognise(self, state: Mapping) -> str | None:
        """The layout of a bare state dict this architecture knows, or None."""
        return None

    def convert_state(self, state: Mapping, layout: str, where: Any) -> tuple[Any, dict, set]:
        """``(spec, state in this architecture's own names, source keys used)`` for a state
        dict in ``layout``; :class:`~srgan_cli.errors.ConvertError` naming ``where``."""
        raise NotImplementedError

    def load_state_dict(self, state: Mapping, where: Any):
        """``(network, descriptor)`` built from a bare state dict (no metadata)."""
        layout = self.recognise(state)
        if layout is None:
            raise WeightsError(f"{where}: not a {self.name} state dict")
        spec, mapped, _ = self.convert_state(state, layout, where)
        return self.load(spec, mapped, where), self.describe(spec)

    # ---------------------------------------------------------------- inference

    def inference_net(self, net, on_cpu: bool):
        """The exact inference rewrite of ``net``; the network itself when there is none."""
        return net

    def fused_blocker(self, spec: Any) -> str | None:
        """Why the fused CPU kernels cannot run ``spec`` in its inference form, or None."""
        return f"no fused kernels exist for {self.name}"

    def fused_or_reason(self, net):
        """The fused-kernel form of ``net`` (an inference form) and None, or ``net`` and
        why the kernels cannot run it here."""
        return net, self.fused_blocker(None)
