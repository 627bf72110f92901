"""Releasing a run: the generator of a checkpoint (or its EMA) written as a safetensors file
with the run's provenance in its metadata."""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from srgan_cli import arch
from srgan_cli.distribution.modelfile import save_generator
from srgan_cli.errors import TrainError
from srgan_cli.nets.srresnet_spec import GeneratorSpec
from srgan_cli.train.state import load_checkpoint

#: which of a checkpoint's generators ``srgan models export --weights`` writes
WEIGHTS = ("auto", "ema", "model")


def _parent_provenance(checkpoint: Path, init: dict[str, Any], spec: GeneratorSpec,
                       parent: str | os.PathLike | None) -> dict[str, str]:
    """``parent_sha256`` / ``parent_file`` of a run that started from ``--init`` weights.

    Runs record the init file's sha256 when they start; for checkpoints made before
    that, ``parent`` names the file, which must agree with what the run did record
    (its iterations and stage) and have the same architecture.
    """
    from srgan_cli.distribution.loading import load_file

    if parent is None:
        if not init.get("sha256"):
            return {}
        return {"parent_sha256": init["sha256"],
                "parent_file": init.get("filename") or Path(init["file"]).name}
    parent = Path(parent)
    if not init:
        raise TrainError(f"{checkpoint}: the run did not start from --init weights, so it has "
                         f"no parent; drop --parent {parent}")
    pinfo = load_file(parent, ours_only=True)
    if pinfo.spec.unfiltered() != spec.unfiltered():
        raise TrainError(f"{parent}: is {pinfo.spec}, the checkpoint's generator is {spec}; "
                         "not its parent")
    sha = pinfo.sha256
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


