"""A model as an ONNX file, to run it in onnxruntime, OpenVINO, ncnn or TensorRT.

The graph is an image-to-image function (:data:`CONVENTION`): input ``lr``, float32 NCHW
RGB in [0, 1] (N, 3, H, W); output ``sr``, float32 NCHW RGB in [0, 1] (N, 3, sH, sW),
clamped. Batch, height and width are dynamic. The network is exported in its exact
inference form (the architecture's ``inference_net``: for SRResNet, BatchNorm folded into
the convolutions and the sub-pixel tail), and its raw output range (ours is [-1, 1]) is
mapped to [0, 1] inside the graph, so a runtime needs no pre- or post-processing beyond
scaling 8-bit pixels by 1/255 and back. The image's borders are handled inside the graph
as ``srgan upscale --border`` handles them (default: mirrored), so the file computes what
``srgan upscale`` computes untiled. The file's ``metadata_props`` repeat the convention,
the scale, the border and where the weights came from. Each side of the input must be at
least :data:`MIN_SIDE` pixels.

Exporting needs the optional packages ``onnx`` and ``onnxscript`` (``pip install
'srgan[onnx]'``): torch's exporter (``torch.onnx.export(dynamo=True)``) builds the graph
with them. Nothing here imports torch at module level.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srgan_cli.errors import ExportError, SrganError
from srgan_cli.files import atomic_write

OPSET = 18  # what torch's dynamo exporter writes natively (lower: through a version converter)
INPUT_NAME = "lr"
OUTPUT_NAME = "sr"
CONVENTION = ("input 'lr': float32 NCHW RGB in [0, 1], shape (N, 3, H, W); output 'sr': "
              "float32 NCHW RGB in [0, 1], shape (N, 3, scale*H, scale*W), clamped")
INSTALL = "pip install 'srgan[onnx]' (or: pip install onnx onnxscript)"
NEEDS = ("onnx", "onnxscript")
MIN_SIDE = 2  # the mirrored border's index arithmetic needs two pixels a side


@dataclass(frozen=True)
class OnnxExport:
    """What :func:`export_onnx` wrote: the file, the model file it came from and its
    metadata (``metadata_props`` of the ONNX model)."""

    path: Path
    source: Path
    scale: int
    metadata: dict[str, str]


def missing_packages() -> list[str]:
    """The optional packages exporting needs that are not installed."""
    import importlib.util

    return [name for name in NEEDS if importlib.util.find_spec(name) is None]


def _image_net(net: Any, d: Any, border: str):
    """``net`` (a network of descriptor ``d``) as ``srgan upscale --border BORDER`` runs it
    untiled: the input extended by mirrored pixels (none for ``zero``), the network, the
    output cropped back and its ``output_range`` mapped to [0, 1], clamped."""
    import torch

    from srgan_cli.inference.runner import border_width
    from srgan_cli.inference.tiling import mirror_pad

    lo, hi = (float(v) for v in d.output_range)
    pad = border_width(border, d.tile_pad)  # as srgan upscale's default
    cut = pad * d.scale

    class Image(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if pad:
                x = mirror_pad(x, pad, border)
            y = self.net(x)
            if cut:
                y = y[:, :, cut:y.shape[2] - cut, cut:y.shape[3] - cut]
            if (lo, hi) != (0.0, 1.0):
                y = (y - lo) * (1.0 / (hi - lo))
            return y.clamp(0.0, 1.0)

    return Image().eval(), pad


def _example_sides(rule) -> tuple[int, int]:
    """An example input's height and width that ``rule`` (a size rule) accepts, different
    from each other unless it asks for squares (so neither is fixed by the trace)."""
    h = rule.side(16)
    return h, (h if rule.square else rule.side(h + 1))


def export_onnx(model: str | os.PathLike, out: str | os.PathLike, *,
                border: str = "symmetric", overwrite: bool = False) -> OnnxExport:
    """Write ``model`` (a registered name, hf:// URL or model file: ours or a community
    model) to ``out`` as an ONNX file (see the module docstring for its convention).
    ``border``: as ``srgan upscale --border`` (its default, ``symmetric``, mirrors
    :data:`~srgan_cli.inference.runner.MIRROR_PAD` pixels inside the graph; ``zero`` is the bare
    network with its convolutions' zero padding).

    The file is written atomically. One-line :class:`ExportError` for a missing optional
    package, an existing ``out`` without ``overwrite``, or a network the exporter cannot
    export; :class:`~srgan_cli.errors.WeightsError` for a model that does not load.
    """
    out = Path(out)
    missing = missing_packages()
    if missing:
        raise ExportError(f"exporting to ONNX needs {' and '.join(missing)}: {INSTALL}")
    from srgan_cli.inference.runner import BORDERS

    if border not in BORDERS:
        raise ExportError(f"unknown border {border!r} ({', '.join(BORDERS)})")
    if out.is_dir():
        raise ExportError(f"{out}: is a folder; give the ONNX file to write")
    if out.exists() and not overwrite:
        raise ExportError(f"{out}: already exists (use --overwrite)")
    from srgan_cli.api import load

    m = load(model)
    source, d = m.path, m.facts
    graph, pad = _image_net(m.inference_form(on_cpu=False)[0], d, border)
    meta = {"srgan.source": source.name,
            "srgan.sha256": m.sha256, "srgan.arch": d.arch,
            "srgan.summary": d.summary, "srgan.scale": str(d.scale),
            "srgan.convention": CONVENTION, "srgan.opset": str(OPSET),
            "srgan.border": f"{border} ({pad} px)" if pad else border}
    if str(model) != str(source):  # a registered name or hf:// URL (not a local path)
        meta["srgan.model"] = str(model)
    if m.stage != "unknown":
        meta["srgan.stage"] = m.stage
    program = _trace(graph, d, source)
    for k, v in meta.items():
        program.model.metadata_props[k] = v
    program.model.doc_string = f"{source.name}: x{d.scale} super-resolution; {CONVENTION}"
    atomic_write(out, lambda tmp: program.save(tmp, external_data=False))
    return OnnxExport(path=out, source=source, scale=d.scale, metadata=meta)


def _trace(graph: Any, d: Any, source: Path):
    """The ONNX program of ``graph`` (torch's dynamo exporter), batch, height and width
    dynamic; :class:`ExportError` naming ``source`` when it cannot be exported."""
    import torch
    from torch.export import Dim

    h, w = _example_sides(d.size_rule())
    x = torch.rand(2, d.channels, h, w)  # not 1: torch.export specialises sizes of 1
    side = Dim("height", min=MIN_SIDE)
    dims = {0: Dim("batch", min=1), 2: side,
            3: side if d.size_rule().square else Dim("width", min=MIN_SIDE)}
    quiet = logging.getLogger("torch")  # torch.export logs a failed trace at ERROR level
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            # non-strict torch.export only: torch.onnx.export would retry a failed trace in
            # strict mode, a minute longer, to the same end for the networks tried
            program = torch.export.export(graph, (x,), dynamic_shapes={"x": dims},
                                          strict=False)
            return torch.onnx.export(program, (x,), dynamo=True, verbose=False,
                                     opset_version=OPSET, input_names=[INPUT_NAME],
                                     output_names=[OUTPUT_NAME], optimize=True)
    except SrganError:
        raise
    except Exception as e:  # noqa: BLE001 - the exporter fails in many ways
        lines = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip().splitlines()
        why = (lines[0] if lines else "").split(" Next steps")[0][:160]
        raise ExportError(f"{source}: the {d.arch} network ({d.summary}) cannot be exported "
                          f"to ONNX with dynamic sizes ({type(e).__name__}: {why})") from None
    finally:
        quiet.setLevel(level)


__all__ = ["CONVENTION", "INPUT_NAME", "INSTALL", "OPSET", "OUTPUT_NAME", "OnnxExport",
           "export_onnx", "missing_packages"]
