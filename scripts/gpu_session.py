"""The GPU kit: one command that turns a lent GPU into trained models and GPU numbers.

    # here, once per session that has a GPU (writes an ignored folder that travels):
    python scripts/gpu_session.py --pack .gpu_pack
    # on the device machine (docs/gpu.md has the exact `run` call):
    python3 scripts/gpu_session.py --out $OUT --pack-dir .gpu_pack --minutes 9
    # on the CPU, toy sizes and seconds-long stages (what CI runs):
    python scripts/gpu_session.py --out /tmp/kit --pack-dir .gpu_pack --dry-run

Stages, in order, each a subprocess under its own time limit; a stage that fails or runs
long is stopped at its planned end, so the next ones keep their time (a stage that ends
early leaves its spare time to the next):

1. ``env.json``: GPU, driver, torch, torchvision, numpy and Pillow versions, free memory,
   the measured bf16 matmul rate.
2. ``tests.log``: ``pytest -m cuda`` (tests/test_cuda.py).
3. ``speed.json``: ``srgan benchmark --speed`` at 512x512 and 2048x2048 (default precision
   and bf16, with the eager fp32 baseline), each result's fraction of the matmul rate.
4. ``srgan_real_x4.safetensors`` + ``srgan_real_log.jsonl`` (``--first real``, the
   default): the real-photo GAN of issues 21 and 22 continued from the shipped
   ``srgan-real`` (the default model) through its lattice filter (``--delattice 7``) with
   run gr35's recipe (``REAL_RECIPE``: degraded LR as the init
   file's metadata says, ``srgan-delattice`` distilled from the clean LR on the clean crops
   at weight 50, the relativistic loss against the U-Net discriminator at the generator's
   lr, adversarial 0.25 as run gr35 (0.5 in gr26: on the CPU the mesh over JPEG inputs came
   from 200 iterations at 0.5, from 400 at 0.25), the resize tie and grid loss; the eighth
   release is the mean of two checkpoints of gr38, this recipe with the artifact loss at
   250), exported
   (the EMA, its filter in it).
   Or (``--first srresnet``) ``srresnet_x4.safetensors`` + ``srresnet_log.jsonl``:
   SRResNet training continued from the shipped release (``--init``, ``--ema 0.999``).
   Time-bounded (``srgan train --max-seconds``).
5. ``srgan_x4.safetensors`` + ``srgan_log.jsonl``: the GAN stage continuing the shipped
   ``srgan-delattice`` (``srgan-real``'s teacher; ``--gan-init``; ``srgan``'s weights with
   the lattice filter, which the run keeps, so it trains through it) with the paper's
   recipe (issue 21, ``GAN_RECIPE``: VGG54, 0.5 x L1, 1e-3 adversarial, a fresh
   discriminator warmed up, EMA;
   CPU run gc1), optionally distilling ``--gan-teacher``, exported (the EMA).

Each export's metadata names its parent (``init`` and ``parent_sha256``); each stage log is
the run's own ``log.jsonl`` between a header record (command, parent and its sha256) and a
summary record (iterations, patches/s, achieved TFLOP/s and its fraction of the matmul
rate, exit status, output tail on failure). ``session.log`` is this script's own log.
Never downloads anything (``HF_HUB_OFFLINE=1``); runs from the checkout (``PYTHONPATH``).

Large batches: the paper trains at batch 16 with Adam at lr 1e-4. Here the batch fills the
GPU and the lr follows Adam's square-root rule, lr = base * sqrt(batch / 16): SRResNet
batch 256 -> 4e-4 (base 1e-4); the GAN stages fine-tune from gc1's and gr2's lr (base
5e-5), batch 64 -> 1e-4 (``--sr-batch/--sr-lr/--gan-batch/--gan-lr``).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACK_DEFAULT = ".gpu_pack"
VGG_NAME = "vgg19-features-imagenet-u8.safetensors"
TRAIN_SETS = ("photos", "bsds400")  # high-resolution material first
SHIPPED = REPO / "weights" / "srresnet_x4.safetensors"
MiB = 1 << 20
# the first training stage: issue 22's real-photo GAN, or the SRResNet
FIRST = {"real": "srgan_real", "srresnet": "srresnet"}


def outputs(first: str = "real") -> tuple[str, ...]:
    """What comes back from the device: at most 8 files (docs/gpu.md)."""
    name = FIRST[first]
    return ("env.json", "tests.log", "speed.json", f"{name}_x4.safetensors",
            f"{name}_log.jsonl", "srgan_x4.safetensors", "srgan_log.jsonl", "session.log")


# issue 21: srgan's own recipe continued through the lattice filter, as the CPU run gc1
# (weights/README.md, "srgan-delattice"); the init file's filter is kept
GAN_RECIPE = ("--d-warmup", "100", "--ema", "0.999", "--pixel-weight", "0.5",
              "--adv-weight", "1e-3", "--content-loss", "vgg54")
GAN_BASE_LR = 5e-5  # gc1's lr at batch 16: a fine-tuning of srgan-delattice, not a new GAN
GAN_INIT = REPO / "weights" / "srgan_delattice_x4.safetensors"
# an optional generator to distil (--teacher, the content loss at the HR term's weight)
TEACHER_RECIPE = ("--teacher-loss", "content", "--teacher-weight", "2e-3")
# issues 21/22: run gr26's recipe (weights/README.md, "Real photos"; the seventh srgan-real
# release), continued from the shipped srgan-real through its filter (window 7), distilling
# srgan-delattice from the clean downscale on the clean crops only at weight 50; the
# relativistic loss against the U-Net discriminator at the generator's lr (the stage's
# 1e-4; the CPU runs' 5e-5), adversarial 0.5, no artifact loss; --teacher and the lr are
# added by the stage. On the CPU this recipe swings 100-200 iterations after a fresh
# discriminator: the EMA the kit exports averages over the run.
REAL_INIT = REPO / "weights" / "srgan_real_x4.safetensors"
REAL_TEACHER = REPO / "weights" / "srgan_delattice_x4.safetensors"
REAL_RECIPE = ("--delattice", "7", "--teacher-input", "clean", "--teacher-weight", "50",
               "--teacher-on", "clean", "--gan-loss", "ragan", "--discriminator", "unet",
               "--content-loss", "vgg-multi", "--content-weight", "2e-3",
               "--artifact-weight", "0", "--ema", "0.999", "--tie-phases", "resize",
               "--grid-weight", "0.6", "--pixel-weight", "0.5", "--flat-weight", "5.0",
               "--flat-colours", "32", "--adv-weight", "0.25", "--adv-warmup", "0",
               "--d-warmup", "100")  # + --degradation: the init file's own (real_degradation)


def real_degradation(init: Path) -> str:
    """The ``--degradation`` the real model in ``init`` was trained with (its metadata), so
    the stage continues it on the same LR; a one-line error when the file has none."""
    from srgan_cli.distribution.tensorfile import metadata

    spec = metadata(init).get("degradation", "")
    if not spec.startswith("real"):
        raise ValueError(f"{init.name}: no 'real' degradation in its metadata "
                         f"(found {spec or 'none'!r}): not a real-photo model")
    return spec


def lr_for(batch: int, base: float = 1e-4) -> float:
    """Adam's square-root rule from ``base`` at the paper's batch 16 (its lr 1e-4; the
    GAN stage fine-tunes at GAN_BASE_LR)."""
    return base * math.sqrt(batch / 16)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- pack


def tree_bytes(repo: Path, exclude: Path) -> int:
    """Bytes of what travels besides carried paths: tracked files and untracked files git
    does not ignore (those under ``exclude`` not counted)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=repo, capture_output=True, check=True).stdout
    total = 0
    ex = exclude.resolve()
    for name in filter(None, out.split(b"\0")):
        p = (repo / os.fsdecode(name))
        if p.is_file() and not p.is_symlink() and ex not in p.resolve().parents:
            total += p.stat().st_size
    return total


