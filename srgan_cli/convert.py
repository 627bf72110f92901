"""Converting SRResNet state dicts from other PyTorch projects into our weights files.

Files are read with ``torch.load(weights_only=True)`` (tensors and plain containers only;
no pickled code runs) or as safetensors. Checkpoint wrappers ``{"model" | "state_dict" |
"generator" | "netG" | "params": <state dict>}`` and a ``module.`` prefix (DataParallel)
are unwrapped. Every source tensor must be used and every shape must match the generator
rebuilt from them; anything else is refused with a message naming the first offender.

Supported layouts
-----------------

``twtygqyy`` -- ``Net`` in ``srresnet.py`` of twtygqyy/pytorch-SRResNet (C = 64, B = 16
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
  rescaled (y' = 2y - 1), which is exact. Conv biases are used when present. Variants
  with InstanceNorm (``residual.i.in1``/``in2`` keys, as in some versions and forks of
  that project) have no exact equivalent here and are refused; so is the older ``Net``
  (ReLU, 3x3 input conv, no ``conv_mid``), by the key and shape checks. Its released ``model_srresnet.pth``
  pickles the whole ``nn.Module``, which ``weights_only`` loading refuses: in that
  project, ``torch.save(model.state_dict(), "sd.pth")`` and convert that.

``srgan`` -- our own key names (``head.*``, ``body.i.*``, ``fuse.*``, ``up.j.*``,
``tail.*``), e.g. ``torch.save(SRResNet(...).state_dict())``: copied as they are.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from srgan_cli.errors import ConvertError

LAYOUTS = ("twtygqyy", "srgan")
LEAKY_SLOPE = 0.2
_WRAPPERS = ("state_dict", "model", "generator", "netG", "params", "params_ema")


def _load_state(path: Path) -> dict:
    import pickle

    import torch

    from srgan_cli.errors import WeightsError
    from srgan_cli.tensorfile import check_header

    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError as e:
        raise ConvertError(f"{path}: cannot read ({e.strerror or e})") from None
    if len(head) == 9 and head[8:9] == b"{":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            check_header(path)
            return load_file(str(path))
        except (SafetensorError, WeightsError, OSError, ValueError) as e:
            raise ConvertError(f"{path}: unreadable safetensors file ({e})") from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ConvertError(
            f"{path}: refused: it holds more than tensors (e.g. a pickled nn.Module), which "
            "weights_only loading does not unpickle; save model.state_dict() in the original "
            f"project and convert that ({first[:160]})") from None
    except (OSError, RuntimeError, EOFError, ValueError) as e:
        raise ConvertError(f"{path}: not a readable PyTorch file ({e})") from None
    for _ in range(3):  # nested wrappers, e.g. {"model": {"state_dict": ...}}
        if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            inner = next((obj[k] for k in _WRAPPERS if isinstance(obj.get(k), dict)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, dict) or not obj:
        raise ConvertError(f"{path}: no state dict found (got {type(obj).__name__})")
    state = {}
    for k, v in obj.items():
        if isinstance(v, torch.Tensor):
            state[k[len("module."):] if k.startswith("module.") else k] = v
    if not state:
        raise ConvertError(f"{path}: no tensors found")
    return state


def detect_layout(state: dict) -> str | None:
    if "conv_input.weight" in state and any(k.startswith("upscale4x.") for k in state):
        return "twtygqyy"
    if "head.conv.weight" in state and "tail.weight" in state:
        return "srgan"
    return None


def _indices(state: dict, pattern: str) -> list[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in state if (m := rx.match(k))})


def _scale_for(stages: int, where: str) -> int:
    if stages not in (1, 2, 3):
        raise ConvertError(f"{where}: {stages} upsampling stages (expected 1-3, i.e. x2/x4/x8)")
    return 2 ** stages


def _map_twtygqyy(state: dict, where: str):
    import torch

    from srgan_cli.nets.generator import GeneratorSpec

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
            raise ConvertError(f"{where}: missing tensor {src} for the {LAYOUTS[0]} layout")
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


def _map_srgan(state: dict, where: str):
    import torch

    from srgan_cli.nets.generator import GeneratorSpec

    w0 = state["head.conv.weight"]
    blocks = _indices(state, r"body\.(\d+)\.")
    ups = _indices(state, r"up\.(\d+)\.conv\.weight$")
    if blocks != list(range(len(blocks))) or not blocks:
        raise ConvertError(f"{where}: body blocks are not numbered 0..B-1")
    spec = GeneratorSpec(scale=_scale_for(len(ups), where), blocks=len(blocks),
                         width=int(w0.shape[0]), channels=int(w0.shape[1]))
    out = {k: v.detach().to(torch.float32) for k, v in state.items() if v.is_floating_point()}
    used = set(state)
    return spec, out, used


def convert(src: str | os.PathLike, dst: str | os.PathLike, layout: str = "auto",
            overwrite: bool = False) -> tuple[str, "object"]:
    """Convert ``src`` to our safetensors format at ``dst``; returns ``(layout, ModelInfo)``."""
    from srgan_cli.hub import sha256_file
    from srgan_cli.nets.generator import SRResNet
    from srgan_cli.weights import read_info, save_generator

    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise ConvertError(f"{src}: no such file")
    if dst.exists() and not overwrite:
        raise ConvertError(f"{dst}: exists (pass --overwrite)")
    if dst.suffix != ".safetensors":
        raise ConvertError(f"{dst}: the output must be a .safetensors file")
    state = _load_state(src)
    found = detect_layout(state)
    if layout == "auto":
        if found is None:
            keys = ", ".join(sorted(state)[:4])
            raise ConvertError(
                f"{src}: unrecognised state-dict layout (first keys: {keys}, ...); supported: "
                f"{', '.join(LAYOUTS)} (see `srgan models convert --help`)")
        layout = found
    elif layout not in LAYOUTS:
        raise ConvertError(f"unknown layout {layout!r} (supported: {', '.join(LAYOUTS)})")
    elif found != layout:
        raise ConvertError(f"{src}: does not look like the {layout} layout")
    where = str(src)
    mapper = {"twtygqyy": _map_twtygqyy, "srgan": _map_srgan}[layout]
    try:
        spec, mapped, used = mapper(state, where)
    except ValueError as e:  # GeneratorSpec validation
        raise ConvertError(f"{src}: {e}") from None
    unused = sorted(k for k in set(state) - used if not k.endswith("num_batches_tracked"))
    if unused:
        raise ConvertError(f"{src}: {len(unused)} tensors the {layout} layout does not use "
                           f"(e.g. {unused[0]}); refusing a partial conversion")
    model = SRResNet(spec)
    expected = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
    missing = sorted(set(expected) - set(mapped))
    extra = sorted(set(mapped) - set(expected))
    if missing or extra:
        raise ConvertError(f"{src}: does not map onto {spec}: "
                           + (f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"))
    for k, v in expected.items():
        if tuple(mapped[k].shape) != tuple(v.shape):
            raise ConvertError(f"{src}: tensor for {k} has shape {tuple(mapped[k].shape)}, "
                               f"expected {tuple(v.shape)} for {spec}")
    model.load_state_dict(mapped, strict=False)
    save_generator(model, dst, {
        "stage": "converted",
        "source_layout": layout,
        "source_file": src.name,
        "source_sha256": sha256_file(src),
    })
    return layout, read_info(dst)
