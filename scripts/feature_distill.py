"""A probe for issue 22: teach the first K residual blocks of a generator to give, from a
degraded LR, the features the frozen generator gives from the clean LR; the rest of the
network stays as it is.

Each iteration cuts random HR crops from the training images (``srgan train``'s sampler),
makes their LR with ``--degradation`` (``srgan train``'s pipeline) and their clean bicubic
LR, and minimises the mean squared error between the student's head output and residual
stream after K blocks (from the degraded LR) and the frozen model's (from the clean LR).
Only the head and those K blocks learn (Adam); BatchNorm uses its running statistics. It
is cheap (LR resolution only, no VGG, no discriminator). The result is written as a model
file with the source's provenance, to be scored with ``srgan benchmark``:

    python scripts/feature_distill.py srgan-delattice /tmp/fd.safetensors --k 8 --iters 355
    srgan benchmark set14 -m /tmp/fd.safetensors --precision fp32 --degrade none --degrade jpeg75
"""

from __future__ import annotations

import argparse
import copy
import time

MILD = ("real,blur_sigma=0.2:1.5,noise_prob=0.4,noise_sigma=1:10,noise_poisson_scale=0.05:1,"
        "jpeg_prob=0.8,jpeg_quality=50:95,clean_prob=0.2")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="a registered name or a model file of ours")
    ap.add_argument("out", help="the model file to write (refused if it exists)")
    ap.add_argument("--k", type=int, default=8, help="residual blocks that learn (after the head)")
    ap.add_argument("--iters", type=int, default=355)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=128, help="HR crop size")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--degradation", default=MILD)
    ap.add_argument("--data", action="append", default=None,
                    help="training image folder (default: ../shared/datasets/train)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    from pathlib import Path

    import torch
    import torch.nn.functional as F

    from srgan_cli.distribution.loading import load_file
    from srgan_cli.distribution.modelfile import provenance_of, save_generator
    from srgan_cli.distribution.registry import resolve_model
    from srgan_cli.paths import default_train_dirs
    from srgan_cli.train.data import ImageBank, downscale, sample_batch
    from srgan_cli.train.degrade import Degrader, parse_degradation

    if Path(a.out).exists():
        raise SystemExit(f"{a.out}: already exists")
    info = load_file(resolve_model(a.model), ours_only=True)
    teacher = info.net.eval().requires_grad_(False)
    if not 0 <= a.k <= len(teacher.body):
        raise SystemExit(f"--k {a.k}: the model has {len(teacher.body)} residual blocks")
    student = copy.deepcopy(teacher)
    params = [*student.head.parameters(), *student.body[:a.k].parameters()]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=a.lr)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(a.seed)
    bank = ImageBank.from_dirs(a.data or default_train_dirs(), a.crop)
    degrade = Degrader(parse_degradation(a.degradation))

    def features(net, x):
        h = net.head(x)
        return h, net.body[:a.k](h)

    t0, seen, frozen = time.perf_counter(), 0.0, 0.0
    for it in range(1, a.iters + 1):
        lr, hr = sample_batch(bank, a.batch, a.crop, info.spec.scale, gen, degrade=degrade)
        clean = downscale((hr + 1) / 2, info.spec.scale)
        with torch.no_grad():
            target = features(teacher, clean)
            before = features(teacher, lr)
        got = features(student, lr)
        loss = sum(F.mse_loss(g, t) for g, t in zip(got, target))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seen += loss.item()
        frozen += sum(F.mse_loss(b, t) for b, t in zip(before, target)).item()
        if it % 50 == 0 or it == a.iters:
            n = 50 if it % 50 == 0 else it % 50
            print(f"iteration {it}: feature MSE {seen / n:.4f} (the frozen model's "
                  f"{frozen / n:.4f}), {it / (time.perf_counter() - t0):.2f} it/s", flush=True)
            seen = frozen = 0.0
    meta = {k: v for k, v in provenance_of(info.metadata).items() if not k.startswith("val_")}
    meta["made_by"] = (f"scripts/feature_distill.py {a.model} --k {a.k} --iters {a.iters} "
                       f"--batch {a.batch} --crop {a.crop} --lr {a.lr:g} --degradation "
                       f"{a.degradation} (a probe, not a release)")
    save_generator(student.eval(), a.out, meta)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
