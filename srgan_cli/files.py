"""Writing files and folders so that a reader never sees them half-made."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


try:
    import fcntl
except ImportError:  # Windows: a file being written cannot be deleted anyway
    fcntl = None


def _lock(fd: int) -> bool:
    """Take an exclusive lock on ``fd`` without waiting; False when another holds it.
    The lock ends with the process, so a killed writer's temporary file is unlocked."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_path)`` then rename into place; never leaves a partial file. The
    temporary file stays locked while it is written (see :func:`remove_temporaries`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    if fcntl is None:
        os.close(fd)  # Windows: the writer opens the file again by name
    else:
        _lock(fd)
    try:
        write(Path(tmp))
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        if fcntl is not None:
            os.close(fd)


def atomic_dir(dest: Path, fill: Callable[[Path], T], staging: Path | None = None) -> T:
    """Call ``fill(tmp_folder)`` then move it to ``dest``, replacing what was there; on any
    error the half-made folder is removed and ``dest`` is untouched. The folder is made
    beside ``dest``, or in ``staging`` when given. Returns what ``fill`` returns."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=staging or dest.parent))
    try:
        result = fill(tmp)
        if dest.exists():
            shutil.rmtree(dest)
        shutil.move(tmp, dest)  # a rename on one file system
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def remove_temporaries(outputs: Iterable[Path]) -> int:
    """Remove the temporary files that an interrupted or killed :func:`atomic_write` of
    ``outputs`` left (``.<name>.<random>.tmp`` beside each output); those being written
    now (locked, by this process or another) stay. Each folder is listed once. Returns
    how many were removed."""
    names: dict[Path, set[str]] = {}
    for dst in outputs:
        dst = Path(dst)
        names.setdefault(dst.parent, set()).add(dst.name)
    removed = 0
    for folder, wanted in names.items():
        try:
            entries = [e.name for e in os.scandir(folder)]
        except OSError:
            continue
        for entry in entries:
            if not (entry.startswith(".") and entry.endswith(".tmp")):
                continue
            name = entry[1:-len(".tmp")].rpartition(".")[0]
            if name in wanted and _remove_unlocked(folder / entry):
                removed += 1
    return removed


def _remove_unlocked(tmp: Path) -> bool:
    """Remove ``tmp`` unless a writer holds its lock."""
    try:
        fd = os.open(tmp, os.O_RDONLY)
    except OSError:
        return False
    try:
        if not _lock(fd):
            return False
        os.unlink(tmp)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
