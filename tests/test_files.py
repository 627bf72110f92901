"""Atomic writes: a reader sees the old file or folder or the new one, never half of one."""

import pytest

from srgan_cli.files import atomic_dir, atomic_write


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.txt"
    atomic_write(path, lambda tmp: tmp.write_text("old"))

    def half_then_fail(tmp):
        tmp.write_text("ha")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, half_then_fail)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_folder_is_replaced_whole_or_not_at_all(tmp_path):
    dest = tmp_path / "pack"

    def fill(tmp, text):
        (tmp / "sub").mkdir()
        (tmp / "sub" / "f.txt").write_text(text)
        return text

    assert atomic_dir(dest, lambda tmp: fill(tmp, "one")) == "one"
    (dest / "stale.txt").write_text("from before")

    def fail_midway(tmp):
        fill(tmp, "two")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_dir(dest, fail_midway)
    assert (dest / "sub" / "f.txt").read_text() == "one" and (dest / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pack"]  # no half-made folder left
    staging = tmp_path / "staging"
    staging.mkdir()
    assert atomic_dir(dest, lambda tmp: fill(tmp, "three"), staging=staging) == "three"
    assert (dest / "sub" / "f.txt").read_text() == "three" and not (dest / "stale.txt").exists()
    assert not list(staging.iterdir())
