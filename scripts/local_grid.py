"""Local grid excess of models on benchmark sets: the lattice measured on 64x64-HR-pixel
tiles (srgan_cli.bench.metrics.local_grid_excess) beside the whole-image grid excess of
``srgan benchmark``, which a lattice over part of an image (or a pattern a filter leaves
near edges) moves little.

    python scripts/local_grid.py srgan-real runs/x.safetensors --set set14 --degrade jpeg75

Prints one Markdown row per model and set: mean and 90th percentile of the tiles' excess
over the HR tiles (dB) and the share of tiles more than 6 dB above theirs. fp32, the
default border, whole images.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="registered names or model files")
    ap.add_argument("--set", dest="sets", action="append", default=None,
                    help="benchmark set (repeatable; default set5 and set14)")
    ap.add_argument("--degrade", action="append", default=None,
                    help="as srgan benchmark --degrade (repeatable; default none)")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "datasets" / "benchmark")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args()

    import numpy as np
    from PIL import Image

    from srgan_cli import Upscaler
    from srgan_cli.bench.datasets import load_dataset
    from srgan_cli.bench.degraded import degraded_sets
    from srgan_cli.bench.metrics import local_grid_excess, tile_grid_scores
    from srgan_cli.errors import SrganError

    try:
        sets = {s: load_dataset(s, args.data) for s in args.sets or ["set5", "set14"]}
        data = degraded_sets(sets, args.degrade or ["none"])
        runners = {m: Upscaler(m, device="cpu", precision="fp32") for m in args.models}
    except (SrganError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    rows = []
    print("| model | set | local grid mean dB | p90 dB | tiles > 6 dB |")
    print("|:--|:--|--:|--:|--:|")
    for name, pairs in data.items():
        hrs = [p.hr for p in pairs]
        hr_scores = [tile_grid_scores(h) for h in hrs]  # once per set, not per model
        for m, up in runners.items():
            outs = [np.asarray(up.upscale_image(Image.fromarray(p.lr))) for p in pairs]
            r = local_grid_excess(outs, hrs, reference_scores=hr_scores)
            rows.append({"method": m, "dataset": name, **r})
            print(f"| {m} | {name} | {r['mean']:+.2f} | {r['p90']:+.2f} | "
                  f"{100 * r['over_6db']:.1f}% of {r['tiles']} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
