"""Community super-resolution models (ESRGAN, Real-ESRGAN, SwinIR, HAT, OmniSR, ...) read
from their own files and recognised by spandrel.

The file is read by our code only: safetensors, or ``torch.load(weights_only=True)``,
which rebuilds tensors and plain containers and refuses anything else (pickled code,
classes, TorchScript) without running it. The state dict is unwrapped with spandrel's
``canonicalize_state_dict`` (``params_ema``, ``params``, ``state_dict``, ``model``, ...,
a ``module.`` prefix; then :data:`GAN_WRAPPERS`) and handed to spandrel, which names the architecture, deduces its
hyper-parameters and builds the network. Only single-image super-resolution models of
scale 2, 3, 4 or 8 with RGB input and output are accepted; anything else is refused
with a one-line :class:`~srgan_cli.errors.WeightsError` naming the file.

These networks map RGB in [0, 1] to RGB in [0, 1] (:class:`ForeignNet` clamps). Their facts
are stated by :mod:`srgan_cli.arch.community`; :func:`srgan_cli.load` loads them.
"""

from __future__ import annotations

import math
import os
import pickle
import warnings
from pathlib import Path

import torch

from srgan_cli.errors import WeightsError

SCALES = (2, 3, 4, 8)
# LR pixels each tile reaches past its cuts; blended over the middle half of that (every
# output pixel used has 16 pixels of context). Seam errors measured in docs/foreign_models.md.
OVERLAP = 32
SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt", ".bin")
# checkpoint keys holding the generator beside other networks (spandrel's own wrappers,
# ``params_ema``, ``params``, ``state_dict``, ``model``, ``net``, ..., come first)
GAN_WRAPPERS = ("generator", "netG", "net_g", "G")


class ForeignNet(torch.nn.Module):
    """A spandrel model as a module: (N, 3, H, W) in [0, 1] -> (N, 3, sH, sW) in [0, 1].

    Runs the network the way spandrel calls it (some architectures need a special call),
    padding inputs the network does not accept and clamping the output to [0, 1]."""

    def __init__(self, descriptor) -> None:
        super().__init__()
        self.net = descriptor.model  # a submodule: .to(), .half(), parameters() reach it
        self._descriptor = descriptor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._descriptor(x)


def read_state_dict(path: str | os.PathLike,
                    error: type[WeightsError] = WeightsError) -> dict[str, torch.Tensor]:
    """The tensors of a model file, unwrapped from the usual checkpoint containers.

    ``.safetensors`` (recognised by its header, whatever the name) is read with
    safetensors; anything else with ``torch.load(weights_only=True)`` on the CPU. Raises
    ``error`` (a :class:`WeightsError`) for a missing, unreadable or code-carrying file."""
    from srgan_cli.distribution.tensorfile import load_tensors, looks_like_safetensors

    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such file")
    if looks_like_safetensors(path):
        try:
            obj = load_tensors(path)
        except WeightsError as e:
            raise error(str(e)) from None
    else:
        obj = _torch_load(path, error)
    return unwrap(obj, path, error)


def unwrap(obj, path: str | os.PathLike,
           error: type[WeightsError] = WeightsError) -> dict[str, torch.Tensor]:
    """The state dict inside ``obj`` (what a model file held): spandrel's
    ``canonicalize_state_dict``, then a GAN checkpoint's generator (:data:`GAN_WRAPPERS`);
    ``error`` naming ``path`` when there are no tensors."""
    import spandrel

    if not isinstance(obj, dict):
        raise error(f"{path}: holds a {type(obj).__name__}, not a state dict")
    state = spandrel.canonicalize_state_dict(obj)
    if not any(isinstance(v, torch.Tensor) for v in state.values()):
        # a GAN checkpoint holding both networks: the generator's
        inner = next((obj[k] for k in GAN_WRAPPERS if isinstance(obj.get(k), dict)), None)
        if inner is not None:
            state = spandrel.canonicalize_state_dict(inner)
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise error(f"{path}: no tensors found (keys: {', '.join(map(str, list(state)[:5]))})")
    return tensors


