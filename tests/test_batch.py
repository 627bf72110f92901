"""The directory path: decode, model and encode overlap; behaviour is that of one file at a
time. Folders: recursive mirrors, --skip-existing, --shard and glob patterns; and
srgan_cli.batch.plan, which collects the inputs, names the outputs and checks them first."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import photo_like
from PIL import Image

from srgan_cli import Upscaler
from srgan_cli.batch import plan
from srgan_cli.batch.pipeline import FileJob, upscale_files
from srgan_cli.cli import main
from srgan_cli.errors import ImageError


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _inputs(d, n=5):
    d.mkdir()
    paths = []
    for i in range(n):
        p = d / f"im{i}.png"
        Image.fromarray(photo_like(9 + i, 11, seed=i)).save(p)
        paths.append(p)
    (d / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return paths + [d / "bad.png"]


def _run(up, jobs, **kw):
    return [(o.src.name, o.status, o.error and str(o.error)) for o in upscale_files(up, jobs, **kw)]


def test_overlapped_and_sequential_batches_give_the_same_outcomes_and_files(tiny_weights,
                                                                             tmp_path):
    srcs = _inputs(tmp_path / "in")
    up = Upscaler(tiny_weights, device="cpu")
    results = {}
    for overlap in (False, True):
        out = tmp_path / f"out{overlap}"
        jobs = [FileJob(s, out / s.name) for s in srcs]
        jobs.insert(2, FileJob(srcs[0], None, ImageError("planned error")))
        results[overlap] = _run(up, jobs, overlap=overlap)
        assert sorted(p.name for p in out.iterdir()) == [f"im{i}.png" for i in range(5)]
    assert results[True] == results[False]
    assert [r[1] for r in results[True]] == ["ok", "ok", "error", "ok", "ok", "ok", "error"]
    assert results[True][2][2] == "planned error" and "bad.png" in results[True][-1][2]
    for i in range(5):
        a = np.asarray(Image.open(tmp_path / "outTrue" / f"im{i}.png"))
        b = np.asarray(Image.open(tmp_path / "outFalse" / f"im{i}.png"))
        assert np.array_equal(a, b)


@pytest.mark.parametrize("overlap", [False, True])
def test_two_jobs_with_one_output_behave_as_one_after_the_other(tiny_weights, tmp_path, overlap):
    srcs = _inputs(tmp_path / "in", 2)[:2]
    up = Upscaler(tiny_weights, device="cpu")
    dst = tmp_path / "same.png"
    jobs = [FileJob(srcs[0], dst), FileJob(srcs[1], dst)]
    got = _run(up, jobs, overlap=overlap)
    assert [g[1] for g in got] == ["ok", "error"] and "already exists" in got[1][2]
    assert Image.open(dst).size == (44, 36)  # the first job's output, not overwritten
    dst.unlink()
    assert [g[1] for g in _run(up, jobs, overlap=overlap, skip_existing=True)] == ["ok", "skipped"]
    assert [g[1] for g in _run(up, jobs, overlap=overlap, overwrite=True)] == ["ok", "ok"]
    assert Image.open(dst).size == (44, 40)  # now the second one's


def test_write_errors_are_reported_in_order_and_the_batch_goes_on(tiny_weights, tmp_path):
    srcs = _inputs(tmp_path / "in", 3)[:3]
    (tmp_path / "not_a_folder").write_text("a file where a folder should be")
    jobs = [FileJob(srcs[0], tmp_path / "a.png"),
            FileJob(srcs[1], tmp_path / "not_a_folder" / "b.png"),
            FileJob(srcs[2], tmp_path / "c.png")]
    got = _run(Upscaler(tiny_weights, device="cpu"), jobs)
    assert [g[1] for g in got] == ["ok", "error", "ok"] and "cannot write" in got[1][2]
    assert (tmp_path / "a.png").is_file() and (tmp_path / "c.png").is_file()


def test_write_errors_in_the_writer_thread_are_per_file(tiny_weights, tmp_path, monkeypatch):
    import srgan_cli.imageio.imaging as imaging

    real = imaging.write_image

    def flaky(path, *a, **k):
        if path.name == "b.png":
            raise ImageError(f"{path}: cannot write (disk full)")
        return real(path, *a, **k)

    monkeypatch.setattr(imaging, "write_image", flaky)
    srcs = _inputs(tmp_path / "in", 3)[:3]
    jobs = [FileJob(s, tmp_path / n) for s, n in zip(srcs, ("a.png", "b.png", "c.png"))]
    got = _run(Upscaler(tiny_weights, device="cpu"), jobs)
    assert [g[1] for g in got] == ["ok", "error", "ok"] and "disk full" in got[1][2]
    assert not (tmp_path / "b.png").exists()


def test_cli_json_lines_keep_the_input_order(tiny_weights, tmp_path):
    srcs = _inputs(tmp_path / "in")
    r = CliRunner().invoke(main, ["upscale", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
                                  "--model", str(tiny_weights), "--json"])
    assert r.exit_code == 1
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    assert [x["input"] for x in lines[:-1]] == [str(s) for s in sorted(srcs)]
    assert [x["status"] for x in lines[:-1]] == ["error"] + ["ok"] * 5  # bad.png sorts first
    assert all(x["seconds"] > 0 for x in lines[1:-1])
    assert lines[-1]["summary"] == {**lines[-1]["summary"], "images": 5, "failed": 1}


@pytest.mark.parametrize("bits", [8, 16])
def test_png_level_changes_the_file_not_the_pixels(tiny_weights, tmp_path, bits):
    arr = photo_like(16, 20, seed=3)
    src = tmp_path / "in.png"
    if bits == 16:
        from srgan_cli.imageio import hibit

        hibit.write_png16(src, arr.astype(np.uint16) * 257)
    else:
        Image.fromarray(arr).save(src)
    outs = {}
    for level in (1, 6):
        out = tmp_path / f"o{level}.png"
        r = CliRunner().invoke(main, ["upscale", str(src), "-o", str(out), "--model",
                                      str(tiny_weights), "--png-level", str(level)])
        assert r.exit_code == 0, r.output
        outs[level] = out
    from srgan_cli.imageio import imaging

    a, b = imaging.read_image(outs[1]), imaging.read_image(outs[6])
    assert a.bits == b.bits == bits and np.array_equal(a.rgb, b.rgb)
    assert outs[1].read_bytes() != outs[6].read_bytes()


def test_large_outputs_are_written_before_the_next_image_starts(tiny_weights, tmp_path,
                                                                monkeypatch):
    """Small outputs are written by the writer thread; large ones (CPU, >= TRIM_AFTER_BYTES)
    on the calling thread, so a folder of big photos never holds two images' memory."""
    import threading

    import srgan_cli.imageio.imaging as imaging
    import srgan_cli.inference.runner as U

    real, where = imaging.write_image, {}

    def spy(path, *a, **k):
        where[path.name] = threading.current_thread() is threading.main_thread()
        return real(path, *a, **k)

    monkeypatch.setattr(imaging, "write_image", spy)
    srcs = _inputs(tmp_path / "in", 3)[:3]
    up = Upscaler(tiny_weights, device="cpu")
    jobs = [FileJob(s, tmp_path / "small" / s.name) for s in srcs]
    assert [o.status for o in upscale_files(up, jobs)] == ["ok"] * 3
    assert not any(where.values())
    monkeypatch.setattr(U, "TRIM_AFTER_BYTES", 1)  # every output counts as large
    where.clear()
    jobs = [FileJob(s, tmp_path / "large" / s.name) for s in srcs]
    assert [o.status for o in upscale_files(up, jobs)] == ["ok"] * 3
    assert len(where) == 3 and all(where.values())


