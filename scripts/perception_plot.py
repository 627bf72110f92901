"""The perception-distortion plane of ``--realism``: PSNR and LPIPS on Set5 and Set14 at
R = 0, 0.25, 0.5, 0.75 and 1, as a results JSON, a Markdown table and a PNG plot.

    python scripts/perception_plot.py                      # the registered srgan model
    python scripts/perception_plot.py --srgan weights/srgan_x4.safetensors
    python scripts/perception_plot.py --from-json docs/results/perception_distortion.json

Runs ``srgan benchmark set5 set14 -m bicubic -m SRGAN --realism R ... --precision fp32
--lpips`` (the paper's protocol: Y-PSNR with a 4-px border crop; LPIPS AlexNet on RGB) in
a subprocess, keeps its records with the command and the models' sha256 in ``--json``, and
writes ``--md`` (table) and ``--png`` (one panel per set: LPIPS against PSNR, one point per
R, bicubic marked, the paper's SRResNet PSNR as a line, the paper's SRGAN at its PSNR and
the LPIPS later work measured for it). ``--from-json`` redraws from a kept JSON without
running anything. The plot is drawn with Pillow alone.

The paper (Ledig et al., Table 2) gives PSNR only; the LPIPS of its SRGAN outputs,
0.088 (Set5) / 0.166 (Set14), is the later-work figure quoted in issue 13.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from srgan_cli.bench.quality import PAPER
from srgan_cli.errors import SrganError
from srgan_cli.files import atomic_write

SETS = ("set5", "set14")
TITLES = {"set5": "Set5", "set14": "Set14"}
PAPER_SRGAN_LPIPS = {"set5": 0.088, "set14": 0.166}  # later work, as quoted in issue 13
REALISMS = (0.0, 0.25, 0.5, 0.75, 1.0)


def realism_label(model: str, r: float) -> str:
    """The method name ``srgan benchmark --realism`` gives a row."""
    return f"{model} R={r:g}"


def run_benchmark(model: str, realisms, device: str) -> tuple[list[dict], str]:
    args = ["benchmark", *SETS, "-m", "bicubic", "-m", model,
            *[a for r in realisms for a in ("--realism", f"{r:g}")],
            "--precision", "fp32", "--lpips", "--device", device]
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "records.json"
        cmd = [sys.executable, "-m", "srgan_cli", *args, "--json", str(out)]
        p = subprocess.run(cmd)
        if p.returncode != 0:
            raise SrganError(f"srgan benchmark failed (exit {p.returncode}): {shlex.join(cmd)}")
        records = json.loads(out.read_text(encoding="utf-8"))
    return records, shlex.join(["srgan", *args])


def model_provenance(model: str) -> dict:
    from srgan_cli.distribution.hub import sha256_file
    from srgan_cli.distribution.registry import resolve_model
    from srgan_cli.distribution.tensorfile import metadata

    path = resolve_model(model)
    meta = metadata(path)
    return {"model": model, "file": str(path), "sha256": sha256_file(path),
            "iterations": meta.get("iterations"), "parent_file": meta.get("parent_file"),
            "parent_sha256": meta.get("parent_sha256")}


def table(results: dict) -> str:
    """Markdown: bicubic, each R, the paper's rows (PSNR; SRGAN's LPIPS from later work)."""
    recs = {(r["dataset"], r["method"]): r for r in results["records"]}
    model = results["srgan"]["model"]

    def cells(ds, method):
        r = recs.get((ds, method))
        return ["-", "-"] if r is None else [f"{r['psnr']:.2f}", f"{r['lpips']:.4f}"]

    head = "| | " + " | ".join(f"{TITLES[d]} PSNR | {TITLES[d]} LPIPS" for d in SETS) + " |"
    lines = [head, "|" + " --- |" * (1 + 2 * len(SETS))]
    lines.append("| bicubic | " + " | ".join(" | ".join(cells(d, "bicubic")) for d in SETS) + " |")
    for r in results["realisms"]:
        name = {0.0: " (its SRResNet)", 1.0: " (SRGAN)"}.get(r, "")
        row = " | ".join(" | ".join(cells(d, realism_label(model, r))) for d in SETS)
        lines.append(f"| `--realism {r:g}`{name} | {row} |")
    for m, lp in (("srresnet", {}), ("srgan", PAPER_SRGAN_LPIPS)):
        row = " | ".join(f"{PAPER[(d, m)][0]:.2f} | "
                         + (f"{lp[d]:.3f} (later work)" if d in lp else "-") for d in SETS)
        lines.append(f"| paper's {'SRResNet' if m == 'srresnet' else 'SRGAN'} | {row} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- the plot


def nice_step(span: float, target: int = 6) -> float:
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


def ticks(lo: float, hi: float) -> tuple[float, float, list[float]]:
    step = nice_step(hi - lo)
    a, b = math.floor(lo / step) * step, math.ceil(hi / step) * step
    return a, b, [a + i * step for i in range(int(round((b - a) / step)) + 1)]


def draw_panel(img: Image.Image, box, ds: str, points, k: int) -> None:
    """One set's plane in ``box`` (x0, y0, x1, y1) of ``img`` (drawn at ``k``x scale)."""
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(11 * k)
    big = ImageFont.load_default(14 * k)
    x0, y0, x1, y1 = box
    left, right, top, bottom = x0 + 62 * k, x1 - 14 * k, y0 + 30 * k, y1 - 44 * k
    psnrs = [p["psnr"] for p in points] + [PAPER[(ds, "srresnet")][0]]
    lpipss = [p["lpips"] for p in points if p["lpips"] is not None]
    xa, xb, xt = ticks(min(psnrs) - 0.2, max(psnrs) + 0.2)
    ya, yb, yt = ticks(max(min(lpipss) - 0.02, 0.0), max(lpipss) + 0.02)

    def at(psnr, lp):
        return (left + (psnr - xa) / (xb - xa) * (right - left),
                bottom - (lp - ya) / (yb - ya) * (bottom - top))

    for v in xt:
        x, _ = at(v, ya)
        d.line([(x, top), (x, bottom)], fill=(230, 230, 230), width=k)
        d.text((x, bottom + 4 * k), f"{v:g}", fill="black", font=font, anchor="mt")
    for v in yt:
        _, y = at(xa, v)
        d.line([(left, y), (right, y)], fill=(230, 230, 230), width=k)
        d.text((left - 5 * k, y), f"{v:.3g}", fill="black", font=font, anchor="rm")
    d.rectangle([left, top, right, bottom], outline="black", width=k)
    d.text(((left + right) / 2, y0 + 8 * k), TITLES[ds], fill="black", font=big, anchor="mt")
    d.text(((left + right) / 2, bottom + 20 * k), "Y-PSNR (dB), higher = less distortion",
           fill="black", font=font, anchor="mt")
    lab = Image.new("RGBA", (int(bottom - top), 16 * k), (255, 255, 255, 0))
    ImageDraw.Draw(lab).text((lab.width / 2, 0), "LPIPS, lower = more realistic",
                             fill="black", font=font, anchor="mt")
    lab = lab.rotate(90, expand=True)
    img.paste(lab, (int(x0 + 2 * k), int(top)), lab)

    # the paper's SRResNet: PSNR only
    px, _ = at(PAPER[(ds, "srresnet")][0], ya)
    for yy in range(int(top), int(bottom), 8 * k):
        d.line([(px, yy), (px, min(yy + 4 * k, bottom))], fill=(120, 120, 120), width=k)
    d.text((px - 3 * k, top + 3 * k), "paper SRResNet PSNR", fill=(90, 90, 90), font=font,
           anchor="rt")
    r = 4 * k
    chain = [p for p in points if p["kind"] == "realism"]
    d.line([at(p["psnr"], p["lpips"]) for p in chain], fill=(40, 90, 200), width=2 * k)
    taken = []  # boxes of the markers and of the labels placed so far
    for p in points:
        x, y = at(p["psnr"], p["lpips"])
        taken.append((x - r, y - r, x + r, y + r))
        if p["kind"] == "realism":
            d.ellipse([x - r, y - r, x + r, y + r], fill=(40, 90, 200))
        elif p["kind"] == "bicubic":
            d.rectangle([x - r, y - r, x + r, y + r], fill=(110, 110, 110))
        else:
            d.polygon([(x, y - r - k), (x + r + k, y), (x, y + r + k), (x - r - k, y)],
                      fill=(210, 50, 40))
    for p in points:  # each label beside its marker, where it overlaps nothing drawn
        x, y = at(p["psnr"], p["lpips"])
        g = r + 3 * k
        for pos, anchor in (((x + g, y), "lm"), ((x - g, y), "rm"), ((x, y - g), "mb"),
                            ((x, y + g), "mt"), ((x + g, y - g), "lb"), ((x - g, y + g), "rt")):
            box = d.textbbox(pos, p["label"], font=font, anchor=anchor)
            inside = box[0] >= left and box[2] <= right and box[1] >= top and box[3] <= bottom
            if inside and not any(box[0] < t[2] and t[0] < box[2] and box[1] < t[3]
                                  and t[1] < box[3] for t in taken):
                d.text(pos, p["label"], fill="black", font=font, anchor=anchor)
                taken.append(box)
                break


