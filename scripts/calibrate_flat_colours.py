"""Correct a trained generator's solid colours without touching its texture
(srgan_cli/train/flat_calibration.py; issue 21, weights/README.md).

    python scripts/calibrate_flat_colours.py IN.safetensors OUT.safetensors [--ridge 1e-5]

Fits the last convolution's DC correction on 4,096 solid colours (drawn as
``srgan train --flat-weight`` draws them), applies it, prints the largest and mean error
(8-bit levels) over a 9x9x9 grid of the RGB cube before and after, and writes OUT with
IN's metadata, IN as its parent (``parent_sha256``, ``parent_file``) and the calibration
in ``flat_calibration``. Our SRResNet files only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from srgan_cli.distribution.hub import sha256_file
from srgan_cli.distribution.loading import load_file
from srgan_cli.distribution.modelfile import save_generator
from srgan_cli.train.flat_calibration import calibrate_flat

KEEP_OUT = {"format", "arch", "scale", "blocks", "width", "channels", "input_range",
            "output_range"}  # written again from the network's spec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--ridge", type=float, default=1e-5,
                    help="weight of the correction's squared size against the squared colour "
                    "error")
    ap.add_argument("--colours", type=int, default=4096)
    a = ap.parse_args()
    if a.out.exists():
        ap.error(f"{a.out} exists")
    info = load_file(a.src, ours_only=True)
    net = info.net.float().eval()
    r = calibrate_flat(net, colours=a.colours, ridge=a.ridge)
    print(f"{a.src}: solid colours over a 9x9x9 grid, largest / mean error "
          f"{r.max_before:.0f} / {r.mean_before:.2f} levels -> {r.max_after:.0f} / "
          f"{r.mean_after:.2f}")
    meta = {k: v for k, v in info.metadata.items() if k not in KEEP_OUT}
    meta.update(parent_sha256=sha256_file(a.src), parent_file=a.src.name,
                flat_calibration=f"scripts/calibrate_flat_colours.py, ridge {a.ridge:g}, "
                f"{a.colours} colours; 9x9x9 grid largest / mean error {r.max_before:.0f} / "
                f"{r.mean_before:.2f} -> {r.max_after:.0f} / {r.mean_after:.2f} levels")
    with torch.no_grad():
        save_generator(net, a.out, meta)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