def test_large_outputs_hand_kept_memory_back_before_they_are_encoded(tiny_weights, tmp_path,
                                                                     monkeypatch):
    """On the CPU, after an output of TRIM_AFTER_BYTES or more (and only then) the memory
    malloc kept for the activations is released, before the image is written."""
    import srgan_cli.imageio.imaging as imaging
    import srgan_cli.inference.runner as U

    events = []
    real_write = imaging.write_image
    monkeypatch.setattr(U, "release_freed_memory", lambda: events.append("release"))
    monkeypatch.setattr(imaging, "write_image",
                        lambda path, *a, **k: (events.append("write"), real_write(path, *a, **k)))
    src = _inputs(tmp_path / "in", 1)[0]
    up = Upscaler(tiny_weights, device="cpu")
    up.upscale_file(src, tmp_path / "small.png")
    assert events == ["write"]
    monkeypatch.setattr(U, "TRIM_AFTER_BYTES", 1)
    events.clear()
    up.upscale_file(src, tmp_path / "large.png")
    assert events == ["release", "write"]
    events.clear()
    jobs = [FileJob(src, tmp_path / "large2.png")]
    assert [o.status for o in upscale_files(up, jobs)] == ["ok"]
    assert events == ["release", "write"]


# --------------------------------------------------------------------------- folders: mirrors, shards, globs


