"""The SRResNet / SRGAN generator as an architecture: its spec, its layout's numbers
(in :mod:`~srgan_cli.arch.srresnet_layout`), its metadata and the state-dict
layouts it converts. Its torch modules (and their layout) are in :mod:`srgan_cli.nets.generator`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from srgan_cli.arch.base import Architecture, InferenceForm, ModelDescriptor
from srgan_cli.arch.srresnet_layout import (_SPEC_KEYS, BAND_BYTES, HEAP_SLACK,  # noqa: F401
                                            INPUT_RANGE, NAME, OUTPUT_RANGE, GeneratorSpec)
from srgan_cli.errors import ConvertError, WeightsError


def _range_str(r: tuple[float, float]) -> str:
    return f"{r[0]:g},{r[1]:g}"


class SRResNetArchitecture(Architecture):
    """Our generator: spec <-> metadata, building, loading and converting state dicts."""

    name = NAME
    metadata_keys = (*_SPEC_KEYS, "input_range", "output_range")
    layouts = ("twtygqyy", "srgan")

    def owns(self, spec: Any) -> bool:
        return isinstance(spec, GeneratorSpec)

    def describe(self, spec: GeneratorSpec) -> ModelDescriptor:
        return ModelDescriptor(
            arch=NAME, spec=spec, scale=spec.scale, in_channels=spec.channels,
            out_channels=spec.channels, parameters=spec.parameters(),
            flops_per_lr_pixel=spec.flops_per_lr_pixel(),
            receptive_radius=spec.receptive_radius(),
            tile_overlap=spec.receptive_radius(), memory=spec.activation_memory(),
            architecture=self, input_range=INPUT_RANGE, output_range=OUTPUT_RANGE,
            inference=InferenceForm(rewrite="inference_copy", banded_on_cpu=True, fused="amx"),
            summary=f"{spec.blocks} blocks, width {spec.width}")

    def build(self, spec: GeneratorSpec):
        from srgan_cli.nets.generator import SRResNet

        return SRResNet(spec)

    # ---------------------------------------------------------------- metadata

    def metadata(self, spec: GeneratorSpec) -> dict[str, str]:
        return {"arch": NAME, **{k: str(v) for k, v in spec.as_dict().items()},
                "input_range": _range_str(INPUT_RANGE),
                "output_range": _range_str(OUTPUT_RANGE)}

    def spec_from_metadata(self, meta: Mapping[str, str], where: Any) -> GeneratorSpec:
        try:
            spec = GeneratorSpec(**{k: int(meta[k]) for k in _SPEC_KEYS})
        except KeyError as e:
            raise WeightsError(f"{where}: metadata lacks {e.args[0]!r}") from None
        except ValueError as e:
            raise WeightsError(f"{where}: bad architecture metadata ({e})") from None
        for key, expected in (("input_range", INPUT_RANGE), ("output_range", OUTPUT_RANGE)):
            if key in meta and meta[key] != _range_str(expected):
                raise WeightsError(f"{where}: unsupported {key} {meta[key]!r}")
        return spec

    def registry_fields(self, spec: GeneratorSpec) -> dict[str, int]:
        fields = {"scale": spec.scale, "blocks": spec.blocks, "width": spec.width}
        if spec.channels != 3:
            fields["channels"] = spec.channels
        return fields

    def spec_from_fields(self, fields: Mapping[str, Any], where: Any) -> GeneratorSpec:
        try:
            return GeneratorSpec(**{k: int(fields[k]) for k in _SPEC_KEYS if k in fields})
        except (TypeError, ValueError) as e:
            raise WeightsError(f"{where}: bad architecture ({e})") from None

    # ---------------------------------------------------------------- state dicts

    def expected_state(self, spec: GeneratorSpec) -> dict[str, tuple[int, ...]]:
        """Every floating tensor of the network (BN's integer batch counter is not stored)."""
        import torch

        with torch.device("meta"):
            net = self.build(spec)
        return {k: tuple(v.shape) for k, v in net.state_dict().items() if v.is_floating_point()}

    def load(self, spec: GeneratorSpec, state: Mapping, where: Any):
        from srgan_cli.tensorfile import check_state

        model = self.build(spec)
        expected = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
        check_state(state, expected, where, spec)
        model.load_state_dict(state, strict=False)
        return model.eval()

    def recognise(self, state: Mapping) -> str | None:
        if "conv_input.weight" in state and any(k.startswith("upscale4x.") for k in state):
            return "twtygqyy"
        if "head.conv.weight" in state and "tail.weight" in state:
            return "srgan"
        return None

    def convert_state(self, state: Mapping, layout: str, where: Any):
        mapper = {"twtygqyy": _map_twtygqyy, "srgan": _map_srgan}.get(layout)
        if mapper is None:
            raise ConvertError(f"unknown {NAME} layout {layout!r} "
                               f"(supported: {', '.join(self.layouts)})")
        try:
            return mapper(state, where)
        except ValueError as e:  # GeneratorSpec validation
            raise ConvertError(f"{where}: {e}") from None

    # ---------------------------------------------------------------- inference

    def inference_net(self, net, on_cpu: bool):
        """BN folded and the sub-pixel tail; on the CPU also split into row and column
        passes with the last stage in row bands (:mod:`srgan_cli.nets.inference`). The
        split and bands were measured on the CPU (oneDNN), where they pay; elsewhere,
        unmeasured, the last stage runs whole."""
        from srgan_cli.nets.inference import inference_copy

        return inference_copy(net, split_tail=on_cpu, band_rows=None if on_cpu else 0)

    def fused_blocker(self, spec: GeneratorSpec) -> str | None:
        from srgan_cli.nets.fused import runs
        from srgan_cli.nets.inference import InferenceOptions

        return runs(spec, InferenceOptions())

    def fused_or_reason(self, net):
        from srgan_cli.nets.fused import fused_or_reason

        return fused_or_reason(net)


ARCH = SRResNetArchitecture()  # registered by srgan_cli.arch


# ----------------------------------------------------------------------------------------
# State-dict layouts of other projects (``srgan models convert``).
#
# ``twtygqyy`` -- ``Net`` in ``srresnet.py`` of twtygqyy/pytorch-SRResNet (C = 64, B = 16
# there; any C, B and 1-3 upsampling stages are accepted)::
#
#     conv_input.weight             (C, 3, 9, 9)  -> head.conv.weight     (no bias: 0)
#     LeakyReLU(0.2)                              -> head.act.weight     = 0.2 (PReLU, fixed)
#     residual.i.conv1.weight       (C, C, 3, 3)  -> body.i.conv1.weight  (no bias: 0)
#     residual.i.bn1.{weight,bias,running_mean,running_var} -> body.i.bn1.*
#     LeakyReLU(0.2)                              -> body.i.act.weight   = 0.2
#     residual.i.conv2.weight, residual.i.bn2.*   -> body.i.conv2.weight, body.i.bn2.*
#     conv_mid.weight, bn_mid.*                   -> fuse.conv.weight, fuse.bn.*
#     upscale4x.{3j}.weight         (4C, C, 3, 3) -> up.j.conv.weight     (no bias: 0)
#     LeakyReLU(0.2) after each shuffle           -> up.j.act.weight     = 0.2
#     conv_output.weight            (3, C, 9, 9)  -> tail.weight * 2, tail.bias = -1
#
# That network maps [0, 1] to [0, 1]; ours outputs [-1, 1], so the last convolution is
# rescaled (y' = 2y - 1), which is exact. Conv biases are used when present. Variants with
# InstanceNorm (``residual.i.in1``/``in2`` keys, as in some versions and forks of that
# project) have no exact equivalent here and are refused; so is the older ``Net`` (ReLU,
# 3x3 input conv, no ``conv_mid``), by the key and shape checks. Its released
# ``model_srresnet.pth`` pickles the whole ``nn.Module``, which ``weights_only`` loading
# refuses: in that project, ``torch.save(model.state_dict(), "sd.pth")`` and convert that.
#
# ``srgan`` -- our own key names (``head.*``, ``body.i.*``, ``fuse.*``, ``up.j.*``,
# ``tail.*``), e.g. ``torch.save(SRResNet(...).state_dict())``: copied as they are.

LEAKY_SLOPE = 0.2


def _indices(state: Mapping, pattern: str) -> list[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in state if (m := rx.match(k))})


