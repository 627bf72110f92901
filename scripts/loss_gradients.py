"""Each generator loss term's value and gradient norm on one batch of a model's outputs:
how the terms of a recipe weigh against each other, and what weight puts a new term at
an old one's scale (``--content-loss vgg-multi`` against ``vgg54``).

    python scripts/loss_gradients.py srgan-resize
    python scripts/loss_gradients.py MODEL --data ../shared/datasets/train/bsds400 --batch 16

A seeded batch of HR crops (``--crop`` px) from the images in ``--data``, drawn and
downscaled as training does (``train.data.sample_batch``), the model's SR in fp32. For each term: its
value and the L2 norm of its gradient with respect to SR; the VGG content losses
unweighted (as the training log shows them), the others times the weight given
(``--pixel-weight`` ...), as their rows say. The adversarial term
needs a discriminator and is not here.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="a registered name or a .safetensors file")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "datasets" / "train" / "bsds400")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=96)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--losses", default="vgg54,vgg-multi",
                    help="content losses to compare (comma-separated)")
    ap.add_argument("--pixel-weight", type=float, default=0.5)
    ap.add_argument("--grid-weight", type=float, default=0.6)
    ap.add_argument("--artifact-weight", type=float, default=1.0)
    ap.add_argument("--vgg-weights", default=None)
    args = ap.parse_args()

    import srgan_cli
    from srgan_cli.nets.vgg import VGGFeatures, content_loss
    from srgan_cli.train.data import ImageBank, sample_batch
    from srgan_cli.train.losses import ArtifactLoss, GridLoss, PixelLoss

    torch.manual_seed(args.seed)
    bank = ImageBank.from_dirs([str(args.data)], args.crop)
    if not len(bank):
        print(f"error: {args.data}: no training images of at least {args.crop} px",
              file=sys.stderr)
        return 1
    # as training draws them: LR in [0, 1], HR in the losses' [-1, 1]
    lr, hr = sample_batch(bank, args.batch, args.crop, 4, torch.Generator().manual_seed(args.seed))
    net = srgan_cli.load(args.model).net.float().eval()
    with torch.no_grad():
        sr = net(lr)

    vggs = {name: VGGFeatures.load(name, args.vgg_weights)
            for name in args.losses.split(",") if name}
    terms = {name: functools.partial(lambda s, v: content_loss(v, s, hr), v=v)
             for name, v in vggs.items()}
    if args.pixel_weight:
        terms[f"l1 x {args.pixel_weight:g}"] = lambda s: args.pixel_weight * PixelLoss("l1")(s, hr)
    if args.grid_weight:
        grid = GridLoss()
        terms[f"grid x {args.grid_weight:g}"] = lambda s: args.grid_weight * grid(s, hr)
    if args.artifact_weight:
        art = ArtifactLoss()
        terms[f"artifact x {args.artifact_weight:g}"] = \
            lambda s: args.artifact_weight * art(s, hr)
    print(f"{args.model}: {args.batch} crops of {args.crop} px from {args.data}, seed {args.seed}")
    print(f"{'term':>16} {'value':>12} {'|grad| wrt SR':>14}")
    for name, fn in terms.items():
        s = sr.clone().requires_grad_(True)
        value = fn(s)
        value.backward()
        print(f"{name:>16} {value.item():12.5g} {s.grad.norm().item():14.5g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