def _make_tree(root: Path, n: int = 5) -> None:
    (root / "a" / "b").mkdir(parents=True)
    for i in range(n):
        folder = root if i < 2 else (root / "a" if i < 4 else root / "a" / "b")
        Image.fromarray(photo_like(6, 6, seed=i)).save(folder / f"p{i}.png")


def test_recursive_mirror_skip_existing_and_json(tiny_weights, tmp_path):
    _make_tree(tmp_path / "src")
    out = tmp_path / "out"
    r = run_cli("upscale", tmp_path / "src", "-o", out, "-r", "--model", tiny_weights, "--json")
    assert r.exit_code == 0, r.output
    lines = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    recs = [l for l in lines if "input" in l]
    assert len(recs) == 5 and all(x["status"] == "ok" and x["out_size"] == [24, 24] for x in recs)
    assert lines[-1]["summary"]["images"] == 5
    assert (out / "a" / "b" / "p4.png").is_file() and (out / "a" / "p2.png").is_file()
    (out / "a" / "p3.png").unlink()
    stamp = (out / "p0.png").stat().st_mtime_ns
    r = run_cli("upscale", tmp_path / "src", "-o", out, "-r", "--model", tiny_weights,
                "--skip-existing", "--json")
    assert r.exit_code == 0
    recs = [json.loads(l) for l in r.stdout.splitlines() if '"input"' in l]
    assert sorted(x["status"] for x in recs) == ["ok"] + ["skipped"] * 4
    assert (out / "a" / "p3.png").is_file() and (out / "p0.png").stat().st_mtime_ns == stamp


def test_shards_partition_the_inputs(tiny_weights, tmp_path):
    _make_tree(tmp_path / "src")
    seen = []
    for k in (1, 2, 3):
        r = run_cli("upscale", tmp_path / "src", "-o", tmp_path / f"o{k}", "-r",
                    "--model", tiny_weights, "--shard", f"{k}/3", "--json")
        assert r.exit_code == 0, r.output
        seen += [json.loads(l)["input"] for l in r.stdout.splitlines() if '"input"' in l]
    assert len(seen) == 5 and len(set(seen)) == 5
    r = run_cli("upscale", tmp_path / "src", "--shard", "4/3", "--model", tiny_weights)
    assert r.exit_code == 2


def test_glob_patterns(tiny_weights, tmp_path):
    _make_tree(tmp_path / "src")
    out = tmp_path / "out"
    r = run_cli("upscale", str(tmp_path / "src" / "**" / "p[0-3].png"), "-o", out,
                "--model", tiny_weights, "-q")
    assert r.exit_code == 0, r.output
    got = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert got == ["a/p2.png", "a/p3.png", "p0.png", "p1.png"]


