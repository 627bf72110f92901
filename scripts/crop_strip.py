"""One window of one benchmark image, HR beside each method's output, enlarged by pixel
repetition: the crops a model was judged by, from `srgan benchmark --save-images DIR`.

    srgan benchmark set5 -m srgan -m srgan-resize --precision fp32 --save-images /tmp/sr
    python scripts/crop_strip.py /tmp/sr set5 img_002 --box 200,60,64 \\
        --methods srgan,srgan-resize --out docs/images/lattice/toucan_bokeh.png

HR comes from the benchmark folder (``../shared/datasets/benchmark/<Set>/<Set>_HR`` or
``--hr-dir``). ``--highpass`` shows what ``compare_crops.py --highpass`` shows (luma minus
its Gaussian blur, sigma 2 px, x8 around mid-grey): the texture alone (grain, lattice,
streaks).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "scripts")]
from compare_crops import highpass  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("saved", type=Path, help="srgan benchmark --save-images folder")
    ap.add_argument("dataset", help="e.g. set5 (as in the saved folder)")
    ap.add_argument("image", help="image name without extension, e.g. img_002")
    ap.add_argument("--box", required=True, help="X,Y,SIZE of the window in HR pixels")
    ap.add_argument("--methods", required=True, help="comma-separated method folders")
    ap.add_argument("--labels", default=None, help="comma-separated labels (default: methods)")
    ap.add_argument("--hr-dir", type=Path, default=None)
    ap.add_argument("--zoom", type=int, default=4)
    ap.add_argument("--highpass", action="store_true")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    x, y, size = (int(v) for v in args.box.split(","))
    methods = [m for m in args.methods.split(",") if m]
    labels = args.labels.split(",") if args.labels else methods
    if len(labels) != len(methods):
        print("error: --labels needs one label per method", file=sys.stderr)
        return 2
    hr_dir = args.hr_dir
    if hr_dir is None:
        name = {"set5": "Set5", "set14": "Set14"}.get(args.dataset.lower(), args.dataset)
        hr_dir = REPO.parent / "shared" / "datasets" / "benchmark" / name / f"{name}_HR"
    hr_files = sorted(hr_dir.glob(args.image + ".*"))
    if not hr_files:
        print(f"error: {hr_dir}: no HR image {args.image}", file=sys.stderr)
        return 1
    panels = [("HR", Image.open(hr_files[0]).convert("RGB"))]
    for m, label in zip(methods, labels):
        f = args.saved / args.dataset / m / f"{args.image}.png"
        if not f.is_file():
            print(f"error: {f}: no such output (run srgan benchmark --save-images first)",
                  file=sys.stderr)
            return 1
        panels.append((label, Image.open(f).convert("RGB")))
    side, head = size * args.zoom, 16
    strip = Image.new("RGB", (side * len(panels) + 4 * (len(panels) - 1), side + head), "white")
    draw = ImageDraw.Draw(strip)
    for i, (label, img) in enumerate(panels):
        crop = img.crop((x, y, x + size, y + size))
        if args.highpass:  # compare_crops.py's: luma minus its Gaussian blur, x8
            crop = Image.fromarray(highpass(np.asarray(crop))).convert("RGB")
        px = i * (side + 4)
        strip.paste(crop.resize((side, side), Image.NEAREST), (px, head))
        draw.text((px + 2, 2), label, fill="black")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    strip.save(args.out)
    print(f"wrote {args.out} ({strip.width}x{strip.height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
