"""`srgan upscale` and `srgan benchmark` in everyday use, round two (issue 23): no escaped
tracebacks, interrupts that exit 130 with the summary, and no temporaries left behind."""

import json
import os
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from conftest import photo_like
from PIL import Image

from srgan_cli.batch.pipeline import FileJob, upscale_files
from srgan_cli.cli import main
from srgan_cli.errors import SrganError
from srgan_cli.imageio import imaging
from srgan_cli.inference.upscale import Upscaler


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def error_lines(output: str) -> list[str]:
    return [ln for ln in output.splitlines() if ln.startswith("error:")]


def images(folder, n: int, size: int = 8):
    folder.mkdir(exist_ok=True)
    for i in range(n):
        Image.fromarray(photo_like(size, size + i, seed=i)).save(folder / f"p{i}.png")
    return folder


@pytest.fixture
def model_runs(monkeypatch):
    """The images the model is run on (each call of the model pass)."""
    calls = []
    model_pass = Upscaler._model_pass

    def counted(self, d, *args, **kw):
        calls.append(d.size)
        return model_pass(self, d, *args, **kw)

    monkeypatch.setattr(Upscaler, "_model_pass", counted)
    return calls


# --------------------------------------------------------------------------- tracebacks


@pytest.mark.parametrize("extra,words", [
    (["--outscale", "1e9"], "more than --max-pixels 100000000 x 4x4 allows"),
    (["--outscale", "8", "--max-pixels", "100"], "more than --max-pixels 100 x 4x4 allows"),
    (["--outscale", "1e9", "--max-pixels", "0"], "too large to write"),
])
def test_an_output_too_large_is_refused_in_one_line_before_any_model_work(
        tiny_weights, tmp_path, model_runs, extra, words):
    src = tmp_path / "in.png"
    Image.fromarray(photo_like(10, 10)).save(src)
    r = run_cli("upscale", src, "-m", tiny_weights, "--device", "cpu", *extra)
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and model_runs == []
    [line] = error_lines(r.output)
    assert str(src) in line and words in line and "--outscale" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "tiny.safetensors"]


def test_the_api_refuses_an_output_too_large_before_the_model_runs(tiny_weights, model_runs):
    up = Upscaler(tiny_weights, device="cpu", outscale=1e12)
    with pytest.raises(SrganError, match="too large to write"):
        up.upscale_image(Image.fromarray(photo_like(10, 10)))
    assert model_runs == []


@pytest.mark.parametrize("suffix", ["/../../esc", "a/b", os.sep + "x"])
def test_a_suffix_with_a_path_separator_is_refused_in_one_line(tiny_weights, tmp_path, suffix):
    src = tmp_path / "a.png"
    Image.fromarray(photo_like(8, 8)).save(src)
    r = run_cli("upscale", src, "--suffix", suffix, "-m", tiny_weights)
    assert r.exit_code == 2 and "Traceback" not in r.output
    [line] = error_lines(r.output)
    assert "--suffix" in line and "path separator" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "tiny.safetensors"]


def test_an_unexpected_exception_in_one_image_is_its_error_and_the_batch_goes_on(
        tiny_weights, tmp_path, monkeypatch):
    src = images(tmp_path / "in", 4)
    read, model_pass, write = imaging.read_image, Upscaler._model_pass, imaging.write_image

    def read_image(path, **kw):
        if path.name == "p0.png":
            raise RuntimeError("a decoder's bug\nover two lines")
        return read(path, **kw)

    def broken_model(self, d, *a, **kw):
        if d.size == (9, 8):  # p1
            raise ValueError("a shape the network did not expect")
        return model_pass(self, d, *a, **kw)

    def write_image(path, *a, **kw):
        if path.name.startswith("p2"):
            raise MemoryError()
        return write(path, *a, **kw)

    monkeypatch.setattr(imaging, "read_image", read_image)
    monkeypatch.setattr(Upscaler, "_model_pass", broken_model)
    monkeypatch.setattr(imaging, "write_image", write_image)
    out = tmp_path / "out"
    r = run_cli("upscale", src, "-o", out, "-m", tiny_weights, "--device", "cpu")
    assert r.exit_code == 1 and "Traceback" not in r.output
    errors = error_lines(r.output)
    assert len(errors) == 3, r.output
    assert "p0.png: unexpected RuntimeError: a decoder's bug over two lines" in errors[0]
    assert "p1.png: unexpected ValueError: a shape the network" in errors[1]
    assert "p2.png: unexpected MemoryError" in errors[2]
    assert sorted(p.name for p in out.iterdir()) == ["p3.png"]
    assert "1 image(s) upscaled" in r.output and "3 failed" in r.output


# --------------------------------------------------------------------------- interrupts


