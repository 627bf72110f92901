"""What a training run is: its settings (:class:`TrainConfig`, with each stage's defaults)
and the schedules that follow from them (learning rate, adversarial weight)."""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from srgan_cli.errors import TrainError

if TYPE_CHECKING:
    from srgan_cli.nets.generator import GeneratorSpec

# No torch here (the network's spec is imported where it is built): ``srgan train``'s
# options take their defaults and choices from this module when the CLI starts.

STAGES = ("srresnet", "gan")
CONTENT_LOSSES = ("mse", "vgg22", "vgg54", "vgg-multi")
LR_SCHEDULES = ("constant", "cosine", "step")
GAN_LOSSES = ("standard", "ragan")
DISCRIMINATORS = ("vgg", "unet")
TEACHER_LOSSES = ("l1", "content")
TEACHER_INPUTS = ("lr", "clean")
TEACHER_ON = ("all", "clean")
# what a stage trains when the config leaves a field at None (the paper's recipes);
# the gan stage also gets lr_milestones [100000] when its schedule is 'step'
STAGE_DEFAULTS: dict[str, dict[str, Any]] = {
    "srresnet": {"iters": 1_000_000, "lr_schedule": "constant", "content_loss": "mse",
                 "init": None},
    "gan": {"iters": 200_000, "lr_schedule": "step", "content_loss": "vgg54",
            "init": "srresnet"},
}
GAN_LR_STEP = 100_000
# What a resumed run may do differently from the run it continues (the value given again is
# used, and said): how long and how often, where it runs and writes, and where validation
# and the loss networks' files are. Every other field is the run's recipe (data, batch, crop,
# network, lr and schedule, stage, losses, seed, and any field added later): a resumed run
# keeps the checkpoint's, and a different value given again is refused.
RESUME_MAY_CHANGE = ("iters", "max_seconds", "ckpt_every", "val_every", "log_every", "device",
                     "precision", "channels_last", "run_dir", "val_dir", "vgg_weights",
                     "lpips_weights")
