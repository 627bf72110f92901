"""How far the fused fp32 kernels' images are from PyTorch's fp32 path (issue 25's
tolerance: the same Set5/Set14 Y-PSNR to 0.01 dB; 8-bit outputs at most 1 level apart on
at most 0.1% of the values).

    python scripts/kernel_agreement.py                       # both shipped models, Set5 + Set14
    python scripts/kernel_agreement.py --kernels avx2 --data-dir ../shared/datasets/benchmark

For each model and dataset: the Y-PSNR (the paper's protocol, srgan benchmark's) of
``Upscaler(precision='fp32', kernels='torch')`` and of ``kernels=KERNELS`` on the same LR
images, and over all 8-bit output values the share that differ and the largest difference.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from srgan_cli.bench.datasets import load_dataset
from srgan_cli.bench.metrics import psnr
from srgan_cli.imageio.imaging import Decoded
from srgan_cli.inference.upscale import Upscaler

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=[str(REPO / "weights/srresnet_x4.safetensors"),
                                                    str(REPO / "weights/srgan_x4.safetensors")])
    ap.add_argument("--datasets", nargs="+", default=["set5", "set14"])
    ap.add_argument("--kernels", default="avx2")
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared/datasets/benchmark"))
    a = ap.parse_args()
    for model in a.models:
        ref = Upscaler(model, device="cpu", precision="fp32", kernels="torch")
        new = Upscaler(model, device="cpu", precision="fp32", kernels=a.kernels)
        for name in a.datasets:
            pairs = load_dataset(name, a.data_dir)
            p_ref, p_new, n, diff, worst = [], [], 0, 0, 0
            for p in pairs:
                lr = p.lr if p.lr.ndim == 3 else np.repeat(p.lr[..., None], 3, 2)
                d = Decoded(lr.astype(np.float32) / 255, None, "RGB")
                y_ref = ref.upscale_decoded(d)[0]
                y_new = new.upscale_decoded(d)[0]
                hr = p.hr if p.hr.ndim == 3 else np.repeat(p.hr[..., None], 3, 2)
                p_ref.append(psnr(y_ref, hr))
                p_new.append(psnr(y_new, hr))
                dd = np.abs(y_ref.astype(np.int32) - y_new.astype(np.int32))
                n, diff, worst = n + dd.size, diff + int((dd > 0).sum()), max(worst, int(dd.max()))
            print(f"{Path(model).name} {name}: Y-PSNR torch {np.mean(p_ref):.4f} dB, "
                  f"{new.kernels} {np.mean(p_new):.4f} dB (diff {np.mean(p_new) - np.mean(p_ref):+.4f}); "
                  f"8-bit values differing: {diff}/{n} ({100 * diff / n:.4f}%), max {worst} level(s)")


if __name__ == "__main__":
    main()
