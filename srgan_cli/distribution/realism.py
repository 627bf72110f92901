"""The realism control: a GAN generator blended with the SRResNet it was fine-tuned from.

``R`` in [0, 1] gives the generator whose every floating-point tensor (weights, biases,
PReLU slopes, BatchNorm affine terms and running statistics) is ``(1 - R) x parent +
R x gan``; integer buffers (BatchNorm's batch counters, unused in eval mode) are the GAN
model's. ``R = 1`` is the GAN model's own tensors and ``R = 0`` the parent's, unchanged,
so both ends reproduce the two models bit for bit. The blend is made on the state dicts,
before any inference form (BatchNorm folding, fused kernels) is built from it.

The parent is the file a GAN run started from: its sha256 is in the GAN file's
``parent_sha256`` metadata (written by ``export``). It is looked up as a given file, among
the registered models, and next to the GAN file under its recorded name (``parent_file``);
any other file is refused.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from srgan_cli.distribution.loading import load_file
from srgan_cli.errors import WeightsError
from srgan_cli.model import Model


def check_realism(r: float) -> float:
    r = float(r)
    if not (math.isfinite(r) and 0.0 <= r <= 1.0):
        raise WeightsError(f"--realism must be between 0 and 1, got {r:g}")
    return r


def find_parent(info: Model, parent: str | os.PathLike | None = None) -> Path:
    """The verified local file of the SRResNet that ``info`` (a GAN model) was fine-tuned from."""
    from srgan_cli.distribution.hub import sha256_file
    from srgan_cli.distribution.registry import find_by_sha256, resolve_registered

    path = info.path
    sha = info.parent_sha256
    name = info.parent_file or "?"
    if not sha:
        raise WeightsError(f"{path}: --realism needs the SRResNet this model was fine-tuned "
                           "from, and the file names none (no parent_sha256 in its metadata; "
                           f"it is a {info.stage!r} model)")
    if parent is not None:
        parent = Path(parent)
        if not parent.is_file():
            raise WeightsError(f"{parent}: no such weights file")
        found = sha256_file(parent)
        if found != sha:
            raise WeightsError(f"{parent}: not the parent of {path} (sha256 {found}; the model "
                               f"names {name}, sha256 {sha})")
        return parent
    entry = find_by_sha256(sha)
    if entry is not None:
        return resolve_registered(entry)
    beside = path.parent / name
    if name != "?" and beside.is_file() and sha256_file(beside) == sha:
        return beside
    raise WeightsError(f"{path}: its parent SRResNet ({name}, sha256 {sha}) is not registered "
                       f"and not next to it; register that file (srgan models register FILE) "
                       "to use --realism")


def blend_state(parent: dict[str, torch.Tensor], gan: dict[str, torch.Tensor], r: float,
                what: str = "the pair") -> dict[str, torch.Tensor]:
    """``(1 - r) x parent + r x gan`` for every floating tensor; integer ones from ``gan``.
    ``r = 0`` and ``r = 1`` return the parent's and the GAN model's tensors themselves."""
    if parent.keys() != gan.keys():
        odd = sorted(set(parent) ^ set(gan))
        raise WeightsError(f"{what}: the two generators differ in their tensors (e.g. {odd[0]})")
    out = {}
    for k, a in parent.items():
        b = gan[k]
        if a.shape != b.shape or a.dtype != b.dtype:
            raise WeightsError(f"{what}: tensor {k} is {tuple(a.shape)} {a.dtype} in the parent "
                               f"and {tuple(b.shape)} {b.dtype} in the GAN model")
        if not b.is_floating_point() or r == 1.0:
            out[k] = b
        elif r == 0.0:
            out[k] = a
        else:
            out[k] = torch.lerp(a, b, r)
    return out


def _unfiltered(model: Model):
    """``model``'s facts without its lattice filter (spec ``delattice``; no weights)."""
    from srgan_cli import arch

    if not getattr(model.spec, "delattice", 0):  # (other architectures have none)
        return model.facts
    return arch.get(model.arch).describe(model.spec.unfiltered())


def blended(gan: Model, r: float,
            parent: str | os.PathLike | None = None) -> tuple[Model, Path]:
    """``gan`` at realism ``r`` (its network blended with its parent's; eval mode, on the
    CPU; facts and provenance ``gan``'s) and the parent file used."""
    from srgan_cli import arch

    r = check_realism(r)
    parent_path = find_parent(gan, parent)
    base = load_file(parent_path, ours_only=True)
    what = f"{gan.path} and its parent {parent_path}"
    # a lattice filter (spec.delattice, no weights) runs after the blended network as well
    if _unfiltered(base) != _unfiltered(gan):
        raise WeightsError(f"{what} do not share one architecture ({gan.spec} vs "
                           f"{base.spec}); --realism cannot blend them")
    state = blend_state(base.net.state_dict(), gan.net.state_dict(), r, what)
    net = arch.get(gan.arch).build(gan.spec)
    net.load_state_dict(state)
    return gan.with_net(net.eval()), parent_path


__all__ = ["blend_state", "blended", "check_realism", "find_parent"]