# ... of which this belongs to one invocation: not restored (its default unless given)
RESUME_PER_INVOCATION = ("max_seconds",)
PATH_FIELDS = ("data", "run_dir", "val_dir", "vgg_weights", "lpips_weights", "init", "teacher")
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
    # mse | vgg22 | vgg54 (Table 1) | vgg-multi (nets.vgg); default mse, vgg54 (gan)
    content_loss: str | None = None
    content_weight: float = 1.0  # weight of the content loss
    adv_weight: float = 1e-3  # weight of -log D(G(LR)) in the GAN stage
    # the adversarial term's weight on a crop whose LR is degraded, relative to a clean one
    # (--degradation real): 1, every crop alike; 0, only the clean crops' SR is pushed by D
    adv_degraded: float = 1.0
    # the adversarial loss: 'standard' (the paper's) or 'ragan' (relativistic average, as
    # ESRGAN; train.losses.RelativisticAdversarialLoss)
    gan_loss: str = "standard"
    d_lr: float | None = None  # discriminator lr (default: the generator's; same schedule)
    # the discriminator: 'vgg' (the paper's, one logit per crop) or 'unet' (per-pixel
    # logits, spectral norm; nets.discriminator.UNetDiscriminator)
    discriminator: str = "vgg"
    ema: float = 0.0  # decay of an exponential moving average of G (0: off)
    pixel_weight: float = 0.0  # gan: weight of an L1 pixel term beside the content loss
    adv_warmup: int = 0  # gan: ramp the adversarial weight linearly from 0 over N iterations
    # gan: discriminator-only iterations before the first generator step of a fresh
    # discriminator (a run started with --init: a new D learns the current G first)
    d_warmup: int = 0
    # gan: every N generator iterations, a fresh discriminator (new weights, fresh Adam
    # state), warmed up with d_warmup D-only iterations before the next generator step (0: off)
    d_reset_every: int = 0
    # tie each sub-pixel stage's four phases (srgan_cli.nets.generator.tie_phases), at the
    # start and after every generator step: off | dc (one DC gain and bias: flat areas stay
    # flat) | resize (exactly nearest x2 + a 3x3 convolution, in the paper's layout) | mixed
    # (resize on the first stage, dc on the later ones)
    tie_phases: str = "off"
    # the lattice filter on the generator's output (srgan_cli.nets.delattice), window in LR
    # pixels (0: off): the losses see the filtered output, and the exported file keeps the
    # filter; None: the --init file's (0 without one)
    delattice: int | None = None
    grid_weight: float = 0.0  # weight of the grid loss (train.losses.GridLoss), levels^2
    flat_weight: float = 0.0  # weight of the solid-colour loss (train.losses.FlatLoss)
    flat_colours: int = 8  # solid colours per step for it
    # weight of the artifact loss (train.losses.ArtifactLoss: L1 weighted where the
    # residual varies locally, refined by the EMA's output when the run keeps one)
    artifact_weight: float = 0.0
    # a teacher generator (registered name or file; frozen) and the weight of the term that
    # compares the trained generator's output with the teacher's on the same LR (distillation)
    teacher: str | None = None
    teacher_weight: float = 0.0
    teacher_loss: str = "l1"  # l1 | content (the run's content loss against the teacher)
    # what the teacher sees: the batch's LR, or the clean bicubic downscale of HR (a run on
    # degraded LR then distils the teacher's output for the clean image)
    teacher_input: str = "lr"
    # which crops the distillation term covers: all, or only those whose LR is the clean
    # downscale (a degraded crop is then judged by the HR losses alone, free to paint what
    # the degradation removed instead of the teacher's texture for the clean image)
    teacher_on: str = "all"
    # remove the teacher output's local sub-pixel phase offsets over this many LR pixels
    # (nets.delattice.remove_phase_offsets) before comparing: its texture without its lattice
    teacher_delattice: int = 0
    vgg_weights: str | None = None
    lpips_weights: str | None = None
    # wall-clock limit in seconds (0: none), counted from the start of the training set-up
    # (data loading included): the run then checkpoints, validates and returns early
    max_seconds: float = 0.0
    # how LR crops are made: 'clean' (the paper's antialiased bicubic downscale) or 'real'
    # (srgan_cli.train.degrade: blur, random x4 kernel, noise, JPEG), 'real,KEY=VALUE,...'
    # to change its ranges (train.degrade.parse_degradation)
    degradation: str = "clean"

    def __post_init__(self) -> None:
        defaults = STAGE_DEFAULTS.get(self.stage)
        if defaults is None:
            raise TrainError(f"unknown stage {self.stage!r} ({', '.join(STAGES)})")
        for name, value in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.run_dir is None:
            self.run_dir = str(Path("runs") / self.stage)
        for value, choices, what in ((self.gan_loss, GAN_LOSSES, "GAN loss"),
                                     (self.discriminator, DISCRIMINATORS, "discriminator"),
                                     (self.teacher_input, TEACHER_INPUTS, "teacher input"),
                                     (self.teacher_on, TEACHER_ON, "--teacher-on"),
                                     (self.teacher_loss, TEACHER_LOSSES, "teacher loss")):
            if value not in choices:
                raise TrainError(f"unknown {what} {value!r} ({', '.join(choices)})")
        if self.d_reset_every < 0:
            raise TrainError(f"--d-reset-every {self.d_reset_every}: expected N >= 0")
        if self.d_reset_every and self.stage != "gan":
            raise TrainError("--d-reset-every replaces the discriminator: it needs --stage gan")
        if not self.adv_degraded >= 0:
            raise TrainError(f"--adv-degraded {self.adv_degraded}: expected a weight >= 0")
        for option, w in (("--delattice", self.delattice),
                          ("--teacher-delattice", self.teacher_delattice)):
            if w == 1:  # a 1-pixel window removes the whole residual: bicubic comes out
                raise TrainError(f"{option} 1: the window must be 0 (off) or at least 2 LR "
                                 "pixels (1 would leave only the bicubic upscale)")
        if self.lr_milestones is None:
            self.lr_milestones = ([GAN_LR_STEP] if self.stage == "gan"
                                  and self.lr_schedule == "step" else [])

    def spec(self) -> GeneratorSpec:
        from srgan_cli.nets.generator import GeneratorSpec

        return GeneratorSpec(scale=self.scale, blocks=self.blocks, width=self.width,
                             delattice=self.delattice or 0)


def field_defaults() -> dict[str, Any]:
    """Each :class:`TrainConfig` field's default (None for a stage default; ``data``, which
    has none, left out): what ``srgan train``'s options default to."""
    return {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}


