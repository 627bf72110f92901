"""Training the generator: the paper's SRResNet stage (Sec. 3.2) and its SRGAN stage.

Library code: reports progress through a callback and raises :class:`TrainError`;
it never prints.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from srgan_cli.device import resolve_device, training_dtype
from srgan_cli.errors import TrainError
from srgan_cli.nets.generator import GeneratorSpec, SRResNet
from srgan_cli.train.data import DataError, ImageBank, sample_batch
from srgan_cli.weights import atomic_write, save_generator

CHECKPOINT_VERSION = 2
READABLE_VERSIONS = (1, 2)
STAGES = ("srresnet", "gan")
CONTENT_LOSSES = ("mse", "vgg22", "vgg54")
# what a stage trains when the config leaves a field at None (the paper's recipes);
# the gan stage also gets lr_milestones [100000] when its schedule is 'step'
STAGE_DEFAULTS: dict[str, dict[str, Any]] = {
    "srresnet": {"iters": 1_000_000, "lr_schedule": "constant", "content_loss": "mse",
                 "init": None},
    "gan": {"iters": 200_000, "lr_schedule": "step", "content_loss": "vgg54",
            "init": "srresnet"},
}
GAN_LR_STEP = 100_000
ADAM_BETAS = (0.9, 0.999)  # the paper's beta1 = 0.9


@dataclass
class TrainConfig:
    """What to train. Fields left at None get the stage's default (``STAGE_DEFAULTS``):
    ``TrainConfig(data, stage="gan")`` trains what ``srgan train --stage gan`` does."""

    data: list[str]
    run_dir: str | None = None  # default: runs/<stage>
    stage: str = "srresnet"
    iters: int | None = None  # default: 10^6 (srresnet), 2x10^5 (gan)
    batch: int = 16
    crop: int = 96
    scale: int = 4
    blocks: int = 16
    width: int = 64
    lr: float = 1e-4
    lr_schedule: str | None = None  # constant | cosine | step; default constant, step (gan)
    lr_milestones: list[int] | None = None  # for 'step': x0.1 at each; default [10^5] (gan)
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    channels_last: bool = True
    device: str = "auto"
    seed: int = 0
    ckpt_every: int = 1000
    val_every: int = 1000
    val_dir: str | None = None
    log_every: int = 10
    init: str | None = None  # start G from released weights (name or path); gan: 'srresnet'
    content_loss: str | None = None  # mse | vgg22 | vgg54 (Table 1); default mse, vgg54 (gan)
    adv_weight: float = 1e-3  # weight of -log D(G(LR)) in the GAN stage
    d_lr: float | None = None  # discriminator lr (default: the generator's; same schedule)
    ema: float = 0.0  # decay of an exponential moving average of G (0: off)
    pixel_weight: float = 0.0  # gan: weight of an L1 pixel term beside the content loss
    adv_warmup: int = 0  # gan: ramp the adversarial weight linearly from 0 over N iterations
    vgg_weights: str | None = None
    lpips_weights: str | None = None
    # wall-clock limit in seconds (0: none), counted from the start of the training set-up
    # (data loading included): the run then checkpoints, validates and returns early
    max_seconds: float = 0.0

    def __post_init__(self) -> None:
        defaults = STAGE_DEFAULTS.get(self.stage)
        if defaults is None:
            raise TrainError(f"unknown stage {self.stage!r} ({', '.join(STAGES)})")
        for name, value in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.run_dir is None:
            self.run_dir = str(Path("runs") / self.stage)
        if self.lr_milestones is None:
            self.lr_milestones = ([GAN_LR_STEP] if self.stage == "gan"
                                  and self.lr_schedule == "step" else [])

    def spec(self) -> GeneratorSpec:
        return GeneratorSpec(scale=self.scale, blocks=self.blocks, width=self.width)


def lr_at(cfg: TrainConfig, it: int) -> float:
    """Learning rate for (0-based) iteration ``it``; a pure function of the config."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    if cfg.lr_schedule == "step":
        return cfg.lr * 0.1 ** sum(1 for m in cfg.lr_milestones if it >= m)
    if cfg.lr_schedule == "cosine":
        t = min(it / max(cfg.iters, 1), 1.0)
        return 0.5 * cfg.lr * (1 + math.cos(math.pi * t))
    raise TrainError(f"unknown lr schedule {cfg.lr_schedule!r} (constant, cosine, step)")


