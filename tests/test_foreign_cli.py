"""Community SR model files through the same door as ours: `srgan upscale --model FILE`,
`srgan benchmark -m FILE`, the Upscaler, and the refusals (one line, naming the file)."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import photo_like
from foreign_nets import model_file, save, state_dict
from PIL import Image

import srgan_cli
from srgan_cli import Upscaler
from srgan_cli.cli import main
from srgan_cli.distribution import community_files
from srgan_cli.errors import SrganError


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _whole(path, rgb: np.ndarray) -> np.ndarray:
    """The network's own whole-image output, quantised as an 8-bit image."""
    net = srgan_cli.load(path).net
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        y = net(x)[0].permute(1, 2, 0)
    return (y * 255 + 0.5).to(torch.uint8).numpy()


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_upscale_runs_a_community_model_file(tmp_path, suffix):
    model = model_file(tmp_path, "esrgan", suffix)
    rgb = photo_like(21, 30, seed=1)
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    r = run_cli("upscale", tmp_path / "photo.png", "--model", model, "-o", tmp_path / "out.png",
                "--device", "cpu", "--precision", "fp32", "--border", "zero")
    assert r.exit_code == 0, r.output
    assert "ESRGAN" in r.output and "recognised by spandrel" in r.output
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert out.shape == (84, 120, 3)
    assert np.abs(out.astype(int) - _whole(model, rgb).astype(int)).max() <= 1


def test_tiles_of_a_community_model_are_blended_into_the_whole_image(tmp_path):
    model = model_file(tmp_path, "swinir")
    rgb = photo_like(45, 70, seed=2)
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    r = run_cli("upscale", tmp_path / "photo.png", "--model", model, "-o", tmp_path / "t.png",
                "--device", "cpu", "--precision", "fp32", "--tile", "20", "--tile-batch", "2",
                "--border", "zero")
    assert r.exit_code == 0, r.output
    tiled = np.asarray(Image.open(tmp_path / "t.png")).astype(int)
    assert tiled.shape == (90, 140, 3)
    assert np.abs(tiled - _whole(model, rgb).astype(int)).max() <= 1


def test_the_upscaler_takes_precisions_from_what_spandrel_says(tmp_path):
    swinir = model_file(tmp_path, "swinir")  # spandrel: no fp16 for SwinIR
    up = Upscaler(swinir, device="cpu", precision="bf16")
    assert up.model.precisions == ("fp32", "bf16") and up.precision == "bf16"
    assert up.kernels == "torch" and up.kernels_note is None  # no fused kernels: no note
    with pytest.raises(SrganError, match="not fp16"):
        Upscaler(swinir, device="cpu", precision="fp16")
    d = up.model.facts
    assert d.receptive_radius is None and d.tile_pad == community_files.OVERLAP and d.size.align == 4
    assert d.output_range == (0.0, 1.0) and d.blend_tiles


def test_a_gray_and_an_rgba_image_go_through_a_community_model(tmp_path):
    model = model_file(tmp_path, "compact")
    up = Upscaler(model, device="cpu")
    rgb = Image.fromarray(photo_like(12, 16))
    assert up.upscale_image(rgb.convert("L")).mode == "L"
    out = up.upscale_image(rgb.convert("RGBA"))
    assert out.mode == "RGBA" and out.size == (64, 48)


def test_an_unrecognised_model_file_is_one_line_naming_the_file(tmp_path):
    Image.fromarray(photo_like(8, 8)).save(tmp_path / "p.png")
    mystery = save({"encoder.weight": torch.rand(4, 4)}, tmp_path / "mystery.pth")
    r = run_cli("upscale", tmp_path / "p.png", "--model", mystery, "-o", tmp_path / "o.png")
    assert r.exit_code == 1 and "Traceback" not in r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and str(mystery) in lines[0] and "not a model srgan recognises" in lines[0]
    assert not (tmp_path / "o.png").exists()