def lr_at(cfg: TrainConfig, it: int) -> float:
    """Learning rate for (0-based) iteration ``it``; a pure function of the config."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    if cfg.lr_schedule == "step":
        return cfg.lr * 0.1 ** sum(1 for m in cfg.lr_milestones if it >= m)
    if cfg.lr_schedule == "cosine":
        t = min(it / max(cfg.iters, 1), 1.0)
        return 0.5 * cfg.lr * (1 + math.cos(math.pi * t))
    raise TrainError(f"unknown lr schedule {cfg.lr_schedule!r} ({', '.join(LR_SCHEDULES)})")


def adv_weight_at(cfg: TrainConfig, it: int) -> float:
    """Adversarial weight at (0-based) iteration ``it``: ``adv_weight``, ramped linearly
    from 0 over the first ``adv_warmup`` iterations when that is set."""
    if cfg.adv_warmup > 0 and it < cfg.adv_warmup:
        return cfg.adv_weight * (it + 1) / cfg.adv_warmup
    return cfg.adv_weight


def saved_config(saved: dict[str, Any]) -> TrainConfig:
    """The :class:`TrainConfig` a checkpoint's ``config`` entry records. Fields it lacks
    (added since the run started) get their defaults, which is what the run used;
    entries that are no longer fields are ignored."""
    names = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in saved.items() if k in names})


def _same(name: str, a: Any, b: Any) -> bool:
    if name in PATH_FIELDS and a is not None and b is not None:
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            return [Path(x) for x in a] == [Path(x) for x in b]
        return Path(str(a)) == Path(str(b))
    return a == b


def _shown(name: str, value: Any) -> str:
    """``--name value`` as the option would be given."""
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return flag if value else f"--no-{name.replace('_', '-')}"
    if isinstance(value, (list, tuple)):
        return f"{flag} {','.join(map(str, value))}" if value else f"{flag} (none)"
    return f"{flag} {value}"


def resume_differences(saved: TrainConfig, cfg: TrainConfig) -> tuple[list[str], list[str]]:
    """The fields in which ``cfg`` differs from the run it resumes (``saved``): (those of
    the recipe, which a resumed run must keep; those in ``RESUME_MAY_CHANGE``, not
    counting ``RESUME_PER_INVOCATION``). Every dataclass field is compared."""
    recipe, changed = [], []
    for f in fields(TrainConfig):
        if _same(f.name, getattr(saved, f.name), getattr(cfg, f.name)):
            continue
        if f.name not in RESUME_MAY_CHANGE:
            recipe.append(f.name)
        elif f.name not in RESUME_PER_INVOCATION:
            changed.append(f.name)
    return recipe, changed


def check_resumable(saved: TrainConfig, cfg: TrainConfig, source: str) -> list[str]:
    """Raise a one-line :class:`TrainError` naming the recipe fields in which ``cfg``
    differs from the run it resumes; else return a note for each changeable one."""
    recipe, changed = resume_differences(saved, cfg)
    if recipe:
        given = ", ".join(_shown(n, getattr(cfg, n)) for n in recipe)
        kept = ", ".join(_shown(n, getattr(saved, n)) for n in recipe)
        raise TrainError(f"{source}: a resumed run keeps its settings, and {given} differ "
                         f"from the run's {kept} (leave them out to continue the run as it "
                         "was, or start a new run with --init)")
    return [f"resuming with {_shown(n, getattr(cfg, n))} (the run had "
            f"{_shown(n, getattr(saved, n))})" for n in changed]


def resumed_config(saved: TrainConfig, given: dict[str, Any],
                   source: str) -> tuple[TrainConfig, list[str]]:
    """The config of a resumed run: the checkpoint's (``saved``), with the options given
    again (``given``: field -> value) over it and ``RESUME_PER_INVOCATION`` at their
    defaults unless given; a run folder that is not there (moved, or another working
    folder) becomes the checkpoint's (``source``) folder. Raises :class:`TrainError` when a given recipe field differs
    (see :func:`check_resumable`); returns the config and notes on what changes."""
    unknown = sorted(set(given) - {f.name for f in fields(TrainConfig)})
    if unknown:
        raise TrainError(f"not training settings: {', '.join(unknown)}")
    fresh = {f.name: f.default for f in fields(TrainConfig)
             if f.name in RESUME_PER_INVOCATION and f.default is not MISSING}
    moved = []
    if "run_dir" not in given and not Path(saved.run_dir).is_dir():
        # the run was moved, or this command runs in another folder: the checkpoint's own
        fresh["run_dir"] = str(Path(source).parent)
        moved = [f"the run's folder {saved.run_dir} is not here: writing to "
                 f"{fresh['run_dir']}, the checkpoint's"]
    cfg = replace(saved, **{**fresh, **given})
    kept = replace(saved, run_dir=cfg.run_dir) if moved else saved
    return cfg, moved + check_resumable(kept, cfg, source)
