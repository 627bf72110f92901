"""VGG19 feature extractor for the paper's content losses (Sec. 2.2.1).

``VGG54`` is the ReLU after the 4th convolution before the 5th max-pool (torchvision
``features[:36]``); ``VGG22`` the ReLU after the 2nd convolution before the 2nd max-pool
(``features[:9]``). ``vgg-multi`` is not the paper's: the pre-activation outputs of conv1_2,
conv2_2, conv3_4, conv4_4 and conv5_4 (``features`` indices 2, 7, 16, 25, 34), compared by L1
with weights 0.1, 0.1, 1, 1, 1, the layer set and weights Real-ESRGAN's perceptual loss uses:
mid-level texture as well as VGG54's objects. Weights come from a safetensors file in torchvision's layout
(``--vgg-weights`` / ``$SRGAN_VGG_WEIGHTS`` / ``../shared/weights``); nothing ever trains
against a randomly initialised VGG.

Two file forms are read: plain tensors (``vgg19-features-imagenet-f16``), and the lossless
8-bit codebook form of the same weights (``vgg19-features-imagenet-u8``, half the size),
where a tensor ``K`` is stored as ``K.idx`` (uint8) and ``K.codebook`` (256 values) and
``K = K.codebook[K.idx]``. The codebook form is preferred when both are present.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from srgan_cli.errors import WeightsError
from srgan_cli.nets.srresnet_spec import output_to_unit

ENV = "SRGAN_VGG_WEIGHTS"
CUTS = {"vgg22": 9, "vgg54": 36, "vgg-multi": 35}
# vgg-multi: features index of each tapped convolution (its output before the ReLU) -> weight
MULTI_TAPS = {2: 0.1, 7: 0.1, 16: 1.0, 25: 1.0, 34: 1.0}
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
RESCALE = 1 / 12.75  # the paper's rescaling of VGG feature maps
# in ../shared/weights, in order of preference (the same weights; u8 is half the size)
SHARED_FILES = ("vgg19-features-imagenet-u8.safetensors", "vgg19-features-imagenet-f16.safetensors")


def default_weights() -> Path | None:
    env = os.environ.get(ENV)
    if env:
        return Path(env)
    from srgan_cli.paths import shared_dir

    s = shared_dir()
    for name in SHARED_FILES if s else ():
        p = s / "weights" / name
        if p.is_file():
            return p
    return None


def decode_state(raw: dict[str, torch.Tensor], where: str = "VGG weights") -> dict[str, torch.Tensor]:
    """Plain tensors from a state dict that may hold codebook pairs (``K.idx`` uint8 and
    ``K.codebook``, decoded as ``K = codebook[idx]``); other tensors pass through."""
    out: dict[str, torch.Tensor] = {}
    for k, v in raw.items():
        if k.endswith(".codebook"):
            if k.removesuffix(".codebook") + ".idx" not in raw:
                raise WeightsError(f"{where}: {k} has no matching .idx tensor")
            continue
        if k.endswith(".idx"):
            base = k.removesuffix(".idx")
            book = raw.get(base + ".codebook")
            if book is None:
                raise WeightsError(f"{where}: {k} has no matching .codebook tensor")
            if v.dtype != torch.uint8 or book.dim() != 1 or book.numel() != 256:
                raise WeightsError(f"{where}: {base} is not an 8-bit codebook pair "
                                   f"(idx {v.dtype}, codebook shape {tuple(book.shape)})")
            out[base] = book[v.long()]
        else:
            out[k] = v
    return out


class VGGFeatures(nn.Module):
    """Frozen VGG19 features up to ``layer``; input RGB in [0, 1], ImageNet-normalised."""

    def __init__(self, layer: str = "vgg54") -> None:
        super().__init__()
        if layer not in CUTS:
            raise ValueError(f"unknown VGG layer {layer!r} ({', '.join(CUTS)})")
        self.features = vgg19_features()[: CUTS[layer]]
        if layer == "vgg-multi":  # the taps are read before their ReLU: no in-place ReLUs
            for m in self.features:
                if isinstance(m, nn.ReLU):
                    m.inplace = False
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))
        self.layer = layer

    @classmethod
    def load(cls, layer: str = "vgg54", path: str | os.PathLike | None = None) -> "VGGFeatures":
        """VGG19 features from ``path``, else ``$SRGAN_VGG_WEIGHTS`` / ``../shared/weights``,
        else torchvision's ImageNet weights (downloaded once into the torch hub cache, read
        with ``weights_only=True``, hash checked). Never random weights."""
        path = Path(path) if path else default_weights()
        if path is None:
            state, why = _torchvision_state()
            if state is None:
                raise WeightsError(
                    "the VGG content loss needs ImageNet VGG19 weights and torchvision's could "
                    f"not be downloaded ({why}): pass --vgg-weights PATH or set {ENV} (a "
                    "safetensors file with torchvision's vgg19().features layout)")
            return cls._from_state(layer, state, "torchvision VGG19_Weights.IMAGENET1K_V1")
        if not path.is_file():
            raise WeightsError(f"{path}: no such VGG weights file")
        from srgan_cli.distribution.tensorfile import load_tensors

        state = decode_state(load_tensors(path), str(path))
        state = {k.removeprefix("features."): v.float() for k, v in state.items()}
        return cls._from_state(layer, state, str(path))

    @classmethod
    def _from_state(cls, layer: str, state: dict[str, torch.Tensor], where: str) -> "VGGFeatures":
        model = cls(layer)
        want = model.features.state_dict()
        from srgan_cli.distribution.tensorfile import check_state

        check_state(state, want, where, "VGG19 features", extra_ok=True)
        model.features.load_state_dict({k: state[k].float() for k in want})
        model.requires_grad_(False)
        return model.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features((x - self.mean) / self.std)

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """vgg-multi: the tapped pre-activation feature maps (``MULTI_TAPS``' order)."""
        out = []
        x = (x - self.mean) / self.std
        for i, m in enumerate(self.features):
            x = m(x)
            if i in MULTI_TAPS:
                out.append(x)
        return out


def vgg19_features() -> nn.Sequential:
    """torchvision's ``vgg19().features`` (same layers and keys), without building and
    randomly initialising the 120M-parameter classifier (seconds of CPU time)."""
    try:
        from torchvision.models.vgg import cfgs, make_layers

        return make_layers(cfgs["E"])
    except (ImportError, KeyError):  # a torchvision without these helpers
        from torchvision.models import vgg19

        return vgg19(weights=None).features


def _torchvision_state() -> tuple[dict[str, torch.Tensor] | None, str]:
    """torchvision's ImageNet VGG19 ``features`` weights, or (None, why not)."""
    from srgan_cli.paths import offline

    if offline():
        return None, "offline: HF_HUB_OFFLINE is set"
    import contextlib
    import io

    from torchvision.models import VGG19_Weights

    try:
        with contextlib.redirect_stderr(io.StringIO()):  # torch.hub prints a progress line
            full = VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=False, check_hash=True,
                                                              weights_only=True)
    except Exception as e:  # noqa: BLE001 - URLError, hash mismatch, unpickling refusal...
        return None, " ".join(f"{type(e).__name__}: {e}".split())[:200]
    return {k.removeprefix("features."): v for k, v in full.items()
            if k.startswith("features.")}, ""


