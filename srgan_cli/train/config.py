"""What a training run is: its settings (:class:`TrainConfig`, with each stage's defaults)
and the schedules that follow from them (learning rate, adversarial weight)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srgan_cli.errors import TrainError
from srgan_cli.nets.generator import GeneratorSpec

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
    # gan: discriminator-only iterations before the first generator step of a fresh
    # discriminator (a run started with --init: a new D learns the current G first)
    d_warmup: int = 0
    # tie each sub-pixel stage's four phases (srgan_cli.nets.generator.tie_phases), at the
    # start and after every generator step: off | dc (one DC gain and bias: flat areas stay
    # flat) | resize (exactly nearest x2 + a 3x3 convolution, in the paper's layout)
    tie_phases: str = "off"
    grid_weight: float = 0.0  # weight of the grid loss (train.losses.GridLoss), in dB
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