def test_a_model_file_carrying_code_is_refused_from_the_command_line_without_running_it(tmp_path):
    from test_foreign import _Plant

    planted = tmp_path / "planted"
    evil = tmp_path / "evil.pth"
    torch.save({"params_ema": state_dict("compact"), "hook": _Plant(planted)}, evil)
    Image.fromarray(photo_like(8, 8)).save(tmp_path / "p.png")
    r = run_cli("upscale", tmp_path / "p.png", "--model", evil, "-o", tmp_path / "o.png")
    assert r.exit_code == 1 and "never unpickled" in r.output and str(evil) in r.output
    assert not planted.exists() and not (tmp_path / "o.png").exists()


def test_a_non_sr_model_is_refused_from_the_command_line(tmp_path):
    from foreign_nets import _compact

    torch.manual_seed(0)
    denoiser = save(_compact(1).state_dict(), tmp_path / "denoise.pth")
    Image.fromarray(photo_like(8, 8)).save(tmp_path / "p.png")
    r = run_cli("upscale", tmp_path / "p.png", "--model", denoiser, "-o", tmp_path / "o.png")
    assert r.exit_code == 1 and "not single-image super-resolution" in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_benchmark_compares_a_community_model_with_ours_and_bicubic(tmp_path, tiny_weights):
    root = tmp_path / "bench" / "Tiny"
    (root / "Tiny_HR").mkdir(parents=True)
    (root / "Tiny_LR_x4").mkdir()
    for i, (h, w) in enumerate([(42, 50), (40, 40)]):
        hr = photo_like(h, w, seed=i)
        Image.fromarray(hr).save(root / "Tiny_HR" / f"a{i}.png")
        Image.fromarray(hr).resize((w // 4, h // 4), Image.BICUBIC).save(
            root / "Tiny_LR_x4" / f"a{i}.png")
    community = model_file(tmp_path, "compact")
    out = tmp_path / "r.json"
    r = run_cli("benchmark", "tiny", "--data-dir", tmp_path / "bench", "-m", "bicubic",
                "-m", tiny_weights, "-m", community, "--device", "cpu", "--json", out)
    assert r.exit_code == 0, r.output
    recs = {rec["method"]: rec for rec in json.loads(out.read_text())}
    assert set(recs) == {"bicubic", str(tiny_weights), str(community)}
    assert all(rec["images"] == 2 and rec["scale"] == 4 for rec in recs.values())
    assert all(np.isfinite(rec["psnr"]) for rec in recs.values())


def test_benchmark_refuses_a_community_model_of_another_scale(tmp_path):
    swinir = model_file(tmp_path, "swinir")  # x2
    r = run_cli("benchmark", "set5", "-m", swinir, "--data-dir", tmp_path, "--device", "cpu")
    assert r.exit_code != 0 and "x2" in r.output and "Traceback" not in r.output


def test_convert_says_a_community_model_runs_as_it_is(tmp_path):
    model = model_file(tmp_path, "esrgan")
    r = run_cli("models", "convert", model, tmp_path / "o.safetensors")
    assert r.exit_code == 1 and "runs as it is" in r.output and "ESRGAN" in r.output
    assert not (tmp_path / "o.safetensors").exists()


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_models_info_describes_a_community_model_file(tmp_path, suffix):
    model = model_file(tmp_path, "compact", suffix)
    r = run_cli("models", "info", model)
    assert r.exit_code == 0, r.output
    fields = dict(line.split(None, 1) for line in r.output.splitlines() if " " in line)
    state = community_files.read_state_dict(model)
    assert fields["tensors"].strip() == (
        f"{len(state)} ({sum(t.numel() for t in state.values()):,} values)")
    assert fields["generator"].startswith("spandrel x4")


def test_models_info_refuses_a_model_file_carrying_code_without_running_it(tmp_path):
    from test_foreign import _Plant

    planted = tmp_path / "planted"
    evil = tmp_path / "evil.pth"
    torch.save({"params_ema": state_dict("compact"), "hook": _Plant(planted)}, evil)
    r = run_cli("models", "info", evil)
    assert r.exit_code == 1 and str(evil) in r.output and len(r.output.strip().splitlines()) == 1
    assert not planted.exists()