def _encode(im, quality: int) -> bytes:
    b = io.BytesIO()
    im.save(b, "JPEG", quality=quality, subsampling=0, optimize=True)  # 4:4:4: no chroma blur
    return b.getvalue()


def _centre(im, fraction: float, min_side: int):
    """A centred crop of about ``fraction`` of the area, each side at least ``min_side``."""
    if fraction >= 1:
        return im
    s = math.sqrt(fraction)
    w = min(im.width, max(min_side, round(im.width * s)))
    h = min(im.height, max(min_side, round(im.height * s)))
    x, y = (im.width - w) // 2, (im.height - h) // 2
    return im.crop((x, y, x + w, y + h))


def pack(dest: Path, shared: Path, budget_mib: float, margin_mib: float, quality: int,
         min_side: int = 192) -> dict:
    """Fill the ignored folder ``dest`` with what the device needs, within the budget."""
    from PIL import Image, ImageOps

    from srgan_cli.train.data import find_images

    dest = (dest if dest.is_absolute() else REPO / dest).resolve()
    if REPO in dest.parents:  # it must travel as a carried path, so git must ignore it
        rel = dest.relative_to(REPO)
        if subprocess.run(["git", "check-ignore", "-q", str(rel)], cwd=REPO).returncode != 0:
            raise SystemExit(f"error: {rel} is not ignored by git; add '/{rel}' to "
                             f".gitignore or .git/info/exclude")
    vgg = shared / "weights" / VGG_NAME
    set5 = shared / "datasets" / "benchmark" / "Set5"
    sources = [shared / "datasets" / "train" / s for s in TRAIN_SETS]
    for need in (vgg, set5, *sources):
        if not need.exists():
            raise SystemExit(f"error: {need}: not found (the project's ../shared data)")
    import tempfile

    from srgan_cli.files import atomic_dir

    def fill(tmp: Path) -> tuple[dict, int]:
        (tmp / "train").mkdir()
        shutil.copy2(vgg, tmp / VGG_NAME)
        shutil.copytree(set5, tmp / "Set5")
        tree = tree_bytes(REPO, dest)
        fixed = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
        room = int((budget_mib - margin_mib) * MiB) - tree - fixed - 4096  # 4096: PACK.json
        if room <= 0:
            raise SystemExit(f"error: the tree ({tree / MiB:.1f} MiB) and the VGG weights + Set5 "
                             f"({fixed / MiB:.1f} MiB) leave no room in {budget_mib} MiB")
        images = []
        for src in sources:
            for p in find_images([src]):
                with Image.open(p) as im:
                    images.append((src.name, p, ImageOps.exif_transpose(im).convert("RGB")))
        fraction, blobs = 1.0, []
        for _ in range(6):  # shrink the crops until the JPEGs fit
            blobs = [(s, p, _encode(_centre(im, fraction, min_side), quality))
                     for s, p, im in images]
            total = sum(len(b) for _, _, b in blobs)
            if total <= room:
                break
            fraction *= 0.97 * room / total
        else:
            raise SystemExit(f"error: the training images do not fit in {room / MiB:.1f} MiB")
        for s, p, b in blobs:
            d = tmp / "train" / s
            d.mkdir(exist_ok=True)
            (d / (p.stem + ".jpg")).write_bytes(b)
        manifest = {
            "budget_mib": budget_mib, "margin_mib": margin_mib, "tree_mib": round(tree / MiB, 2),
            "vgg_and_set5_mib": round(fixed / MiB, 2),
            "train_mib": round(total / MiB, 2), "train_images": len(blobs),
            "train_megapixels": round(sum(_centre(im, fraction, min_side).width
                                          * _centre(im, fraction, min_side).height
                                          for _, _, im in images) / 1e6, 1),
            "jpeg_quality": quality, "chroma": "4:4:4", "area_fraction": round(fraction, 4),
            "sources": [str(s) for s in sources], "vgg": VGG_NAME, "vgg_sha256": sha256(vgg),
        }
        (tmp / "PACK.json").write_text(json.dumps(manifest, indent=2) + "\n")
        return manifest, tree

    # built outside the checkout (a half-made pack must never travel), then moved in
    manifest, tree = atomic_dir(dest, fill, staging=Path(tempfile.gettempdir()))
    manifest["total_mib"] = round((tree + sum(p.stat().st_size for p in dest.rglob("*")
                                              if p.is_file())) / MiB, 2)
    return manifest


