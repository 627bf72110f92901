"""Small community SR networks with random weights, built through spandrel's own
architecture classes (no downloads), and saved as the files users have."""

from __future__ import annotations

from pathlib import Path

import torch

# name -> (spandrel architecture id, scale, builder)
NETS = {
    "esrgan": ("ESRGAN", 4, lambda: _esrgan()),
    "compact": ("Compact", 4, lambda: _compact(4)),
    "swinir": ("SwinIR", 2, lambda: _swinir()),
}


def _esrgan():
    from spandrel.architectures.ESRGAN import ESRGAN

    return ESRGAN(num_filters=8, num_blocks=1, scale=4)


def _compact(scale: int, channels: int = 3):
    from spandrel.architectures.Compact import Compact

    return Compact(num_in_ch=channels, num_out_ch=channels, num_feat=8, num_conv=2,
                   upscale=scale)


def _swinir():
    from spandrel.architectures.SwinIR import SwinIR

    # two layers: the second one shifts its windows (the attention mask path)
    return SwinIR(img_size=16, embed_dim=12, depths=[2], num_heads=[2], window_size=4,
                  upscale=2, upsampler="pixelshuffledirect", mlp_ratio=2.0)


def state_dict(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return NETS[name][2]().state_dict()


def save(state: dict, path: Path) -> Path:
    """``state`` as a ``.safetensors`` file or (any other suffix) ``torch.save``'d."""
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return path


def model_file(tmp_path: Path, name: str, suffix: str = ".pth", seed: int = 0) -> Path:
    return save(state_dict(name, seed), tmp_path / f"{name}{suffix}")
