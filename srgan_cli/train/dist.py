"""Multi-process training (``torchrun --nproc-per-node N -m srgan_cli train ...``).

torchrun sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; with ``WORLD_SIZE > 1`` the
training loop joins a process group (NCCL on CUDA, gloo on CPU), wraps the networks in
DistributedDataParallel, gives each rank its own share of the training images, and lets
only rank 0 validate, log and write checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def from_env() -> DistInfo:
    """The process's place in a torchrun launch (a single process when not launched so)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        return DistInfo()
    return DistInfo(rank, world, local) if world > 1 else DistInfo()


def init(info: DistInfo, device: torch.device) -> None:
    if info.enabled and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def gather_objects(info: DistInfo, obj):
    """Every rank's ``obj`` as a list on every rank (``[obj]`` when not distributed)."""
    if not info.enabled:
        return [obj]
    out = [None] * info.world
    dist.all_gather_object(out, obj)
    return out


def max_rank_difference(info: DistInfo, module: torch.nn.Module) -> float:
    """Largest absolute difference between any rank's parameters and rank 0's.

    DDP keeps the replicas' parameters identical; this checks that it did (0.0 when not
    distributed). Buffers (BatchNorm running statistics) are updated by each rank's own
    batches between DDP's broadcasts, so they are not compared: :func:`sync_buffers` makes
    them rank 0's.
    """
    if not info.enabled:
        return 0.0
    flat = torch.cat([t.detach().float().reshape(-1) for t in module.parameters()])
    ref = flat.clone()
    dist.broadcast(ref, 0)
    diff = (flat - ref).abs().max().reshape(1)
    dist.all_reduce(diff, op=dist.ReduceOp.MAX)
    return float(diff.item())


@torch.no_grad()
def sync_buffers(info: DistInfo, module: torch.nn.Module) -> None:
    """Give every rank rank 0's buffers (what DDP does before each forward pass)."""
    if info.enabled:
        for b in module.buffers():
            dist.broadcast(b, 0)
