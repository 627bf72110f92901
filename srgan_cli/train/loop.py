"""The training loop: :func:`train` sets a run up (device, checkpoint or ``--init`` weights,
data) and runs its iterations, logging, validating and checkpointing as it goes.

Library code: reports progress through a callback and raises :class:`TrainError`;
it never prints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from srgan_cli.errors import TrainError
from srgan_cli.inference.device import resolve_device, training_dtype
from srgan_cli.nets.generator import GeneratorSpec, SRResNet
from srgan_cli.train import dist
from srgan_cli.train.config import (
    CONTENT_LOSSES,
    STAGES,
    TrainConfig,
    check_resumable,
    lr_at,
    saved_config,
)
from srgan_cli.train.data import DataError, ImageBank, sample_batch
from srgan_cli.train.degrade import DegradationError, Degrader, parse_degradation
from srgan_cli.train.losses import generator_losses
from srgan_cli.train.state import (
    TrainState,
    checkpoint_dict,
    load_checkpoint,
    save_checkpoint,
    seed_for,
)
from srgan_cli.train.steps import Nets, discriminator_step, generator_step
from srgan_cli.train.validation import load_pairs, validate_metrics

# its own names only: the config, checkpoints, validation and export are imported from
# their modules (train.config, train.state, train.validation, train.export)
__all__ = ["Progress", "ProgressFn", "TrainResult", "train"]


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
    val_grid: float | None = None


ProgressFn = Callable[[Progress], None]


@dataclass
class TrainResult:
    iteration: int
    checkpoint: Path
    val_psnr: float | None
    seconds: float


# --------------------------------------------------------------------------- set-up


def _device(cfg: TrainConfig, info: dist.DistInfo) -> torch.device:
    try:
        device = resolve_device(cfg.device)
    except ValueError as e:
        raise TrainError(str(e)) from None
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if cfg.batch % info.world:
        raise TrainError(f"--batch {cfg.batch} must be a multiple of the {info.world} processes")
    if cfg.gan_loss == "ragan" and info.world > 1:
        raise TrainError("--gan-loss ragan trains in one process (its discriminator step is "
                         f"not averaged across processes); {info.world} were started")
    return device


def _resume_checkpoint(cfg: TrainConfig, resume) -> dict[str, Any] | None:
    if not resume:
        return None
    ckpt = load_checkpoint(Path(resume))
    saved = json.loads(ckpt["config"])
    done_stage = saved.get("stage", "srresnet")
    if done_stage != cfg.stage:
        raise TrainError(f"{resume}: a {done_stage!r} checkpoint cannot resume the "
                         f"{cfg.stage!r} stage (start the GAN stage with --init instead)")
    check_resumable(saved_config(saved), cfg, str(resume))
    return ckpt


def _degrader(cfg: TrainConfig) -> Degrader | None:
    """The LR degradations of ``cfg.degradation`` (None: the clean bicubic pipeline)."""
    try:
        spec = parse_degradation(cfg.degradation)
    except DegradationError as e:
        raise TrainError(f"degradation: {e}") from None
    return Degrader(spec) if spec is not None else None


def _released_generator(name: str, scale: int, option: str | None = None):
    """(path, file facts) of a generator file or registered name given to ``--init`` or
    ``option``, checked to be ours and of ``scale``; one-line TrainErrors."""
    from srgan_cli.distribution.loading import load_file
    from srgan_cli.distribution.registry import resolve_model
    from srgan_cli.errors import WeightsError

    where = f"{option} {name}: " if option else ""
    try:
        path = resolve_model(name)
        winfo = load_file(path, ours_only=True)
    except WeightsError as e:
        raise TrainError(f"{where}{e}") from None
    if winfo.spec.scale != scale:
        raise TrainError(f"{where or f'{name}: '}is a x{winfo.spec.scale} model; the run "
                         f"asks for --scale {scale}")
    return path, winfo


def _init_weights(cfg: TrainConfig) -> tuple[SRResNet | None, dict[str, Any] | None]:
    """The generator of ``cfg.init`` and the record of it the run keeps (None, None: no init)."""
    if not cfg.init:
        if cfg.stage == "gan":
            raise TrainError("the GAN stage starts from trained SRResNet weights: pass --init "
                             "NAME|PATH (e.g. --init srresnet)")
        return None, None
    init_path, winfo = _released_generator(cfg.init, cfg.scale)
    if winfo.spec.blocks != cfg.blocks or winfo.spec.width != cfg.width:
        raise TrainError(f"{cfg.init}: has B={winfo.spec.blocks}, width={winfo.spec.width}; "
                         f"the run asks for B={cfg.blocks}, width={cfg.width}")
    return winfo.net, {
        "file": Path(str(cfg.init)).name,
        "iterations": winfo.iterations or 0,
        "seconds": float(winfo.metadata.get("train_seconds", 0) or 0),
        "stage": winfo.stage,
        # the exact parent: export writes it as parent_sha256 (--realism pairs by it)
        "filename": init_path.name,
        "sha256": winfo.sha256,
    }


def _check_spec(cfg: TrainConfig, spec: GeneratorSpec) -> None:
    if spec.scale != cfg.scale:
        raise TrainError(f"the generator is x{spec.scale}; the run asks for --scale {cfg.scale}")
    if cfg.crop % spec.scale:
        raise TrainError(f"crop {cfg.crop} must be a multiple of the scale {spec.scale}")
    from srgan_cli.nets.discriminator import CROP_MULTIPLE

    need = CROP_MULTIPLE[cfg.discriminator]
    if cfg.stage == "gan" and cfg.crop % need:
        raise TrainError(f"the {cfg.discriminator} discriminator needs --crop to be a multiple "
                         f"of {need}, got {cfg.crop}")


def _vgg(cfg: TrainConfig, device: torch.device) -> torch.nn.Module | None:
    """The VGG19 features of a perceptual content loss (None for MSE)."""
    if cfg.content_loss == "mse":
        return None
    from srgan_cli.errors import WeightsError
    from srgan_cli.nets.vgg import VGGFeatures

    try:
        vgg = VGGFeatures.load(cfg.content_loss, cfg.vgg_weights).to(device)
    except WeightsError as e:
        raise TrainError(str(e)) from None
    return vgg.to(memory_format=torch.channels_last) if cfg.channels_last else vgg


def _teacher(cfg: TrainConfig, device: torch.device,
             history: dict[str, Any]) -> torch.nn.Module | None:
    """The frozen teacher generator of ``--teacher`` (None without one). The file it was
    (name and sha256) goes into ``history`` at the run's start; a resumed run whose teacher
    resolves to other weights is refused."""
    if not cfg.teacher:
        return None
    path, winfo = _released_generator(cfg.teacher, cfg.scale, "--teacher")
    seen = history.get("teacher")
    if seen is None:
        history["teacher"] = {"file": path.name, "sha256": winfo.sha256}
    elif seen.get("sha256") != winfo.sha256:
        raise TrainError(f"--teacher {cfg.teacher}: is {path.name} (sha256 {winfo.sha256[:12]}…), "
                         f"the run distilled {seen.get('file')} (sha256 "
                         f"{str(seen.get('sha256'))[:12]}…)")
    net = winfo.net.to(device).eval().requires_grad_(False)
    return net.to(memory_format=torch.channels_last) if cfg.channels_last else net


def _lpips(cfg: TrainConfig):
    """LPIPS for the gan stage's validation, when its weights are at hand."""
    from srgan_cli.errors import WeightsError
    from srgan_cli.nets.lpips import LPIPS, default_weights

    if not (cfg.lpips_weights or default_weights()):
        return None
    try:
        return LPIPS.load(cfg.lpips_weights)
    except WeightsError as e:
        raise TrainError(str(e)) from None


