import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import REPO, SHARED, needs_shared, photo_like
from PIL import Image

from srgan_cli import Upscaler
from srgan_cli.bench.metrics import psnr
from srgan_cli.cli import main

SHIPPED = REPO / "weights" / "srresnet_x4.safetensors"
SHIPPED_GAN = REPO / "weights" / "srgan_x4.safetensors"


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_python_api_preserves_modes(tiny_weights):
    up = Upscaler(tiny_weights, device="cpu")
    rgb = Image.fromarray(photo_like(10, 14))
    assert up.upscale_image(rgb).size == (56, 40)
    gray = rgb.convert("L")
    out = up.upscale_image(gray)
    assert out.mode == "L" and out.size == (56, 40)
    rgba = rgb.copy()
    alpha = np.zeros((10, 14), np.uint8)
    alpha[:, 7:] = 255
    rgba.putalpha(Image.fromarray(alpha))
    out = up.upscale_image(rgba)
    assert out.mode == "RGBA"
    a = np.asarray(out.getchannel("A"))
    assert a[:, :20].max() < 10 and a[:, 36:].min() > 245  # transparency kept, not blackened


def test_cli_single_file_exact_4x(tiny_weights, tmp_path):
    src = tmp_path / "in.jpg"
    Image.fromarray(photo_like(23, 31)).save(src, quality=95)
    out = tmp_path / "out" / "big.png"
    r = run_cli("upscale", src, "-o", out, "--model", tiny_weights, "--device", "cpu")
    assert r.exit_code == 0, r.output
    with Image.open(out) as im:
        assert im.size == (31 * 4, 23 * 4) and im.format == "PNG" and im.mode == "RGB"
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600


def test_cli_default_name_and_overwrite_refusal(tiny_weights, tmp_path):
    src = tmp_path / "photo.png"
    Image.fromarray(photo_like(12, 12)).save(src)
    r = run_cli("upscale", src, "--model", tiny_weights)
    assert r.exit_code == 0, r.output
    out = tmp_path / "photo_x4.png"
    assert out.is_file()
    before = out.read_bytes()
    out.write_bytes(b"user data")
    r = run_cli("upscale", src, "--model", tiny_weights)
    assert r.exit_code == 1 and "already exists" in r.output
    assert out.read_bytes() == b"user data"
    r = run_cli("upscale", src, "--model", tiny_weights, "--overwrite")
    assert r.exit_code == 0 and out.read_bytes() == before


