"""What a peer repository's single-image script does, for whole-process comparisons
(docs/performance.md, "A single image, whole process").

    python scripts/peer_upscale.py IN.png OUT.png [--model srgan]

The pattern of the common PyTorch SRGAN repositories' ``test_image.py``: import torch and
torchvision, build the generator and load its weights, read the image with Pillow,
``ToTensor``, a plain eager fp32 ``model(x)`` on the whole image (NCHW, ``torch.no_grad``:
the baseline of ``srgan benchmark --speed --baseline eager-fp32``), ``ToPILImage`` and
``save`` with Pillow's defaults (PNG zlib level 6). Same weights as ``srgan upscale``
(loaded as trained: BatchNorm unfolded); one process per image.
"""

from __future__ import annotations

import argparse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--model", default=None, help="default: the registry's default model")
    a = ap.parse_args()

    import torch
    from PIL import Image
    from torchvision.transforms import ToPILImage, ToTensor

    import srgan_cli

    net = srgan_cli.load(a.model).net
    net.eval()
    x = ToTensor()(Image.open(a.src).convert("RGB"))[None]
    with torch.no_grad():
        y = net(x)[0]
    # our generators end in tanh: [-1, 1] to [0, 1], as those scripts do for theirs
    ToPILImage()(((y + 1) / 2).clamp(0, 1)).save(a.dst)


if __name__ == "__main__":
    main()
