"""How far can a fixed edit of the LR image, before the model, move its scores on degraded
inputs? (Issue 22: is a front end that cleans or sharpens a JPEG's LR worth training?)

Each benchmark set is degraded as ``srgan benchmark --degrade SPEC`` does; each LR is then
edited, rounded to 8 bits and upscaled by the model as the benchmark runs it (fp32, CPU, the
default border); the output is scored with the benchmark's protocol (Y-PSNR, daala SSIM,
LPIPS, grid excess). Edits:

- ``none``: the LR as it is;
- ``noise:S``: plus Gaussian noise of sigma S (0-255 scale), drawn with seed 0 per image;
- ``blur:S``: a Gaussian blur of sigma S LR pixels;
- ``unsharp:S:K``: ``x + K * (x - blur_S(x))`` (an unsharp mask), clamped to [0, 1];
- ``jpeg:Q:T:L``: a JPEG at quality Q whose block grid starts T rows and L columns before
  the image's corner (``srgan_cli.train.degrade.shifted_jpeg``; ``jpeg:75:0:0`` on
  ``--degrade clean`` is the benchmark's ``jpeg75``): a JPEG window cut from a larger
  photo, whose blocks do not line up with its borders.

    python scripts/lr_edits.py --model srgan-delattice --degrade jpeg75 --edit none \
        --edit noise:1 --edit noise:2 --edit noise:4 --edit blur:0.4 --edit unsharp:0.8:0.3

With ``--on output`` the same edits apply to the model's output instead (sigmas in HR
pixels), before it is scored: what a metric rewards that is not detail (issue 22: LPIPS
prefers added noise to a clean output).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def parse_edit(text: str) -> tuple[str, tuple[float, ...]]:
    kind, *values = text.split(":")
    want = {"none": 0, "noise": 1, "blur": 1, "unsharp": 2, "jpeg": 3}
    if kind not in want or len(values) != want[kind]:
        raise SystemExit(f"--edit {text!r}: expected none, noise:S, blur:S, unsharp:S:K "
                         "or jpeg:Q:T:L")
    try:
        return kind, tuple(float(v) for v in values)
    except ValueError:
        raise SystemExit(f"--edit {text!r}: values must be numbers") from None


def edit(x, kind: str, values: tuple[float, ...]):
    """The edit of a (1, 3, H, W) float LR in [0, 1]."""
    import torch

    from srgan_cli.train.degrade import blur, gaussian_kernels, kernel_size

    def blurred(sigma: float):
        s = torch.tensor([sigma])
        return blur(x, gaussian_kernels(s, s, torch.zeros(1), kernel_size(sigma)))

    if kind == "noise":
        g = torch.Generator().manual_seed(0)
        return (x + torch.randn(x.shape, generator=g) * (values[0] / 255.0)).clamp(0.0, 1.0)
    if kind == "blur":
        return blurred(values[0])
    if kind == "unsharp":
        return (x + values[1] * (x - blurred(values[0]))).clamp(0.0, 1.0)
    if kind == "jpeg":
        from srgan_cli.train.degrade import shifted_jpeg

        u8 = (x[0].permute(1, 2, 0) * 255.0).round().to(torch.uint8).numpy()
        out = shifted_jpeg(u8, int(values[0]), int(values[1]), int(values[2]))
        return torch.from_numpy(out.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    return x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="srgan-delattice")
    ap.add_argument("--datasets", default="Set14")
    ap.add_argument("--degrade", default="jpeg75")
    ap.add_argument("--edit", action="append", default=None)
    ap.add_argument("--data-dir", default=None, help="benchmark folder (default: ../shared's)")
    ap.add_argument("--no-lpips", action="store_true")
    ap.add_argument("--on", choices=("lr", "output"), default="lr",
                    help="edit the LR before the model (default) or the model's output")
    a = ap.parse_args()
    edits = [(e, *parse_edit(e)) for e in (a.edit or ["none"])]

    import torch
    from PIL import Image

    from srgan_cli import paths
    from srgan_cli.bench.degraded import degraded_sets
    from srgan_cli.bench.quality import evaluate
    from srgan_cli.bench.run import load_datasets, lpips_model
    from srgan_cli.inference.upscale import Upscaler

    root = Path(a.data_dir) if a.data_dir else paths.shared_dir() / "datasets" / "benchmark"
    loaded = load_datasets(a.datasets.split(","), root, source="local", explicit=True)
    sets = degraded_sets(loaded, [a.degrade])
    up = Upscaler(a.model, device="cpu", precision="fp32")
    lpips = lpips_model(False if a.no_lpips else True, None)

    def edited(img: np.ndarray, kind, values) -> np.ndarray:
        """An 8-bit image (gray or RGB) edited as RGB and rounded back to 8 bits."""
        gray = img.ndim == 2
        rgb = np.repeat(img[..., None], 3, 2) if gray else img
        x = torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
        x = (edit(x, kind, values)[0].permute(1, 2, 0) * 255.0).round().to(torch.uint8)
        x = x.numpy()
        return x.mean(2).round().astype(np.uint8) if gray else x

    outputs: dict[bytes, np.ndarray] = {}  # --on output: one model run per LR image

    def upscale_with(kind, values):
        def fn(lr: np.ndarray) -> np.ndarray:
            if a.on == "lr":
                return np.asarray(up.upscale_image(Image.fromarray(edited(lr, kind, values))))
            key = lr.tobytes() + repr(lr.shape).encode()
            if key not in outputs:
                outputs[key] = np.asarray(up.upscale_image(Image.fromarray(lr)))
            return edited(outputs[key], kind, values)
        return fn

    for name, pairs in sets.items():
        for label, kind, values in edits:
            r = evaluate(name, a.model, pairs, 4, upscale_with(kind, values), lpips_model=lpips)
            lp = "-" if r.lpips is None else f"{r.lpips:.4f}"
            print(f"{name} {a.model} edit {label} ({a.on}): Y-PSNR {r.psnr:.2f} dB, SSIM {r.ssim:.4f}, "
                  f"LPIPS {lp}, grid excess {r.grid:+.1f} dB", flush=True)


if __name__ == "__main__":
    main()