def test_cli_directory_batch_continues_past_bad_files(tiny_weights, image_dir, tmp_path):
    (image_dir / "sub").mkdir()
    Image.fromarray(photo_like(9, 9)).save(image_dir / "sub" / "deep.png")
    (image_dir / "empty.png").write_bytes(b"")
    (image_dir / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    good = Image.open(image_dir / "im1.png")
    good.save(image_dir / "cut.png")
    data = (image_dir / "cut.png").read_bytes()
    (image_dir / "cut.png").write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    r = run_cli("upscale", image_dir, "-o", out, "--model", tiny_weights, "--recursive")
    assert r.exit_code == 1
    for name in ("empty.png", "broken.jpg", "cut.png"):
        assert f"{name}:" in r.output.replace("\n", " ")
    for i in range(3):
        with Image.open(out / f"im{i}.png") as im:
            with Image.open(image_dir / f"im{i}.png") as src:
                assert im.size == (src.width * 4, src.height * 4)
    assert (out / "sub" / "deep.png").is_file()
    produced = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert produced == ["im0.png", "im1.png", "im2.png", "sub/deep.png"]  # no stray temp files
    assert "Traceback" not in r.output


def test_cli_clear_errors(tiny_weights, tmp_path):
    r = run_cli("upscale", tmp_path / "missing.png", "--model", tiny_weights)
    assert r.exit_code == 1 and "missing.png: no such file" in r.output
    r = run_cli("upscale", tmp_path / "x.png", "--model", tmp_path / "nope.safetensors")
    assert r.exit_code == 1 and "nope.safetensors" in r.output
    r = run_cli("upscale", tmp_path / "x.png", "--model", "no-such-model")
    assert r.exit_code == 1 and "unknown model 'no-such-model'" in r.output
    src = tmp_path / "a.png"
    Image.fromarray(photo_like(8, 8)).save(src)
    r = run_cli("upscale", src, "-o", tmp_path / "a.xyz", "--model", tiny_weights)
    assert r.exit_code == 1 and "output format" in r.output


def _venv_bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def test_installed_entry_point_and_module(tiny_weights, tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(photo_like(16, 20)).save(src)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([_venv_bin("srgan"), "upscale", str(src), "-o", str(tmp_path / "o.webp"),
                        "--model", str(tiny_weights), "--device", "cpu"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "o.webp") as im:
        assert im.format == "WEBP" and im.size == (80, 64)
    r = subprocess.run([sys.executable, "-m", "srgan_cli", "--help"], capture_output=True,
                       text=True, env=env, timeout=60)
    assert r.returncode == 0 and "upscale" in r.stdout and "train" in r.stdout


@pytest.mark.parametrize("cmd", [[], ["upscale"], ["train"]])
def test_help_is_available(cmd):
    r = run_cli(*cmd, "--help")
    assert r.exit_code == 0 and "Usage:" in r.output


def _cup() -> tuple[np.ndarray, Image.Image, np.ndarray]:
    """256x256 of the coffee cup, its bicubic x4 LR and the bicubic upscale of that."""
    photo = Image.open(REPO / "examples" / "coffee.png").convert("RGB")
    hr = np.asarray(photo.crop((160, 80, 416, 336)))
    lr = Image.fromarray(hr).resize((64, 64), Image.BICUBIC)
    return hr, lr, np.asarray(lr.resize((256, 256), Image.BICUBIC))


@pytest.mark.skipif(not SHIPPED.is_file() or not SHIPPED_GAN.is_file(),
                    reason="weights/srresnet_x4.safetensors or srgan_x4.safetensors not built")
def test_the_default_is_srgan_real_and_the_srgan_parent_is_the_shipped_srresnet():
    """Issues 21 and 22: the default is a model without the lattice: srgan-real since its
    seventh release, the first model trained for JPEG/noise/blur inputs to pass issue 21's
    gate (srgan-delattice before it, srresnet before that); its --realism parent is the
    SRResNet, and srgan's too."""
    from srgan_cli.distribution.hub import sha256_file

    up = Upscaler(device="cpu")  # default model
    assert up.weights_path.name == "srgan_real_x4.safetensors"
    assert up.model.stage == "gan" and up.model.spec.delattice == 7
    assert up.model.parent_sha256 == sha256_file(SHIPPED)
    gan = Upscaler("srgan", device="cpu")
    assert gan.weights_path.resolve() == SHIPPED_GAN.resolve()
    assert gan.model.stage == "gan" and gan.model.scale == 4 and gan.model.spec.blocks == 16
    assert gan.model.parent_sha256 == sha256_file(SHIPPED)


@pytest.mark.skipif(not SHIPPED.is_file() or not SHIPPED_GAN.is_file(),
                    reason="weights/srresnet_x4.safetensors or srgan_x4.safetensors not built")
@pytest.mark.parametrize("model, margin", [("srresnet", 2.0), ("srgan", 0.5)])
def test_shipped_models_beat_bicubic_on_a_photo(model, margin):
    """PSNR over bicubic on the cup: the SRResNet (distortion-oriented) by a lot, the
    photo-realistic SRGAN by less (it trades PSNR for texture)."""
    hr, lr, bic = _cup()
    sr = np.asarray(Upscaler(model, device="cpu").upscale_image(lr))
    assert psnr(sr, hr) > psnr(bic, hr) + margin


@needs_shared("datasets", "benchmark", "Set5")
@pytest.mark.skipif(not SHIPPED.is_file(), reason="weights/srresnet_x4.safetensors not built")
def test_shipped_srresnet_quality_on_set5_baby():
    up = Upscaler("srresnet", device="cpu")
    root = SHARED / "datasets" / "benchmark" / "Set5"
    lr = Image.open(root / "Set5_LR_x4" / "img_001.png").convert("RGB")
    hr = np.asarray(Image.open(root / "Set5_HR" / "img_001.png").convert("RGB"))
    sr = np.asarray(up.upscale_image(lr))[: hr.shape[0], : hr.shape[1]]
    bic = np.asarray(lr.resize((lr.width * 4, lr.height * 4), Image.BICUBIC))
    assert psnr(sr, hr) > psnr(bic, hr) + 1.0