# --------------------------------------------------------------------------- srgan_cli.batch.plan


def test_shards_are_disjoint_slices_in_path_order_whatever_the_input_order():
    items = [(Path(f"d/{c}.png"), Path("d")) for c in "ecabd"]
    slices = [plan.shard(items, k, 2) for k in (1, 2)]
    assert [[p.stem for p, _ in s] for s in slices] == [["a", "c", "e"], ["b", "d"]]


def test_outputs_are_named_beside_inputs_or_mirrored_under_the_output_folder(tmp_path):
    src = tmp_path / "in" / "sub" / "a.gif"
    named = dict(suffix="_x4", fmt=None)
    assert plan.output_path(src, None, None, single=True, **named) == src.with_name("a_x4.png")
    assert plan.output_path(src, tmp_path / "in", tmp_path / "out", single=False,
                             suffix="_x4", fmt="jpg") == tmp_path / "out" / "sub" / "a.jpg"
    assert plan.output_path(src, None, tmp_path / "one.webp", single=True, **named) == \
        tmp_path / "one.webp"


def test_a_folder_rerun_leaves_out_its_own_outputs_and_skips_existing_ones(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    for name in ("a.png", "a_x4.png", "notes.txt"):
        (d / name).write_bytes(b"")
    items = plan.collect_inputs((str(d),), recursive=False)
    assert [f.name for f, _ in items] == ["a.png", "a_x4.png"]
    jobs, earlier = plan.plan_jobs(items, None, single=False, suffix="_x4", fmt=None,
                                    overwrite=False)
    assert [(j.src.name, j.dst.name, j.skip_existing) for j in jobs] == [
        ("a.png", "a_x4.png", True)]
    assert earlier == [d / "a_x4.png"]


def test_a_missing_file_named_alone_is_a_job_with_its_error(tmp_path):
    jobs, _ = plan.plan_jobs([(tmp_path / "gone.png", None)], None, single=True, suffix="_x4",
                              fmt=None, overwrite=False)
    assert jobs[0].dst is None and isinstance(jobs[0].error, ImageError)
    assert "gone.png: no such file" in str(jobs[0].error)


def test_outputs_written_twice_or_over_an_input_are_named(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    jobs = [FileJob(a, tmp_path / "same.png"), FileJob(b, tmp_path / "same.png"),
            FileJob(tmp_path / "c.png", a)]
    lines = plan.conflicts(jobs)
    assert lines == [f"{a} and {b} would both be written to {tmp_path / 'same.png'} "
                     "(upscale them in separate runs or folders)",
                     f"{tmp_path / 'c.png'}: its output {a} is an input of this command; "
                     "refusing to write over it (choose another -o or --suffix)"]


def test_an_output_folder_below_a_file_is_unwritable(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    assert plan.unwritable({tmp_path / "new" / "deeper"}) is None
    assert "is not a folder" in plan.unwritable({tmp_path / "file" / "out"})


@pytest.mark.parametrize("overlap", [False, True])
def test_an_output_that_appears_while_its_job_is_read_is_skipped_not_refused(
        tiny_weights, tmp_path, monkeypatch, overlap):
    """With --skip-existing, an output written by someone else between the job's checks
    (here: while the output format is looked up) is skipped, never 'already exists'."""
    import srgan_cli.imageio.imaging as imaging

    src = _inputs(tmp_path / "in", 1)[0]
    dst = tmp_path / "o.png"
    real = imaging.output_format

    def appearing(path, fmt=None):
        if not dst.exists():
            dst.write_bytes(b"written meanwhile")
        return real(path, fmt)

    monkeypatch.setattr(imaging, "output_format", appearing)
    got = _run(Upscaler(tiny_weights, device="cpu"), [FileJob(src, dst)], overlap=overlap,
               skip_existing=True)
    assert [g[1] for g in got] == ["skipped"]
    assert dst.read_bytes() == b"written meanwhile"