def adv_weight_at(cfg: TrainConfig, it: int) -> float:
    """Adversarial weight at (0-based) iteration ``it``: ``adv_weight``, ramped linearly
    from 0 over the first ``adv_warmup`` iterations when that is set."""
    if cfg.adv_warmup > 0 and it < cfg.adv_warmup:
        return cfg.adv_weight * (it + 1) / cfg.adv_warmup
    return cfg.adv_weight


@dataclass
class Progress:
    """What the training loop reports after every logged step."""

    iteration: int
    total: int
    losses: dict[str, float]
    lr: float
    its_per_sec: float
    event: str = "step"  # step | validate | checkpoint | loading
    val_psnr: float | None = None
    message: str = ""
    val_lpips: float | None = None


ProgressFn = Callable[[Progress], None]


# --------------------------------------------------------------------------- validation


def load_pairs(val_dir: Path, scale: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(LR, HR) uint8 pairs of a benchmark folder such as ``.../Set5`` (``*_HR``, ``*_LR_x4``)."""
    from srgan_cli.bench.datasets import DatasetError, load_dataset

    try:
        pairs = load_dataset(val_dir.name, val_dir.parent, scale)
    except (DatasetError, OSError) as e:
        raise TrainError(f"validation data: {e}") from None
    return [(_rgb(p.lr), _rgb(p.hr)) for p in pairs]


def _rgb(a: np.ndarray) -> np.ndarray:
    return a if a.ndim == 3 else np.repeat(a[..., None], 3, axis=2)


def _sr_u8(model: SRResNet, lr: np.ndarray, device: torch.device) -> torch.Tensor:
    """The model's 8-bit output (1, 3, H, W) for an (h, w, 3) uint8 LR image, on the CPU."""
    x = torch.from_numpy(lr).permute(2, 0, 1)[None].float().div(255).to(device)
    return ((model(x).float() + 1) * 127.5).clamp(0, 255).round().to(torch.uint8).cpu()


@torch.inference_mode()
def validate(model: SRResNet, pairs, device: torch.device) -> float:
    """Mean Y-PSNR (paper protocol: BT.601 luma, 4 px border) over ``pairs``, fp32."""
    from srgan_cli.bench.metrics import psnr

    was_training = model.training
    model.eval()
    scores = [psnr(_sr_u8(model, lr, device)[0].permute(1, 2, 0).numpy(), hr,
                   crop_border=model.spec.scale) for lr, hr in pairs]
    model.train(was_training)
    return float(np.mean(scores))


@torch.inference_mode()
def validate_lpips(model: SRResNet, pairs, lpips_model, device: torch.device) -> float:
    """Mean LPIPS (AlexNet) of the 8-bit SR outputs against HR, on the CPU."""
    was_training = model.training
    model.eval()
    scores = [float(lpips_model(_sr_u8(model, lr, device).float().div(255),
                                torch.from_numpy(hr).permute(2, 0, 1)[None].float().div(255))[0])
              for lr, hr in pairs]
    model.train(was_training)
    return float(np.mean(scores))


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a checkpoint dict atomically (a crash never leaves a half-written ``last.pt``)."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load our own checkpoint with ``weights_only=True`` (no arbitrary unpickling)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TrainError(f"{path}: no such checkpoint") from None
    except Exception as e:  # noqa: BLE001 - torch raises many types for bad files
        raise TrainError(f"{path}: not a readable srgan checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict) or ckpt.get("version") not in READABLE_VERSIONS:
        raise TrainError(f"{path}: not an srgan checkpoint (versions "
                         f"{', '.join(map(str, READABLE_VERSIONS))})")
    return ckpt


# --------------------------------------------------------------------------- training


@dataclass
class TrainResult:
    iteration: int
    checkpoint: Path
    val_psnr: float | None
    seconds: float


def _seed_for(seed: int, rank: int, iteration: int) -> int:
    return (seed * 1_000_003 + rank * 7919 + iteration) % (2**63)


def train(cfg: TrainConfig, resume: str | os.PathLike | None = None,
          on_progress: ProgressFn | None = None) -> TrainResult:
    """Run (or continue) a training stage until ``cfg.iters`` iterations are done.

    ``srresnet``: the generator alone with the content loss (MSE by default).
    ``gan``: generator + discriminator, content loss (VGG54 by default) + ``adv_weight`` x
    the adversarial loss -log D(G(LR)), alternating one G and one D update per iteration.
    """
    from srgan_cli.train import dist

    if cfg.stage not in STAGES:
        raise TrainError(f"unknown stage {cfg.stage!r} ({', '.join(STAGES)})")
    if cfg.content_loss not in CONTENT_LOSSES:
        raise TrainError(f"unknown content loss {cfg.content_loss!r} ({', '.join(CONTENT_LOSSES)})")
    info = dist.from_env()
    try:
        device = resolve_device(cfg.device)
    except ValueError as e:
        raise TrainError(str(e)) from None
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if cfg.batch % info.world:
        raise TrainError(f"--batch {cfg.batch} must be a multiple of the {info.world} processes")
    amp = training_dtype(cfg.precision, device)
    if device.type == "cuda" and not torch.backends.cudnn.deterministic:
        torch.backends.cudnn.benchmark = True  # fixed crop shapes: pick the fastest kernels
    report = (on_progress or (lambda p: None)) if info.main else (lambda p: None)
    run_dir = Path(cfg.run_dir)
    ckpt_path = run_dir / "last.pt"
    if info.main:
        run_dir.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(cfg.seed + info.rank)
    gen = torch.Generator().manual_seed(cfg.seed if not info.enabled
                                        else _seed_for(cfg.seed, info.rank, 0))
    start = 0
    history: dict[str, Any] = {"val": [], "seconds": 0.0}
    ckpt = load_checkpoint(Path(resume)) if resume else None
    if ckpt is not None:
        done_stage = json.loads(ckpt["config"]).get("stage", "srresnet")
        if done_stage != cfg.stage:
            raise TrainError(f"{resume}: a {done_stage!r} checkpoint cannot resume the "
                             f"{cfg.stage!r} stage (start the GAN stage with --init instead)")
    init_model = None
    if ckpt is None and cfg.init:
        from srgan_cli.errors import WeightsError
        from srgan_cli.models import resolve_model
        from srgan_cli.weights import load_generator

        from srgan_cli.hub import sha256_file

        try:
            init_path = resolve_model(cfg.init)
            init_model, winfo = load_generator(init_path)
        except WeightsError as e:
            raise TrainError(str(e)) from None
        if winfo.spec.blocks != cfg.blocks or winfo.spec.width != cfg.width:
            raise TrainError(f"{cfg.init}: has B={winfo.spec.blocks}, width={winfo.spec.width}; "
                             f"the run asks for B={cfg.blocks}, width={cfg.width}")
        history["init"] = {
            "file": Path(str(cfg.init)).name,
            "iterations": winfo.iterations or 0,
            "seconds": float(winfo.metadata.get("train_seconds", 0) or 0),
            "stage": winfo.stage,
            # the exact parent: export writes it as parent_sha256 (--realism pairs by it)
            "filename": init_path.name,
            "sha256": sha256_file(init_path),
        }
    elif ckpt is None and cfg.stage == "gan":
        raise TrainError("the GAN stage starts from trained SRResNet weights: pass --init "
                         "NAME|PATH (e.g. --init srresnet)")
    spec = (GeneratorSpec(**json.loads(ckpt["spec"])) if ckpt
            else init_model.spec if init_model is not None else cfg.spec())
    if spec.scale != cfg.scale or (cfg.crop % spec.scale):
        raise TrainError(f"crop {cfg.crop} must be a multiple of the scale {spec.scale}")
    is_gan = cfg.stage == "gan"
    if is_gan and cfg.crop % 16:
        raise TrainError(f"the discriminator needs --crop to be a multiple of 16, got {cfg.crop}")

    vgg = None
    if cfg.content_loss != "mse":
        from srgan_cli.errors import WeightsError
        from srgan_cli.nets.vgg import VGGFeatures

        try:
            vgg = VGGFeatures.load(cfg.content_loss, cfg.vgg_weights).to(device)
        except WeightsError as e:
            raise TrainError(str(e)) from None
        if cfg.channels_last:
            vgg = vgg.to(memory_format=torch.channels_last)

    model = SRResNet(spec)
    if init_model is not None:
        model.load_state_dict(init_model.state_dict())
    model = model.to(device)
    disc = None
    if is_gan:
        from srgan_cli.nets.discriminator import Discriminator

        disc = Discriminator(cfg.crop).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
        if disc is not None:
            disc = disc.to(memory_format=torch.channels_last)
    # CUDA: the fused (one kernel per step) Adam; same update rule, same state dict
    fused = True if device.type == "cuda" else None
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=ADAM_BETAS,
                           fused=fused)
    opt_d = (torch.optim.Adam(disc.parameters(), lr=cfg.d_lr or cfg.lr,
                              betas=ADAM_BETAS, fused=fused)
             if disc is not None else None)
    ema = None
    if cfg.ema:
        ema = copy.deepcopy(model).eval().requires_grad_(False)
    scaler = torch.amp.GradScaler(device.type, enabled=(amp == torch.float16))
    scaler_d = torch.amp.GradScaler(device.type, enabled=(amp == torch.float16))
    reseeded = False
    if ckpt:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optim"])
        if disc is not None:
            if "disc" not in ckpt:
                raise TrainError(f"{resume}: has no discriminator state")
            disc.load_state_dict(ckpt["disc"])
            opt_d.load_state_dict(ckpt["optim_d"])
        if ema is not None:
            ema.load_state_dict(ckpt["ema"] if "ema" in ckpt else ckpt["model"])
        if "scaler" in ckpt:
            scaler.load_state_dict(ckpt["scaler"])
        if "scaler_d" in ckpt:
            scaler_d.load_state_dict(ckpt["scaler_d"])
        start = int(ckpt["iteration"])
        states = ckpt.get("data_rng_ranks") or [ckpt["data_rng"]]
        if info.rank < len(states) and len(states) == info.world:
            gen.set_state(states[info.rank])
        elif info.enabled:  # another number of processes than before: fresh, distinct streams
            gen.manual_seed(_seed_for(cfg.seed, info.rank, start))
            reseeded = True
        else:
            gen.set_state(states[0])
        if info.main:
            torch.set_rng_state(ckpt["torch_rng"])
            if "cuda_rng" in ckpt and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
        history = json.loads(ckpt["history"])
    model.train()
    if start >= cfg.iters:  # nothing left to do (e.g. --resume ... --export)
        val = history["val"][-1][1] if history["val"] else None
        return TrainResult(start, Path(resume), val, history["seconds"])

    dist.init(info, device)
    try:
        return _run(cfg, info, device, amp, report, run_dir, ckpt_path, spec, model, disc, vgg,
                    ema, opt, opt_d, scaler, scaler_d, gen, start, history, reseeded)
    finally:
        dist.shutdown(info)


def _run(cfg, info, device, amp, report, run_dir, ckpt_path, spec, model, disc, vgg, ema,
         opt, opt_d, scaler, scaler_d, gen, start, history, reseeded) -> TrainResult:
    from torch.nn.parallel import DistributedDataParallel as DDP

    from srgan_cli.nets.vgg import content_loss as vgg_loss
    from srgan_cli.train import dist

    is_gan = disc is not None
    deadline = time.perf_counter() + cfg.max_seconds if cfg.max_seconds > 0 else None
    report(Progress(start, cfg.iters, {}, lr_at(cfg, start), 0.0, "loading",
                    message=f"loading training images from {', '.join(map(str, cfg.data))}"))
    try:
        bank = ImageBank.from_dirs(cfg.data, cfg.crop,
                                   device=device if device.type == "cuda" else "cpu",
                                   shard=(info.rank, info.world))
    except DataError as e:
        raise TrainError(str(e)) from None
    pairs = load_pairs(Path(cfg.val_dir), spec.scale) if cfg.val_dir and info.main else None
    lpips_model = None
    if pairs is not None and is_gan:
        from srgan_cli.errors import WeightsError
        from srgan_cli.nets.lpips import LPIPS, default_weights

        if cfg.lpips_weights or default_weights():
            try:
                lpips_model = LPIPS.load(cfg.lpips_weights)
            except WeightsError as e:
                raise TrainError(str(e)) from None
    counts = dist.gather_objects(info, len(bank))
    report(Progress(start, cfg.iters, {}, lr_at(cfg, start), 0.0, "loading",
                    message=f"{sum(counts)} training images loaded"
                    + (f" ({' + '.join(map(str, counts))} over {info.world} processes)"
                       if info.enabled else "")
                    + ("; data streams reseeded (process count changed)" if reseeded else "")))

    g_net = DDP(model) if info.enabled else model
    d_net = DDP(disc) if info.enabled and is_gan else disc
    log = open(run_dir / "log.jsonl", "a", encoding="utf-8") if info.main else None
    autocast = (torch.autocast(device_type=device.type, dtype=amp) if amp is not None
                else contextlib.nullcontext())
    val_psnr = history["val"][-1][1] if history["val"] else None
    t0 = time.perf_counter()
    seconds0 = history["seconds"]
    window_t, window_i = t0, start
    acc: dict[str, torch.Tensor] = {}
    it = start
    local_batch = cfg.batch // info.world

    def add(name: str, value: torch.Tensor) -> None:
        v = value.detach().float()
        acc[name] = acc[name] + v if name in acc else v.clone()

    def write(rec: dict) -> None:
        if log is not None:
            log.write(json.dumps(rec) + "\n")
            log.flush()

    def state(gathered_rng) -> dict[str, Any]:
        history["seconds"] = seconds0 + time.perf_counter() - t0
        st = {
            "version": CHECKPOINT_VERSION,
            "iteration": it,
            "spec": json.dumps(model.spec.as_dict()),
            "config": json.dumps(asdict(cfg)),
            "model": model.state_dict(),
            "optim": opt.state_dict(),
            "data_rng": gen.get_state(),
            "data_rng_ranks": gathered_rng,
            "torch_rng": torch.get_rng_state(),
            "history": json.dumps(history),
            "scaler": scaler.state_dict(),
        }
        if is_gan:
            st.update(disc=disc.state_dict(), optim_d=opt_d.state_dict(),
                      scaler_d=scaler_d.state_dict())
        if ema is not None:
            st["ema"] = ema.state_dict()
        if device.type == "cuda":
            st["cuda_rng"] = torch.cuda.get_rng_state_all()
        return st

    def checkpoint() -> None:
        rngs = dist.gather_objects(info, gen.get_state())  # collective: every rank joins
        if info.enabled:
            diff = dist.max_rank_difference(info, model)
            if is_gan:
                diff = max(diff, dist.max_rank_difference(info, disc))
            for net in (model, disc, ema):
                if net is not None:
                    dist.sync_buffers(info, net)
            write({"iteration": it, "ranks": info.world, "rank_max_diff": diff})
            if diff > 0:
                raise TrainError(f"iteration {it}: the {info.world} processes' generators "
                                 f"differ by up to {diff:g}")
        if info.main:
            save_checkpoint(ckpt_path, state(rngs if info.enabled else None))

    def log_window() -> None:
        nonlocal window_t, window_i
        n = it - window_i
        now = time.perf_counter()
        rate = n / max(now - window_t, 1e-9)
        losses = {k: float(v) / n for k, v in acc.items()}
        if info.enabled:  # the mean over processes
            losses = {k: sum(d[k] for d in dist.gather_objects(info, losses)) / info.world
                      for k in losses}
        bad = [k for k, v in losses.items() if not math.isfinite(v)]
        if bad:
            raise TrainError(f"{bad[0]} became {losses[bad[0]]} at iteration {it}; "
                             f"last good checkpoint: {ckpt_path}")
        acc.clear()
        window_t, window_i = now, it
        write({"iteration": it, **losses, "lr": lr, "its_per_sec": rate,
               "time": seconds0 + now - t0})
        report(Progress(it, cfg.iters, losses, lr, rate))

    def time_up() -> bool:
        """Past the wall-clock limit (every process agrees: rank 0's clock decides)."""
        if deadline is None:
            return False
        if not info.enabled:
            return time.perf_counter() >= deadline
        if it % cfg.log_every:
            return False
        return bool(dist.gather_objects(info, time.perf_counter() >= deadline)[0])

    def validate_now() -> None:
        nonlocal val_psnr
        net = ema if ema is not None else model
        val_psnr = validate(net, pairs, device)
        rec = {"iteration": it, "val_psnr": val_psnr}
        if lpips_model is not None:
            rec["val_lpips"] = validate_lpips(net, pairs, lpips_model, device)
        history["val"].append([it, val_psnr] + ([rec["val_lpips"]] if "val_lpips" in rec else []))
        write(rec)
        report(Progress(it, cfg.iters, {}, lr, 0.0, "validate", val_psnr=val_psnr,
                        val_lpips=rec.get("val_lpips")))

    if ema is not None:
        ema_params, model_params = list(ema.parameters()), list(model.parameters())
        ema_bufs, model_bufs = list(ema.buffers()), list(model.buffers())
    real = fake = None
    try:
        while it < cfg.iters:
            lr = lr_at(cfg, it)
            for g in opt.param_groups:
                g["lr"] = lr
            if opt_d is not None:
                for g in opt_d.param_groups:
                    g["lr"] = lr * (cfg.d_lr or cfg.lr) / cfg.lr
            lr_img, hr = sample_batch(bank, local_batch, cfg.crop, spec.scale, gen, device)
            if cfg.channels_last:
                lr_img = lr_img.contiguous(memory_format=torch.channels_last)
                hr = hr.contiguous(memory_format=torch.channels_last)

            # generator step: content loss (+ adv_weight * -log D(G(LR)) in the GAN stage)
            if is_gan:
                disc.requires_grad_(False)
            with autocast:
                sr = g_net(lr_img)
                if vgg is not None:
                    l_content = vgg_loss(vgg, sr, hr)
                    add("l_g_percep", l_content)
                else:
                    l_content = F.mse_loss(sr.float(), hr)
                if is_gan:
                    # D's weights are frozen here; its batch statistics come from this batch
                    logits = disc(sr).float()
                    l_gan = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
                    add("l_g_gan", l_gan)
            loss = l_content.float()
            if is_gan:
                loss = loss + adv_weight_at(cfg, it) * l_gan
            if vgg is not None and cfg.pixel_weight:
                l_l1 = F.l1_loss(sr.float(), hr)
                add("l_g_l1", l_l1)
                loss = loss + cfg.pixel_weight * l_l1
            if vgg is None:
                add("l_g_pix", l_content)  # the MSE content loss is the pixel loss
            else:
                with torch.no_grad():
                    add("l_g_pix", F.mse_loss(sr.detach().float(), hr))
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            if ema is not None:  # one multi-tensor kernel each, not one per tensor
                with torch.no_grad():
                    torch._foreach_lerp_(ema_params, model_params, 1.0 - cfg.ema)
                    torch._foreach_copy_(ema_bufs, model_bufs)

            # discriminator step: -log D(HR) - log(1 - D(G(LR))), real and fake batches
            # through D separately (their own batch statistics)
            if is_gan:
                disc.requires_grad_(True)
                opt_d.zero_grad(set_to_none=True)
                fake_in = sr.detach()
                sync = d_net.no_sync() if info.enabled else contextlib.nullcontext()
                with sync:
                    with autocast:
                        real = d_net(hr).float()
                    l_real = F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                    scaler_d.scale(l_real).backward()
                with autocast:
                    fake = d_net(fake_in).float()
                l_fake = F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
                scaler_d.scale(l_fake).backward()
                scaler_d.step(opt_d)
                scaler_d.update()
                add("l_d", l_real + l_fake)
                add("d_real", torch.sigmoid(real).mean())
                add("d_fake", torch.sigmoid(fake).mean())
            it += 1
            last = it == cfg.iters
            if it % cfg.log_every == 0 or last:
                log_window()
            if pairs is not None and (it % cfg.val_every == 0 or last):
                validate_now()
            if it % cfg.ckpt_every == 0 or last:
                checkpoint()
                report(Progress(it, cfg.iters, {}, lr, 0.0, "checkpoint", message=str(ckpt_path)))
            elif time_up():  # stop early: the iteration's log, validation and checkpoint
                if acc:
                    log_window()
                if pairs is not None and it % cfg.val_every:
                    validate_now()
                checkpoint()
                write({"iteration": it, "stopped": "time limit", "max_seconds": cfg.max_seconds})
                report(Progress(it, cfg.iters, {}, lr, 0.0, "checkpoint",
                                message=f"time limit of {cfg.max_seconds:g} s reached at "
                                        f"iteration {it}; saved {ckpt_path}"))
                break
    except KeyboardInterrupt:
        if info.main:  # no collectives here: the other processes may be anywhere
            save_checkpoint(ckpt_path, state(None))
            report(Progress(it, cfg.iters, {}, lr_at(cfg, it), 0.0, "checkpoint",
                            message=f"interrupted; saved {ckpt_path}"))
        raise
    finally:
        if log is not None:
            log.close()
    return TrainResult(it, ckpt_path, val_psnr, seconds0 + time.perf_counter() - t0)


def _parent_provenance(checkpoint: Path, init: dict[str, Any], spec: GeneratorSpec,
                       parent: str | os.PathLike | None) -> dict[str, str]:
    """``parent_sha256`` / ``parent_file`` of a run that started from ``--init`` weights.

    Runs record the init file's sha256 when they start; for checkpoints made before
    that, ``parent`` names the file, which must agree with what the run did record
    (its iterations and stage) and have the same architecture.
    """
    from srgan_cli.hub import sha256_file
    from srgan_cli.weights import read_info

    if parent is None:
        if not init.get("sha256"):
            return {}
        return {"parent_sha256": init["sha256"],
                "parent_file": init.get("filename") or Path(init["file"]).name}
    parent = Path(parent)
    if not init:
        raise TrainError(f"{checkpoint}: the run did not start from --init weights, so it has "
                         f"no parent; drop --parent {parent}")
    pinfo = read_info(parent)
    if pinfo.spec != spec:
        raise TrainError(f"{parent}: is {pinfo.spec}, the checkpoint's generator is {spec}; "
                         "not its parent")
    sha = sha256_file(parent)
    if init.get("sha256") and init["sha256"] != sha:
        raise TrainError(f"{parent}: sha256 {sha} is not the file the run started from "
                         f"({init.get('filename') or init['file']}, sha256 {init['sha256']})")
    recorded = (init.get("stage"), int(init.get("iterations", 0) or 0))
    found = (pinfo.stage, pinfo.iterations or 0)
    if recorded != found:
        raise TrainError(f"{parent}: a {found[0]!r} file of {found[1]} iterations, but the run "
                         f"started from a {recorded[0]!r} file of {recorded[1]} iterations "
                         f"({init['file']}); not its parent")
    return {"parent_sha256": sha, "parent_file": parent.name}


def export(checkpoint: str | os.PathLike, out: str | os.PathLike,
           extra: dict[str, Any] | None = None,
           parent: str | os.PathLike | None = None, weights: str = "auto") -> Path:
    """Write the generator of a checkpoint as a released safetensors file.

    A run that started from ``--init`` weights names them in the file's metadata:
    ``parent_sha256`` and ``parent_file`` (what ``--realism`` pairs the file with). The
    run recorded them itself; for a checkpoint made before runs did, pass ``parent``
    (the init file), checked against what the run did record.
    ``weights``: ``ema`` (the moving average; an error when the run kept none), ``model``
    (the generator as trained, even when an EMA was kept) or ``auto`` (the EMA when kept).
    """
    if weights not in ("auto", "ema", "model"):
        raise TrainError(f"unknown weights {weights!r} (auto, ema, model)")
    ckpt = load_checkpoint(Path(checkpoint))
    spec = GeneratorSpec(**json.loads(ckpt["spec"]))
    cfg = json.loads(ckpt["config"])
    history = json.loads(ckpt["history"])
    model = SRResNet(spec)
    if weights == "ema" and "ema" not in ckpt:
        raise TrainError(f"{checkpoint}: the run kept no EMA of the generator (--ema 0)")
    use_ema = "ema" in ckpt and weights != "model"
    model.load_state_dict(ckpt["ema"] if use_ema else ckpt["model"])
    init = history.get("init") or {}
    same_stage = init.get("stage") == cfg["stage"]  # a continuation, not a new stage
    prior_iters = int(init.get("iterations", 0)) if same_stage else 0
    prior_secs = float(init.get("seconds", 0)) if same_stage else 0.0
    prov = {
        "stage": cfg["stage"],
        "iterations": str(int(ckpt["iteration"]) + prior_iters),
        "data": ", ".join(Path(d).name for d in cfg["data"]),
        "date": _dt.date.today().isoformat(),
        "batch": str(cfg["batch"]),
        "crop": str(cfg["crop"]),
        "content_loss": cfg.get("content_loss", "mse"),
        "train_seconds": f"{history['seconds'] + prior_secs:.0f}",
    }
    if cfg["stage"] == "gan":
        prov["adv_weight"] = str(cfg.get("adv_weight"))
        if cfg.get("pixel_weight"):
            prov["pixel_weight"] = str(cfg["pixel_weight"])
        if cfg.get("adv_warmup"):
            prov["adv_warmup"] = str(cfg["adv_warmup"])
    if use_ema:
        prov["ema"] = str(cfg.get("ema"))
    if init:
        prov["init"] = (f"{init['file']} ({init['stage']}, {init['iterations']} iterations); "
                        f"then {ckpt['iteration']} iterations of this run")
    prov.update(_parent_provenance(Path(checkpoint), init, spec, parent))
    if history["val"] and ("ema" not in ckpt or use_ema):  # validation ran the EMA when kept
        last = history["val"][-1]
        prov["val_set5_psnr"] = f"{last[1]:.3f}"
        if len(last) > 2:
            prov["val_set5_lpips"] = f"{last[2]:.4f}"
    prov.update(extra or {})
    save_generator(model, out, prov)
    return Path(out)