def test_ctrl_c_while_the_model_loads_exits_130_with_the_summary(tiny_weights, tmp_path,
                                                                  monkeypatch):
    def loading(self, *a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(Upscaler, "__init__", loading)
    src = images(tmp_path / "in", 2)
    r = CliRunner().invoke(main, ["upscale", str(src), "-o", str(tmp_path / "out"), "-m",
                                  str(tiny_weights), "--json"])
    assert r.exit_code == 130, r.output
    assert "Aborted" not in r.output and "Traceback" not in r.output
    assert "0 image(s) upscaled" in r.stderr and "interrupted (2 not done)" in r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["summary"]["images"] == 0


def benchmark_parts(monkeypatch, score):
    from srgan_cli.bench import run

    monkeypatch.setattr(run, "methods", lambda *a, **kw: ["srresnet", "bicubic"])
    monkeypatch.setattr(run, "load_datasets", lambda *a, **kw: ["Set5", "Set14"])
    monkeypatch.setattr(run, "lpips_model", lambda *a, **kw: None)
    monkeypatch.setattr(run, "score", score)


def test_ctrl_c_in_a_benchmark_exits_130_with_the_summary(monkeypatch, tmp_path):
    def score(loaded, methods, *, on_record, **kw):
        on_record(SimpleNamespace(dataset="Set5", method="srresnet", psnr=30.0, ssim=0.9,
                                  lpips=None, grid=None, images=5))
        raise KeyboardInterrupt

    benchmark_parts(monkeypatch, score)
    r = CliRunner().invoke(main, ["benchmark", "set5", "set14", "--source", "local",
                                  "--data-dir", str(tmp_path)])
    assert r.exit_code == 130, r.output
    assert "Aborted" not in r.output and "Traceback" not in r.output
    assert "Set5 srresnet: PSNR 30.00 dB" in r.output
    assert "interrupted: 1 result(s) (dataset x method) scored" in r.output


def test_ctrl_c_while_a_benchmark_loads_or_times_exits_130(monkeypatch, tmp_path):
    from srgan_cli.bench import run

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    benchmark_parts(monkeypatch, interrupted)
    monkeypatch.setattr(run, "methods", interrupted)
    r = CliRunner().invoke(main, ["benchmark", "set5", "--data-dir", str(tmp_path)])
    assert r.exit_code == 130 and "interrupted: 0 result(s)" in r.output, r.output
    monkeypatch.setattr(run, "speed", interrupted)
    r = CliRunner().invoke(main, ["benchmark", "--speed"])
    assert r.exit_code == 130 and "interrupted" in r.output and "Aborted" not in r.output


def test_after_an_interrupt_the_summary_and_json_count_the_last_fully_written_image(
        tiny_weights, tmp_path, monkeypatch):
    import time

    write, model_pass, calls = imaging.write_image, Upscaler._model_pass, []

    def slow_write(*a, **kw):  # the first image is still being written when Ctrl-C comes
        time.sleep(0.3)
        return write(*a, **kw)

    def ctrl_c_on_the_second(self, *a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return model_pass(self, *a, **kw)

    monkeypatch.setattr(imaging, "write_image", slow_write)
    monkeypatch.setattr(Upscaler, "_model_pass", ctrl_c_on_the_second)
    src, out = images(tmp_path / "in", 3), tmp_path / "out"
    r = CliRunner().invoke(main, ["upscale", str(src), "-o", str(out), "-m", str(tiny_weights),
                                  "--device", "cpu", "--json"])
    assert r.exit_code == 130, r.output
    assert sorted(p.name for p in out.iterdir()) == ["p0.png"]
    records = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert records[0]["status"] == "ok" and records[0]["output"] == str(out / "p0.png")
    assert records[-1]["summary"]["images"] == 1
    assert "1 image(s) upscaled" in r.stderr and "interrupted (2 not done)" in r.stderr


def test_a_later_run_removes_its_own_stale_temporaries_and_no_others(tiny_weights, tmp_path):
    import fcntl

    src, out = images(tmp_path / "in", 2), tmp_path / "out"
    out.mkdir()
    stale = out / ".p0.png.k3x9_a2b.tmp"  # what a killed run left
    stale.write_bytes(b"half an image")
    other = out / ".notes.png.abcd1234.tmp"  # not an output of this command
    other.write_bytes(b"someone else's")
    live = out / ".p1.png.zz99yy88.tmp"  # being written by another process right now
    live.write_bytes(b"in progress")
    fd = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        r = run_cli("upscale", src, "-o", out, "-m", tiny_weights, "--device", "cpu")
        assert r.exit_code == 0, r.output
        assert sorted(p.name for p in out.iterdir()) == [
            ".notes.png.abcd1234.tmp", live.name, "p0.png", "p1.png"]
    finally:
        os.close(fd)


def test_with_json_a_failure_before_any_image_prints_a_json_line(tiny_weights, tmp_path):
    for sub in ("a", "b"):
        images(tmp_path / sub, 1)
    r = CliRunner().invoke(main, ["upscale", str(tmp_path / "a" / "p0.png"),
                                  str(tmp_path / "b" / "p0.png"), "-o", str(tmp_path / "out"),
                                  "-m", str(tiny_weights), "--json"])
    assert r.exit_code == 1
    [line] = r.stdout.splitlines()
    record = json.loads(line)
    assert "would both be written to" in record["error"] or "and" in record["error"]
    assert record["summary"]["images"] == 0 and record["summary"]["failed"] == 0
    [err] = error_lines(r.stderr)
    assert record["error"] in err


def test_overwrite_and_skip_existing_together_are_refused(tiny_weights, tmp_path):
    src = images(tmp_path / "in", 1)
    r = run_cli("upscale", src, "-o", tmp_path / "out", "--overwrite", "--skip-existing",
                "-m", tiny_weights)
    assert r.exit_code == 2 and not (tmp_path / "out").exists()
    [line] = error_lines(r.output)
    assert "--overwrite" in line and "--skip-existing" in line
    up = Upscaler(tiny_weights, device="cpu")
    job = FileJob(src / "p0.png", tmp_path / "o.png")
    with pytest.raises(SrganError, match="contradict"):
        list(upscale_files(up, [job], overwrite=True, skip_existing=True))


def test_what_an_early_ctrl_c_needs_to_report_loads_before_torch():
    """``srgan upscale`` imports the tally first, then torch (the first ~2 s): an
    interruption while torch loads must not need torch to print its summary."""
    import subprocess
    import sys

    code = "import sys, srgan_cli.batch.tally, srgan_cli.cli.upscale; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
