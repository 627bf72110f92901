"""`srgan upscale` on real-world inputs: modes, bit depth, metadata, formats, bad files."""

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import photo_like
from PIL import Image, ImageCms

from srgan_cli import Upscaler
from srgan_cli.cli import main
from srgan_cli.errors import ImageError
from srgan_cli.imageio import hibit, imaging


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def reference(up: Upscaler, rgb01: np.ndarray) -> np.ndarray:
    """Whole-image float result in [0,1], (H, W, 3)."""
    x = torch.from_numpy(rgb01.astype(np.float32)).permute(2, 0, 1)[None]
    return up.upscale_tensor(x)[0].permute(1, 2, 0).numpy()


@pytest.fixture
def up(tiny_weights):
    return Upscaler(tiny_weights, device="cpu", tile=0)


# --------------------------------------------------------------------------- modes


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA", "P", "CMYK", "1"])
def test_every_mode_comes_back_in_a_sensible_mode(up, tmp_path, mode):
    im = Image.fromarray(photo_like(12, 10)).convert(mode)
    src = tmp_path / ("in.tif" if mode == "CMYK" else "in.png")
    im.save(src)
    out = tmp_path / "out.png"
    up.upscale_file(src, out)
    expected = {"RGB": "RGB", "L": "L", "RGBA": "RGBA", "LA": "LA", "P": "RGB", "CMYK": "RGB",
                "1": "L"}[mode]
    with Image.open(out) as o:
        assert o.mode == expected and o.size == (40, 48)


@pytest.mark.parametrize("mode,expected", [("PA", "RGBA"), ("RGBa", "RGBA"), ("La", "LA"),
                                           ("YCbCr", "RGB"), ("I;16", "L")])
def test_in_memory_modes(up, mode, expected):
    im = Image.fromarray(photo_like(6, 7)).convert("P" if mode == "PA" else "RGBA")
    if mode == "I;16":
        im = Image.fromarray((photo_like(6, 7)[..., 0].astype(np.uint16) * 257))
    elif mode in ("La",):
        im = im.convert("LA").convert("La")
    else:
        im = im.convert(mode)
    d = imaging.decode(im)
    assert d.mode == expected and d.rgb.shape == (6, 7, 3)
    assert d.bits == (16 if mode == "I;16" else 8)
    assert up.upscale_image(im).size == (28, 24)


def test_rgb_output_equals_the_model_on_the_decoded_pixels(up, tmp_path):
    arr = photo_like(11, 13)
    Image.fromarray(arr).save(tmp_path / "a.png")
    up.upscale_file(tmp_path / "a.png", tmp_path / "b.png")
    got = np.asarray(Image.open(tmp_path / "b.png"), np.float64)
    want = reference(up, arr / 255.0) * 255
    assert np.abs(got - want).max() <= 0.5 + 1e-3  # only 8-bit rounding


def test_grayscale_goes_through_the_model_and_stays_gray(up, tmp_path):
    g = photo_like(11, 13)[..., 0]
    Image.fromarray(g, "L").save(tmp_path / "g.png")
    up.upscale_file(tmp_path / "g.png", tmp_path / "o.png")
    got = np.asarray(Image.open(tmp_path / "o.png"), np.float64)
    want = reference(up, np.repeat(g[..., None] / 255.0, 3, 2)).mean(2) * 255
    assert got.ndim == 2 and np.abs(got - want).max() <= 0.5 + 1e-3


@pytest.mark.parametrize("alpha_mode", ["bicubic", "model"])
def test_alpha_is_upscaled_and_reattached(tiny_weights, tmp_path, alpha_mode):
    rgb = photo_like(16, 16)
    a = np.zeros((16, 16), np.uint8)
    a[:, 8:] = 255
    Image.fromarray(np.dstack([rgb, a]), "RGBA").save(tmp_path / "t.png")
    up = Upscaler(tiny_weights, device="cpu", alpha=alpha_mode)
    up.upscale_file(tmp_path / "t.png", tmp_path / "o.png")
    o = np.asarray(Image.open(tmp_path / "o.png"))
    assert o.shape == (64, 64, 4)
    colour_left = o[:, :20, :3].astype(float).mean()
    assert colour_left > 20  # colour under transparent pixels is not blackened
    if alpha_mode == "bicubic":
        assert o[:, :28, 3].max() <= 5 and o[:, 36:, 3].min() >= 250
    else:  # the alpha plane went through the model as a gray image
        want = reference(up, np.repeat(a[..., None] / 255.0, 3, 2)).mean(2) * 255
        assert np.abs(o[..., 3] - want).max() <= 0.5 + 1e-3


