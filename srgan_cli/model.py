"""A loaded model as one object: :class:`Model` holds the network, its facts
(:class:`~srgan_cli.arch.ModelFacts`: scale, channels, size rule, tile context or blending,
output range, precisions) and its provenance (:class:`Provenance`: file, sha256, stage,
iterations, parent, ...), and prepares itself for a device and precision
(:meth:`Model.prepare`). :func:`srgan_cli.load` makes one from a registered name, a file or
an ``hf://`` URL; ``Model.upscale(image)`` is the one-line way to run it.

An architecture whose inference form differs from the network as trained returns its
own subclass (SRResNet: :class:`srgan_cli.arch.srresnet.SRResNetModel`, BatchNorm folded
and row bands); the plain :class:`Model` runs its network as it is (community models).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: the facts' types live with the architectures
    from srgan_cli.arch.base import ActivationMemory, ModelFacts

BARE = "bare state dict"  # the stage of a model read from a file without our metadata


@dataclass(frozen=True)
class Provenance:
    """Where a model comes from: its ``path``, the metadata of our weights files (empty for
    a file without it: ``bare``), and its sha256 when it was already verified."""

    path: Path | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    bare: bool = False
    sha256: str | None = None

    @property
    def stage(self) -> str:
        """The training stage (``srresnet``, ``gan``, ``converted``), or :data:`BARE`."""
        return BARE if self.bare else self.metadata.get("stage", "unknown")

    @property
    def iterations(self) -> int | None:
        it = self.metadata.get("iterations")
        return int(it) if it and it.isdigit() else None


@dataclass(frozen=True)
class Prepared:
    """A model made ready for one device and precision (:meth:`Model.prepare`): the
    network to call, its activation-memory estimate, and which kernels run it."""

    net: Any
    memory: ActivationMemory
    banded: bool = False  # the estimate of the banded inference form applies
    kernels: str = "torch"
    kernels_note: str | None = None

    def bytes_per_px(self, value_bytes: int = 4) -> int:
        """Estimated peak activation bytes per LR pixel at ``value_bytes`` per value."""
        return self.memory.bytes_per_px(self.banded, value_bytes)

    @property
    def fixed_bytes(self) -> int:
        """Activation bytes of a forward pass whatever the size."""
        return self.memory.fixed_bytes(self.banded)

    @property
    def sized_by_value_bytes(self) -> bool:
        """Whether the estimate depends on the bytes per value (then a tile sized for
        2-byte values may not fit at 4)."""
        return self.banded and self.memory.banded is not None

    def activation_bytes(self, h: int, w: int, value_bytes: int = 4) -> float:
        """Estimated peak activation bytes of one forward pass over an h x w LR tile."""
        return h * w * self.bytes_per_px(value_bytes) + self.fixed_bytes


class Model:
    """A loaded network (on the CPU, eval mode, as trained), its facts and its provenance.

    Facts and provenance read as attributes (``model.scale``, ``model.precisions``,
    ``model.stage``, ``model.sha256``, ...; all facts are in :attr:`facts`, all provenance
    in :attr:`provenance`)."""

    def __init__(self, net: Any, facts: ModelFacts, provenance: Provenance = Provenance()):
        self.net = net
        self.facts = facts
        self.provenance = provenance

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()} from {self.path or 'memory'}>"

    # ------------------------------------------------------------------ facts

    arch = property(lambda self: self.facts.arch, doc="The architecture's name.")
    spec = property(lambda self: self.facts.spec, doc="The architecture's own spec.")
    scale = property(lambda self: self.facts.scale, doc="Output pixels per input pixel.")
    channels = property(lambda self: self.facts.channels, doc="Input and output maps.")
    parameters = property(lambda self: self.facts.parameters, doc="Learned values.")
    precisions = property(lambda self: self.facts.precisions, doc="Precisions it runs in.")
    output_range = property(lambda self: self.facts.output_range,
                            doc="The raw output's value range (inputs are in [0, 1]).")
    tile_pad = property(lambda self: self.facts.tile_pad, doc="Context per side of a tile.")
    blend_tiles = property(lambda self: self.facts.blend_tiles,
                           doc="Whether tiles are blended (no known receptive radius).")
    summary = property(lambda self: self.facts.summary, doc="The spec in words.")

    def size_rule(self):
        return self.facts.size_rule()

    # ------------------------------------------------------------------ provenance

    path = property(lambda self: self.provenance.path, doc="The file it was read from.")
    metadata = property(lambda self: self.provenance.metadata, doc="Our files' metadata.")
    stage = property(lambda self: self.provenance.stage, doc="The training stage.")
    iterations = property(lambda self: self.provenance.iterations,
                          doc="Training iterations, when recorded.")
    bare = property(lambda self: self.provenance.bare,
                    doc="Read from a file without our metadata (e.g. a community model).")
    parent_sha256 = property(lambda self: self.metadata.get("parent_sha256"),
                             doc="sha256 of the model a GAN model was fine-tuned from.")
    parent_file = property(lambda self: self.metadata.get("parent_file"),
                           doc="File name of that parent.")
    degradation = property(lambda self: self.metadata.get("degradation", "clean"),
                           doc="The training degradation (``clean`` unless recorded).")

    @functools.cached_property
    def sha256(self) -> str | None:
        """sha256 of the file (computed on first use unless already verified)."""
        if self.provenance.sha256 is not None or self.path is None:
            return self.provenance.sha256
        with open(self.path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()

    def describe(self) -> str:
        """One line: what it is (the CLI's first line)."""
        if self.bare:  # a file without our metadata: its architecture's words
            return f"{self.arch} x{self.scale} ({self.summary})"
        return f"{self.stage} x{self.scale} ({self.summary}), {self.iterations or '?'} iterations"

    def with_net(self, net: Any, provenance: Provenance | None = None) -> "Model":
        """The same kind of model around another network of the same spec."""
        return type(self)(net, self.facts, provenance or self.provenance)

    # ------------------------------------------------------------------ running

    def inference_form(self, on_cpu: bool) -> tuple[Any, bool]:
        """``(network, banded)``: the exact inference form of :attr:`net` (here: the
        network itself) and whether it runs its largest stage in row bands."""
        return self.net, False

    def prepare(self, device: Any, precision: str, *, optimise: bool = True,
                kernels: str = "auto") -> Prepared:
        """The network made ready for ``device`` (a ``torch.device``) in ``precision``:
        its inference form when ``optimise`` (computed on the CPU, a copy), moved there in
        channels-last order, run by the kernels :func:`srgan_cli.inference.kernels.choice.choose` picks.
        Without an inference copy (a community model, or not ``optimise``) the model's own
        network is the one moved: prepare one model for one device at a time."""
        import torch

        from srgan_cli.inference.kernels.choice import choose

        net, banded = self.inference_form(device.type == "cpu") if optimise else (self.net, False)
        net = net.to(device, memory_format=torch.channels_last)
        picked = choose(net, arch=self.arch, device=device.type, precision=precision,
                        optimise=optimise, requested=kernels)
        return Prepared(picked.net, self.facts.memory, banded, picked.kernels, picked.note)

    def upscale(self, image, **options):
        """``image`` (a PIL image of any mode) upscaled, as ``srgan upscale`` does it (tiled,
        exact borders, alpha and gray kept); ``options`` are :class:`~srgan_cli.inference.runner.Runner`'s
        (``device``, ``precision``, ``tile``, ``border``, ``outscale``, ...). The model is
        prepared on each call: for many images, prepare it once with
        ``srgan_cli.Upscaler(model, ...)``."""
        from srgan_cli.inference.runner import Runner

        return Runner(self, **options).upscale_image(image)


__all__ = ["BARE", "Model", "Prepared", "Provenance"]
