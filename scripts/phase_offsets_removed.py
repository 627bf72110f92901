"""How much of a model's score is its 4-px lattice: its saved benchmark outputs with their
sub-pixel phase offsets removed, scored again (LPIPS, Y-PSNR, grid excess).

    srgan benchmark set5 set14 -m srgan --precision fp32 --save-images /tmp/sr
    python scripts/phase_offsets_removed.py /tmp/sr srgan --windows 8,16,32
    srgan benchmark set5 set14 -m srgan -m bicubic --precision fp32 --save-images /tmp/sr
    python scripts/phase_offsets_removed.py /tmp/sr srgan --windows 2,3,4,6,16 --reference bicubic

For each output image and window W (LR pixels), per channel: each of the 16 sub-pixel
phases' mean over a W x W window of LR positions around every position (a box filter on
the phase's own grid), minus the mean of the 16 such means, is the local lattice; it is
subtracted. That removes any pattern locked to the LR grid whose amplitude changes slowly
over W LR pixels, and also the phase offsets natural detail has near edges (which is why
it is a measurement, not a filter to ship: look at the outputs it writes beside the
method's, ``<method>_offsets_removed_W``). With ``--reference METHOD`` the offsets removed
are those of the residual against that method's outputs (bicubic: no lattice), so edges
keep the phase structure they share with it: the measurement that led to the lattice
filter of ``srgan-delattice`` (:mod:`srgan_cli.nets.delattice`, which also removes the
phases' common local mean). HR comes from the benchmark folders
(``../shared/datasets/benchmark`` or ``--bench-dir``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PERIOD = 4


def remove_phase_offsets(img: np.ndarray, window: int,
                         reference: np.ndarray | None = None) -> np.ndarray:
    """``img`` (H, W, C) uint8 without its local sub-pixel phase offsets
    (:func:`srgan_cli.nets.delattice.remove_phase_offsets`), rounded back to 8 bits; with
    ``reference`` (another method's output for the same LR), the offsets of the residual
    ``img - reference`` are the ones removed."""
    from srgan_cli.nets.delattice import remove_phase_offsets as remove

    x = torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1)[None]
    base = (torch.zeros_like(x) if reference is None
            else torch.from_numpy(reference.astype(np.float32)).permute(2, 0, 1)[None])
    out = (base + remove(x - base, window, PERIOD))[0].permute(1, 2, 0).numpy()
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("saved", type=Path, help="srgan benchmark --save-images folder")
    ap.add_argument("method", help="the method's folder name under each dataset")
    ap.add_argument("--windows", default="8,16,32", help="window sizes in LR pixels")
    ap.add_argument("--datasets", default="set5,set14")
    ap.add_argument("--bench-dir", type=Path, default=REPO.parent / "shared" / "datasets" / "benchmark")
    ap.add_argument("--no-lpips", action="store_true")
    ap.add_argument("--reference", default=None, metavar="METHOD",
                    help="remove the offsets of the residual against this method's saved "
                    "outputs (e.g. bicubic) instead of the outputs' own")
    args = ap.parse_args()

    from srgan_cli.bench.metrics import grid_excess, psnr
    from srgan_cli.bench.quality import lpips_distance
    from srgan_cli.bench.run import lpips_model

    lpips = None if args.no_lpips else lpips_model(True, None)
    windows = [int(w) for w in args.windows.split(",") if w]
    # Y-PSNR here is on the RGB outputs' BT.601 luma for every image (the benchmark scores a
    # gray image on its raw values, so its Set14 number differs a little)
    print("| set | method | Y-PSNR (RGB) | LPIPS | grid dB |\n| --- | --- | --- | --- | --- |")
    for ds in (d for d in args.datasets.split(",") if d):
        src = args.saved / ds / args.method
        names = {"set5": "Set5", "set14": "Set14"}
        hr_dir = args.bench_dir / names.get(ds, ds) / f"{names.get(ds, ds)}_HR"
        files = sorted(src.glob("*.png"))
        if not files:
            print(f"error: {src}: no saved outputs", file=sys.stderr)
            return 1
        hrs, outs, refs = [], [], []
        for f in files:
            hr_file = next(iter(sorted(hr_dir.glob(f.stem + ".*"))), None)
            if hr_file is None:
                print(f"error: {hr_dir}: no HR image for {f.name}", file=sys.stderr)
                return 1
            hrs.append(np.asarray(Image.open(hr_file).convert("RGB")))
            outs.append(np.asarray(Image.open(f).convert("RGB")))
            if args.reference:
                refs.append(np.asarray(Image.open(args.saved / ds / args.reference / f.name)
                                       .convert("RGB")))
        for w in [0, *windows]:
            sr = outs if w == 0 else [remove_phase_offsets(o, w, r)
                                      for o, r in zip(outs, refs or [None] * len(outs))]
            label = args.method if w == 0 else f"{args.method}, offsets removed ({w} LR px)"
            if w:
                dst = args.saved / ds / (f"{args.method}_offsets_removed_{w}"
                                         + (f"_vs_{args.reference}" if args.reference else ""))
                dst.mkdir(parents=True, exist_ok=True)
                for f, a in zip(files, sr):
                    Image.fromarray(a).save(dst / f.name)
            p = np.mean([psnr(a, h, crop_border=4, test_y_channel=True) for a, h in zip(sr, hrs)])
            lp = "-" if lpips is None else f"{np.mean([lpips_distance(lpips, a, h) for a, h in zip(sr, hrs)]):.4f}"
            print(f"| {ds} | {label} | {p:.2f} | {lp} | {grid_excess(sr, hrs):+.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
