"""``srgan``: our own SRResNet key names (``head.*``, ``body.i.*``, ``fuse.*``, ``up.j.*``,
``tail.*``) in a bare state dict, e.g. ``torch.save(SRResNet(...).state_dict())``: copied
as they are."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from srgan_cli.distribution.layouts.base import Layout, indices, scale_for
from srgan_cli.errors import ConvertError
from srgan_cli.nets.srresnet_spec import GeneratorSpec


def recognise(state: Mapping) -> bool:
    return "head.conv.weight" in state and "tail.weight" in state


def convert(state: Mapping, where: Any):
    import torch

    w0 = state["head.conv.weight"]
    blocks = indices(state, r"body\.(\d+)\.")
    ups = indices(state, r"up\.(\d+)\.conv\.weight$")
    if blocks != list(range(len(blocks))) or not blocks:
        raise ConvertError(f"{where}: body blocks are not numbered 0..B-1")
    try:
        spec = GeneratorSpec(scale=scale_for(len(ups), where), blocks=len(blocks),
                             width=int(w0.shape[0]), channels=int(w0.shape[1]))
    except ValueError as e:
        raise ConvertError(f"{where}: {e}") from None
    out: dict[str, torch.Tensor] = {k: v.detach().to(torch.float32)
                                    for k, v in state.items() if v.is_floating_point()}
    return spec, out, set(state)


LAYOUT = Layout("srgan", "srresnet", "our own key names (head, body.i, fuse, up.j, tail)",
                recognise, convert)