@torch.no_grad()
def recalibrate_bn(net: torch.nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Recompute the running statistics of every BatchNorm layer of ``net`` as the plain
    average over ``batches`` (LR inputs) of the network's own batch statistics, so they
    fit its weights (an EMA's do not: :meth:`TrainState.update_ema`); ``net`` is left in
    eval mode. Returns the number of BatchNorm layers (0: nothing to do, no pass run)."""
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the passes
    net.train()
    try:
        for x in batches:
            net(x)
    finally:
        for m, mom in zip(norms, saved):
            m.momentum = mom
        net.eval()
    return len(norms)


def _run_batches(cfg: dict[str, Any], count: int, seed: int, scale: int
                 ) -> Iterator[torch.Tensor]:
    """``count`` LR batches of the run's data as its training drew them (its crop, batch
    and degradations), from a generator seeded with ``seed``."""
    from srgan_cli.train.data import DataError, ImageBank, sample_batch
    from srgan_cli.train.degrade import DegradationError, Degrader, parse_degradation

    try:
        bank = ImageBank.from_dirs(cfg["data"], cfg["crop"])
        spec = parse_degradation(cfg.get("degradation", "clean"))
    except (DataError, DegradationError) as e:
        raise TrainError(f"BatchNorm recalibration: {e}") from None
    degrade = Degrader(spec) if spec is not None else None
    gen = torch.Generator().manual_seed(seed)
    for _ in range(count):
        yield sample_batch(bank, cfg["batch"], cfg["crop"], scale, gen, degrade=degrade)[0]


def export(checkpoint: str | os.PathLike, out: str | os.PathLike,
           extra: dict[str, Any] | None = None,
           parent: str | os.PathLike | None = None, weights: str = "auto",
           *, bn_batches: int = 0, bn_seed: int = 0) -> Path:
    """Write the generator of a checkpoint as a released safetensors file.

    A run that started from ``--init`` weights names them in the file's metadata:
    ``parent_sha256`` and ``parent_file`` (what ``--realism`` pairs the file with). The
    run recorded them itself; for a checkpoint made before runs did, pass ``parent``
    (the init file), checked against what the run did record.
    ``weights``: ``ema`` (the moving average; an error when the run kept none), ``model``
    (the generator as trained, even when an EMA was kept) or ``auto`` (the EMA when kept).
    ``bn_batches``: recompute the BatchNorm statistics over that many batches of the run's
    own data and degradations (:func:`recalibrate_bn`; seeded by ``bn_seed``; recorded as
    ``bn_recalibrated``); the run's training folders must be there.
    """
    if weights not in WEIGHTS:
        raise TrainError(f"unknown weights {weights!r} ({', '.join(WEIGHTS)})")
    if bn_batches < 0:
        raise TrainError(f"BatchNorm recalibration: {bn_batches} batches (expected >= 0)")
    ckpt = load_checkpoint(Path(checkpoint))
    spec = GeneratorSpec(**json.loads(ckpt["spec"]))
    cfg = json.loads(ckpt["config"])
    history = json.loads(ckpt["history"])
    model = arch.of_spec(spec).build(spec)
    if weights == "ema" and "ema" not in ckpt:
        raise TrainError(f"{checkpoint}: the run kept no EMA of the generator (--ema 0)")
    use_ema = "ema" in ckpt and weights != "model"
    model.load_state_dict(ckpt["ema"] if use_ema else ckpt["model"])
    recalibrated = bn_batches and recalibrate_bn(
        model, _run_batches(cfg, bn_batches, bn_seed, spec.scale))
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
    prov.update(_recipe(cfg))
    teacher = history.get("teacher")
    if teacher:  # the file the run distilled (its name and sha256 at the run's start)
        prov["teacher_file"], prov["teacher_sha256"] = teacher["file"], teacher["sha256"]
    if use_ema:
        prov["ema"] = str(cfg.get("ema"))
    if cfg.get("degradation", "clean") != "clean":  # srgan train --degradation
        prov["degradation"] = cfg["degradation"]
    if init:
        prov["init"] = (f"{init['file']} ({init['stage']}, {init['iterations']} iterations); "
                        f"then {ckpt['iteration']} iterations of this run")
    prov.update(_parent_provenance(Path(checkpoint), init, spec, parent))
    if recalibrated:
        prov["bn_recalibrated"] = (f"{bn_batches} batches of {cfg['batch']} {cfg['crop']}-px "
                                   f"crops of the run's data and degradations, seed {bn_seed}")
    if history["val"] and ("ema" not in ckpt or use_ema) and not recalibrated:
        # validation ran the EMA when kept, with the statistics it had
        last = history["val"][-1]
        prov["val_set5_psnr"] = f"{last[1]:.3f}"
        if len(last) > 2:
            prov["val_set5_lpips"] = f"{last[2]:.4f}"
    prov.update(extra or {})
    save_generator(model, out, prov)
    return Path(out)


# recipe entries: (config key, its value when the run left it unset: not recorded then)
_RECIPE = (("content_weight", 1.0), ("tie_phases", "off"), ("grid_weight", 0),
           ("artifact_weight", 0))
_GAN_RECIPE = (("gan_loss", "standard"), ("d_lr", None), ("discriminator", "vgg"),
               ("pixel_weight", 0), ("adv_degraded", 1.0),
               ("adv_warmup", 0), ("d_warmup", 0), ("d_reset_every", 0))
_TEACHER_RECIPE = (("teacher_input", "lr"), ("teacher_on", "all"), ("teacher_delattice", 0))


def _recipe(cfg: dict[str, Any]) -> dict[str, str]:
    """The provenance entries of a run's losses and tie (those it set)."""
    entries = list(_RECIPE)
    out: dict[str, str] = {}
    if cfg["stage"] == "gan":
        out["adv_weight"] = str(cfg.get("adv_weight"))
        entries += _GAN_RECIPE
    if cfg.get("teacher_weight"):
        out["teacher"] = Path(str(cfg["teacher"])).name
        out["teacher_weight"] = str(cfg["teacher_weight"])
        out["teacher_loss"] = cfg.get("teacher_loss", "l1")
        entries += _TEACHER_RECIPE
    for key, unset in entries:
        value = cfg.get(key, unset)
        if value is not None and value is not False and value != unset:
            out[key] = str(value)
    if cfg.get("flat_weight"):
        out["flat_weight"] = str(cfg["flat_weight"])
        out["flat_colours"] = str(cfg.get("flat_colours", 32))  # 32 before the option
    return out


def average(files: list[str | os.PathLike], out: str | os.PathLike) -> dict[str, str]:
    """Write the mean of several generator weights files to ``out`` (atomically) and
    return its metadata: checkpoints of one GAN run, exported, whose weights swing about
    a mean from one checkpoint to the next (weight averaging, as SWA: the average of a
    trajectory rather than its last point). The files must be ours and of one
    architecture (the same spec, lattice filter included); every floating-point tensor is
    averaged, BatchNorm statistics too. The metadata is the first file's provenance, with
    ``iterations`` the largest of the files' and ``averaged_from`` naming each file, its
    sha256 and iterations. Raises :class:`TrainError` with one line on what is wrong."""
    from srgan_cli.distribution.loading import load_file
    from srgan_cli.distribution.modelfile import provenance_of
    from srgan_cli.errors import SrganError

    paths = [Path(f) for f in files]
    if len(paths) < 2:
        raise TrainError("averaging needs at least two weights files")
    models = []
    for p in paths:
        try:
            models.append(load_file(p, ours_only=True))
        except SrganError as e:
            raise TrainError(str(e)) from None
    first = models[0]
    for p, m in zip(paths[1:], models[1:]):
        if m.arch != first.arch or m.spec != first.spec:
            raise TrainError(f"{p}: a {m.arch} {m.spec} cannot be averaged with "
                             f"{paths[0]} ({first.arch} {first.spec})")
    states = [m.net.state_dict() for m in models]
    mean = {k: (torch.stack([s[k].double() for s in states]).mean(0).to(v.dtype)
                if v.is_floating_point() else v) for k, v in states[0].items()}
    first.net.load_state_dict(mean)
    iterations = [m.metadata.get("iterations", "?") for m in models]
    meta = provenance_of(first.metadata)
    numbers = [int(i) for i in iterations if str(i).isdigit()]
    if numbers:
        meta["iterations"] = str(max(numbers))
    meta["averaged_from"] = "; ".join(
        f"{p.name} (sha256 {m.sha256}, {i} iterations)"
        for p, m, i in zip(paths, models, iterations))
    save_generator(first.net, out, meta)
    return meta


# what a run's export says about where the run started; a new init_* replaces it
_RUN_START = ("init", "weights_of", "weights_sha256")


def set_provenance(src: str | os.PathLike, out: str | os.PathLike, *,
                   init: str | os.PathLike | None = None, init_note: str | None = None,
                   parent: str | os.PathLike | None = None,
                   made_by: str | None = None) -> dict[str, str]:
    """Write ``src``'s weights unchanged to ``out`` (atomically; ``out`` may be ``src``)
    with its provenance restated for a release, and return the new metadata.

    ``init``: the file the release's line of runs started from, recorded as
    ``init_sha256`` and ``init_file`` (its name, then ``init_note``: the runs after it);
    the entries that described one run's start (``init``, ``weights_of``,
    ``weights_sha256``) are dropped. ``parent``: the file ``--realism`` blends with,
    recorded as ``parent_sha256`` / ``parent_file`` in place of the run's own.
    ``made_by``: how the file was made. Everything else (recipe, ``averaged_from``...) is
    kept. Hashes are taken before anything is written, so ``init`` may be ``out``.
    Raises :class:`TrainError` with one line on what is wrong."""
    from srgan_cli.distribution.hub import sha256_file
    from srgan_cli.distribution.loading import load_file
    from srgan_cli.distribution.modelfile import provenance_of
    from srgan_cli.errors import SrganError

    if init is None and parent is None and made_by is None:
        raise TrainError("nothing to set: give --init, --parent and/or --made-by")
    if init_note is not None and init is None:
        raise TrainError("--init-note describes --init FILE: give both")
    for name, value in (("init note", init_note), ("made_by", made_by)):
        if value is not None and not value.strip():
            raise TrainError(f"{name}: empty text")
    try:
        model = load_file(Path(src), ours_only=True)
        hashes = {}
        for key, path in (("init", init), ("parent", parent)):
            if path is not None:
                path = Path(path)
                load_file(path, ours_only=True)  # a weights file of ours, not any file
                hashes[key] = (path.name, sha256_file(path))
    except SrganError as e:
        raise TrainError(str(e)) from None
    meta = provenance_of(model.metadata)
    if "init" in hashes:
        for key in _RUN_START:
            meta.pop(key, None)
        name, digest = hashes["init"]
        meta["init_sha256"] = digest
        meta["init_file"] = f"{name}, then {init_note.strip()}" if init_note else name
    if "parent" in hashes:
        meta["parent_file"], meta["parent_sha256"] = hashes["parent"]
    if made_by is not None:
        meta["made_by"] = made_by.strip()
    save_generator(model.net, out, meta)
    return meta
