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


def test_temporaries_of_a_killed_write_are_removed_and_nothing_else(tmp_path, monkeypatch):
    from srgan_cli.files import remove_temporaries

    dst = tmp_path / "a [1].png"  # glob characters in the name
    left = []

    def killed(tmp):  # what SIGKILL mid-write leaves: the temporary, not renamed
        tmp.write_bytes(b"half")
        left.append(tmp)
        raise SystemExit  # stands for the kill; the clean-up is switched off below, as a
        # kill would leave no chance to run it

    real_unlink = type(dst).unlink
    monkeypatch.setattr(type(dst), "unlink", lambda self, missing_ok=False: None)
    with pytest.raises(SystemExit):
        atomic_write(dst, killed)
    monkeypatch.setattr(type(dst), "unlink", real_unlink)
    (tmp_path / "a [1].png.keep").write_text("not ours")
    (tmp_path / ".b.png.x.tmp").write_text("another output's")
    assert left[0].exists()
    remove_temporaries([dst])
    assert sorted(p.name for p in tmp_path.iterdir()) == [".b.png.x.tmp", "a [1].png.keep"]
