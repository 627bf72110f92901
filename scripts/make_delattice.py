"""A released generator file with the lattice filter added (spec ``delattice``,
:mod:`srgan_cli.nets.delattice`): the same tensors, the filter's window in the spec, the
source file's metadata with its name and sha256 as ``weights_of`` / ``weights_sha256``.

    python scripts/make_delattice.py weights/srgan_x4.safetensors \\
        weights/srgan_delattice_x4.safetensors --window 3 --date 2026-12-06
    srgan models register weights/srgan_delattice_x4.safetensors --name srgan-delattice
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path, help="a generator file of ours (e.g. srgan_x4)")
    ap.add_argument("dst", type=Path, help="the file to write (refused if it exists)")
    ap.add_argument("--window", type=int, default=3, help="the filter's window, LR pixels")
    ap.add_argument("--date", default=None, help="metadata date (default: the source's)")
    args = ap.parse_args()

    from srgan_cli.distribution.hub import sha256_file
    from srgan_cli.distribution.loading import load_file
    from srgan_cli.distribution.modelfile import provenance_of, save_generator
    from srgan_cli.errors import SrganError
    from srgan_cli.nets.generator import SRResNet

    if args.dst.exists():
        print(f"error: {args.dst}: already exists", file=sys.stderr)
        return 1
    try:
        info = load_file(args.src, ours_only=True)
        spec = dataclasses.replace(info.net.spec, delattice=args.window)
    except (SrganError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    # the validation scores were the unfiltered network's: not this file's
    meta = {k: v for k, v in provenance_of(info.metadata).items() if not k.startswith("val_")}
    meta["weights_of"] = args.src.name
    meta["weights_sha256"] = sha256_file(args.src)
    if args.date:
        meta["date"] = args.date
    meta["made_by"] = (f"{args.src.name}'s generator unchanged, with the lattice filter (spec "
                       f"delattice = {args.window}: each sub-pixel phase's mean residual "
                       f"against bicubic over {args.window}x{args.window} LR pixels removed; "
                       "scripts/make_delattice.py); see weights/README.md")
    net = SRResNet(spec)
    net.load_state_dict(info.net.state_dict())
    save_generator(net.eval(), args.dst, meta)
    print(f"{args.dst}: {spec}, sha256 {sha256_file(args.dst)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