# --------------------------------------------------------------------------- stages


@dataclass
class Plan:
    """Planned end of each stage, in seconds from the start."""

    ends: dict[str, float]
    train_margin: float  # seconds of a training stage not given to --max-seconds
    dry: bool


def make_plan(minutes: float, dry: bool, first: str = "real") -> Plan:
    """Stage ends; the first training stage is named ``FIRST[first]``."""
    total, name = minutes * 60, FIRST[first]
    if dry:  # seconds-long stages on the CPU; the limits only stop runaways
        return Plan({"env": 60, "tests": 150, "speed": 240, name: 330, "srgan": 420},
                    train_margin=0, dry=True)
    fixed = {"env": 20, "tests": 60, "speed": 60}
    rest = total - sum(fixed.values()) - 10  # 10 s for the last export
    ends, t = {}, 0.0
    for k, v in {**fixed, name: 0.47 * rest, "srgan": 0.53 * rest}.items():
        t += v
        ends[k] = t
    return Plan(ends, train_margin=30, dry=False)


class Session:
    def __init__(self, out: Path, work: Path, plan: Plan, args) -> None:
        self.out, self.work, self.plan, self.args = out, work, plan, args
        self.t0 = time.monotonic()
        self.log = open(out / "session.log", "a", encoding="utf-8")
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
            HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
        # as on the device: no ../shared (LPIPS is measured back here), nothing else found
        self.env["SRGAN_SHARED_DIR"] = str(work / "no-shared")
        self.env.pop("SRGAN_VGG_WEIGHTS", None)
        self.device = "cpu" if plan.dry else "cuda"
        self.gemm_gflops: float | None = None

    def say(self, msg: str) -> None:
        line = f"[{time.monotonic() - self.t0:6.1f} s] {msg}"
        print(line, flush=True)
        self.log.write(line + "\n")
        self.log.flush()

    def left(self, stage: str) -> float:
        return self.plan.ends[stage] - (time.monotonic() - self.t0)

    def run(self, cmd: list[str], limit: float, log: Path) -> tuple[int | None, float]:
        """Run ``cmd`` with its output in ``log``; (exit status or None on timeout, seconds)."""
        t = time.monotonic()
        with open(log, "ab") as f:
            f.write((" ".join(cmd) + "\n").encode())
            f.flush()
            proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=f,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            try:
                rc = proc.wait(timeout=max(limit, 1))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 15)  # its own session: the whole process group
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)
                    proc.wait()
                rc = None
        return rc, time.monotonic() - t

    # ------------------------------------------------------------------ 1. env

    def stage_env(self) -> None:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--probe", str(self.out / "env.json")]
        if self.plan.dry:
            cmd.append("--dry-run")
        log = self.work / "env.out"
        rc, secs = self.run(cmd, self.left("env"), log)
        self.say(f"env: exit {rc} in {secs:.0f} s")
        try:
            env = json.loads((self.out / "env.json").read_text())
            self.gemm_gflops = env.get("bf16_matmul_gflops")
        except (OSError, ValueError):
            (self.out / "env.json").write_text(json.dumps(
                {"error": f"probe exit {rc}", "output_tail": _tail(log)}, indent=2) + "\n")

    # ------------------------------------------------------------------ 2. tests

    def stage_tests(self) -> None:
        cmd = [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-rs", "-p", "no:cacheprovider",
               "tests/test_cuda.py"]
        rc, secs = self.run(cmd, self.left("tests"), self.out / "tests.log")
        with open(self.out / "tests.log", "a") as f:
            f.write(f"\n[kit] exit {rc if rc is not None else 'timeout'} in {secs:.1f} s\n")
        self.say(f"tests: exit {rc} in {secs:.0f} s")

    # ------------------------------------------------------------------ 3. speed

    def stage_speed(self) -> None:
        if self.plan.dry:
            runs = [("32x32", "auto", True, 1)]
        else:
            runs = [("512x512", "auto", True, 5), ("2048x2048", "auto", True, 3),
                    ("512x512", "bf16", False, 5), ("2048x2048", "bf16", False, 3),
                    ("512x512", "fp32", False, 5)]
        results = []
        for size, prec, base, n in runs:
            limit = self.left("speed")
            if limit < 5:
                results.append({"size": size, "precision": prec, "skipped": "stage time up"})
                continue
            js = self.work / f"speed_{size}_{prec}.json"
            cmd = [sys.executable, "-m", "srgan_cli", "benchmark", "--speed", "--device",
                   self.device, "--size", size, "--precision", prec, "--runs", str(n),
                   "--no-gemm", "--json", str(js)] + (["--baseline", "eager-fp32"] if base else [])
            log = self.work / f"speed_{size}_{prec}.out"
            rc, secs = self.run(cmd, limit, log)
            rec = {"size": size, "precision": prec, "command": " ".join(cmd[2:]),
                   "exit": rc, "seconds": round(secs, 1)}
            try:
                data = json.loads(js.read_text())
                for r in data["results"]:
                    if self.gemm_gflops:
                        r["fraction_of_bf16_matmul"] = r["gflops"] / self.gemm_gflops
                rec.update(data)
            except (OSError, ValueError, KeyError):
                rec["output_tail"] = _tail(log)
            results.append(rec)
            self.say(f"speed {size} {prec}: exit {rc} in {secs:.0f} s")
        (self.out / "speed.json").write_text(json.dumps(
            {"bf16_matmul_gflops": self.gemm_gflops, "runs": results}, indent=2) + "\n")

    # ------------------------------------------------------------------ 4-5. training

    def train_stage(self, stage: str, parent: Path, extra: list[str],
                    name: str | None = None) -> Path | None:
        a, pack_dir = self.args, self.args.pack_dir
        name = name or ("srresnet" if stage == "srresnet" else "srgan")
        run_dir = self.work / name
        shutil.rmtree(run_dir, ignore_errors=True)
        limit = self.left(name)
        parent_sha = sha256(parent)
        from srgan_cli.distribution.loading import facts_of_file

        spec = facts_of_file(parent).spec
        base_lr = 1e-4 if stage == "srresnet" else GAN_BASE_LR  # at batch 16
        if self.plan.dry:
            batch, lr, crop = 2, 1e-4, 32
            budget = a.dry_train_seconds
            every = ["--ckpt-every", "1000", "--val-every", "1000"]
        else:
            batch = a.sr_batch if stage == "srresnet" else a.gan_batch
            lr = a.sr_lr if stage == "srresnet" else a.gan_lr
            lr = lr or lr_for(batch, base_lr)
            crop = 96
            budget = max(limit - self.plan.train_margin, 5)
            n = 1000 if stage == "srresnet" else 500
            every = ["--ckpt-every", str(n), "--val-every", str(n), "--log-every", "50"]
        cmd = [sys.executable, "-m", "srgan_cli", "train", "--stage", stage,
               "--data", str(pack_dir / "train"), "--val-dir", str(pack_dir / "Set5"),
               "--run-dir", str(run_dir), "--init", str(parent), "--iters", "100000000",
               "--blocks", str(spec.blocks), "--width", str(spec.width),
               "--batch", str(batch), "--crop", str(crop), "--lr", f"{lr:g}",
               "--lr-schedule", "constant", "--device", self.device,
               "--precision", "bf16" if not self.plan.dry else "fp32", "--channels-last",
               "--max-seconds", f"{budget:.0f}", *every, *extra]
        head = {"kit": name, "command": " ".join(cmd[2:]), "parent": str(parent.relative_to(REPO)
                if parent.is_relative_to(REPO) else parent), "parent_sha256": parent_sha,
                "batch": batch, "lr": lr, "lr_rule": f"{base_lr:g} * sqrt(batch / 16) (Adam)",
                "crop": crop, "stage_limit_s": round(limit, 1), "max_seconds": round(budget, 1)}
        self.say(f"{name}: {limit:.0f} s (training {budget:.0f} s), batch {batch}, lr {lr:g}, "
                 f"from {parent.name} ({parent_sha[:12]})")
        out_log = self.work / f"{name}.out"
        rc, secs = self.run(cmd, limit, out_log)
        summary = {"kit_summary": name, "exit": rc, "timed_out": rc is None,
                   "seconds": round(secs, 1)}
        export_path = self.out / f"{name}_x4.safetensors"
        ckpt = run_dir / "last.pt"
        records = _read_jsonl(run_dir / "log.jsonl")
        summary.update(throughput(records, stage, batch, crop, self.gemm_gflops))
        if rc != 0:
            summary["output_tail"] = _tail(out_log)
        exported = None
        if ckpt.is_file():
            try:
                from srgan_cli.train.export import export

                # the run itself recorded its --init file: export writes parent_sha256
                export(ckpt, export_path, extra={
                    "hardware": self.hardware(), "made_by": "scripts/gpu_session.py",
                    "lr_rule": head["lr_rule"], "lr": f"{lr:g}"})
                exported = export_path
                summary.update(export=export_path.name, export_sha256=sha256(export_path))
            except Exception as e:  # noqa: BLE001 - reported in the log, the kit goes on
                summary["export_error"] = f"{type(e).__name__}: {e}"
        else:
            summary["export_error"] = "no checkpoint was written"
        with open(self.out / f"{name}_log.jsonl", "w", encoding="utf-8") as f:
            for rec in [head, *records, summary]:
                f.write(json.dumps(rec) + "\n")
        self.say(f"{name}: exit {rc} in {secs:.0f} s; "
                 + (f"{summary.get('iterations')} iterations, "
                    f"{summary.get('patches_per_s', 0):.0f} patches/s; exported {export_path.name}"
                    if exported else summary.get("export_error", "")))
        return exported

    def hardware(self) -> str:
        try:
            env = json.loads((self.out / "env.json").read_text())
            return f"{env.get('gpu') or env.get('cpu')}, torch {env.get('torch')}"
        except (OSError, ValueError):
            return "unknown"


