"""The SRResNet / SRGAN generator as an architecture: its facts, its metadata and registry
``spec`` block, loading into an :class:`SRResNetModel` (which prepares the exact inference
form: BatchNorm folded, the sub-pixel tail, row bands on the CPU). Its torch modules are in
:mod:`srgan_cli.nets.generator`, its spec in :mod:`srgan_cli.nets.srresnet_spec`, and the
other projects' key names it converts in :mod:`srgan_cli.distribution.layouts`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from srgan_cli.arch.base import ActivationMemory, Architecture, ModelFacts
from srgan_cli.errors import WeightsError
from srgan_cli.model import Model
from srgan_cli.nets.srresnet_spec import (
    _OPTIONAL_SPEC_KEYS,
    _SPEC_KEYS,
    BAND_BYTES,
    INPUT_RANGE,
    NAME,
    OUTPUT_RANGE,
    GeneratorSpec,
)

# Peak resident memory over live tensor bytes of the banded inference form, measured on the
# CPU with glibc keeping freed memory: every peak measured by scripts/peak_memory.py
# (whole-image SRResNet x4, 256^2 to 1024^2 LR pixels, fp32 and bf16) is at most 0.92 of
# the estimate (docs/memory.md).
HEAP_SLACK = 2.4


def _range_str(r: tuple[float, float]) -> str:
    return f"{r[0]:g},{r[1]:g}"


def _stored(spec: GeneratorSpec) -> dict[str, int]:
    """The spec's keys as files and registry blocks keep them: an optional key at its
    default is left out, so files without it read and write as they did."""
    default = GeneratorSpec()
    return {k: v for k, v in spec.as_dict().items()
            if k not in _OPTIONAL_SPEC_KEYS or v != getattr(default, k)}


def activation_memory(spec: GeneratorSpec) -> ActivationMemory:
    """The peak-memory estimate of ``spec`` (:meth:`GeneratorSpec.live_values`); the band
    buffers (4 x BAND_BYTES) of the banded form come on top whatever the size."""
    plain, banded = spec.live_values()
    return ActivationMemory(plain=plain, banded=banded, banded_fixed=4 * BAND_BYTES,
                            heap_slack=HEAP_SLACK)


class SRResNetModel(Model):
    """A loaded SRResNet; its inference form is :func:`srgan_cli.inference.rewrite.inference_copy`."""

    def inference_form(self, on_cpu: bool):
        """BN folded and the sub-pixel tail; on the CPU also split into row and column
        passes with the last stage in row bands (:mod:`srgan_cli.inference.rewrite`). The
        split and bands were measured on the CPU (oneDNN), where they pay; elsewhere,
        unmeasured, the last stage runs whole."""
        from srgan_cli.inference.rewrite import inference_copy

        return inference_copy(self.net, split_tail=on_cpu,
                              band_rows=None if on_cpu else 0), on_cpu


class SRResNetArchitecture(Architecture):
    """Our generator: facts, building and loading, spec <-> metadata and registry block."""

    name = NAME

    def owns(self, spec: Any) -> bool:
        return isinstance(spec, GeneratorSpec)

    def describe(self, spec: GeneratorSpec) -> ModelFacts:
        return ModelFacts(
            arch=NAME, spec=spec, scale=spec.scale, channels=spec.channels,
            parameters=spec.parameters(), flops_per_lr_pixel=spec.flops_per_lr_pixel(),
            receptive_radius=spec.receptive_radius(), tile_overlap=spec.receptive_radius(),
            memory=activation_memory(spec), output_range=OUTPUT_RANGE,
            summary=f"{spec.blocks} blocks, width {spec.width}"
            + (f", lattice filter {spec.delattice}" if spec.delattice else ""))

    def build(self, spec: GeneratorSpec):
        from srgan_cli.nets.generator import SRResNet

        return SRResNet(spec)

    # ---------------------------------------------------------------- loading

    def recognise(self, state: Mapping) -> str | None:
        """The layout (:mod:`srgan_cli.distribution.layouts`) of a bare SRResNet state dict, or None."""
        from srgan_cli.distribution import layouts

        found = layouts.recognise(state, NAME)
        return None if found is None else found.name

    def from_state_dict(self, state: Mapping, where: Any):
        from srgan_cli.distribution import layouts

        layout = layouts.recognise(state, NAME)
        if layout is None:
            return None
        spec, mapped, _ = layout.convert(state, where)
        return self.load(spec, mapped, where), self.describe(spec)

    def load(self, spec: GeneratorSpec, state: Mapping, where: Any):
        from srgan_cli.distribution.tensorfile import check_state

        model = self.build(spec)
        expected = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
        check_state(state, expected, where, spec)
        model.load_state_dict(state, strict=False)
        return model.eval()

    def expected_state(self, spec: GeneratorSpec) -> dict[str, tuple[int, ...]]:
        """Every floating tensor of the network (BN's integer batch counter is not stored)."""
        import torch

        with torch.device("meta"):
            net = self.build(spec)
        return {k: tuple(v.shape) for k, v in net.state_dict().items() if v.is_floating_point()}

    def model(self, net, facts: ModelFacts, provenance) -> SRResNetModel:
        return SRResNetModel(net, facts, provenance)

    # ---------------------------------------------------------------- metadata

    def metadata(self, spec: GeneratorSpec) -> dict[str, str]:
        return {"arch": NAME, **{k: str(v) for k, v in _stored(spec).items()},
                "input_range": _range_str(INPUT_RANGE),
                "output_range": _range_str(OUTPUT_RANGE)}

    def spec_from_metadata(self, meta: Mapping[str, str], where: Any) -> GeneratorSpec:
        try:
            spec = GeneratorSpec(**{k: int(meta[k]) for k in _SPEC_KEYS
                                    if k in meta or k not in _OPTIONAL_SPEC_KEYS})
        except KeyError as e:
            raise WeightsError(f"{where}: metadata lacks {e.args[0]!r}") from None
        except ValueError as e:
            raise WeightsError(f"{where}: bad architecture metadata ({e})") from None
        for key, expected in (("input_range", INPUT_RANGE), ("output_range", OUTPUT_RANGE)):
            if key in meta and meta[key] != _range_str(expected):
                raise WeightsError(f"{where}: unsupported {key} {meta[key]!r}")
        return spec

    def spec_block(self, spec: GeneratorSpec) -> dict[str, Any]:
        return {"arch": NAME, **_stored(spec)}

    def spec_from_block(self, block: Mapping[str, Any], where: Any) -> GeneratorSpec:
        unknown = sorted(set(block) - {"arch", *_SPEC_KEYS})
        if unknown:
            raise WeightsError(f"{where}: unknown {NAME} spec key {unknown[0]!r}")
        try:
            return GeneratorSpec(**{k: int(block[k]) for k in _SPEC_KEYS if k in block})
        except (TypeError, ValueError) as e:
            raise WeightsError(f"{where}: bad architecture ({e})") from None


ARCH = SRResNetArchitecture()  # registered by srgan_cli.arch

__all__ = ["ARCH", "HEAP_SLACK", "SRResNetArchitecture", "SRResNetModel", "activation_memory"]
