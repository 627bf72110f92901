"""Benchmark datasets from the Hugging Face Hub (``eugenesiow/<Name>`` dataset repos).

Each repo holds ``data/<Name>_HR.tar.gz`` and ``data/<Name>_LR_x<s>.tar.gz``. Archives are
downloaded into the standard Hub cache with ``hf_hub_download`` and unpacked, safely, into
``$SRGAN_DATA_CACHE`` (default ``benchmark`` in srgan's cache folder,
:func:`srgan_cli.paths.cache_dir`: ``$SRGAN_CACHE_DIR``, else ``~/.cache/srgan``) as
``<Name>/<Name>_HR/...``.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path, PurePosixPath

from srgan_cli.bench.datasets import KNOWN, DatasetError
from srgan_cli.files import atomic_dir
from srgan_cli.paths import cache_dir

REPOS = {k: f"eugenesiow/{v}" for k, v in KNOWN.items()}


def cache_root() -> Path:
    env = os.environ.get("SRGAN_DATA_CACHE")
    return Path(env).expanduser() if env else cache_dir() / "benchmark"


def _check_member(m: tarfile.TarInfo, archive: Path) -> None:
    p = PurePosixPath(m.name)
    if p.is_absolute() or ".." in p.parts or m.name.startswith(("/", "\\")):
        raise DatasetError(f"{archive}: refusing archive member {m.name!r} (escapes the folder)")
    if not (m.isfile() or m.isdir()):
        raise DatasetError(f"{archive}: refusing archive member {m.name!r} (links and special "
                           "files are not extracted)")


def extract_safely(archive: Path, dest: Path) -> Path:
    """Unpack a .tar(.gz) into ``dest`` (created atomically); returns ``dest``.

    Every member must be a regular file or folder whose path stays inside ``dest``.
    """
    def unpack(tmp: Path) -> None:
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = tar.getmembers()
                for m in members:
                    _check_member(m, archive)
                tar.extractall(tmp, members=members, filter="data")
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DatasetError(f"{archive}: unreadable archive ({e})") from None

    atomic_dir(dest, unpack)
    return dest


def fetch_dataset(name: str, scale: int = 4, revision: str | None = None) -> Path:
    """Download and unpack dataset ``name``; returns a data dir usable by load_dataset."""
    key = name.lower()
    if key not in REPOS:
        raise DatasetError(f"unknown dataset {name!r} (known: {', '.join(sorted(REPOS))})")
    canonical = KNOWN[key]
    root = cache_root()
    for part in (f"{canonical}_HR", f"{canonical}_LR_x{scale}"):
        archive = _download(REPOS[key], f"data/{part}.tar.gz", revision=revision,
                            canonical=canonical, key=key, scale=scale)
        dest = root / canonical / part
        stamp = dest / ".source"
        # the blob path in the Hub cache names the file's content (etag), so it identifies it
        ident = archive.resolve().name
        if not (stamp.is_file() and stamp.read_text() == ident):
            extract_safely(archive, dest)
            stamp.write_text(ident)
    return root


def _download(repo_id: str, filename: str, *, revision: str | None, canonical: str, key: str,
              scale: int) -> Path:
    """:func:`srgan_cli.distribution.hub.download` of a dataset file, with dataset-worded errors."""
    from srgan_cli.distribution import hub
    from srgan_cli.errors import WeightsError

    try:
        return hub.download(
            repo_id, filename, revision=revision, repo_type="dataset",
            what=f"{canonical} ({filename})", hint=f"srgan benchmark {key} --source hub",
            otherwise=(f"pass --data-dir DIR holding {canonical}/{canonical}_HR and "
                       f"{canonical}/{canonical}_LR_x{scale}"))
    except WeightsError as e:
        raise DatasetError(str(e)) from None