def _build_state(cfg: TrainConfig, resume, info: dist.DistInfo, device: torch.device,
                 amp: torch.dtype | None) -> tuple[TrainState, torch.nn.Module | None, bool]:
    """The run's state (fresh, from --init or from the checkpoint), the VGG of its content
    loss, and whether the data streams were reseeded. Draws from the global RNG in the
    order runs always have: init weights, VGG, generator, discriminator."""
    torch.manual_seed(cfg.seed + info.rank)
    ckpt = _resume_checkpoint(cfg, resume)
    init, init_record = _init_weights(cfg) if ckpt is None else (None, None)
    if ckpt:
        spec = GeneratorSpec(**json.loads(ckpt["spec"]))
    else:  # the init file's spec (or the run's); --delattice, when given, sets the filter
        spec = init.spec if init is not None else cfg.spec()
        if cfg.delattice is not None:
            spec = dataclasses.replace(spec, delattice=cfg.delattice)
    _check_spec(cfg, spec)
    vgg = _vgg(cfg, device)
    state = TrainState.build(cfg, spec, device, amp=amp, init=init, data_seed=(
        seed_for(cfg.seed, info.rank, 0) if info.enabled else cfg.seed))
    if init_record is not None:
        state.history["init"] = init_record
    reseeded = False
    if ckpt is not None:
        reseeded = state.load_state_dict(ckpt, info, cfg.seed, source=str(resume))
    state.generator.train()
    return state, vgg, reseeded


