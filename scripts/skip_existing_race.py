"""Count how often two overlapped jobs with one output end as ("ok", "skipped") under
--skip-existing, as they would one after the other (docs/performance.md, "Reader and
writer threads"). Usage: python scripts/skip_existing_race.py [BATCHES]"""

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from srgan_cli.batch.pipeline import FileJob, upscale_files
from srgan_cli.distribution.modelfile import save_generator
from srgan_cli.inference.upscale import Upscaler
from srgan_cli.nets.generator import GeneratorSpec, SRResNet


def main(batches: int) -> int:
    d = Path(tempfile.mkdtemp())
    torch.manual_seed(0)
    save_generator(SRResNet(GeneratorSpec(4, 2, 8)), d / "w.safetensors", {"stage": "test"})
    rng = np.random.default_rng(0)
    srcs = []
    for i, (h, w) in enumerate([(9, 11), (10, 11)]):
        srcs.append(d / f"i{i}.png")
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(srcs[-1])
    up, dst = Upscaler(d / "w.safetensors", device="cpu"), d / "same.png"
    jobs = [FileJob(srcs[0], dst), FileJob(srcs[1], dst)]
    wrong = 0
    for _ in range(batches):
        dst.unlink(missing_ok=True)
        list(upscale_files(up, jobs))  # the second job is refused: the output exists
        dst.unlink()
        got = [o.status for o in upscale_files(up, jobs, skip_existing=True)]
        wrong += got != ["ok", "skipped"]
    print(f"{wrong} of {batches} batches ended otherwise than ok, skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1500))
