"""Seam error of blended tiling for community SR networks (issue 16).

Runs a network on one LR image whole, then in tiles blended over ``pad`` LR pixels
(``srgan_cli.inference.tiling.run_tiled(blend=True)``, the way foreign models are tiled) and reports
the difference in [0, 1] output units: its largest absolute value and its PSNR
(10 log10(1 / mean squared difference)), fp32 on the CPU. Random networks' outputs are
first mapped to a photo's mean and spread (:func:`_calibrated`). ``pad 0`` (tiles cut hard) is
the reference that shows what blending removes.

The networks are spandrel's architectures at published sizes, with seeded random weights
(no community weights are downloaded: the numbers describe the tiling on these networks'
receptive fields, not a trained model's output; ``--inits``: the architectures' own
initialisation and/or He's variance-preserving one, see :func:`_he`), or any model file
given with ``--model``:

    python scripts/seam_error.py                                   # the default networks
    python scripts/seam_error.py --model RealESRGAN_x4plus.pth --pads 0,16,32,64
    python scripts/seam_error.py --image ../shared/datasets/benchmark/Set5/Set5_LR_x4/img_001.png

Prints a Markdown table (docs/foreign_models.md).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

DEFAULT_IMAGE = (Path(__file__).resolve().parents[1].parent
                 / "shared/datasets/benchmark/Set14/Set14_LR_x4/img_002.png")


def _nets() -> dict:
    """name -> (description, builder): published configurations."""
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.ESRGAN import ESRGAN
    from spandrel.architectures.OmniSR import OmniSR
    from spandrel.architectures.SwinIR import SwinIR

    return {
        "esrgan": ("ESRGAN / RRDBNet x4, 64 features, 23 blocks (RealESRGAN_x4plus's size)",
                   lambda: ESRGAN(num_filters=64, num_blocks=23, scale=4)),
        "compact": ("Real-ESRGAN Compact x4, 64 features, 32 convs (realesr-general-x4v3's size)",
                    lambda: Compact(num_feat=64, num_conv=32, upscale=4)),
        "swinir": ("SwinIR lightweight x4, 60 dim, 4 x 6 layers, window 8 (SwinIR-light's size)",
                   lambda: SwinIR(img_size=64, embed_dim=60, depths=[6] * 4,
                                  num_heads=[6] * 4, window_size=8, mlp_ratio=2.0,
                                  upscale=4, upsampler="pixelshuffledirect")),
        "omnisr": ("OmniSR x4, 64 features, 5 residual groups, window 8 (the paper's size; "
                   "grid attention spans the whole input)",
                   lambda: OmniSR(num_feat=64, block_num=1, window_size=8, res_num=5,
                                  up_scale=4)),
    }


def _he(model: torch.nn.Module) -> torch.nn.Module:
    """Variance-preserving random weights (He, fan-in) for every convolution and linear
    layer, biases 0. The architectures' own initialisations shrink the signal layer by
    layer (PyTorch's default conv init keeps a third of the variance), so their random
    networks barely use far-away pixels; a trained network does."""
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                torch.nn.init.zeros_(m.bias)
    return model


def _calibrated(model: torch.nn.Module, x: torch.Tensor):
    """``model`` followed by one fixed affine map that gives its whole-image output on
    ``x`` a photo's mean and spread (0.45, 0.2), then the [0, 1] clamp: a random network's
    raw output has an arbitrary scale (or is mostly clamped away), which would make its
    seam error meaningless; the same map applies to tiles and whole image, so the error
    is what it would be at the scale of a trained model's output. (The default networks
    are called as spandrel calls them: ``model(x)``.)"""
    raw = model(x)
    m, sd = raw.mean().item(), raw.std().item()

    def fn(t: torch.Tensor) -> torch.Tensor:
        return ((model(t) - m) * (0.2 / sd) + 0.45).clamp_(0, 1)

    return fn


def _load(name: str, init: str, seed: int, tmp: Path):
    """(ForeignNet, its SpandrelSpec, description): built and saved, then read back through
    srgan_cli.load exactly as a user's file would be."""
    import srgan_cli
    from srgan_cli.distribution import community_files

    def read(path):
        model = srgan_cli.load(path)
        return model.net, model.spec

    if Path(name).suffix in community_files.SUFFIXES:
        net, info = read(name)
        return net, info, f"{info.describe()} from {name}"
    desc, build = _nets()[name]
    torch.manual_seed(seed)
    model = build()
    if init == "he":
        model = _he(model)
    path = tmp / f"{name}.pth"
    torch.save(model.state_dict(), path)
    net, info = read(path)
    return net, info, f"{desc}, random weights ({init} init, seed {seed})"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", default=str(DEFAULT_IMAGE))
    ap.add_argument("--nets", default="esrgan,compact,swinir")
    ap.add_argument("--model", action="append", default=[], help="a model file (repeatable)")
    ap.add_argument("--tile", type=int, default=64, help="LR pixels per tile")
    ap.add_argument("--pads", default="0,16,32")
    ap.add_argument("--inits", default="default,he",
                    help="random weights: the architecture's own init and/or he")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    import tempfile

    from srgan_cli.inference.tiling import plan_tiles, run_tiled

    rgb = np.asarray(Image.open(args.image).convert("RGB"), np.float32) / 255
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous()
    h, w = x.shape[2:]
    pads = [int(p) for p in args.pads.split(",")]
    names = [(n, i) for n in args.nets.split(",") if n for i in args.inits.split(",")
             if not args.model] + [(m, "file") for m in args.model]
    print(f"image {args.image} ({w}x{h} LR), tile {args.tile} LR px, fp32, "
          f"{torch.get_num_threads()} thread(s)\n")
    print("| network | pad (LR px) | tiles | max abs diff | PSNR of diff (dB) | "
          "output std | clamped | seconds |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        for name, init in names:
            net, info, desc = _load(name, init, args.seed, Path(tmp))
            fn = net if init == "file" else _calibrated(net.net, x)
            t = time.perf_counter()
            whole = run_tiled(fn, x, info.scale, 0, 0, size=info.size)
            secs = time.perf_counter() - t
            std = whole.std().item()
            clamped = ((whole == 0) | (whole == 1)).float().mean().item()
            print(f"| {desc} | whole | 1 | - | - | {std:.4f} | {clamped:.1%} | {secs:.1f} |")
            for pad in pads:
                t = time.perf_counter()
                tiled = run_tiled(fn, x, info.scale, args.tile, pad, size=info.size, blend=True)
                secs = time.perf_counter() - t
                n = len(plan_tiles(h, w, args.tile, pad, size=info.size, blend=True))
                d = (tiled - whole).abs()
                mse = d.pow(2).mean().item()
                psnr = math.inf if mse == 0 else 10 * math.log10(1 / mse)
                print(f"| {info.arch} | {pad} | {n} | {d.max().item():.2e} | {psnr:.1f} | "
                      f"| | {secs:.1f} |", flush=True)


if __name__ == "__main__":
    main()