def train(cfg: TrainConfig, resume: str | os.PathLike | None = None,
          on_progress: ProgressFn | None = None) -> TrainResult:
    """Run (or continue) a training stage until ``cfg.iters`` iterations are done.

    ``srresnet``: the generator alone with the content loss (MSE by default).
    ``gan``: generator + discriminator, content loss (VGG54 by default) + ``adv_weight`` x
    the adversarial loss -log D(G(LR)), alternating one G and one D update per iteration.
    Ctrl-C (KeyboardInterrupt) saves a checkpoint of the iterations done, then re-raises.
    """
    if cfg.stage not in STAGES:
        raise TrainError(f"unknown stage {cfg.stage!r} ({', '.join(STAGES)})")
    if cfg.content_loss not in CONTENT_LOSSES:
        raise TrainError(f"unknown content loss {cfg.content_loss!r} ({', '.join(CONTENT_LOSSES)})")
    if bool(cfg.teacher) != bool(cfg.teacher_weight):
        raise TrainError("--teacher MODEL and --teacher-weight W go together (the teacher's "
                         "output is a loss term only with a weight)")
    if cfg.teacher_on != "all" and not cfg.teacher:
        raise TrainError(f"--teacher-on {cfg.teacher_on} needs --teacher MODEL")
    if cfg.teacher_on == "clean" and _degrader(cfg) is None:
        raise TrainError("--teacher-on clean needs --degradation real (every crop is clean "
                         "without it: use the default, all)")
    if cfg.adv_degraded != 1.0 and (cfg.stage != "gan" or _degrader(cfg) is None):
        raise TrainError("--adv-degraded weighs the adversarial term on degraded crops: it "
                         "needs --stage gan and --degradation real")
    if cfg.teacher_delattice and not cfg.teacher:
        raise TrainError("--teacher-delattice needs --teacher MODEL")
    if cfg.teacher and cfg.teacher_loss == "content" and cfg.content_loss == "mse":
        raise TrainError("--teacher-loss content needs a VGG content loss (--content-loss)")
    degrader = _degrader(cfg)
    info = dist.from_env()
    report = (on_progress or (lambda p: None)) if info.main else (lambda p: None)
    run = None
    try:
        device = _device(cfg, info)
        amp = training_dtype(cfg.precision, device)
        if device.type == "cuda" and not torch.backends.cudnn.deterministic:
            torch.backends.cudnn.benchmark = True  # fixed crop shapes: pick the fastest kernels
        if info.main:
            Path(cfg.run_dir).mkdir(parents=True, exist_ok=True)
        state, vgg, reseeded = _build_state(cfg, resume, info, device, amp)
        if state.iteration >= cfg.iters:  # nothing left to do (e.g. --resume ... --export)
            val = state.history["val"][-1][1] if state.history["val"] else None
            return TrainResult(state.iteration, Path(resume), val, state.history["seconds"])
        dist.init(info, device)
        try:
            run = _Run(cfg, info, state, vgg=vgg, report=report, amp=amp, degrader=degrader)
            return run.run(reseeded)
        finally:
            dist.shutdown(info)
    except KeyboardInterrupt:
        if run is None or not run.started:
            report(Progress(0, cfg.iters, {}, lr_at(cfg, 0), 0.0, "loading",
                            message="interrupted while setting up, before the first "
                                    "iteration: nothing to save"))
        raise


# --------------------------------------------------------------------------- the run


