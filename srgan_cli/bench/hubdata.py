"""Benchmark datasets from the Hugging Face Hub (``eugenesiow/<Name>`` dataset repos).

Each repo holds ``data/<Name>_HR.tar.gz`` and ``data/<Name>_LR_x<s>.tar.gz``. Archives are
downloaded into the standard Hub cache with ``hf_hub_download`` and unpacked, safely, into
``$SRGAN_DATA_CACHE`` (default ``~/.cache/srgan/benchmark``) as ``<Name>/<Name>_HR/...``.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from srgan_cli.bench.datasets import KNOWN, DatasetError

REPOS = {k: f"eugenesiow/{v}" for k, v in KNOWN.items()}


def cache_root() -> Path:
    env = os.environ.get("SRGAN_DATA_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "srgan" / "benchmark"


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
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = tar.getmembers()
                for m in members:
                    _check_member(m, archive)
                tar.extractall(tmp, members=members, filter="data")
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DatasetError(f"{archive}: unreadable archive ({e})") from None
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def fetch_dataset(name: str, scale: int = 4, revision: str | None = None) -> Path:
    """Download and unpack dataset ``name``; returns a data dir usable by load_dataset."""
    key = name.lower()
    if key not in REPOS:
        raise DatasetError(f"unknown dataset {name!r} (known: {', '.join(sorted(REPOS))})")
    canonical = KNOWN[key]
    root = cache_root()
    for part in (f"{canonical}_HR", f"{canonical}_LR_x{scale}"):
        archive = _download(REPOS[key], f"data/{part}.tar.gz", revision, canonical, key, scale)
        dest = root / canonical / part
        stamp = dest / ".source"
        # the blob path in the Hub cache names the file's content (etag), so it identifies it
        ident = archive.resolve().name
        if not (stamp.is_file() and stamp.read_text() == ident):
            extract_safely(archive, dest)
            stamp.write_text(ident)
    return root


def _download(repo_id: str, filename: str, revision: str | None, canonical: str, key: str,
              scale: int) -> Path:
    """``hf_hub_download`` of a dataset file; endpoint, cache and offline mode are read from
    the environment now (not when huggingface_hub was imported). One-line errors."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub import errors as hfe

    from srgan_cli.hub import cache_dir, endpoint, offline

    is_offline = offline()
    try:
        return Path(hf_hub_download(repo_id, filename, repo_type="dataset", revision=revision,
                                    cache_dir=str(cache_dir()), endpoint=endpoint(),
                                    local_files_only=is_offline))
    except hfe.LocalEntryNotFoundError:
        why = "HF_HUB_OFFLINE is set" if is_offline else f"{endpoint()} cannot be reached"
        raise DatasetError(
            f"{canonical}: {filename} is not in the local Hub cache ({cache_dir()}) and {why}; "
            f"run `srgan benchmark {key} --source hub` while online, or pass --data-dir DIR "
            f"holding {canonical}/{canonical}_HR and {canonical}/{canonical}_LR_x{scale}"
        ) from None
    except hfe.EntryNotFoundError:
        raise DatasetError(f"{repo_id}: has no {filename} (x{scale} not available?)") from None
    except hfe.RevisionNotFoundError:
        raise DatasetError(f"{repo_id}: no revision {revision!r}") from None
    except hfe.RepositoryNotFoundError:
        raise DatasetError(f"{repo_id}: dataset repository not found at {endpoint()}") from None
    except (hfe.HfHubHTTPError, OSError, ValueError) as e:
        msg = " ".join(str(e).split())[:300]
        raise DatasetError(f"{repo_id}: download of {filename} failed ({msg})") from None
    except Exception as e:  # transport errors of the HTTP client (not OSError subclasses)
        if type(e).__module__.split(".")[0] not in ("httpx", "httpx2", "httpcore", "requests",
                                                    "urllib3"):
            raise
        msg = " ".join(str(e).split())[:300]
        raise DatasetError(f"{repo_id}: download of {filename} failed "
                           f"({type(e).__name__}: {msg})") from None
