"""`srgan upscale` in everyday use (issue 15): precision of 16-bit inputs, safe re-runs,
name collisions, interrupted runs, borders, --outscale, notices and readable tables."""

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import REPO, photo_like
from PIL import Image

from srgan_cli.cli import main
from srgan_cli.imageio import hibit
from srgan_cli.inference.device import cpu_has_bf16

SHIPPED = REPO / "weights" / "srresnet_x4.safetensors"


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def gradient16(h: int, w: int) -> np.ndarray:
    """A smooth 16-bit RGB image whose neighbouring values differ by a few units."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = (xx * 257 + yy * 61) % 65536
    return np.stack([base, (base + 9000) % 65536, 65535 - base], axis=2).astype(np.uint16)


def test_16_bit_inputs_run_in_fp32_under_precision_auto(tiny_weights, tmp_path):
    src = tmp_path / "deep.png"
    hibit.write_png16(src, gradient16(20, 24))
    r = run_cli("upscale", src, "-o", tmp_path / "auto.png", "-m", tiny_weights,
                "--device", "cpu")
    assert r.exit_code == 0, r.output
    first = r.output.splitlines()[0]
    assert "fp32 for 16-bit input" in first or (not cpu_has_bf16() and "fp32" in first)
    r = run_cli("upscale", src, "-o", tmp_path / "fp32.png", "-m", tiny_weights,
                "--device", "cpu", "--precision", "fp32")
    assert r.exit_code == 0, r.output
    auto, _ = hibit.read_png16(tmp_path / "auto.png")
    fp32, _ = hibit.read_png16(tmp_path / "fp32.png")
    np.testing.assert_array_equal(auto, fp32)


def test_8_bit_inputs_keep_the_auto_precision_on_the_first_line(tiny_weights, tmp_path):
    src = tmp_path / "p.png"
    Image.fromarray(photo_like(12, 12)).save(src)
    r = run_cli("upscale", src, "-m", tiny_weights, "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert "16-bit" not in r.output.splitlines()[0]


def files_in(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_a_rerun_over_a_folder_does_no_new_work(tiny_weights, image_dir):
    r = run_cli("upscale", image_dir, "-m", tiny_weights)
    assert r.exit_code == 0, r.output
    first = files_in(image_dir)
    assert first == ["im0.png", "im0_x4.png", "im1.png", "im1_x4.png", "im2.png", "im2_x4.png"]
    stamps = {f: (image_dir / f).stat().st_mtime_ns for f in first}
    r = run_cli("upscale", image_dir, "-m", tiny_weights)
    assert r.exit_code == 0, r.output
    assert files_in(image_dir) == first  # no *_x4_x4.png
    assert {f: (image_dir / f).stat().st_mtime_ns for f in first} == stamps
    assert "0 image(s) upscaled" in r.output and "3 skipped" in r.output
    assert "not taken as inputs" in r.output


def test_a_rerun_with_a_pattern_or_an_output_folder_inside_the_input_is_harmless(
        tiny_weights, image_dir):
    for _ in range(2):
        r = run_cli("upscale", image_dir / "*.png", "-m", tiny_weights, "--suffix", "-big")
        assert r.exit_code == 0, r.output
    assert len(files_in(image_dir)) == 6
    for f in image_dir.glob("*-big.png"):
        f.unlink()
    for _ in range(2):
        r = run_cli("upscale", image_dir, "-o", image_dir / "big", "-r", "-m", tiny_weights)
        assert r.exit_code == 0, r.output
    assert files_in(image_dir / "big") == ["im0.png", "im1.png", "im2.png"]


def test_files_named_like_outputs_are_inputs_when_their_source_is_absent(tiny_weights, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    Image.fromarray(photo_like(8, 8)).save(d / "old_x4.png")
    r = run_cli("upscale", d, "-m", tiny_weights)
    assert r.exit_code == 0, r.output
    assert files_in(d) == ["old_x4.png", "old_x4_x4.png"]


def test_two_inputs_with_one_output_name_are_refused_before_any_model_work(tiny_weights,
                                                                              tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        Image.fromarray(photo_like(8, 8)).save(tmp_path / sub / "x.png")
    out = tmp_path / "out"
    r = run_cli("upscale", tmp_path / "a" / "x.png", tmp_path / "b" / "x.png", "-o", out,
                "--overwrite", "-m", tiny_weights)
    assert r.exit_code == 1
    line = next(ln for ln in r.output.splitlines() if "error" in ln)
    assert f"{tmp_path / 'a' / 'x.png'} and {tmp_path / 'b' / 'x.png'}" in line
    assert "model:" not in r.output and not out.exists()
    Image.fromarray(photo_like(8, 8)).save(tmp_path / "a" / "x.jpg")
    r = run_cli("upscale", tmp_path / "a", "-o", out, "--format", "png", "-m", tiny_weights)
    assert r.exit_code == 1 and "would both be written to" in r.output and not out.exists()


@pytest.mark.parametrize("flags", [[], ["--overwrite"], ["--skip-existing"]])
def test_writing_over_an_input_is_refused_whatever_the_flags(tiny_weights, tmp_path, flags):
    src = tmp_path / "same.png"
    Image.fromarray(photo_like(8, 8)).save(src)
    before = src.read_bytes()
    r = run_cli("upscale", src, "-o", src, "-m", tiny_weights, *flags)
    assert r.exit_code == 1 and "is an input of this command" in r.output
    assert "--overwrite)" not in r.output and src.read_bytes() == before
    r = run_cli("upscale", tmp_path, "-o", tmp_path, "-m", tiny_weights, *flags)
    assert r.exit_code == 1 and "is an input of this command" in r.output
    assert src.read_bytes() == before


def test_several_inputs_with_an_image_file_name_as_output_is_an_error(tiny_weights, tmp_path):
    for name in ("a.png", "b.png"):
        Image.fromarray(photo_like(8, 8)).save(tmp_path / name)
    r = run_cli("upscale", tmp_path / "a.png", tmp_path / "b.png", "-o", tmp_path / "multi.png",
                "-m", tiny_weights)
    assert r.exit_code == 1 and "need an output folder" in r.output
    assert not (tmp_path / "multi.png").exists()


def test_an_unwritable_output_folder_is_found_before_the_model_runs(tiny_weights, tmp_path):
    src = tmp_path / "a.png"
    Image.fromarray(photo_like(8, 8)).save(src)
    (tmp_path / "file").write_bytes(b"")
    r = run_cli("upscale", src, "-o", tmp_path / "file" / "out" / "a.png", "-m", tiny_weights)
    assert r.exit_code == 1 and "is not a folder" in r.output and "model:" not in r.output
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    try:
        probe = locked / "probe"
        probe.touch()  # root can still write here: only the /proc case below applies
        probe.unlink()
    except PermissionError:
        r = run_cli("upscale", src, "-o", locked / "sub", "-m", tiny_weights)
        assert r.exit_code == 1 and "cannot write there" in r.output
        assert "model:" not in r.output
    r = run_cli("upscale", src, "-o", "/proc/srgan-out/", "-m", tiny_weights)
    assert r.exit_code == 1 and "cannot write there" in r.output and "model:" not in r.output


def test_a_missing_input_says_no_such_file_whatever_its_extension(tiny_weights, tmp_path):
    r = run_cli("upscale", tmp_path / "video.mp4", "-m", tiny_weights)
    assert r.exit_code == 1 and "video.mp4: no such file" in r.output
    assert "output format" not in r.output


def test_ctrl_c_prints_the_summary_leaves_nothing_temporary_and_exits_130(tiny_weights,
                                                                          tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from conftest import REPO

    src = tmp_path / "in"
    src.mkdir()
    for i in range(150):
        Image.fromarray(photo_like(48, 48, seed=i)).save(src / f"p{i:03d}.png")
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "srgan_cli", "upscale", str(src), "-o",
                             str(out), "-m", str(tiny_weights), "--device", "cpu", "--json",
                             "--png-level", "9"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().startswith("{")  # the first image is done
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "image(s) upscaled" in stderr
    assert "Traceback" not in stderr
    assert '"summary"' in stdout
    left = sorted(p.name for p in out.iterdir())
    assert not [n for n in left if n.endswith(".tmp")]
    assert 1 <= len(left) < 150
    for name in left:  # every output there is whole
        with Image.open(out / name) as im:
            im.load()
    # ... and counted, the one written while Ctrl-C came included (issue 23)
    import json

    summary = json.loads(stdout.splitlines()[-1])["summary"]
    assert summary["images"] == len(left), (summary, left)


def test_an_interrupted_write_leaves_no_temporary_file(tiny_weights, tmp_path, monkeypatch):
    """Ctrl-C between creating the temporary file and its clean-up (the race that left
    '.name.png.XXXX.tmp' files): the CLI removes what the write left."""
    import tempfile

    from srgan_cli.imageio import imaging

    def interrupted_write(path, write):
        path.parent.mkdir(parents=True, exist_ok=True)
        tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        raise KeyboardInterrupt

    monkeypatch.setattr(imaging, "atomic_write", interrupted_write)
    for i in range(3):
        Image.fromarray(photo_like(8, 8, seed=i)).save(tmp_path / f"p{i}.png")
    out = tmp_path / "out"
    r = run_cli("upscale", tmp_path / "p*.png", "-o", out, "-m", tiny_weights)
    assert r.exit_code == 130, r.output
    assert "interrupted" in r.output and "image(s) upscaled" in r.output
    assert list(out.iterdir()) == []


# --------------------------------------------------------------------------- borders


@pytest.mark.parametrize("mode", ["symmetric", "reflect", "edge"])
@pytest.mark.parametrize("n,margin", [(1, 5), (2, 7), (3, 12), (5, 2), (9, 40), (40, 40)])
def test_mirror_index_pads_like_numpy_however_small_the_image(n, margin, mode):
    from srgan_cli.inference.tiling import mirror_index

    want = np.pad(np.arange(n), margin, mode=mode)
    np.testing.assert_array_equal(mirror_index(n, margin, mode).numpy(), want)


@pytest.mark.parametrize("mode", ["symmetric", "reflect"])
@pytest.mark.parametrize("h,w,tile", [(29, 37, 0), (29, 37, 8), (2, 3, 0), (1, 1, 0),
                                      (5, 40, 3)])
def test_a_mirrored_border_is_the_network_on_the_mirrored_image(tiny_weights, h, w, tile,
                                                                 mode):
    """Mirror padding, tiled or whole, equals running the plain network on the image
    mirrored by its border pad, then cropping: tiling stays exact."""
    import torch

    from srgan_cli import Upscaler
    from srgan_cli.inference.runner import MIRROR_PAD

    x = torch.from_numpy(photo_like(h, w, seed=3)).permute(2, 0, 1)[None].float() / 255
    up = Upscaler(tiny_weights, device="cpu", precision="fp32", tile=tile, border=mode)
    m = up.border_pad
    assert m == min(MIRROR_PAD, up.model.spec.receptive_radius()) and MIRROR_PAD == 12
    got = up.upscale_tensor(x)
    mirrored = np.pad(x.numpy(), ((0, 0), (0, 0), (m, m), (m, m)), mode=mode)
    plain = Upscaler(tiny_weights, device="cpu", precision="fp32", tile=0, border="zero")
    assert plain.border_pad == 0
    want = plain.upscale_tensor(torch.from_numpy(mirrored))[:, :, 4 * m: 4 * (m + h),
                                                            4 * m: 4 * (m + w)]
    assert got.shape == (1, 3, 4 * h, 4 * w)
    assert (got - want).abs().max().item() <= 1e-5


@pytest.mark.skipif(not SHIPPED.is_file(), reason="weights/srresnet_x4.safetensors not built")
@pytest.mark.parametrize("size", [64, 1])
def test_a_mirrored_border_keeps_a_solid_colour_up_to_the_corners(size):
    """With the network's zero padding the corners of a 64x64 solid image come back up to
    36 levels off and a 1x1 image loses its colour (111 levels); a symmetric border keeps
    both within 3 levels (the SRResNet; the SRGAN adds texture even to a flat colour)."""
    from srgan_cli import Upscaler

    colour = np.array([20, 180, 240])
    im = Image.new("RGB", (size, size), tuple(int(c) for c in colour))
    for border, bound in [("zero", None), ("symmetric", 3)]:
        up = Upscaler("srresnet", device="cpu", precision="fp32", border=border)
        off = np.abs(np.asarray(up.upscale_image(im)).astype(int) - colour).max()
        if bound is None:
            assert off > 20  # the problem this guards against
        else:
            assert off <= bound


def test_upscale_border_from_the_command_line_reaches_the_upscaler(tmp_path):
    """`srgan upscale --border` reaches the Upscaler: a 1x1 image keeps its colour with
    `symmetric` (the default) and loses it with `zero`."""
    if not SHIPPED.is_file():
        pytest.skip("weights/srresnet_x4.safetensors not built")
    colour = np.array([20, 180, 240])
    src = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), tuple(int(c) for c in colour)).save(src)
    offs = {}
    for border in ("zero", "symmetric"):
        out = tmp_path / f"dot_{border}.png"
        r = run_cli("upscale", src, "-o", out, "--border", border, "--device", "cpu",
                    "--precision", "fp32", "--model", "srresnet", "-q")
        assert r.exit_code == 0, r.output
        offs[border] = np.abs(np.asarray(Image.open(out)).astype(int) - colour).max()
    assert offs["zero"] > 20 and offs["symmetric"] <= 3


SRGAN_SHIPPED = REPO / "weights" / "srgan_x4.safetensors"
SRGAN_RESIZE = REPO / "weights" / "srgan_resize_x4.safetensors"
LATTICE = pytest.mark.xfail(strict=False, reason="issue 21: the lattice of the shipped srgan")


@pytest.mark.parametrize("name,weights", [
    pytest.param("srresnet", SHIPPED, id="srresnet"),
    pytest.param("srgan", SRGAN_SHIPPED, marks=LATTICE, id="srgan"),
    pytest.param("srgan-resize", SRGAN_RESIZE, id="srgan-resize"),
    pytest.param("srgan-delattice", REPO / "weights" / "srgan_delattice_x4.safetensors",
                 id="srgan-delattice"),
    pytest.param("srgan-real", REPO / "weights" / "srgan_real_x4.safetensors",
                 id="srgan-real")])
def test_default_options_keep_a_solid_colour_within_3_levels_everywhere(tmp_path, name,
                                                                       weights):
    """`srgan upscale in.png -o out.png -m NAME` with nothing else: a 64x64 solid colour
    comes back within 3 levels everywhere, the corners included (issue 23: with the
    zero border, the old default, the corners were 37 (srresnet) / 57 (srgan) levels off)."""
    if not weights.is_file():
        pytest.skip(f"{weights.name} not shipped")
    colour = np.array([20, 180, 240])
    src, out = tmp_path / "flat.png", tmp_path / "flat_x4.png"
    Image.new("RGB", (64, 64), tuple(int(c) for c in colour)).save(src)
    r = run_cli("upscale", src, "-o", out, "-m", name, "-q")
    assert r.exit_code == 0, r.output
    off = np.abs(np.asarray(Image.open(out)).astype(int) - colour).max(axis=2)
    assert off.shape == (256, 256)
    assert off.max() <= 3, f"largest error {off.max()} levels"


def test_srgan_resize_gives_a_solid_colour_back_flat_up_to_the_corners(tmp_path):
    """Issue 21's lattice-free model: a 64x64 solid colour comes back flat (every channel
    within 1 level of itself over the whole 256x256 output, corners included), where the
    shipped srgan's lattice spreads it over 13 levels; and its colour stays within 3 levels
    (the first release shifted a saturated blue by 7, as srgan does; the second was trained
    with the solid-colour loss, weights/README.md)."""
    if not SRGAN_RESIZE.is_file():
        pytest.skip("srgan_resize_x4.safetensors not shipped")
    for colour in ([20, 180, 240], [128, 128, 128], [250, 5, 90]):
        src, out = tmp_path / "flat.png", tmp_path / "flat_x4.png"
        Image.new("RGB", (64, 64), tuple(colour)).save(src)
        r = run_cli("upscale", src, "-o", out, "-m", "srgan-resize", "-q", "--overwrite")
        assert r.exit_code == 0, r.output
        img = np.asarray(Image.open(out)).astype(int)
        spread = (img.max(axis=(0, 1)) - img.min(axis=(0, 1))).max()
        assert spread <= 1, f"{colour}: spread {spread} levels"
        assert np.abs(img - np.array(colour)).max() <= 3, f"{colour}: shifted"


def test_the_default_model_with_default_options_keeps_a_solid_colour_flat(tmp_path):
    """Issue 21: `srgan upscale flat.png -o out.png`, nothing else: the default model (one
    that shows no lattice) gives a 64x64 solid colour back within 3 levels everywhere,
    the corners included."""
    from srgan_cli.distribution.registry import default_model, lookup

    if not (REPO / "weights" / lookup(default_model()).filename).is_file():
        pytest.skip("the default model's weights are not shipped")
    for colour in ([20, 180, 240], [128, 128, 128], [250, 5, 90]):
        src, out = tmp_path / "flat.png", tmp_path / "flat_x4.png"
        Image.new("RGB", (64, 64), tuple(colour)).save(src)
        r = run_cli("upscale", src, "-o", out, "-q", "--overwrite")
        assert r.exit_code == 0, r.output
        off = np.abs(np.asarray(Image.open(out)).astype(int) - np.array(colour)).max()
        assert off <= 3, f"{colour}: largest error {off} levels"


def test_the_default_border_leaves_the_srgan_corners_no_worse_than_its_interior(tmp_path):
    """What holds for the shipped srgan today, lattice and all: with the default border its
    corners on a flat colour are no further off than its interior (zero border: 57 against
    14 levels)."""
    from srgan_cli import Upscaler

    if not SRGAN_SHIPPED.is_file():
        pytest.skip("srgan_x4.safetensors not shipped")
    colour = np.array([20, 180, 240])
    im = Image.new("RGB", (64, 64), tuple(int(c) for c in colour))
    off = np.abs(np.asarray(Upscaler("srgan", device="cpu").upscale_image(im)).astype(int)
                 - colour).max(axis=2)
    corners = max(off[:16, :16].max(), off[:16, -16:].max(), off[-16:, :16].max(),
                  off[-16:, -16:].max())
    assert corners <= off[32:-32, 32:-32].max() + 1


def test_the_default_border_is_symmetric_for_the_api_upscale_and_benchmark(tiny_weights):
    import inspect

    from srgan_cli import Upscaler
    from srgan_cli.cli.benchmark import benchmark
    from srgan_cli.cli.upscale import upscale

    assert Upscaler(tiny_weights, device="cpu").border == "symmetric"
    assert inspect.signature(Upscaler).parameters["border"].default == "symmetric"
    for command in (upscale, benchmark):
        (opt,) = [p for p in command.params if p.name == "border"]
        assert opt.default == "symmetric" and "zero" in opt.type.choices


def test_an_unknown_border_is_a_clear_error(tiny_weights):
    from srgan_cli import Upscaler
    from srgan_cli.errors import SrganError

    with pytest.raises(SrganError, match="unknown border 'wrap'"):
        Upscaler(tiny_weights, device="cpu", border="wrap")


# --------------------------------------------------------------------------- --outscale


@pytest.mark.parametrize("s,size", [(1.5, (21, 15)), (2, (28, 20)), (3, (42, 30)),
                                    (8, (112, 80)), (4, (56, 40))])
def test_outscale_gives_s_times_the_input_size(tiny_weights, tmp_path, s, size):
    src = tmp_path / "in.png"
    Image.fromarray(photo_like(10, 14)).save(src)
    r = run_cli("upscale", src, "--outscale", s, "-m", tiny_weights)
    assert r.exit_code == 0, r.output
    with Image.open(tmp_path / f"in_x{s:g}.png") as im:
        assert im.size == size and im.mode == "RGB"


def test_outscale_resizes_the_model_output_with_an_antialiased_filter(tiny_weights):
    import torch
    import torch.nn.functional as F

    from srgan_cli import Upscaler

    im = Image.fromarray(photo_like(12, 16))
    x4 = np.asarray(Upscaler(tiny_weights, device="cpu").upscale_image(im)).astype(np.float32)
    half = np.asarray(Upscaler(tiny_weights, device="cpu", outscale=2).upscale_image(im))
    t = torch.from_numpy(x4).permute(2, 0, 1)[None]
    want = F.interpolate(t, size=(24, 32), mode="bicubic", antialias=True)[0].permute(1, 2, 0)
    assert half.shape == (24, 32, 3)
    assert np.abs(half - want.clamp(0, 255).numpy()).max() <= 0.5 + 1e-3
    every_other = x4[::2, ::2]  # plain subsampling would alias: not what came out
    assert np.abs(half - every_other).mean() > 1


def test_outscale_keeps_16_bits_and_alpha(tiny_weights, tmp_path):
    src = tmp_path / "deep.png"
    arr = np.dstack([gradient16(10, 12), np.full((10, 12), 30000, np.uint16)])
    hibit.write_png16(src, arr)
    r = run_cli("upscale", src, "--outscale", "1.5", "-m", tiny_weights)
    assert r.exit_code == 0, r.output
    out, _ = hibit.read_png16(tmp_path / "deep_x1.5.png")
    assert out.shape == (15, 18, 4) and out.dtype == np.uint16
    assert np.abs(out[..., 3].astype(int) - 30000).max() <= 2


@pytest.mark.parametrize("bad", ["0", "-2", "nan"])
def test_outscale_must_be_a_positive_number(tiny_weights, tmp_path, bad):
    src = tmp_path / "in.png"
    Image.fromarray(photo_like(8, 8)).save(src)
    r = run_cli("upscale", src, "--outscale", bad, "-m", tiny_weights)
    assert r.exit_code != 0 and "Traceback" not in r.output


# --------------------------------------------------------------------------- progress


def terminal_output(monkeypatch, *args):
    """Run the CLI with its stderr console on a fake 150-column terminal; the text shown."""
    import io
    import re

    from rich.console import Console

    import srgan_cli.cli.upscale as cli

    buf = io.StringIO()
    monkeypatch.setattr(cli, "err", Console(file=buf, force_terminal=True, width=150,
                                            highlight=False))
    r = run_cli(*args)
    return r, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buf.getvalue())


def test_a_whole_image_pass_shows_a_spinner_with_elapsed_time(tiny_weights, tmp_path,
                                                              monkeypatch):
    src = tmp_path / "one.png"
    Image.fromarray(photo_like(20, 20)).save(src)
    r, shown = terminal_output(monkeypatch, "upscale", src, "-m", tiny_weights, "--tile", "0")
    assert r.exit_code == 0, r.output
    assert any("upscaling" in ln and "one.png" in ln and "0:00:0" in ln
               for ln in shown.splitlines())


def test_the_progress_column_shows_an_eta_and_images_per_second():
    from rich.progress import Progress

    import srgan_cli.cli.upscale as cli

    now = [0.0]
    col = cli._eta_column()
    with Progress(col, get_time=lambda: now[0], disable=True) as bar:
        images = bar.add_task("images", total=10, unit="images")
        tiles = bar.add_task("tiles", total=None, unit=None)
        for _ in range(3):
            now[0] += 2.0
            bar.advance(images)
        text = str(col.render(bar.tasks[images]))
        assert "ETA 0:00:14" in text and "0.50 images/s" in text
        assert str(col.render(bar.tasks[tiles])) == ""  # nothing to count: no ETA


def test_a_folder_run_reports_images_per_second(tiny_weights, tmp_path, monkeypatch):
    d = tmp_path / "d"
    d.mkdir()
    for i in range(3):
        Image.fromarray(photo_like(24, 24, seed=i)).save(d / f"p{i}.png")
    r, shown = terminal_output(monkeypatch, "upscale", d, "-o", tmp_path / "o", "--tile", "8",
                               "-m", tiny_weights)
    assert r.exit_code == 0, r.output
    assert any(ln.lstrip().startswith("images") and "3/3" in ln for ln in shown.splitlines())
    assert "images/s" in shown.splitlines()[-1]  # the summary


# --------------------------------------------------------------------------- notices


@pytest.mark.parametrize("ext", [".gif", ".webp"])
def test_animated_inputs_say_only_the_first_frame_is_upscaled(tiny_weights, tmp_path, ext):
    frames = [Image.fromarray(photo_like(10, 12, seed=i)) for i in range(3)]
    src = tmp_path / f"anim{ext}"
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=100, loop=0)
    r = run_cli("upscale", src, "-m", tiny_weights)
    assert r.exit_code == 0, r.output
    assert "3 frames" in r.output and "only the first frame is upscaled" in r.output
    out = tmp_path / ("anim_x4.png" if ext == ".gif" else "anim_x4.webp")
    with Image.open(out) as im:
        assert im.size == (48, 40)


def test_a_gif_in_a_folder_defaults_to_a_png_output(tiny_weights, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    Image.fromarray(photo_like(10, 12)).convert("P").save(d / "still.gif")
    r = run_cli("upscale", d, "-o", tmp_path / "o", "-m", tiny_weights)
    assert r.exit_code == 0, r.output
    assert "frame" not in r.output
    with Image.open(tmp_path / "o" / "still.png") as im:
        assert im.format == "PNG" and im.size == (48, 40)


def test_fp16_on_the_cpu_says_it_is_far_slower(tiny_weights, tmp_path):
    src = tmp_path / "a.png"
    Image.fromarray(photo_like(8, 8)).save(src)
    r = run_cli("upscale", src, "-m", tiny_weights, "--device", "cpu", "--precision", "fp16")
    assert r.exit_code == 0, r.output
    assert sum("far slower" in ln for ln in r.output.splitlines()) == 1
    r = run_cli("upscale", src, "-m", tiny_weights, "--device", "cpu", "--precision", "fp32",
                "--overwrite")
    assert "far slower" not in r.output


def test_a_format_that_contradicts_the_output_extension_is_noted(tiny_weights, tmp_path):
    src = tmp_path / "a.png"
    Image.fromarray(photo_like(8, 8)).save(src)
    r = run_cli("upscale", src, "--format", "png", "-o", tmp_path / "x.jpg", "-m", tiny_weights)
    assert r.exit_code == 0, r.output
    assert "x.jpg is written as PNG" in " ".join(r.output.split())
    with Image.open(tmp_path / "x.jpg") as im:
        assert im.format == "PNG"
    r = run_cli("upscale", src, "--format", "jpg", "-o", tmp_path / "y.jpeg", "-m", tiny_weights)
    assert r.exit_code == 0 and "is written as" not in r.output


@pytest.mark.parametrize("mode,ext,dropped", [("RGBA", ".jpg", True), ("LA", ".jpg", True),
                                              ("LA", ".bmp", True), ("RGBA", ".png", False),
                                              ("RGB", ".jpg", False)])
def test_transparency_dropped_by_the_output_format_is_noted(tiny_weights, tmp_path, mode, ext,
                                                            dropped):
    src = tmp_path / "t.png"
    Image.fromarray(photo_like(8, 8)).convert(mode).save(src)
    r = run_cli("upscale", src, "-o", tmp_path / f"o{ext}", "-m", tiny_weights)
    assert r.exit_code == 0, r.output
    assert ("has no alpha channel" in " ".join(r.output.split())) == dropped


def test_a_folder_with_only_sub_folders_suggests_recursion(tiny_weights, tmp_path):
    (tmp_path / "top" / "sub").mkdir(parents=True)
    Image.fromarray(photo_like(8, 8)).save(tmp_path / "top" / "sub" / "a.png")
    r = run_cli("upscale", tmp_path / "top", "-m", tiny_weights)
    assert r.exit_code == 1 and "no input images found" in r.output and "-r" in r.output
    r = run_cli("upscale", tmp_path / "top", "-r", "-m", tiny_weights)
    assert r.exit_code == 0 and (tmp_path / "top" / "sub" / "a_x4.png").is_file()


# --------------------------------------------------------------------------- tables


def assert_aligned_markdown(text: str, columns: int) -> list[str]:
    rows = [ln for ln in text.splitlines() if ln.startswith("|")]
    assert len(rows) >= 3
    assert len({len(r) for r in rows}) == 1  # aligned, nothing wrapped
    assert all(r.count("|") == columns + 1 for r in rows)
    return rows


def test_the_speed_table_is_aligned_markdown_when_stdout_is_not_a_terminal(tiny_weights):
    r = run_cli("benchmark", "--speed", "-m", tiny_weights, "--device", "cpu", "--size",
                "16x16", "--runs", "1", "--no-gemm", "--baseline", "eager-fp32")
    assert r.exit_code == 0, r.output
    rows = assert_aligned_markdown(r.output, 9)
    assert "| path" in rows[0] and "baseline eager-fp32" in rows[3]


def test_the_quality_table_is_aligned_markdown_when_stdout_is_not_a_terminal(tiny_weights,
                                                                             tmp_path):
    root = tmp_path / "bench" / "Tiny"
    (root / "Tiny_HR").mkdir(parents=True)
    (root / "Tiny_LR_x4").mkdir()
    hr = photo_like(40, 40)
    Image.fromarray(hr).save(root / "Tiny_HR" / "a.png")
    Image.fromarray(hr).resize((10, 10), Image.BICUBIC).save(root / "Tiny_LR_x4" / "a.png")
    r = run_cli("benchmark", "tiny", "--data-dir", tmp_path / "bench", "-m", "bicubic", "-m",
                tiny_weights, "--device", "cpu", "--no-lpips")
    assert r.exit_code == 0, r.output
    rows = assert_aligned_markdown(r.output, 4)  # method, PSNR, SSIM, grid dB
    assert rows[2].startswith("| bicubic")


def test_the_models_list_is_plain_aligned_text(tmp_path):
    r = run_cli("models", "list")
    assert r.exit_code == 0, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    head = lines[0]
    starts = [head.index(word) for word in ("scale", "params", "source", "Set5 PSNR")]
    for ln in lines[1:]:
        assert all(ln[i - 2 : i] == "  " and ln[i] != " " for i in starts), ln


# --------------------------------------------------------------------------- speed yardstick


def fake_gemm(monkeypatch, rates: dict):
    """gemm_rate answering ``rates`` (GFLOP/s by dtype) and recording the dtypes asked for."""
    import srgan_cli.bench.speed as speed

    asked = []

    def rate(device, dtype=None, n=2048, repeats=5):
        asked.append(dtype)
        return rates[dtype]

    monkeypatch.setattr(speed, "gemm_rate", rate)
    return asked


def speed_run(tiny_weights, tmp_path, *args):
    out = tmp_path / "speed.json"
    r = run_cli("benchmark", "--speed", "-m", tiny_weights, "--device", "cpu", "--size", "8x8",
                "--runs", "1", "--json", out, *args)
    assert r.exit_code == 0, r.output
    import json

    return r.output, json.loads(out.read_text())


def test_an_fp32_path_is_compared_with_the_fp32_matmul_rate(tiny_weights, tmp_path,
                                                              monkeypatch):
    import torch

    asked = fake_gemm(monkeypatch, {torch.float32: 50.0, torch.bfloat16: 0.0})
    text, data = speed_run(tiny_weights, tmp_path, "--precision", "fp32")
    assert asked == [torch.float32]  # bf16, which nothing ran in, is not measured
    assert "fp32 50 GFLOP/s" in text and "of the fp32 GEMM rate" in text
    assert "bf16" not in text and data["gemm_gflops"] == {"fp32": 50.0}
    ours = data["results"][0]
    assert ours["gemm_fraction"] == pytest.approx(ours["gflops"] / 50.0)


def test_each_path_is_compared_with_the_rate_of_its_own_precision(tiny_weights, tmp_path,
                                                                  monkeypatch):
    import torch

    asked = fake_gemm(monkeypatch, {torch.float32: 40.0, torch.bfloat16: 80.0})
    text, data = speed_run(tiny_weights, tmp_path, "--precision", "bf16",
                           "--baseline", "eager-fp32")
    assert sorted(map(str, asked)) == ["torch.bfloat16", "torch.float32"]
    ours, base = data["results"]
    assert ours["gemm_fraction"] == pytest.approx(ours["gflops"] / 80.0)
    assert base["gemm_fraction"] == pytest.approx(base["gflops"] / 40.0)
    assert "of the bf16 GEMM rate" in text and "of the fp32 GEMM rate" in text


@pytest.mark.parametrize("rate", [0.0, 1e-9])
def test_a_matmul_rate_of_about_zero_gives_no_ratio(tiny_weights, tmp_path, monkeypatch, rate):
    import torch

    fake_gemm(monkeypatch, {torch.float32: rate})
    text, data = speed_run(tiny_weights, tmp_path, "--precision", "fp32")
    line = next(ln for ln in text.splitlines() if ln.startswith("GEMM"))
    assert line.endswith("n/a") and "%" not in line
    assert data["results"][0]["gemm_fraction"] is None


def test_an_absurd_fraction_of_the_matmul_rate_is_not_printed():
    from srgan_cli.bench.speed import MAX_GEMM_FRACTION, gemm_fraction

    assert gemm_fraction(90.0, 100.0) == pytest.approx(0.9)
    assert gemm_fraction(100.0 * MAX_GEMM_FRACTION + 1, 100.0) is None  # e.g. 29877%
    assert gemm_fraction(10.0, 0.4) is None and gemm_fraction(10.0, None) is None
    assert gemm_fraction(10.0, float("nan")) is None


# --------------------------------------------------------------------------- docs and help


@pytest.mark.parametrize("command", ["upscale", "benchmark"])
def test_the_model_option_help_names_hf_urls(command):
    r = run_cli(command, "--help")
    assert r.exit_code == 0
    model_help = r.output[r.output.index("-m, --model"):].split("\n  -", 1)[0]
    assert "hf://" in model_help


def test_the_help_does_not_call_training_the_mse_stage():
    for args in (["--help"], ["train", "--help"]):
        r = run_cli(*args)
        assert r.exit_code == 0 and "MSE stage" not in r.output.replace("\n", " ")


def test_the_readme_does_not_call_a_registered_score_unmeasured():
    import json

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    registry = json.loads((REPO / "weights" / "models.json").read_text(encoding="utf-8"))
    for entry in registry["models"].values():
        for name, value in (entry.get("psnr") or {}).items():
            if value is not None:
                assert f"{name} has not been measured" not in readme
