"""Host-side cost of one training iteration: the loop with the real network's layer count
but almost no arithmetic (width 8, 16x16 HR crops, batch 2), on the CPU.

    python scripts/perf_train_overhead.py DIR [--iters 200] [--threads 1]

What remains per iteration is Python, autograd and operator dispatch, the optimiser, the
EMA and the data path: the time a GPU step cannot go below unless CUDA graphs or
torch.compile remove it. Prints one JSON line per stage (srresnet, gan): ms per iteration
(median over logged windows of 10 iterations, the first left out).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from safetensors.torch import save_file

    from srgan_cli.nets.vgg import vgg19_features
    from srgan_cli.train.config import TrainConfig
    from srgan_cli.train.export import export
    from srgan_cli.train.loop import train

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        vgg = tmp / "vgg.safetensors"
        save_file({k: v.half().contiguous() for k, v in vgg19_features().state_dict().items()},
                  str(vgg))
        common = dict(data=[a.data], iters=a.iters, batch=2, crop=16, blocks=16, width=8,
                      precision="bf16", device="cpu", ckpt_every=10**9, val_every=10**9,
                      log_every=10, ema=0.999)
        runs = {"srresnet": TrainConfig(run_dir=str(tmp / "sr"), **common)}
        for _stage, cfg in runs.items():
            train(cfg)
        init = export(tmp / "sr" / "last.pt", tmp / "sr.safetensors")
        runs["gan"] = TrainConfig(run_dir=str(tmp / "gan"), stage="gan", init=str(init),
                                  content_loss="vgg54", vgg_weights=str(vgg), pixel_weight=0.5,
                                  **common)
        train(runs["gan"])
        for stage, cfg in runs.items():
            recs = [json.loads(l) for l in Path(cfg.run_dir, "log.jsonl").read_text().splitlines()]
            rates = [r["its_per_sec"] for r in recs if "its_per_sec" in r][1:]
            print(json.dumps({"stage": stage, "threads": a.threads, "iterations": cfg.iters,
                              "ms_per_iteration": round(1000 / statistics.median(rates), 2)}))


if __name__ == "__main__":
    main()
