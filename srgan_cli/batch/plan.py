"""The inputs of a batch upscale: files, folders and glob patterns collected into jobs,
output names, shards, and the checks made before any model runs (outputs written twice or
over an input, folders that cannot be written). Never prints; ``srgan upscale`` reports."""

from __future__ import annotations

import os
from pathlib import Path

from srgan_cli.batch.pipeline import FileJob
from srgan_cli.batch.tally import Tally  # noqa: F401 - where it has always been found
from srgan_cli.errors import ImageError, SrganError
from srgan_cli.imageio.imaging import FORMAT_SUFFIX, FORMATS, INPUT_SUFFIXES, output_format

Item = tuple[Path, Path | None]  # (file, the folder it was found under, or None)


def collect_inputs(inputs: tuple[str, ...], recursive: bool) -> list[Item]:
    """(file, root) pairs; root is the folder a file was found under (for mirroring).

    An argument may be a file, a folder, or a glob pattern (``**`` descends folders).
    Missing files are kept and reported per item, not fatal here.
    """
    import glob

    def is_image(f: Path) -> bool:
        return f.is_file() and f.suffix.lower() in INPUT_SUFFIXES

    items: list[Item] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            files = p.rglob("*") if recursive else p.glob("*")
            items.extend((f, p) for f in sorted(files) if is_image(f))
        elif not p.exists() and glob.has_magic(raw):
            matches = sorted(Path(m) for m in glob.glob(raw, recursive=True))
            base = Path(raw.split("*")[0].split("?")[0].split("[")[0] or ".")
            base = base if base.is_dir() else base.parent
            items.extend((f, base) for f in matches if is_image(f))
        else:
            items.append((p, None))
    seen: set[Path] = set()
    unique = []
    for f, root in items:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append((f, root))
    return unique


def shard(items: list[Item], k: int, n: int) -> list[Item]:
    """The K-th (1-based) of N deterministic slices of ``items`` (by path)."""
    return [it for i, it in enumerate(sorted(items, key=lambda t: str(t[0]))) if i % n == k - 1]


def has_subfolders(inputs: tuple[str, ...]) -> bool:
    """Whether an input folder has sub-folders (a non-recursive run found nothing)."""
    return any(Path(i).is_dir() and any(c.is_dir() for c in Path(i).iterdir()) for i in inputs)


def output_path(src: Path, root: Path | None, out: Path | None, *, single: bool, suffix: str,
                fmt: str | None) -> Path:
    """Where ``src`` is written: beside it with ``suffix`` without ``out``; ``out`` itself
    for a single input named as a file; else under the ``out`` folder, mirroring ``root``."""
    ext = FORMAT_SUFFIX[output_format(src, fmt)] if fmt else None
    # inputs that cannot be written back in their own format (GIF, PNM, TGA, ...) give PNG
    ext = ext or (src.suffix if src.suffix.lower() in FORMATS else ".png")
    if out is None:
        return src.with_name(f"{src.stem}{suffix}{ext}")
    if single and out.suffix and not out.is_dir():
        return out
    rel = src.relative_to(root) if root is not None else Path(src.name)
    dst = out / rel
    return dst.with_name(f"{dst.stem}{ext}")


def plan_jobs(items: list[Item], output: Path | None, *, single: bool, suffix: str,
              fmt: str | None, overwrite: bool) -> tuple[list[FileJob], list[Path]]:
    """One job per input, in order, and the files left out as earlier outputs.

    Files found in folders or by patterns (not named one by one) are left out when this
    command would write them itself, as the output of another input (``a_x4.png`` beside
    ``a.png``, and its outputs in turn) or under the ``-o`` folder; and an output that
    already exists is skipped for them (unless ``overwrite``), so re-running a command
    over a folder does no new work.
    """
    jobs = []
    for src, root in items:
        if root is None and not src.exists() and not src.is_symlink():
            jobs.append(FileJob(src, None, ImageError(f"{src}: no such file")))
            continue
        try:
            dst = output_path(src, root, output, single=single, suffix=suffix, fmt=fmt)
            jobs.append(FileJob(src, dst, skip_existing=root is not None and not overwrite))
        except SrganError as e:
            jobs.append(FileJob(src, None, e))
    outputs = {job.dst.resolve() for job in jobs
               if job.dst is not None and job.dst.resolve() != job.src.resolve()}
    out_dir = output.resolve() if output is not None and not single else None
    kept, earlier = [], []
    for job, (src, root) in zip(jobs, items):
        key = src.resolve()
        if root is not None and (key in outputs or (
                out_dir is not None and out_dir in key.parents and out_dir != root.resolve())):
            earlier.append(src)
        else:
            kept.append(job)
    return kept, earlier


def to_upscale(jobs: list[FileJob], skip_existing: bool) -> list[Path]:
    """The inputs of ``jobs`` that will be upscaled as things stand: not those with a
    planning error, nor those skipped because their output exists."""
    return [job.src for job in jobs if job.error is None and job.dst is not None
            and not ((skip_existing or job.skip_existing) and job.dst.exists())]


def conflicts(jobs: list[FileJob]) -> list[str]:
    """One line per output that would be written twice, or over an input of this command
    (refused whatever the flags)."""
    inputs = {job.src.resolve(): job.src for job in jobs}
    first: dict[Path, Path] = {}
    lines = []
    for job in jobs:
        if job.dst is None:
            continue
        key = job.dst.resolve()
        if key in inputs:
            lines.append(f"{job.src}: its output {job.dst} is an input of this command; refusing "
                         "to write over it (choose another -o or --suffix)")
        elif key in first:
            lines.append(f"{first[key]} and {job.src} would both be written to {job.dst} "
                         "(upscale them in separate runs or folders)")
        else:
            first[key] = job.src
    return lines


def unwritable(folders: set[Path]) -> str | None:
    """Why outputs cannot be written into one of ``folders`` (None when they can): each
    folder's nearest existing ancestor must be a folder where a file can be created."""
    import tempfile

    probed: set[Path] = set()
    for folder in sorted(folders):
        base = folder.absolute()
        while not base.exists() and base.parent != base:
            base = base.parent
        if base in probed:
            continue
        probed.add(base)
        if not base.is_dir():
            return f"{folder}: cannot create the output folder ({base} is not a folder)"
        try:
            fd, tmp = tempfile.mkstemp(prefix=".srgan-probe-", dir=base)
            os.close(fd)
            os.unlink(tmp)
        except OSError as e:
            return f"{folder}: cannot write there ({e.strerror or e})"
    return None
