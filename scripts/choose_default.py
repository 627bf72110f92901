"""Apply the written rule for the default model (README, "Which model is the default")
to benchmark results: ``srgan_cli.bench.default_rule``.

    python scripts/choose_default.py docs/results/degraded_x4.json            # print the choice
    python scripts/choose_default.py docs/results/degraded_x4.json --check    # exit 1 unless
                                                    # weights/models.json's default is it

Reads one or more ``srgan benchmark --json`` files (their rows together), runs every
candidate model on the solid colours (``Upscaler(name, precision='fp32')``: default border,
the benchmark's precision, the same on every CPU) and reads its training stage (a GAN
model must pass the release gate; a file of unknown stage is not eligible), prints one
line per model and the choice. A model benchmarked as a file is named by the registry entry
with the same sha256, when there is one.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
from pathlib import Path

from PIL import Image

from srgan_cli.bench.default_rule import candidates, choose, flat_error
from srgan_cli.errors import SrganError


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+", type=Path, help="srgan benchmark --json files")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 unless the registry's default is the rule's choice")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    from srgan_cli import Upscaler
    from srgan_cli.distribution.hub import sha256_file
    from srgan_cli.distribution.registry import default_model, find_by_sha256

    @functools.cache  # a file's sha256 once, not once per row
    def registered_name(method: str) -> str:
        path = Path(method)
        if path.suffix == ".safetensors" and path.is_file():
            entry = find_by_sha256(sha256_file(path))
            return entry.name if entry is not None else method
        return method

    try:
        rows = [{**r, "method": registered_name(r["method"])}
                for p in args.results for r in json.loads(p.read_text())]
        cands = candidates(rows)
        for name, c in cands.items():
            up = Upscaler(name, device=args.device, precision="fp32")
            err = flat_error(lambda a: up.upscale_image(Image.fromarray(a)))
            stage = up.model.stage  # a converted or unknown file: not known, not eligible
            cands[name] = dataclasses.replace(
                c, flat_error=err,
                gan=stage == "gan" if stage in ("srresnet", "gan") else None)
        best, lines = choose(cands)
    except (SrganError, OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    print(f"default by the rule: {best}")
    if args.check and default_model() != best:
        print(f"error: weights/models.json's default is {default_model()!r}, the rule says "
              f"{best!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
