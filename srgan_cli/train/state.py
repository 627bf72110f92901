"""Everything a run changes as it trains (:class:`TrainState`), and the checkpoint files
that hold it (format version 2; version 1 files still load)."""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from srgan_cli import arch
from srgan_cli.errors import TrainError
from srgan_cli.files import atomic_write
from srgan_cli.nets.generator import GeneratorSpec, SRResNet, tie_phases
from srgan_cli.train.config import ADAM_BETAS, TrainConfig, saved_config
from srgan_cli.train.dist import DistInfo

CHECKPOINT_VERSION = 2
READABLE_VERSIONS = (1, 2)


def seed_for(seed: int, rank: int, iteration: int) -> int:
    """The data-stream seed of process ``rank`` when streams start afresh at ``iteration``."""
    return (seed * 1_000_003 + rank * 7919 + iteration) % (2**63)


def _fresh_history() -> dict[str, Any]:
    return {"val": [], "seconds": 0.0}


@dataclass
class TrainState:
    """The generator, the discriminator (gan stage), their Adam optimisers and grad scalers,
    the EMA of the generator, the data stream's RNG, the iteration and the run's history.

    The learning rates need no state of their own: they are a pure function of the config
    and the iteration (:func:`~srgan_cli.train.config.lr_at`), set by :meth:`set_lr`.
    ``state_dict`` also records the global torch (and CUDA) RNG, which
    ``load_state_dict`` restores.
    """

    generator: SRResNet
    optimizer_g: torch.optim.Optimizer
    scaler_g: torch.amp.GradScaler
    scaler_d: torch.amp.GradScaler
    data_rng: torch.Generator
    discriminator: torch.nn.Module | None = None
    optimizer_d: torch.optim.Optimizer | None = None
    ema: SRResNet | None = None
    iteration: int = 0
    history: dict[str, Any] = field(default_factory=_fresh_history)
    _ema_pairs: tuple | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def build(cls, cfg: TrainConfig, spec: GeneratorSpec, device: torch.device, *,
              amp: torch.dtype | None = None, init: SRResNet | None = None,
              data_seed: int | None = None) -> "TrainState":
        """Fresh networks and optimisers for ``cfg`` (the generator from ``init`` when given).
        Draws the networks' initial weights from the global torch RNG, in a fixed order."""
        model = arch.of_spec(spec).build(spec)
        if init is not None:
            model.load_state_dict(init.state_dict())
        tie_phases(model, cfg.tie_phases)
        model = model.to(device)
        disc = None
        if cfg.stage == "gan":
            from srgan_cli.nets.discriminator import build_discriminator

            disc = build_discriminator(cfg.discriminator, cfg.crop).to(device)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
            if disc is not None:
                disc = disc.to(memory_format=torch.channels_last)
        # the fused Adam (one kernel per step; on the CPU too): same update rule and state
        # dict as the default, equal to rounding, and on the CPU about 9x faster for the
        # discriminator's 23.6 M parameters (docs/performance.md)
        fused = True if device.type in ("cuda", "cpu") else None
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=ADAM_BETAS, fused=fused)
        opt_d = (torch.optim.Adam(disc.parameters(), lr=cfg.d_lr or cfg.lr, betas=ADAM_BETAS,
                                  fused=fused) if disc is not None else None)
        ema = copy.deepcopy(model).eval().requires_grad_(False) if cfg.ema else None
        fp16 = amp == torch.float16
        return cls(generator=model, optimizer_g=opt,
                   scaler_g=torch.amp.GradScaler(device.type, enabled=fp16),
                   scaler_d=torch.amp.GradScaler(device.type, enabled=fp16),
                   data_rng=torch.Generator().manual_seed(
                       cfg.seed if data_seed is None else data_seed),
                   discriminator=disc, optimizer_d=opt_d, ema=ema)

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    def set_lr(self, lr: float, d_lr: float | None = None) -> None:
        """Set the generator's learning rate, and the discriminator's (gan stage)."""
        for g in self.optimizer_g.param_groups:
            g["lr"] = lr
        if self.optimizer_d is not None:
            for g in self.optimizer_d.param_groups:
                g["lr"] = d_lr

    @torch.no_grad()
    def reset_discriminator(self, cfg: TrainConfig, seed: int) -> None:
        """Give the discriminator fresh weights (drawn as ``build`` draws them, from ``seed``,
        the global RNG left as it was) and its Adam a fresh state, in place: the same module
        and optimiser objects, so wrappers (DDP) and memory formats stay."""
        from srgan_cli.nets.discriminator import build_discriminator

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            fresh = build_discriminator(cfg.discriminator, cfg.crop)
        self.discriminator.load_state_dict(fresh.state_dict())
        self.optimizer_d.state.clear()
        self.scaler_d = torch.amp.GradScaler(self.device.type,
                                             enabled=self.scaler_d.is_enabled())

    @torch.no_grad()
    def update_ema(self, decay: float) -> None:
        """EMA <- decay x EMA + (1 - decay) x generator, for the parameters and the floating
        buffers (BatchNorm's running statistics) alike; integer buffers (BN's batch
        counter) copied. One multi-tensor kernel each, not one per tensor.

        The statistics are averaged as the weights are: copied, the generator's current
        statistics would not fit the averaged weights (measured on run gr2: the EMA lost
        2.2 dB of Set5 Y-PSNR to a colour shift that recomputed statistics removed)."""
        if self.ema is None:
            return
        if self._ema_pairs is None:
            ema_bufs, bufs = list(self.ema.buffers()), list(self.generator.buffers())
            floating = [i for i, b in enumerate(bufs) if b.is_floating_point()]
            other = [i for i, b in enumerate(bufs) if not b.is_floating_point()]
            self._ema_pairs = (
                [*self.ema.parameters(), *(ema_bufs[i] for i in floating)],
                [*self.generator.parameters(), *(bufs[i] for i in floating)],
                [ema_bufs[i] for i in other], [bufs[i] for i in other])
        ema_values, values, ema_counts, counts = self._ema_pairs
        torch._foreach_lerp_(ema_values, values, 1.0 - decay)
        if counts:
            torch._foreach_copy_(ema_counts, counts)

    def state_dict(self) -> dict[str, Any]:
        """The state as checkpoint entries (tensors and JSON strings)."""
        st = {
            "iteration": self.iteration,
            "spec": json.dumps(self.generator.spec.as_dict()),
            "model": self.generator.state_dict(),
            "optim": self.optimizer_g.state_dict(),
            "data_rng": self.data_rng.get_state(),
            "torch_rng": torch.get_rng_state(),
            "history": json.dumps(self.history),
            "scaler": self.scaler_g.state_dict(),
        }
        if self.discriminator is not None:
            st.update(disc=self.discriminator.state_dict(),
                      optim_d=self.optimizer_d.state_dict(), scaler_d=self.scaler_d.state_dict())
        if self.ema is not None:
            st["ema"] = self.ema.state_dict()
        if self.device.type == "cuda":
            st["cuda_rng"] = torch.cuda.get_rng_state_all()
        return st

    def load_state_dict(self, st: dict[str, Any], info: DistInfo = DistInfo(), seed: int = 0,  # noqa: B008 - frozen
                        source: str = "checkpoint") -> bool:
        """Restore from :meth:`state_dict` entries (or a version 1 or 2 checkpoint).

        Each of ``info.world`` processes takes its own saved data stream; when the number of
        processes changed, they start fresh distinct streams from ``seed`` instead, and this
        returns True. Only the main process restores the global RNG.
        """
        self.generator.load_state_dict(st["model"])
        self.optimizer_g.load_state_dict(st["optim"])
        if self.discriminator is not None:
            if "disc" not in st:
                raise TrainError(f"{source}: has no discriminator state")
            self.discriminator.load_state_dict(st["disc"])
            self.optimizer_d.load_state_dict(st["optim_d"])
        if self.ema is not None:
            self.ema.load_state_dict(st["ema"] if "ema" in st else st["model"])
        if "scaler" in st:
            self.scaler_g.load_state_dict(st["scaler"])
        if "scaler_d" in st:
            self.scaler_d.load_state_dict(st["scaler_d"])
        self.iteration = int(st["iteration"])
        reseeded = self._restore_data_rng(st, info, seed)
        if info.main:
            torch.set_rng_state(st["torch_rng"])
            if "cuda_rng" in st and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(st["cuda_rng"])
        self.history = json.loads(st["history"])
        return reseeded

    def _restore_data_rng(self, st: dict[str, Any], info: DistInfo, seed: int) -> bool:
        states = st.get("data_rng_ranks") or [st["data_rng"]]
        if info.rank < len(states) and len(states) == info.world:
            self.data_rng.set_state(states[info.rank])
        elif info.enabled:  # another number of processes than before: fresh, distinct streams
            self.data_rng.manual_seed(seed_for(seed, info.rank, self.iteration))
            return True
        else:
            self.data_rng.set_state(states[0])
        return False