def plot(results: dict, path: Path, k: int = 3) -> None:
    w, h = 460, 380
    img = Image.new("RGB", (w * len(SETS) * k, (h + 22) * k), "white")
    recs = {(r["dataset"], r["method"]): r for r in results["records"]}
    model = results["srgan"]["model"]
    for i, ds in enumerate(SETS):
        points = []
        for r in results["realisms"]:
            rec = recs[(ds, realism_label(model, r))]
            points.append({"kind": "realism", "psnr": rec["psnr"], "lpips": rec["lpips"],
                           "label": f"R={r:g}"})
        bic = recs[(ds, "bicubic")]
        points.append({"kind": "bicubic", "psnr": bic["psnr"], "lpips": bic["lpips"],
                       "label": "bicubic"})
        points.append({"kind": "paper", "psnr": PAPER[(ds, "srgan")][0],
                       "lpips": PAPER_SRGAN_LPIPS[ds], "label": "paper SRGAN"})
        draw_panel(img, (i * w * k, 0, (i + 1) * w * k, h * k), ds, points, k)
    d = ImageDraw.Draw(img)
    d.text((8 * k, (h + 4) * k), f"blue: realism R, (1-R) x SRResNet + R x SRGAN weights "
           f"({Path(results['srgan']['file']).name}); R=0 is the SRResNet, R=1 the SRGAN. "
           "Paper SRGAN: its PSNR, and the LPIPS later work measured.",
           fill=(60, 60, 60), font=ImageFont.load_default(11 * k))
    small = img.resize((img.width // k, img.height // k), Image.LANCZOS)
    atomic_write(path, lambda tmp: small.save(tmp, format="PNG", optimize=True))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--srgan", default="srgan", help="GAN model (name or file) with a parent")
    ap.add_argument("--realism", type=float, nargs="+", default=list(REALISMS))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", type=Path, default=Path("docs/results/perception_distortion.json"))
    ap.add_argument("--md", type=Path, default=Path("docs/results/perception_distortion.md"))
    ap.add_argument("--png", type=Path, default=Path("docs/images/perception_distortion.png"))
    ap.add_argument("--from-json", type=Path, default=None,
                    help="redraw the table and plot from a kept results JSON")
    args = ap.parse_args()
    try:
        if args.from_json:
            results = json.loads(args.from_json.read_text(encoding="utf-8"))
        else:
            prov = model_provenance(args.srgan)
            if not prov["parent_sha256"]:
                raise SrganError(f"{prov['file']}: names no parent SRResNet (parent_sha256); "
                                 "--realism cannot blend it")
            records, command = run_benchmark(args.srgan, args.realism, args.device)
            results = {"command": command, "date": dt.date.today().isoformat(),
                       "cpu_threads": os.cpu_count(), "srgan": prov,
                       "realisms": args.realism, "records": records}
            text = json.dumps(results, indent=2) + "\n"
            atomic_write(args.json, lambda tmp: tmp.write_text(text, encoding="utf-8"))
            print(f"wrote {args.json}", file=sys.stderr)
    except (SrganError, OSError, json.JSONDecodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    md = (f"Made by `python scripts/perception_plot.py` (benchmark: `{results['command']}`; "
          f"SRGAN file sha256 `{results['srgan']['sha256']}`, its parent "
          f"`{results['srgan']['parent_sha256']}`).\n\n" + table(results))
    atomic_write(args.md, lambda tmp: tmp.write_text(md, encoding="utf-8"))
    plot(results, args.png)
    print(md)
    print(f"wrote {args.md} and {args.png}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