# --------------------------------------------------------------------------- 16-bit


@pytest.mark.parametrize("channels,suffix", [(1, ".png"), (3, ".png"), (4, ".png"),
                                             (3, ".tif"), (1, ".tif")])
def test_16bit_inputs_keep_16_bits(up, tmp_path, channels, suffix):
    rng = np.random.default_rng(0)
    base = photo_like(9, 11).astype(np.uint16) * 257 + rng.integers(0, 200, (9, 11, 3)).astype(np.uint16)
    arr = base[..., 0] if channels == 1 else base
    if channels == 4:
        arr = np.dstack([base, np.full((9, 11), 40000, np.uint16)])
    src = tmp_path / f"in{suffix}"
    (hibit.write_png16 if suffix == ".png" else hibit.write_tiff16)(src, arr)
    out = tmp_path / f"out{suffix}"
    up.upscale_file(src, out)
    got, _ = (hibit.read_png16 if suffix == ".png" else hibit.read_tiff16)(out)
    assert got.dtype == np.uint16 and got.shape[:2] == (36, 44)
    rgb01 = (np.repeat(arr[..., None], 3, 2) if channels == 1 else arr[..., :3]) / 65535.0
    # precision auto runs 16-bit images in fp32, whatever it picks for 8-bit ones
    want = reference(Upscaler(up.weights_path, device="cpu", tile=0, precision="fp32"), rgb01)
    want = want.mean(2) if channels == 1 else want
    colour = got if channels == 1 else got[..., :3]
    assert np.abs(colour / 65535.0 - want).max() <= 0.5 / 65535 + 1e-6  # no 8-bit truncation
    assert len(np.unique(colour % 257)) > 10  # values between 8-bit steps exist
    if channels == 4:
        assert np.abs(got[..., 3].astype(int) - 40000).max() <= 1


def test_16bit_written_as_jpeg_is_8bit(up, tmp_path):
    hibit.write_png16(tmp_path / "a.png", (photo_like(8, 8).astype(np.uint16) * 257))
    up.upscale_file(tmp_path / "a.png", tmp_path / "a.jpg")
    with Image.open(tmp_path / "a.jpg") as o:
        assert o.mode == "RGB" and o.size == (32, 32)


# --------------------------------------------------------------------------- metadata


def _exif(orientation: int) -> bytes:
    e = Image.Exif()
    e[0x0112] = orientation
    e[0x010F] = "TestCam"  # Make
    return e.tobytes()


def test_exif_orientation_applied_and_metadata_carried(up, tmp_path):
    arr = photo_like(10, 16)  # landscape pixels, orientation 6 = rotate 90 CW to display
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(arr).save(tmp_path / "r.jpg", exif=_exif(6), icc_profile=icc, quality=98)
    for fmt in ("jpg", "png", "webp", "tif"):
        out = tmp_path / f"o.{fmt}"
        up.upscale_file(tmp_path / "r.jpg", out)
        with Image.open(out) as o:
            assert o.size == (40, 64)  # portrait: rotated before upscaling
            assert o.info.get("icc_profile") == icc, fmt
            ex = o.getexif()
            assert ex.get(0x0112, 1) == 1 and ex.get(0x010F) == "TestCam", fmt
    up.upscale_file(tmp_path / "r.jpg", tmp_path / "s.png", strip_metadata=True)
    with Image.open(tmp_path / "s.png") as o:
        assert "icc_profile" not in o.info and not len(o.getexif())


def test_cmyk_with_profile_is_converted_through_it(up, tmp_path):
    im = Image.fromarray(photo_like(8, 8)).convert("CMYK")
    im.save(tmp_path / "c.jpg")
    d = imaging.read_image(tmp_path / "c.jpg")
    assert d.mode == "RGB" and "icc_profile" not in d.info


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize("fmt,pil", [("png", "PNG"), ("jpg", "JPEG"), ("webp", "WEBP"),
                                     ("tiff", "TIFF"), ("bmp", "BMP")])