def _scale_for(stages: int, where: Any) -> int:
    if stages not in (1, 2, 3):
        raise ConvertError(f"{where}: {stages} upsampling stages (expected 1-3, i.e. x2/x4/x8)")
    return 2 ** stages


def _map_twtygqyy(state: Mapping, where: Any):
    import torch

    if any(re.match(r"residual\.\d+\.in[12]\.", k) for k in state):
        raise ConvertError(
            f"{where}: an InstanceNorm variant of this layout (residual.i.in1/in2 keys); "
            "instance normalisation uses each image's own statistics, which the fixed "
            "BatchNorm statistics of our generator cannot reproduce: refusing")
    w0 = state["conv_input.weight"]
    if w0.dim() != 4:
        raise ConvertError(f"{where}: conv_input.weight has shape {tuple(w0.shape)}")
    width, channels = int(w0.shape[0]), int(w0.shape[1])
    blocks = _indices(state, r"residual\.(\d+)\.")
    ups = _indices(state, r"upscale4x\.(\d+)\.weight$")
    if not blocks or blocks != list(range(len(blocks))):
        raise ConvertError(f"{where}: residual blocks are not numbered 0..B-1 ({blocks[:5]}...)")
    if ups != [3 * j for j in range(len(ups))]:
        raise ConvertError(f"{where}: upscale4x convolutions expected at 0, 3, 6..., got {ups}")
    spec = GeneratorSpec(scale=_scale_for(len(ups), where), blocks=len(blocks), width=width,
                         channels=channels)
    used: set[str] = set()
    out: dict[str, torch.Tensor] = {}

    def take(src: str) -> torch.Tensor:
        if src not in state:
            raise ConvertError(f"{where}: missing tensor {src} for the twtygqyy layout")
        used.add(src)
        return state[src].detach().to(torch.float32)

    def conv(src: str, dst: str) -> None:
        w = take(f"{src}.weight")
        out[f"{dst}.weight"] = w
        b = f"{src}.bias"
        out[f"{dst}.bias"] = take(b) if b in state else torch.zeros(w.shape[0])

    def bn(src: str, dst: str) -> None:
        for p in ("weight", "bias", "running_mean", "running_var"):
            out[f"{dst}.{p}"] = take(f"{src}.{p}")
        used.add(f"{src}.num_batches_tracked")

    def leaky(dst: str) -> None:
        out[f"{dst}.weight"] = torch.full((width,), LEAKY_SLOPE)

    conv("conv_input", "head.conv")
    leaky("head.act")
    for i in blocks:
        conv(f"residual.{i}.conv1", f"body.{i}.conv1")
        bn(f"residual.{i}.bn1", f"body.{i}.bn1")
        leaky(f"body.{i}.act")
        conv(f"residual.{i}.conv2", f"body.{i}.conv2")
        bn(f"residual.{i}.bn2", f"body.{i}.bn2")
    conv("conv_mid", "fuse.conv")
    bn("bn_mid", "fuse.bn")
    for j, k in enumerate(ups):
        conv(f"upscale4x.{k}", f"up.{j}.conv")
        leaky(f"up.{j}.act")
    conv("conv_output", "tail")
    # [0, 1] output -> our [-1, 1]: y' = 2y - 1
    out["tail.weight"] = out["tail.weight"] * 2.0
    out["tail.bias"] = out["tail.bias"] * 2.0 - 1.0
    return spec, out, used


def _map_srgan(state: Mapping, where: Any):
    import torch

    w0 = state["head.conv.weight"]
    blocks = _indices(state, r"body\.(\d+)\.")
    ups = _indices(state, r"up\.(\d+)\.conv\.weight$")
    if blocks != list(range(len(blocks))) or not blocks:
        raise ConvertError(f"{where}: body blocks are not numbered 0..B-1")
    spec = GeneratorSpec(scale=_scale_for(len(ups), where), blocks=len(blocks),
                         width=int(w0.shape[0]), channels=int(w0.shape[1]))
    out: dict[str, torch.Tensor] = {k: v.detach().to(torch.float32)
                                    for k, v in state.items() if v.is_floating_point()}
    return spec, out, set(state)


__all__ = ["ARCH", "BAND_BYTES", "GeneratorSpec", "HEAP_SLACK", "INPUT_RANGE", "LEAKY_SLOPE",
           "OUTPUT_RANGE", "SRResNetArchitecture"]