def checkpoint_dict(state: TrainState, cfg: TrainConfig,
                    data_rng_ranks: list[torch.Tensor] | None = None) -> dict[str, Any]:
    """A version-2 checkpoint: the state, the config, and every process's data stream."""
    return {"version": CHECKPOINT_VERSION, "config": json.dumps(asdict(cfg)),
            "data_rng_ranks": data_rng_ranks, **state.state_dict()}


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a checkpoint dict atomically (a crash never leaves a half-written ``last.pt``)."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: Path, mmap: bool = False) -> dict[str, Any]:
    """Load our own checkpoint with ``weights_only=True`` (no arbitrary unpickling);
    ``mmap``: map the tensors instead of reading them (for a look at the config)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except FileNotFoundError:
        raise TrainError(f"{path}: no such checkpoint") from None
    except Exception as e:  # noqa: BLE001 - torch raises many types for bad files
        raise TrainError(f"{path}: not a readable srgan checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict) or ckpt.get("version") not in READABLE_VERSIONS:
        raise TrainError(f"{path}: not an srgan checkpoint (versions "
                         f"{', '.join(map(str, READABLE_VERSIONS))})")
    return ckpt


def checkpoint_config(path: Path) -> TrainConfig:
    """The configuration of the run a checkpoint was written by (its tensors are not read)."""
    ckpt = load_checkpoint(Path(path), mmap=True)
    try:
        return saved_config(json.loads(ckpt["config"]))
    except (KeyError, TypeError, ValueError) as e:
        raise TrainError(f"{path}: its run configuration is unreadable ({e})") from None
