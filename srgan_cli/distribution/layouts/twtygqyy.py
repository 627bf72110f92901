"""``twtygqyy``: ``Net`` in ``srresnet.py`` of twtygqyy/pytorch-SRResNet (C = 64, B = 16
there; any C, B and 1-3 upsampling stages are accepted)::

    conv_input.weight             (C, 3, 9, 9)  -> head.conv.weight     (no bias: 0)
    LeakyReLU(0.2)                              -> head.act.weight     = 0.2 (PReLU, fixed)
    residual.i.conv1.weight       (C, C, 3, 3)  -> body.i.conv1.weight  (no bias: 0)
    residual.i.bn1.{weight,bias,running_mean,running_var} -> body.i.bn1.*
    LeakyReLU(0.2)                              -> body.i.act.weight   = 0.2
    residual.i.conv2.weight, residual.i.bn2.*   -> body.i.conv2.weight, body.i.bn2.*
    conv_mid.weight, bn_mid.*                   -> fuse.conv.weight, fuse.bn.*
    upscale4x.{3j}.weight         (4C, C, 3, 3) -> up.j.conv.weight     (no bias: 0)
    LeakyReLU(0.2) after each shuffle           -> up.j.act.weight     = 0.2
    conv_output.weight            (3, C, 9, 9)  -> tail.weight * 2, tail.bias = -1

That network maps [0, 1] to [0, 1]; ours outputs [-1, 1], so the last convolution is
rescaled (y' = 2y - 1), which is exact. Conv biases are used when present. Variants with
InstanceNorm (``residual.i.in1``/``in2`` keys, as in some versions and forks of that
project) have no exact equivalent here and are refused; so is the older ``Net`` (ReLU,
3x3 input conv, no ``conv_mid``), by the key and shape checks. Its released
``model_srresnet.pth`` pickles the whole ``nn.Module``, which ``weights_only`` loading
refuses: in that project, ``torch.save(model.state_dict(), "sd.pth")`` and convert that.

"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from srgan_cli.distribution.layouts.base import Layout, indices, scale_for
from srgan_cli.errors import ConvertError
from srgan_cli.nets.srresnet_spec import OUTPUT_RANGE, GeneratorSpec

LEAKY_SLOPE = 0.2


def recognise(state: Mapping) -> bool:
    return "conv_input.weight" in state and any(k.startswith("upscale4x.") for k in state)


def convert(state: Mapping, where: Any):
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
    blocks = indices(state, r"residual\.(\d+)\.")
    ups = indices(state, r"upscale4x\.(\d+)\.weight$")
    if not blocks or blocks != list(range(len(blocks))):
        raise ConvertError(f"{where}: residual blocks are not numbered 0..B-1 ({blocks[:5]}...)")
    if ups != [3 * j for j in range(len(ups))]:
        raise ConvertError(f"{where}: upscale4x convolutions expected at 0, 3, 6..., got {ups}")
    try:
        spec = GeneratorSpec(scale=scale_for(len(ups), where), blocks=len(blocks),
                             width=width, channels=channels)
    except ValueError as e:
        raise ConvertError(f"{where}: {e}") from None
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
    # [0, 1] output -> ours, [lo, hi]: y' = lo + (hi - lo) y (2y - 1 for [-1, 1])
    lo, hi = OUTPUT_RANGE
    out["tail.weight"] = out["tail.weight"] * (hi - lo)
    out["tail.bias"] = out["tail.bias"] * (hi - lo) + lo
    return spec, out, used


LAYOUT = Layout("twtygqyy", "srresnet",
                "twtygqyy/pytorch-SRResNet (conv_input, residual.i.{conv1,bn1,conv2,bn2}, "
                "conv_mid, bn_mid, upscale4x.{0,3}, conv_output; LeakyReLU 0.2)",
                recognise, convert)