class _StopAtIterationEnd:
    """While active, Ctrl-C (and a SIGTERM that Python handles, as the CLI's) only notes the
    signal: the loop stops at the end of the iteration, so what it saves is a whole number
    of iterations and resumes exactly. A second signal stops at once, except while
    ``saving``. Off in several processes (each must stop at once, or the others wait for
    it in a collective) and outside the main thread."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.pending = False
        self.saving = False
        self._saved: dict[int, Any] = {}

    def _note(self, signum, frame) -> None:
        if self.pending and not self.saving:
            raise KeyboardInterrupt
        self.pending = True

    def __enter__(self) -> "_StopAtIterationEnd":
        for s in (signal.SIGINT, signal.SIGTERM) if self.enabled else ():
            handler = signal.getsignal(s)
            if callable(handler):  # not SIG_DFL / SIG_IGN: those are left as they are
                self._saved[s] = handler
                signal.signal(s, self._note)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._saved.items():
            signal.signal(s, handler)

    def check(self) -> None:
        if self.pending:
            raise KeyboardInterrupt


class _Window:
    """The loss terms summed since the last log record."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}

    def add(self, terms: dict[str, torch.Tensor]) -> None:
        for name, value in terms.items():
            v = value.detach().float()
            self.sums[name] = self.sums[name] + v if name in self.sums else v.clone()

    def means(self, n: int) -> dict[str, float]:
        means = {k: float(v) / n for k, v in self.sums.items()}
        self.sums.clear()
        return means