def test_output_format_by_option(tiny_weights, tmp_path, fmt, pil):
    Image.fromarray(photo_like(8, 8)).save(tmp_path / "a.png")
    r = run_cli("upscale", tmp_path / "a.png", "-o", tmp_path / "out", "--format", fmt,
                "--model", tiny_weights, "--quality", "80")
    assert r.exit_code == 0, r.output
    (f,) = list((tmp_path / "out").iterdir())
    with Image.open(f) as o:
        assert o.format == pil and o.size == (32, 32)


# --------------------------------------------------------------------------- bad input


def test_bad_inputs_in_one_batch(tiny_weights, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        Image.fromarray(photo_like(8 + i, 9)).save(src / f"good{i}.png")
    (src / "zero.png").write_bytes(b"")
    (src / "text.jpg").write_text("hello, not an image")
    data = io.BytesIO()
    Image.fromarray(photo_like(30, 30)).save(data, "PNG")
    (src / "trunc.png").write_bytes(data.getvalue()[:200])
    Image.new("L", (200, 200)).save(src / "bomb.png")  # over --max-pixels 10000
    Image.fromarray(np.zeros((4, 4), np.float32), "F").save(src / "float.tif")
    out = tmp_path / "out"
    out.mkdir()
    (out / "blocked.png").mkdir()  # an output that cannot be written
    Image.fromarray(photo_like(8, 8)).save(src / "blocked.png")
    r = run_cli("upscale", src, "-o", out, "--model", tiny_weights, "--max-pixels", "10000",
                "--overwrite")
    assert r.exit_code == 1
    text = " ".join(r.output.split())
    for name, reason in [("zero.png", "empty file"), ("text.jpg", "not a recognised image"),
                         ("trunc.png", "truncated"), ("bomb.png", "max-pixels"),
                         ("float.tif", "mode"), ("blocked.png", "cannot write")]:
        assert f"{name}: " in text and reason in text, (name, text)
    assert "Traceback" not in r.output
    for i in range(2):
        with Image.open(out / f"good{i}.png") as o:
            assert o.size == (36, 32 + 4 * i)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["blocked.png", "good0.png", "good1.png"]  # nothing stray, no temp files


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    def explode(self, fp, *a, **k):
        Path(fp).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", explode)
    with pytest.raises(KeyboardInterrupt):
        imaging.write_image(tmp_path / "x.png", np.zeros((4, 4, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(ImageError, match="nope.png: no such file"):
        imaging.read_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="is a directory"):
        imaging.read_image(tmp_path)


def _zlib_level_class(png) -> int:
    """FLEVEL of the first IDAT's zlib header: 0 for levels 0-1, 1 for 2-5, 2 for 6, 3 above."""
    import struct

    data = png.read_bytes()[8:]
    while data:
        n, kind = struct.unpack(">I4s", data[:8])
        if kind == b"IDAT":
            return data[9] >> 6
        data = data[12 + n:]
    raise AssertionError("no IDAT")


def test_png_outputs_are_written_at_the_measured_default_level_4(tmp_path):
    """Level 4 by default (as small as 6 on photos, 2.6x faster: docs/performance.md),
    from the library and the command line; --png-level still chooses."""
    planes = photo_like(64, 64)
    assert imaging.DEFAULT_PNG_LEVEL == 4
    imaging.write_image(tmp_path / "lib.png", planes)
    assert _zlib_level_class(tmp_path / "lib.png") == 1  # levels 2-5
    src = tmp_path / "in.png"
    Image.fromarray(photo_like(8, 8)).save(src)
    for extra, want in (((), 1), (("--png-level", "6"), 2), (("--png-level", "1"), 0)):
        out = tmp_path / f"out{len(extra)}{want}.png"
        r = CliRunner().invoke(main, ["upscale", str(src), "-o", str(out), "-m", "srresnet",
                                      "--device", "cpu", "-q", *extra])
        assert r.exit_code == 0, r.output
        assert _zlib_level_class(out) == want
