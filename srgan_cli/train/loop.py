"""The SRResNet (MSE) training stage of the paper, Sec. 3.2.

Library code: reports progress through a callback and raises :class:`TrainError`;
it never prints.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from srgan_cli.device import autocast_dtype, resolve_device
from srgan_cli.errors import TrainError
from srgan_cli.nets.generator import GeneratorSpec, SRResNet
from srgan_cli.train.data import DataError, ImageBank, sample_batch
from srgan_cli.weights import atomic_write, save_generator

CHECKPOINT_VERSION = 1


@dataclass
class TrainConfig:
    data: list[str]
    run_dir: str = "runs/srresnet"
    stage: str = "srresnet"
    iters: int = 1_000_000
    batch: int = 16
    crop: int = 96
    scale: int = 4
    blocks: int = 16
    width: int = 64
    lr: float = 1e-4
    lr_schedule: str = "constant"  # constant | cosine | step
    lr_milestones: list[int] = field(default_factory=list)  # for 'step': x0.1 at each
    lr_min: float = 0.0  # floor of the cosine schedule
    beta1: float = 0.9
    beta2: float = 0.999
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    channels_last: bool = True
    device: str = "auto"
    seed: int = 0
    ckpt_every: int = 1000
    val_every: int = 1000
    val_dir: str | None = None
    log_every: int = 10
    init: str | None = None  # start the generator from a released safetensors file


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
        return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * t))
    raise TrainError(f"unknown lr schedule {cfg.lr_schedule!r} (constant, cosine, step)")


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device.type == "cpu":
            from srgan_cli.device import cpu_has_bf16

            return torch.bfloat16 if cpu_has_bf16() else None
        return None
    return autocast_dtype(precision, device)


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


@torch.inference_mode()
def validate(model: SRResNet, pairs, device: torch.device) -> float:
    """Mean Y-PSNR (paper protocol: BT.601 luma, 4 px border) over ``pairs``, fp32."""
    from srgan_cli.bench.metrics import psnr

    was_training = model.training
    model.eval()
    scores = []
    for lr, hr in pairs:
        x = torch.from_numpy(lr).permute(2, 0, 1)[None].float().div(255).to(device)
        y = model(x).float()
        sr = ((y + 1) * 127.5).clamp(0, 255).round().to(torch.uint8)[0].permute(1, 2, 0)
        scores.append(psnr(sr.cpu().numpy(), hr, crop_border=model.spec.scale))
    model.train(was_training)
    return float(np.mean(scores))


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: Path, model, opt, gen: torch.Generator, it: int, cfg: TrainConfig,
                    best: dict[str, Any]) -> None:
    state = {
        "version": CHECKPOINT_VERSION,
        "iteration": it,
        "spec": json.dumps(model.spec.as_dict()),
        "config": json.dumps(asdict(cfg)),
        "model": model.state_dict(),
        "optim": opt.state_dict(),
        "data_rng": gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        "history": json.dumps(best),
    }
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load our own checkpoint with ``weights_only=True`` (no arbitrary unpickling)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TrainError(f"{path}: no such checkpoint") from None
    except Exception as e:  # noqa: BLE001 - torch raises many types for bad files
        raise TrainError(f"{path}: not a readable srgan checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict) or ckpt.get("version") != CHECKPOINT_VERSION:
        raise TrainError(f"{path}: not an srgan checkpoint (version {CHECKPOINT_VERSION})")
    return ckpt


# --------------------------------------------------------------------------- training


@dataclass
class TrainResult:
    iteration: int
    checkpoint: Path
    val_psnr: float | None
    seconds: float


def train(cfg: TrainConfig, resume: str | os.PathLike | None = None,
          on_progress: ProgressFn | None = None) -> TrainResult:
    """Run (or continue) the SRResNet stage until ``cfg.iters`` iterations are done."""
    if cfg.stage != "srresnet":
        raise TrainError(f"stage {cfg.stage!r} is not implemented yet (only 'srresnet')")
    try:
        device = resolve_device(cfg.device)
    except ValueError as e:
        raise TrainError(str(e)) from None
    amp = resolve_precision(cfg.precision, device)
    report = on_progress or (lambda p: None)
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / "last.pt"

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    start = 0
    history: dict[str, Any] = {"val": [], "seconds": 0.0}
    ckpt = load_checkpoint(Path(resume)) if resume else None
    init_model = None
    if ckpt is None and cfg.init:
        from srgan_cli.errors import WeightsError
        from srgan_cli.weights import load_generator

        try:
            init_model, info = load_generator(cfg.init)
        except WeightsError as e:
            raise TrainError(str(e)) from None
        if info.spec.blocks != cfg.blocks or info.spec.width != cfg.width:
            raise TrainError(f"{cfg.init}: has B={info.spec.blocks}, width={info.spec.width}; "
                             f"the run asks for B={cfg.blocks}, width={cfg.width}")
        history["init"] = {
            "file": Path(cfg.init).name,
            "iterations": info.iterations or 0,
            "seconds": float(info.metadata.get("train_seconds", 0) or 0),
            "stage": info.stage,
        }
    spec = (GeneratorSpec(**json.loads(ckpt["spec"])) if ckpt
            else init_model.spec if init_model is not None else cfg.spec())
    if spec.scale != cfg.scale or (cfg.crop % spec.scale):
        raise TrainError(f"crop {cfg.crop} must be a multiple of the scale {spec.scale}")
    model = SRResNet(spec)
    if init_model is not None:
        model.load_state_dict(init_model.state_dict())
    model = model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    if ckpt:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optim"])
        gen.set_state(ckpt["data_rng"])
        torch.set_rng_state(ckpt["torch_rng"])
        if "cuda_rng" in ckpt and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
        start = int(ckpt["iteration"])
        history = json.loads(ckpt["history"])
    model.train()
    if start >= cfg.iters:  # nothing left to do (e.g. --resume ... --export)
        val = history["val"][-1][1] if history["val"] else None
        return TrainResult(start, Path(resume), val, history["seconds"])

    report(Progress(start, cfg.iters, {}, lr_at(cfg, start), 0.0, "loading",
                    message=f"loading training images from {', '.join(map(str, cfg.data))}"))
    try:
        bank = ImageBank.from_dirs(cfg.data, cfg.crop, device=device if device.type == "cuda" else "cpu")
    except DataError as e:
        raise TrainError(str(e)) from None
    pairs = load_pairs(Path(cfg.val_dir), spec.scale) if cfg.val_dir else None
    report(Progress(start, cfg.iters, {}, lr_at(cfg, start), 0.0, "loading",
                    message=f"{len(bank)} training images loaded"))

    log = open(run_dir / "log.jsonl", "a", encoding="utf-8")
    autocast = (torch.autocast(device_type=device.type, dtype=amp) if amp is not None
                else contextlib.nullcontext())
    scaler = torch.amp.GradScaler(device.type, enabled=(amp == torch.float16))
    val_psnr = history["val"][-1][1] if history["val"] else None
    t0 = time.perf_counter()
    seconds0 = history["seconds"]
    window_t, window_i = t0, start
    loss_acc = torch.zeros((), device=device)
    it = start

    def checkpoint() -> None:
        history["seconds"] = seconds0 + time.perf_counter() - t0
        save_checkpoint(ckpt_path, model, opt, gen, it, cfg, history)

    try:
        while it < cfg.iters:
            lr = lr_at(cfg, it)
            for g in opt.param_groups:
                g["lr"] = lr
            lr_img, hr = sample_batch(bank, cfg.batch, cfg.crop, spec.scale, gen, device)
            if cfg.channels_last:
                lr_img = lr_img.contiguous(memory_format=torch.channels_last)
            with autocast:
                out = model(lr_img)
            loss = F.mse_loss(out.float(), hr)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            loss_acc += loss.detach()
            it += 1
            if it % cfg.log_every == 0 or it == cfg.iters:
                n = it - window_i
                now = time.perf_counter()
                rate = n / max(now - window_t, 1e-9)
                l_pix = float(loss_acc) / n
                if not math.isfinite(l_pix):
                    checkpoint_path = run_dir / "diverged.pt"
                    raise TrainError(f"loss became {l_pix} at iteration {it}; last good "
                                     f"checkpoint: {ckpt_path} ({checkpoint_path} not written)")
                loss_acc.zero_()
                window_t, window_i = now, it
                rec = {"iteration": it, "l_g_pix": l_pix, "lr": lr, "its_per_sec": rate,
                       "time": seconds0 + now - t0}
                log.write(json.dumps(rec) + "\n")
                log.flush()
                report(Progress(it, cfg.iters, {"l_g_pix": l_pix}, lr, rate))
            if pairs is not None and (it % cfg.val_every == 0 or it == cfg.iters):
                val_psnr = validate(model, pairs, device)
                history["val"].append([it, val_psnr])
                log.write(json.dumps({"iteration": it, "val_psnr": val_psnr}) + "\n")
                log.flush()
                report(Progress(it, cfg.iters, {}, lr, 0.0, "validate", val_psnr=val_psnr))
            if it % cfg.ckpt_every == 0 or it == cfg.iters:
                checkpoint()
                report(Progress(it, cfg.iters, {}, lr, 0.0, "checkpoint", message=str(ckpt_path)))
    except KeyboardInterrupt:
        checkpoint()
        report(Progress(it, cfg.iters, {}, lr_at(cfg, it), 0.0, "checkpoint",
                        message=f"interrupted; saved {ckpt_path}"))
        raise
    finally:
        log.close()
    return TrainResult(it, ckpt_path, val_psnr, seconds0 + time.perf_counter() - t0)


def export(checkpoint: str | os.PathLike, out: str | os.PathLike,
           extra: dict[str, Any] | None = None) -> Path:
    """Write the generator of a checkpoint as a released safetensors file."""
    ckpt = load_checkpoint(Path(checkpoint))
    spec = GeneratorSpec(**json.loads(ckpt["spec"]))
    cfg = json.loads(ckpt["config"])
    history = json.loads(ckpt["history"])
    model = SRResNet(spec)
    model.load_state_dict(ckpt["model"])
    init = history.get("init") or {}
    prov = {
        "stage": cfg["stage"],
        "iterations": str(int(ckpt["iteration"]) + int(init.get("iterations", 0))),
        "data": ", ".join(Path(d).name for d in cfg["data"]),
        "date": _dt.date.today().isoformat(),
        "batch": str(cfg["batch"]),
        "crop": str(cfg["crop"]),
        "train_seconds": f"{history['seconds'] + float(init.get('seconds', 0)):.0f}",
    }
    if init:
        prov["init"] = (f"{init['file']} ({init['stage']}, {init['iterations']} iterations); "
                        f"then {ckpt['iteration']} iterations of this run")
    if history["val"]:
        prov["val_set5_psnr"] = f"{history['val'][-1][1]:.3f}"
    prov.update(extra or {})
    save_generator(model, out, prov)
    return Path(out)