def throughput(records: list[dict], stage: str, batch: int, crop: int,
               gemm_gflops: float | None) -> dict:
    """Iterations, patches/s (median over logged windows, the first left out as warm-up)
    and achieved TFLOP/s of a training log."""
    steps = [r for r in records if "its_per_sec" in r]
    rates = [r["its_per_sec"] for r in steps[1:]] or [r["its_per_sec"] for r in steps]
    res: dict = {"iterations": max((r["iteration"] for r in records if "iteration" in r),
                                   default=0),
                 "stopped": next((r["stopped"] for r in records if "stopped" in r), None)}
    vals = [r for r in records if "val_psnr" in r]
    if vals:
        res["val_set5_psnr"] = vals[-1]["val_psnr"]
        if "val_lpips" in vals[-1]:
            res["val_set5_lpips"] = vals[-1]["val_lpips"]
    if rates:
        its = sorted(rates)[len(rates) // 2]
        flops = training_flops_per_patch(stage, crop)
        res.update(its_per_sec=its, patches_per_s=its * batch,
                   tflops=its * batch * flops / 1e12, train_gflop_per_patch=flops / 1e9)
        if gemm_gflops:
            res["fraction_of_bf16_matmul"] = its * batch * flops / 1e9 / gemm_gflops
    return res


def _conv_linear_flops(net, x) -> float:
    """Forward FLOPs (2 x multiply-adds) of the convolutions and linear layers of ``net``."""
    import torch

    total = [0.0]

    def hook(m, inp, out):
        if isinstance(m, torch.nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
            total[0] += 2.0 * k * out.numel()
        elif isinstance(m, torch.nn.Linear):
            total[0] += 2.0 * m.in_features * out.numel()

    hs = [m.register_forward_hook(hook) for m in net.modules()
          if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        net(x)
    for h in hs:
        h.remove()
    return total[0]


def training_flops_per_patch(stage: str, crop: int, scale: int = 4) -> float:
    """FLOPs of one training patch: backward counted as twice the forward where weights
    train (G; D's own step), once where only input gradients flow (VGG, D in G's step)."""
    import torch

    from srgan_cli.nets.generator import GeneratorSpec

    g = GeneratorSpec(scale=scale).flops_per_lr_pixel() * (crop // scale) ** 2
    if stage == "srresnet":
        return 3 * g
    from srgan_cli.nets.discriminator import Discriminator
    from srgan_cli.nets.vgg import CUTS, vgg19_features

    x = torch.zeros(1, 3, crop, crop)
    v = _conv_linear_flops(vgg19_features()[: CUTS["vgg54"]], x)
    d = _conv_linear_flops(Discriminator(crop), x)
    # G: fwd+bwd; VGG: HR fwd, SR fwd + input-grad bwd; D: G-step fwd + input-grad bwd,
    # D-step real and fake each fwd + bwd (weights and activations)
    return 3 * g + 3 * v + 2 * d + 2 * 3 * d


def _read_jsonl(path: Path) -> list[dict]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


# --------------------------------------------------------------------------- probe


def _versions() -> dict[str, str | None]:
    """The versions of the libraries the kit runs on beside torch (None: not importable)."""
    import importlib

    found = {}
    for key, name in (("torchvision", "torchvision"), ("numpy", "numpy"), ("pillow", "PIL")):
        try:
            found[f"{key}_version"] = importlib.import_module(name).__version__
        except ImportError:
            found[f"{key}_version"] = None
    return found


def probe(path: Path, dry: bool) -> None:
    """Write env.json: the machine, torch, torchvision, numpy and Pillow versions, the GPU
    and its measured bf16 matmul rate."""
    import platform

    import torch

    from srgan_cli.bench.speed import gemm_rate, hardware

    dev = torch.device("cuda" if not dry and torch.cuda.is_available() else "cpu")
    info = {"python": platform.python_version(), **_versions(), "torch_cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available()
            else None, "device": str(dev), **hardware(dev)}
    if dev.type == "cuda":
        free, total = torch.cuda.mem_get_info(dev)
        p = torch.cuda.get_device_properties(dev)
        info.update(free_mib=free // MiB, total_mib=total // MiB, sm_count=p.multi_processor_count,
                    capability=f"{p.major}.{p.minor}")
        try:
            smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,clocks.max.sm",
                                  "--format=csv,noheader"], capture_output=True, text=True,
                                 timeout=20)
            info["nvidia_smi"] = smi.stdout.strip()
        except (OSError, subprocess.TimeoutExpired) as e:
            info["nvidia_smi"] = f"unavailable: {e}"
    elif not dry:
        info["error"] = "CUDA is not available"
    n = 8192 if dev.type == "cuda" else 256
    info["bf16_matmul_n"] = n
    info["bf16_matmul_gflops"] = gemm_rate(dev, n=n, repeats=10 if dev.type == "cuda" else 2)
    path.write_text(json.dumps(info, indent=2) + "\n")


# --------------------------------------------------------------------------- main


def session(args) -> int:
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = (args.work or Path("/tmp") / f"srgan_gpu_session_{os.getpid()}").resolve()
    work.mkdir(parents=True, exist_ok=True)
    args.pack_dir = (args.pack_dir if args.pack_dir.is_absolute() else REPO / args.pack_dir)
    plan = make_plan(args.minutes, args.dry_run, args.first)
    s = Session(out, work, plan, args)
    s.say(f"GPU kit: {'dry run on the CPU' if args.dry_run else f'{args.minutes:g} minutes'}; "
          f"plan (end of each stage, s): "
          + ", ".join(f"{k} {v:.0f}" for k, v in plan.ends.items()))
    missing = [p for p in (args.pack_dir / "train", args.pack_dir / "Set5",
                           args.pack_dir / VGG_NAME) if not p.exists()]
    if missing:
        s.say(f"error: {missing[0]} missing: run scripts/gpu_session.py --pack "
              f"{args.pack_dir.name} here first")
    for name, fn in (("env", s.stage_env), ("tests", s.stage_tests), ("speed", s.stage_speed)):
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - one stage's failure must not stop the rest
            s.say(f"{name}: failed in the kit: {type(e).__name__}: {e}")
    vgg = ["--vgg-weights", str(args.pack_dir / VGG_NAME)]
    if not missing:
        first = FIRST[args.first]
        try:
            if args.first == "real":
                s.train_stage("gan", args.real_init,
                              [*REAL_RECIPE, "--degradation", real_degradation(args.real_init),
                               "--teacher", str(args.real_teacher), *vgg], first)
            else:
                s.train_stage("srresnet", args.init, ["--ema", "0.999"])
        except Exception as e:  # noqa: BLE001
            s.say(f"{first}: failed in the kit: {type(e).__name__}: {e}")
        try:
            teacher = (["--teacher", str(args.gan_teacher), *TEACHER_RECIPE]
                       if args.gan_teacher else [])
            s.train_stage("gan", args.gan_init, [*GAN_RECIPE, *teacher, *vgg])
        except Exception as e:  # noqa: BLE001
            s.say(f"srgan: failed in the kit: {type(e).__name__}: {e}")
    want = outputs(args.first)
    have = [n for n in want if (out / n).is_file()]
    s.say(f"done in {time.monotonic() - s.t0:.0f} s: {', '.join(have)}")
    if not args.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if len(have) == len(want) else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="where the output files go (on the device: $OUT)")
    ap.add_argument("--pack", type=Path, metavar="DIR",
                    help="fill the git-ignored DIR with what the device needs, then stop")
    ap.add_argument("--pack-dir", type=Path, default=Path(PACK_DEFAULT),
                    help=f"the packed folder the session reads (default {PACK_DEFAULT})")
    ap.add_argument("--minutes", type=float, default=9.0, help="the whole session's time")
    ap.add_argument("--dry-run", action="store_true",
                    help="every stage on the CPU with toy sizes and seconds-long training")
    ap.add_argument("--dry-train-seconds", type=float, default=3.0, help=argparse.SUPPRESS)
    ap.add_argument("--first", choices=tuple(FIRST), default="real",
                    help="the first training stage: issue 22's real-photo GAN or the SRResNet")
    ap.add_argument("--real-init", type=Path, default=REAL_INIT,
                    help="the real-photo GAN stage continues it (through its filter)")
    ap.add_argument("--real-teacher", type=Path, default=REAL_TEACHER,
                    help="the generator the real-photo GAN stage distils from the clean LR")
    ap.add_argument("--init", type=Path, default=SHIPPED,
                    help="the SRResNet stage continues it (--first srresnet)")
    ap.add_argument("--gan-init", type=Path, default=GAN_INIT,
                    help="the GAN stage 5 continues it (its lattice filter kept)")
    ap.add_argument("--gan-teacher", type=Path, default=None,
                    help="a generator stage 5 distils (--teacher; default: none)")
    ap.add_argument("--sr-batch", type=int, default=256)
    ap.add_argument("--sr-lr", type=float, default=None, help="default: 1e-4*sqrt(batch/16)")
    ap.add_argument("--gan-batch", type=int, default=64)
    ap.add_argument("--gan-lr", type=float, default=None, help="default: 5e-5*sqrt(batch/16)")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default in /tmp)")
    ap.add_argument("--keep-work", action="store_true", help="keep the scratch folder")
    ap.add_argument("--shared", type=Path, default=None, help="--pack: the shared data folder")
    ap.add_argument("--budget-mib", type=float, default=64.0,
                    help="--pack: tree + carried paths must fit in this")
    ap.add_argument("--margin-mib", type=float, default=3.0,
                    help="--pack: left free for files added before the run")
    ap.add_argument("--quality", type=int, default=95, help="--pack: JPEG quality")
    ap.add_argument("--probe", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    if args.probe:
        probe(args.probe, args.dry_run)
        return 0
    if args.pack:
        from srgan_cli.paths import shared_dir

        shared = args.shared or shared_dir()
        if shared is None:
            raise SystemExit("error: no shared data folder: pass --shared DIR")
        m = pack(args.pack, Path(shared), args.budget_mib, args.margin_mib, args.quality)
        print(json.dumps(m, indent=2))
        return 0
    if not args.out:
        ap.error("--out DIR is required (or --pack DIR)")
    for key in ("init", "real_init", "real_teacher"):
        path = getattr(args, key)
        setattr(args, key, path if path.is_absolute() else Path.cwd() / path)
    return session(args)


if __name__ == "__main__":
    sys.exit(main())
