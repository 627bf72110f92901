"""``make demo``: upscale examples/coffee.png with each released model, side by side.

    python scripts/demo.py [IMAGE] [OUT_DIR]

Runs ``srgan upscale IMAGE -m NAME -o OUT_DIR/<stem>_x4_NAME.png`` for ``srresnet`` (the
distortion-oriented SRResNet, highest PSNR), ``srgan`` (the photo-realistic GAN model, with
its 4-px lattice), ``srgan-delattice`` (srgan trained on through the lattice filter),
``srgan-resize`` (issue 21's GAN model trained without the lattice) and ``srgan-real``
(the photo-realistic model trained for JPEG, noise and blur: the default since issue 21's
thirteenth session),
each when it is registered, then writes ``OUT_DIR/<stem>_x4_side_by_side.png``: the same
window of bicubic and each model's output, labelled. A model that is not registered (the
``srgan`` model before its release) is reported and left out; the demo fails only when
no model could be run.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from srgan_cli.bench.quality import detail_box, labelled_row
from srgan_cli.distribution.registry import default_model, registry, registry_path
from srgan_cli.errors import SrganError
from srgan_cli.files import atomic_write

MODELS = {"srresnet": "srresnet: distortion-oriented (MSE)",
          "srgan": "srgan: photo-realistic (GAN), with a 4-px lattice",
          "srgan-delattice": "srgan-delattice: srgan with the lattice filtered out",
          "srgan-resize": "srgan-resize: photo-realistic, trained without the lattice",
          "srgan-real": "srgan-real: photo-realistic, trained for JPEG, noise and blur"}


def srgan(args: list[str]) -> int:
    """Run the ``srgan`` command line in this process; its exit status."""
    import click

    from srgan_cli.cli import main as cli

    try:
        cli.main(args, prog_name="srgan", standalone_mode=False)
    except SystemExit as e:
        return int(e.code or 0)
    except click.ClickException as e:
        e.show()
        return e.exit_code
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    src = Path(argv[0] if argv else "examples/coffee.png")
    out = Path(argv[1] if len(argv) > 1 else "examples/out")
    try:
        reg, default = registry(), default_model()
    except SrganError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    written: dict[str, Path] = {}
    for name, _what in MODELS.items():
        if name not in reg:
            print(f"{name}: not released yet (no {name!r} entry in {registry_path()}); "
                  "skipped", file=sys.stderr)
            continue
        dst = out / f"{src.stem}_x4_{name}.png"
        cmd = ["srgan", "upscale", str(src), "-m", name, "-o", str(dst), "--overwrite"]
        print(f"$ {shlex.join(cmd)}", file=sys.stderr)
        code = srgan(cmd[1:])
        if code == 0:
            written[name] = dst
        else:
            print(f"{name}: srgan upscale failed (exit {code})", file=sys.stderr)
    if not written:
        print("error: no model could be run", file=sys.stderr)
        return 1
    with Image.open(src) as im:
        lr = im.convert("RGB")
        bicubic = np.asarray(lr.resize((lr.width * 4, lr.height * 4), Image.BICUBIC))
    outputs = {n: np.asarray(Image.open(p).convert("RGB")) for n, p in written.items()}
    y, x, s = detail_box(next(iter(outputs.values())), 320)
    # panels labelled by name (the descriptions are too long for a 320-px panel)
    panels = {"bicubic": bicubic, **{n + (" (default)" if n == default else ""): o
                                     for n, o in outputs.items()}}
    strip = labelled_row({k: v[y : y + s, x : x + s] for k, v in panels.items()}, font_size=14)
    side = out / f"{src.stem}_x4_side_by_side.png"
    atomic_write(side, lambda tmp: strip.save(tmp, format="PNG"))
    print("", file=sys.stderr)
    for n, p in written.items():
        print(f"{p}: {MODELS[n]}" + (" (the default model)" if n == default else ""))
    print(f"{side}: the same {s}x{s} window, left to right: "
          + " | ".join(["bicubic", *(MODELS[n] for n in outputs)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