def _torch_load(path: Path, error: type[WeightsError]):
    try:
        with warnings.catch_warnings():  # torch warns before refusing a TorchScript archive
            warnings.simplefilter("ignore")
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        why = next((ln for ln in lines if "global" in ln.lower()), lines[0] if lines else "")
        raise error(
            f"{path}: refused: it holds more than tensors (pickled code or classes), which "
            f"is never unpickled here; save the model's state_dict() instead ({why[:160]})"
        ) from None
    except RuntimeError as e:
        if "TorchScript" in str(e):
            raise error(f"{path}: a TorchScript archive (compiled code), which is not "
                        "loaded; save the model's state_dict() instead") from None
        raise error(f"{path}: not a readable PyTorch or safetensors file "
                    f"({_first_line(e)})") from None
    except Exception as e:  # noqa: BLE001 - any failure to parse an untrusted file
        raise error(f"{path}: not a readable PyTorch or safetensors file "
                    f"({type(e).__name__}: {_first_line(e)})") from None


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return (lines[0] if lines else type(e).__name__)[:160]


def window(model: torch.nn.Module) -> int:
    """The attention window of a window-attention network (SwinIR, HAT, OmniSR, ...:
    those that keep it as ``window_size``), else 1."""
    w = getattr(model, "window_size", None)
    if isinstance(w, int) and w > 0:
        return w
    if isinstance(w, (tuple, list)) and w and all(isinstance(v, int) and v > 0 for v in w):
        return math.lcm(*w)
    return 1


def spandrel_model(state: dict, path: str | os.PathLike):
    """``(ForeignNet, spandrel's descriptor)`` of a state dict spandrel recognises (one
    detection), on the CPU in eval mode; None when it recognises none. A recognised
    network srgan does not run (not single-image SR of a supported scale, not RGB) or
    tensors that do not build it are a one-line :class:`WeightsError` naming ``path``."""
    import spandrel

    path = Path(path)
    try:
        with warnings.catch_warnings():  # e.g. torch.meshgrid's indexing notice
            warnings.simplefilter("ignore")
            d = spandrel.ModelLoader().load_from_state_dict(state)
    except spandrel.UnsupportedModelError:
        return None
    except Exception as e:  # noqa: BLE001 - a false detection fails in many ways
        raise WeightsError(f"{path}: recognised by its keys but its tensors do not build "
                           f"that network ({type(e).__name__}: {_first_line(e)})") from None
    arch = d.architecture.name
    if not isinstance(d, spandrel.ImageModelDescriptor):
        raise WeightsError(f"{path}: a {arch} {d.purpose.lower()} model, not single-image "
                           "super-resolution")
    if d.purpose != "SR" or d.scale == 1:
        what = "restoration" if d.purpose == "Restoration" else d.purpose
        raise WeightsError(f"{path}: a {arch} {what} model (scale {d.scale}), not "
                           "single-image super-resolution")
    if d.scale not in SCALES:
        raise WeightsError(f"{path}: a {arch} model of scale {d.scale}; supported scales "
                           f"are {', '.join(map(str, SCALES))}")
    if d.input_channels != 3 or d.output_channels != 3:
        raise WeightsError(f"{path}: a {arch} model with {d.input_channels} input and "
                           f"{d.output_channels} output channels; only RGB models are run")
    d.model.eval()
    return ForeignNet(d), d


def largest_activation_per_px(net: ForeignNet, size, channels: int = 3, side: int = 32) -> int:
    """Values per LR pixel of the largest tensor any layer of ``net`` returns, measured
    by one forward pass on a ``side`` x ``side`` input (grown to what the network accepts:
    ``size``, a :class:`~srgan_cli.inference.tiling.SizeRule`)
    on the CPU in fp32. A peak-memory estimate multiplies it by the few tensors alive at
    once; it misses intermediates that no module returns (e.g. attention maps computed by
    ``torch`` functions inside a module's forward)."""
    h = w = side
    ph, pw = size.padding(h, w)
    h, w = h + ph, w + pw
    largest = [0]

    def hook(_module, _inputs, output):
        for t in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(t, torch.Tensor):
                largest[0] = max(largest[0], t.numel())

    handles = [m.register_forward_hook(hook) for m in net.net.modules()]
    try:
        with torch.inference_mode():
            net(torch.rand(1, channels, h, w))
    finally:
        for handle in handles:
            handle.remove()
    return math.ceil(largest[0] / (h * w))