class _Run:
    """The iterations of one ``train`` call, from the state's iteration to ``cfg.iters``
    (or the time limit), with their logging, validation and checkpoints."""

    def __init__(self, cfg: TrainConfig, info: dist.DistInfo, state: TrainState, *,
                 vgg: torch.nn.Module | None, report: ProgressFn,
                 amp: torch.dtype | None, degrader: Degrader | None = None) -> None:
        self.cfg, self.info, self.state, self.report = cfg, info, state, report
        self.losses = generator_losses(
            cfg, vgg, _teacher(cfg, next(state.generator.parameters()).device, state.history))
        self.amp = amp
        self.ckpt_path = Path(cfg.run_dir) / "last.pt"
        self.deadline = (time.perf_counter() + cfg.max_seconds if cfg.max_seconds > 0
                         else None)
        self.started = False
        self.window = _Window()
        self.log = None
        self.nets: Nets | None = None
        self.degrader = degrader  # cfg.degradation's (None: clean bicubic LR)
        self.lr = lr_at(cfg, state.iteration)
        self.val_psnr = state.history["val"][-1][1] if state.history["val"] else None

    @property
    def it(self) -> int:
        return self.state.iteration

    def run(self, reseeded: bool) -> TrainResult:
        self._load_data(reseeded)
        self.nets = self._nets()
        self.log = (open(Path(self.cfg.run_dir) / "log.jsonl", "a", encoding="utf-8")
                    if self.info.main else None)
        self.t0 = time.perf_counter()
        self.seconds0 = self.state.history["seconds"]
        self.window_t, self.window_i = self.t0, self.it
        interrupts = _StopAtIterationEnd(not self.info.enabled)
        self.started = True
        try:
            with interrupts:  # also while the interrupted run saves
                try:
                    self._warm_up_discriminator(interrupts)
                    while self.it < self.cfg.iters:
                        self._reset_discriminator_when_due(interrupts)
                        self._iteration()
                        stop = self._after_iteration()
                        interrupts.check()
                        if stop:
                            break
                except KeyboardInterrupt:
                    interrupts.saving = True
                    self._save_interrupted()
                    raise
        finally:
            if self.log is not None:
                self.log.close()
        return TrainResult(self.it, self.ckpt_path, self.val_psnr,
                           self.seconds0 + time.perf_counter() - self.t0)

    def _load_data(self, reseeded: bool) -> None:
        cfg, info = self.cfg, self.info
        self._report("loading", message="loading training images from "
                     + ", ".join(map(str, cfg.data)))
        device = self.state.device
        try:
            self.bank = ImageBank.from_dirs(cfg.data, cfg.crop,
                                            device=device if device.type == "cuda" else "cpu",
                                            shard=(info.rank, info.world))
        except DataError as e:
            raise TrainError(str(e)) from None
        self.pairs = (load_pairs(Path(cfg.val_dir), self.state.generator.spec.scale)
                      if cfg.val_dir and info.main else None)
        self.lpips = _lpips(cfg) if self.pairs is not None and cfg.stage == "gan" else None
        counts = dist.gather_objects(info, len(self.bank))
        self._report("loading", message=f"{sum(counts)} training images loaded"
                     + (f" ({' + '.join(map(str, counts))} over {info.world} processes)"
                        if info.enabled else "")
                     + ("; data streams reseeded (process count changed)" if reseeded else ""))

    def _nets(self) -> Nets:
        from torch.nn.parallel import DistributedDataParallel as DDP

        g, d, ddp = self.state.generator, self.state.discriminator, self.info.enabled
        autocast = (torch.autocast(device_type=self.state.device.type, dtype=self.amp)
                    if self.amp is not None else contextlib.nullcontext())
        return Nets(generator=DDP(g) if ddp else g,
                    discriminator=DDP(d) if ddp and d is not None else d,
                    autocast=autocast, distributed=ddp)

    def _iteration(self) -> None:
        """One generator step and, in the gan stage, one discriminator step."""
        cfg, state = self.cfg, self.state
        self.lr = lr = lr_at(cfg, self.it)
        state.set_lr(lr, lr * (cfg.d_lr or cfg.lr) / cfg.lr
                     if state.optimizer_d is not None else None)
        lr_img, hr = self._batch()
        sr, terms, judged = generator_step(state, self.nets, self.losses, (lr_img, hr),
                                           cfg.ema, tie_phases=cfg.tie_phases)
        self.window.add(terms)
        if state.discriminator is not None:  # its fake pass: the G step's D forward on SR
            self.window.add(discriminator_step(state, self.nets, self.losses.adversarial,
                                               hr, sr, judged=judged))
        state.iteration += 1

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        cfg, state = self.cfg, self.state
        lr_img, hr = sample_batch(self.bank, cfg.batch // self.info.world, cfg.crop,
                                  state.generator.spec.scale, state.data_rng,
                                  device=state.device, degrade=self.degrader)
        if cfg.channels_last:
            lr_img = lr_img.contiguous(memory_format=torch.channels_last)
            hr = hr.contiguous(memory_format=torch.channels_last)
        return lr_img, hr

    def _warm_up_discriminator(self, interrupts: _StopAtIterationEnd) -> None:
        """``cfg.d_warmup`` discriminator-only iterations on the generator as it is, before a
        fresh discriminator's first generator step (a run from ``--init`` weights, e.g. the
        released generator after a new machine: the adversarial term then starts from a D
        that already knows this G). Counted in the history, so a resumed run skips them;
        Ctrl-C stops after the current one, as it does after an iteration."""
        cfg, state = self.cfg, self.state
        done = int(state.history.get("d_warmup", 0))
        born = int(state.history.get("d_born", 0))  # the iteration this D started at
        if state.discriminator is None or state.iteration != born or done >= cfg.d_warmup:
            return
        lr = lr_at(cfg, state.iteration)
        state.set_lr(lr, lr * (cfg.d_lr or cfg.lr) / cfg.lr)
        window = _Window()
        t = time.perf_counter()
        for k in range(done, cfg.d_warmup):
            lr_img, hr = self._batch()
            with torch.no_grad(), self.nets.autocast:
                sr = self.nets.generator(lr_img)
            window.add(discriminator_step(state, self.nets, self.losses.adversarial, hr, sr))
            state.history["d_warmup"] = k + 1
            if (k + 1) % cfg.log_every == 0 or k + 1 == cfg.d_warmup:
                n = (k + 1) % cfg.log_every or cfg.log_every
                now = time.perf_counter()
                losses = window.means(n)
                self._write({"d_warmup": k + 1, **({"d_born": born} if born else {}),
                             **losses, "its_per_sec": n / max(now - t, 1e-9)})
                self._report("loading", message=f"discriminator warm-up {k + 1}/"
                             f"{cfg.d_warmup}: " + " ".join(f"{n_} {v:.4f}" for n_, v
                                                            in losses.items()))
                t = now
            interrupts.check()

    def _reset_discriminator_when_due(self, interrupts: _StopAtIterationEnd) -> None:
        """Every ``cfg.d_reset_every`` iterations, a fresh discriminator (its weights seeded by
        the run's seed and the iteration, so a resumed run draws the same), then its warm-up.
        Recorded in the history, so a run resumed at that iteration does not reset twice."""
        cfg, state = self.cfg, self.state
        n, it = cfg.d_reset_every, self.it
        if (not n or state.discriminator is None or it == 0 or it % n
                or int(state.history.get("d_born", 0)) == it):
            return
        state.reset_discriminator(cfg, cfg.seed + it)
        state.history["d_born"], state.history["d_warmup"] = it, 0
        self._write({"d_reset": it})
        self._report("loading", message=f"a fresh discriminator at iteration {it}")
        self._warm_up_discriminator(interrupts)

    def _after_iteration(self) -> bool:
        """Log, validate and checkpoint when due; True when the time limit ends the run."""
        cfg, it = self.cfg, self.it
        last = it == cfg.iters
        if it % cfg.log_every == 0 or last:
            self._log_window()
        if self.pairs is not None and (it % cfg.val_every == 0 or last):
            self._validate()
        if it % cfg.ckpt_every == 0 or last:
            self._checkpoint()
            self._report("checkpoint", message=str(self.ckpt_path))
            return False
        if not self._time_up():
            return False
        # stop early: the iteration's log, validation and checkpoint
        if self.window.sums:
            self._log_window()
        if self.pairs is not None and it % cfg.val_every:
            self._validate()
        self._checkpoint()
        self._write({"iteration": it, "stopped": "time limit", "max_seconds": cfg.max_seconds})
        self._report("checkpoint", message=f"time limit of {cfg.max_seconds:g} s reached at "
                                           f"iteration {it}; saved {self.ckpt_path}")
        return True

    def _report(self, event: str, **kw) -> None:
        self.report(Progress(self.it, self.cfg.iters, {}, self.lr, 0.0, event, **kw))

    def _write(self, rec: dict) -> None:
        if self.log is not None:
            self.log.write(json.dumps(rec) + "\n")
            self.log.flush()

    def _log_window(self) -> None:
        info, it = self.info, self.it
        n = it - self.window_i
        now = time.perf_counter()
        rate = n / max(now - self.window_t, 1e-9)
        losses = self.window.means(n)
        if info.enabled:  # the mean over processes
            losses = {k: sum(d[k] for d in dist.gather_objects(info, losses)) / info.world
                      for k in losses}
        bad = [k for k, v in losses.items() if not math.isfinite(v)]
        if bad:
            raise TrainError(f"{bad[0]} became {losses[bad[0]]} at iteration {it}; "
                             f"last good checkpoint: {self.ckpt_path}")
        self.window_t, self.window_i = now, it
        self._write({"iteration": it, **losses, "lr": self.lr, "its_per_sec": rate,
                     "time": self.seconds0 + now - self.t0})
        self.report(Progress(it, self.cfg.iters, losses, self.lr, rate))

    def _validate(self) -> None:
        state, it = self.state, self.it
        net = state.ema if state.ema is not None else state.generator
        rec = {"iteration": it, **validate_metrics(net, self.pairs, state.device, self.lpips)}
        self.val_psnr = rec["val_psnr"]
        state.history["val"].append([it, self.val_psnr]
                                    + ([rec["val_lpips"]] if "val_lpips" in rec else []))
        self._write(rec)
        self._report("validate", val_psnr=self.val_psnr, val_lpips=rec.get("val_lpips"),
                     val_grid=rec["val_grid"])

    def _time_up(self) -> bool:
        """Past the wall-clock limit (every process agrees: rank 0's clock decides)."""
        if self.deadline is None:
            return False
        if not self.info.enabled:
            return time.perf_counter() >= self.deadline
        if self.it % self.cfg.log_every:
            return False
        return bool(dist.gather_objects(self.info, time.perf_counter() >= self.deadline)[0])

    def _checkpoint_dict(self, data_rng_ranks=None) -> dict[str, Any]:
        self.state.history["seconds"] = self.seconds0 + time.perf_counter() - self.t0
        return checkpoint_dict(self.state, self.cfg, data_rng_ranks)

    def _checkpoint(self) -> None:
        """Save ``last.pt`` (every process joins: the data streams are gathered, and with
        several processes their replicas are checked to be identical)."""
        info, state, it = self.info, self.state, self.it
        rngs = dist.gather_objects(info, state.data_rng.get_state())
        if info.enabled:
            diff = dist.max_rank_difference(info, state.generator)
            if state.discriminator is not None:
                diff = max(diff, dist.max_rank_difference(info, state.discriminator))
            for net in (state.generator, state.discriminator, state.ema):
                if net is not None:
                    dist.sync_buffers(info, net)
            self._write({"iteration": it, "ranks": info.world, "rank_max_diff": diff})
            if diff > 0:
                raise TrainError(f"iteration {it}: the {info.world} processes' generators "
                                 f"differ by up to {diff:g}")
        if info.main:
            save_checkpoint(self.ckpt_path, self._checkpoint_dict(rngs if info.enabled else None))

    def _save_interrupted(self) -> None:
        if self.info.main:  # no collectives here: the other processes may be anywhere
            save_checkpoint(self.ckpt_path, self._checkpoint_dict())
            self.report(Progress(self.it, self.cfg.iters, {}, lr_at(self.cfg, self.it), 0.0,
                                 "checkpoint", message=f"interrupted; saved {self.ckpt_path}"))