def content_features(vgg: VGGFeatures, x: torch.Tensor) -> list[torch.Tensor]:
    """What the content loss compares, for an image in [-1, 1]: the rescaled feature map
    (VGG22, VGG54), or the tapped maps (``vgg-multi``)."""
    if vgg.layer == "vgg-multi":
        return vgg.taps(output_to_unit(x))
    return [vgg(output_to_unit(x)) * RESCALE]


def feature_distance(vgg: VGGFeatures, fs: list[torch.Tensor],
                     ft: list[torch.Tensor]) -> torch.Tensor:
    """The content loss between two images' :func:`content_features`: mean squared
    distance (VGG22, VGG54), or the weighted sum of the taps' mean absolute differences."""
    if vgg.layer == "vgg-multi":
        return sum(w * torch.mean(torch.abs(a.float() - b.float()))
                   for w, a, b in zip(MULTI_TAPS.values(), fs, ft))
    return torch.mean((fs[0].float() - ft[0].float()) ** 2)


def content_loss(vgg: VGGFeatures, sr: torch.Tensor, *targets: torch.Tensor):
    """Euclidean (mean squared) distance of rescaled VGG features (the paper's VGG22 and
    VGG54), or for ``vgg-multi`` the weighted sum of its taps' mean absolute differences;
    images in [-1, 1]. With several targets, one distance each (a tuple), SR's features
    computed once."""
    fs = content_features(vgg, sr)
    out = []
    for t in targets:
        with torch.no_grad():
            ft = content_features(vgg, t)
        out.append(feature_distance(vgg, fs, ft))
    return out[0] if len(out) == 1 else tuple(out)
