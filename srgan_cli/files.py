"""Writing files and folders so that a reader never sees them half-made."""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_path)`` then rename into place; never leaves a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
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


def remove_temporaries(outputs: Iterable[Path]) -> None:
    """Remove the temporary files an interrupted :func:`atomic_write` of ``outputs`` may
    have left (``.<name>.<random>.tmp`` beside each output)."""
    for dst in outputs:
        for tmp in glob.glob(os.path.join(glob.escape(str(dst.parent)),
                                          f".{glob.escape(dst.name)}.*.tmp")):
            try:
                os.unlink(tmp)
            except OSError:
                pass
