"""Where one GAN-stage iteration's time goes, phase by phase, on this machine.

The phases of ``srgan train --stage gan`` (srgan_cli/train/loop.py), timed with a wall
clock around each (the CPU runs eagerly, so each phase's time is its own): the batch,
the generator forward, VGG19 to relu5_4 on HR (no grad) and on SR, the discriminator on SR
for the adversarial term, the generator's backward and Adam step (+ EMA), and the
discriminator's real and fake passes (forward + backward) and its Adam step. Same
networks, precision (bf16 autocast where the CPU has it), channels_last, batch and crop
as the training defaults; the generator starts from the shipped SRResNet. ``--d-fake
shared`` (the default, as srgan_cli/train/steps.py does it): the D forward on SR of the
adversarial term is also the D update's fake pass, which is then a backward only;
``recomputed``: D frozen for the generator's step and run again on SR for the D update
(what training did before).

    python scripts/profile_gan_iteration.py --iters 6 --warmup 2 [--json out.json]
    python scripts/profile_gan_iteration.py --flat-weight 1 --gan-loss ragan   # their costs
    python scripts/profile_gan_iteration.py --content-loss vgg-multi --artifact-weight 2000
    python scripts/profile_gan_iteration.py --teacher-weight 20     # the L1 distillation of srgan
    python scripts/profile_gan_iteration.py --discriminator unet --gan-loss ragan  # the U-Net D

Prints a table (ms per phase, share of the iteration, GFLOP/s where counted), the
iterations/s it implies and the process's peak RSS. Stop other work first (a training
run: kill -STOP its pid).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import resource
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from srgan_cli.bench.speed import hardware
from srgan_cli.distribution.loading import load_file
from srgan_cli.distribution.registry import resolve_model
from srgan_cli.inference.device import cpu_has_bf16
from srgan_cli.nets.discriminator import build_discriminator
from srgan_cli.nets.vgg import VGGFeatures, content_features, feature_distance
from srgan_cli.paths import benchmark_dir
from srgan_cli.train.config import DISCRIMINATORS
from srgan_cli.train.data import ImageBank, sample_batch
from srgan_cli.train.losses import (
    AdversarialLoss,
    ArtifactLoss,
    FlatLoss,
    RelativisticAdversarialLoss,
    TeacherLoss,
)


@dataclass
class ExtraTerms:
    """The optional generator terms the profile adds (each None unless its weight is set),
    timed one by one as the training step computes them."""

    args: argparse.Namespace
    flat: FlatLoss | None = None
    artifact: ArtifactLoss | None = None
    teacher: TeacherLoss | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "ExtraTerms":
        teacher = None
        if args.teacher_weight:
            net = load_file(resolve_model("srgan"), ours_only=True).net
            teacher = TeacherLoss(net.to(memory_format=torch.channels_last))
        return cls(args, FlatLoss() if args.flat_weight else None,
                   ArtifactLoss() if args.artifact_weight else None, teacher)

    def add(self, loss, *, model, ema, batch, sr, step, timed, autocast):
        lr_img, hr = batch
        if self.artifact is not None:
            with timed("artifact loss (EMA forward, its map)", step):
                with torch.no_grad(), autocast:
                    sr_ema = ema(lr_img)
                loss = loss + self.args.artifact_weight * self.artifact(sr, hr, sr_ema)
        if self.teacher is not None:
            with timed("teacher forward and L1", step), autocast:
                loss = loss + self.args.teacher_weight * self.teacher(sr, lr_img)
        if self.flat is not None:
            with timed("solid-colour loss forward", step):
                loss = loss + self.args.flat_weight * self.flat(model, step)
        return loss


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iters", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=96)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--data", type=Path, default=None,
                    help="HR images (default: Set14's HR images from ../shared)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--adam", choices=("fused", "default"), default="fused",
                    help="the Adam implementation: 'fused', as srgan train uses it, or "
                    "torch's default (the for-loop one on the CPU; what training used before)")
    ap.add_argument("--d-fake", choices=("shared", "recomputed"), default="shared",
                    help="the D update's fake pass: 'shared', the adversarial term's D forward "
                    "reused, as srgan train does it, or 'recomputed', a second D forward on SR "
                    "(what training did before)")
    ap.add_argument("--flat-weight", type=float, default=0.0,
                    help="add the solid-colour loss (srgan train --flat-weight) with this weight")
    ap.add_argument("--gan-loss", choices=("standard", "ragan"), default="standard",
                    help="the adversarial loss (srgan train --gan-loss); ragan needs --d-fake "
                    "shared")
    ap.add_argument("--content-loss", choices=("vgg54", "vgg-multi"), default="vgg54",
                    help="the VGG content loss (srgan train --content-loss)")
    ap.add_argument("--artifact-weight", type=float, default=0.0,
                    help="add the artifact loss (srgan train --artifact-weight), refined by "
                    "the EMA's output, with this weight")
    ap.add_argument("--discriminator", choices=DISCRIMINATORS, default="vgg",
                    help="the discriminator (srgan train --discriminator): vgg, the paper's; "
                    "unet, the per-pixel U-Net")
    ap.add_argument("--teacher-weight", type=float, default=0.0,
                    help="add the L1 distillation term (srgan train --teacher srgan "
                    "--teacher-weight) with this weight")
    return ap


def main() -> int:
    ap = _parser()
    args = ap.parse_args()
    share = args.d_fake == "shared"
    if args.gan_loss == "ragan" and not share:
        ap.error("--gan-loss ragan profiles the shared D forward only")
    adversarial = (RelativisticAdversarialLoss() if args.gan_loss == "ragan"
                   else AdversarialLoss())
    multi = args.content_loss == "vgg-multi"
    if args.threads:
        torch.set_num_threads(args.threads)

    data = args.data or (benchmark_dir("Set14") / "Set14_HR")
    bank = ImageBank.from_dirs([str(data)], args.crop)
    gen_model = load_file(resolve_model("srresnet"), ours_only=True).net
    model = gen_model.train().to(memory_format=torch.channels_last)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    extra = ExtraTerms.from_args(args)
    vgg = VGGFeatures.load(args.content_loss).to(memory_format=torch.channels_last)
    vgg_name = "VGG multi-layer" if multi else "VGG54"
    disc = build_discriminator(args.discriminator, args.crop).to(
        memory_format=torch.channels_last)
    fused = True if args.adam == "fused" else None
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=fused)
    opt_d = torch.optim.Adam(disc.parameters(), lr=1e-4, fused=fused)
    amp = torch.bfloat16 if cpu_has_bf16() else None
    autocast = (torch.autocast("cpu", dtype=amp) if amp is not None
                else contextlib.nullcontext())
    g_params, d_params = list(model.parameters()), list(disc.parameters())
    rng = torch.Generator().manual_seed(0)
    times: dict[str, list[float]] = defaultdict(list)

    def timed(name: str, i: int):
        @contextlib.contextmanager
        def cm():
            t = time.perf_counter()
            yield
            if i >= args.warmup:
                times[name].append(time.perf_counter() - t)
        return cm()

    for i in range(args.warmup + args.iters):
        with timed("batch", i):
            lr_img, hr = sample_batch(bank, args.batch, args.crop, 4, rng)
            lr_img = lr_img.contiguous(memory_format=torch.channels_last)
            hr = hr.contiguous(memory_format=torch.channels_last)
        disc.requires_grad_(share)  # shared: D's graph on SR is kept for the D update
        with autocast:
            with timed("G forward", i):
                sr = model(lr_img)
            with timed(f"{vgg_name} on HR (no grad)", i):
                with torch.no_grad():
                    fh = content_features(vgg, hr)
            with timed(f"{vgg_name} on SR", i):  # as train.losses.PerceptualLoss
                l_content = feature_distance(vgg, content_features(vgg, sr), fh)
                if multi:
                    l_content = 2e-3 * l_content  # --content-weight 2e-3
            with timed("D on SR (adversarial term)", i):
                d_in = sr.detach().requires_grad_(True) if share else sr
                logits = disc(d_in).float()
            real = None
            if adversarial.relativistic:
                with timed("D on HR (relativistic term; the D update's real pass)", i):
                    real = disc(hr).float()
            l_gan = adversarial.generator_term(logits, real)
        loss = l_content + 1e-3 * l_gan + 0.5 * F.l1_loss(sr.float(), hr)
        loss = extra.add(loss, model=model, ema=ema, batch=(lr_img, hr), sr=sr, step=i,
                         timed=timed, autocast=autocast)
        with timed("G backward (through D, VGG, G)", i):
            opt.zero_grad(set_to_none=True)
            if share:  # the gradient at SR through D, then G's with it joined at SR
                (grad_sr,) = torch.autograd.grad(loss, d_in, retain_graph=True)
                torch.autograd.backward([loss, sr], [None, grad_sr], inputs=g_params)
            else:
                loss.backward()
        with timed("G Adam step + EMA", i):
            opt.step()
            with torch.no_grad():
                torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1e-3)
        disc.requires_grad_(True)
        opt_d.zero_grad(set_to_none=True)
        if real is not None:  # relativistic
            with timed("D real and fake backward (forwards shared)", i):
                torch.autograd.backward(sum(adversarial.discriminator_terms(real, logits)),
                                        inputs=d_params)
        else:
            if share:
                with timed("D fake backward (its forward shared)", i):
                    torch.autograd.backward(F.binary_cross_entropy_with_logits(
                        logits, torch.zeros_like(logits)), inputs=d_params)
            with timed("D real forward+backward", i):
                with autocast:
                    real = disc(hr).float()
                F.binary_cross_entropy_with_logits(real, torch.ones_like(real)).backward()
        if not share:
            with timed("D fake forward+backward", i):
                with autocast:
                    fake = disc(sr.detach()).float()
                F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)).backward()
        with timed("D Adam step", i):
            opt_d.step()

    per = {k: sum(v) / len(v) for k, v in times.items()}
    total = sum(per.values())
    hw = hardware(torch.device("cpu"))
    cpu = f"{hw['cpu']} ({', '.join(hw['cpu_bf16'])})"
    print(f"{cpu}, {torch.get_num_threads()} threads, precision {amp or 'fp32'}, "
          f"{args.adam} Adam, {args.discriminator} D, D fake pass {args.d_fake}, "
          f"{args.gan_loss} GAN loss, "
          f"solid-colour loss weight {args.flat_weight:g}, {args.content_loss} content "
          f"loss, artifact loss weight {args.artifact_weight:g}, teacher weight "
          f"{args.teacher_weight:g}, batch "
          f"{args.batch} of {args.crop} px, mean of {args.iters} iterations after "
          f"{args.warmup} warm-up")
    print("| phase | ms | share |\n| --- | --- | --- |")
    for k, v in per.items():
        print(f"| {k} | {v * 1e3:.0f} | {v / total:.1%} |")
    print(f"| **iteration** | **{total * 1e3:.0f}** | {1 / total:.3f} it/s |")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"peak RSS of the process: {peak_mib:.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps({"hardware": hw, "threads": torch.get_num_threads(),
                                         "precision": str(amp), "adam": args.adam,
                                         "d_fake": args.d_fake, "peak_rss_mib": peak_mib,
                                         "discriminator": args.discriminator,
                                         "gan_loss": args.gan_loss,
                                         "flat_weight": args.flat_weight,
                                         "content_loss": args.content_loss,
                                         "artifact_weight": args.artifact_weight,
                                         "teacher_weight": args.teacher_weight,
                                         "batch": args.batch, "crop": args.crop,
                                         "iters": args.iters,
                                         "seconds": per, "its_per_sec": 1 / total},
                                        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
