"""--realism: a GAN generator blended with the SRResNet it was fine-tuned from; the parent
recorded in the registry; the registry's default model."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import REPO, make_val_dir, photo_like, trained_looking
from PIL import Image

from srgan_cli.cli import main
from srgan_cli.distribution.hub import sha256_file
from srgan_cli.distribution.loading import load_file
from srgan_cli.distribution.modelfile import save_generator
from srgan_cli.distribution.realism import blend_state
from srgan_cli.distribution.registry import default_model, register_file, registry
from srgan_cli.errors import SrganError, WeightsError
from srgan_cli.inference.upscale import Upscaler
from srgan_cli.nets.generator import GeneratorSpec, SRResNet, to_unit_range

SPEC = GeneratorSpec(scale=4, blocks=2, width=8)


@pytest.fixture
def reg(tmp_path, monkeypatch) -> Path:
    """An empty registry and folder of shipped copies of this test's own."""
    shipped = tmp_path / "weights"
    shipped.mkdir()
    monkeypatch.setenv("SRGAN_WEIGHTS_DIR", str(shipped))
    monkeypatch.setenv("SRGAN_REGISTRY", str(shipped / "models.json"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return shipped


def save(model, path: Path, **meta) -> Path:
    save_generator(model, path, {"iterations": 10, "data": "none", **meta})
    return path


@pytest.fixture
def pair(reg) -> tuple[Path, Path]:
    """A registered SRResNet and a registered GAN model whose metadata names it as parent."""
    parent = save(trained_looking(SPEC, 1), reg / "sr_x4.safetensors", stage="srresnet")
    gan = save(trained_looking(SPEC, 2), reg / "gan_x4.safetensors", stage="gan",
               parent_sha256=sha256_file(parent), parent_file=parent.name)
    register_file(parent, "sr")
    register_file(gan, "gan")
    return parent, gan


def lr_batch(seed=0) -> torch.Tensor:
    return torch.from_numpy(photo_like(20, 28, seed)).permute(2, 0, 1)[None].float() / 255


def direct(path: Path, x: torch.Tensor) -> torch.Tensor:
    """The model of a file run as trained (no inference rewrite), fp32, channels_last as
    the Upscaler runs it (the memory layout picks the convolution algorithm)."""
    net = load_file(path, ours_only=True).net
    net = net.to(memory_format=torch.channels_last)
    with torch.inference_mode():
        return to_unit_range(net(x.contiguous(memory_format=torch.channels_last)))


@pytest.mark.parametrize("optimise", [False, True])
def test_realism_one_is_the_gan_model_and_zero_its_parent_bit_for_bit(pair, optimise):
    parent, gan = pair
    x = lr_batch()
    kw = dict(device="cpu", precision="fp32", optimise=optimise, kernels="torch", border="zero")
    at1 = Upscaler("gan", realism=1.0, **kw)
    at0 = Upscaler("gan", realism=0.0, **kw)
    assert at0.parent_path == parent and at1.weights_path == gan
    assert torch.equal(at1.upscale_tensor(x), Upscaler(gan, **kw).upscale_tensor(x))
    assert torch.equal(at0.upscale_tensor(x), Upscaler(parent, **kw).upscale_tensor(x))
    if not optimise:  # and those are the two files' networks run directly
        assert torch.equal(at1.upscale_tensor(x), direct(gan, x))
        assert torch.equal(at0.upscale_tensor(x), direct(parent, x))
    assert not torch.equal(at1.upscale_tensor(x), at0.upscale_tensor(x))


def test_realism_in_between_runs_the_interpolated_weights_batchnorm_statistics_included(pair):
    parent, gan = pair
    p = load_file(parent, ours_only=True).net.state_dict()
    g = load_file(gan, ours_only=True).net.state_dict()
    assert not torch.equal(p["body.0.bn1.running_var"], g["body.0.bn1.running_var"])
    ref = SRResNet(SPEC)
    ref.load_state_dict({k: 0.75 * v + 0.25 * g[k] if v.is_floating_point() else v
                         for k, v in p.items()})
    x = lr_batch(1)
    with torch.inference_mode():
        want = to_unit_range(ref.eval()(x))
    for optimise in (False, True):  # the BN fold is built from the blended statistics
        up = Upscaler("gan", realism=0.25, device="cpu", precision="fp32", optimise=optimise,
                      kernels="torch", border="zero")
        got = up.upscale_tensor(x)
        assert torch.allclose(got, want, atol=2e-5), (optimise, (got - want).abs().max())
    assert (got - direct(gan, x)).abs().max() > 1e-3 and (got - direct(parent, x)).abs().max() > 1e-3


def test_blending_takes_integer_buffers_from_the_gan_model_and_floats_at_the_ratio():
    a = {"w": torch.tensor([0.0, 4.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([1.0, 8.0]), "n": torch.tensor(7)}
    out = blend_state(a, b, 0.5)
    assert out["w"].tolist() == [0.5, 6.0] and out["n"].item() == 7
    assert blend_state(a, b, 0.0)["w"] is a["w"] and blend_state(a, b, 1.0)["w"] is b["w"]
    with pytest.raises(WeightsError, match="differ in their tensors"):
        blend_state(a, {"w": b["w"]}, 0.5)
    with pytest.raises(WeightsError, match=r"tensor w is \(2,\)"):
        blend_state(a, {"w": torch.zeros(3), "n": b["n"]}, 0.5)


def test_the_parent_is_found_next_to_an_unregistered_file_or_given(reg, tmp_path):
    d = tmp_path / "elsewhere"
    d.mkdir()
    parent = save(trained_looking(SPEC, 1), d / "p.safetensors", stage="srresnet")
    gan = save(trained_looking(SPEC, 2), d / "g.safetensors", stage="gan",
               parent_sha256=sha256_file(parent), parent_file="p.safetensors")
    kw = dict(device="cpu", precision="fp32", kernels="torch")
    assert Upscaler(gan, realism=0.5, **kw).parent_path == parent
    moved = tmp_path / "moved.safetensors"
    parent.rename(moved)
    with pytest.raises(WeightsError, match="p.safetensors, sha256 .* is not registered and not "
                                           "next to it"):
        Upscaler(gan, realism=0.5, **kw)
    assert Upscaler(gan, realism=0.5, parent=moved, **kw).parent_path == moved
    with pytest.raises(WeightsError, match="not the parent of"):
        Upscaler(gan, realism=0.5, parent=gan, **kw)


def test_realism_refuses_pairs_that_do_not_match(pair, reg):
    parent, gan = pair
    kw = dict(device="cpu", precision="fp32", kernels="torch")
    with pytest.raises(WeightsError, match="names none"):
        Upscaler("sr", realism=0.5, **kw)
    wide = save(trained_looking(GeneratorSpec(4, 2, 16), 3), reg / "wide.safetensors",
                stage="srresnet")
    register_file(wide, "wide")
    odd = save(trained_looking(SPEC, 4), reg / "odd.safetensors", stage="gan",
               parent_sha256=sha256_file(wide), parent_file=wide.name)
    with pytest.raises(WeightsError, match="do not share one architecture"):
        Upscaler(odd, realism=0.5, **kw)
    with pytest.raises(SrganError, match="between 0 and 1"):
        Upscaler("gan", realism=1.5, **kw)


def test_cli_upscale_realism_writes_the_blend_and_refuses_in_one_line(pair, tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(photo_like(20, 24, 3)).save(src)
    run = CliRunner().invoke
    base = ["upscale", str(src), "--precision", "fp32", "--device", "cpu", "--kernels", "torch"]
    r = run(main, base + ["-m", "gan", "--realism", "0", "-o", str(tmp_path / "r0.png")])
    assert r.exit_code == 0 and "realism 0" in r.output, r.output
    r = run(main, base + ["-m", "sr", "-o", str(tmp_path / "sr.png")])
    assert r.exit_code == 0, r.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "r0.png")),
                          np.asarray(Image.open(tmp_path / "sr.png")))
    r = run(main, base + ["-m", "sr", "--realism", "0.5", "-o", str(tmp_path / "x.png")])
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1, r.output
    assert "parent_sha256" in r.output and "Traceback" not in r.output
    r = run(main, base + ["-m", "gan", "--realism", "2", "-o", str(tmp_path / "x.png")])
    assert r.exit_code == 2 and not (tmp_path / "x.png").exists()


def test_cli_benchmark_scores_each_realism_and_its_ends_are_the_two_models(pair, tmp_path):
    make_val_dir(tmp_path / "bench" / "Set5", 2, 32, 40, seed=7)
    out = tmp_path / "r.json"
    r = CliRunner().invoke(main, [
        "benchmark", "set5", "--data-dir", str(tmp_path / "bench"), "-m", "sr", "-m", "gan",
        "--precision", "fp32", "--device", "cpu", "--no-lpips", "--json", str(out)])
    assert r.exit_code == 0, r.output
    plain = {rec["method"]: rec["psnr"] for rec in json.loads(out.read_text())}
    r = CliRunner().invoke(main, [
        "benchmark", "set5", "--data-dir", str(tmp_path / "bench"), "-m", "gan", "--realism",
        "0", "--realism", "0.5", "--realism", "1", "--precision", "fp32", "--device", "cpu",
        "--no-lpips", "--json", str(out)])
    assert r.exit_code == 0, r.output
    got = {rec["method"]: rec["psnr"] for rec in json.loads(out.read_text())}
    assert set(got) == {"gan R=0", "gan R=0.5", "gan R=1"}
    assert got["gan R=0"] == plain["sr"] and got["gan R=1"] == plain["gan"]


# --------------------------------------------------------------------------- registry


def test_register_records_the_parent_from_the_files_metadata(pair, reg):
    parent, gan = pair
    entries = registry()
    assert entries["gan"].parent_sha256 == sha256_file(parent) == entries["sr"].sha256
    assert entries["gan"].parent_file == parent.name and entries["sr"].parent_sha256 is None
    res = register_file(gan, "gan")
    assert any("parent: 'sr'" in n for n in res.notes)
    r = CliRunner().invoke(main, ["models", "info", "gan"])
    assert r.exit_code == 0 and f"sr (sr_x4.safetensors, sha256 {entries['sr'].sha256})" in r.output
    # a file without a parent replaces one with: the stale parent goes
    save(trained_looking(SPEC, 5), gan, stage="gan")
    res = register_file(gan, "gan")
    assert registry()["gan"].parent_sha256 is None
    assert any("names no parent" in n for n in res.notes)


def test_the_default_model_comes_from_the_registry(pair, reg, tmp_path):
    parent, gan = pair
    assert default_model() == "srresnet"  # no "default" key: the built-in default
    register_file(gan, "gan", make_default=True)
    assert default_model() == "gan"
    up = Upscaler(device="cpu", precision="fp32", kernels="torch")
    assert up.weights_path == gan
    r = CliRunner().invoke(main, ["models", "register", str(parent), "--default"])
    assert r.exit_code == 0 and "sr is now the default model" in r.output, r.output
    assert json.loads((reg / "models.json").read_text())["default"] == "sr"
    src = tmp_path / "in.png"
    Image.fromarray(photo_like(16, 16, 3)).save(src)
    r = CliRunner().invoke(main, ["upscale", str(src), "-o", str(tmp_path / "o.png"),
                                  "--device", "cpu"])
    assert r.exit_code == 0 and "sr_x4.safetensors" in r.output, r.output
    raw = json.loads((reg / "models.json").read_text())
    raw["default"] = "nope"
    (reg / "models.json").write_text(json.dumps(raw))
    with pytest.raises(WeightsError, match="must name a registered model"):
        default_model()


def test_the_shipped_registry_names_a_registered_default():
    path = REPO / "weights" / "models.json"
    assert default_model(path) in registry(path)


@pytest.mark.skipif(__import__("srgan_cli.inference.kernels.amx", fromlist=["x"]).unavailable_reason()
                    is not None,
                    reason="fused AMX kernels cannot run here (no AMX-BF16 or no C compiler)")
def test_realism_ends_through_the_fused_amx_kernels_are_the_two_models(reg):
    """The fused network is built from the blended weights, so its ends match each model's
    own fused network exactly."""
    spec = GeneratorSpec(4, 1, 32)  # the kernels need a width that is a multiple of 32
    parent = save(trained_looking(spec, 1), reg / "p32.safetensors", stage="srresnet")
    gan = save(trained_looking(spec, 2), reg / "g32.safetensors", stage="gan",
               parent_sha256=sha256_file(parent), parent_file=parent.name)
    x = torch.from_numpy(photo_like(40, 72, 2)).permute(2, 0, 1)[None].float() / 255
    kw = dict(device="cpu", precision="bf16", kernels="amx")
    at1, at0 = Upscaler(gan, realism=1.0, **kw), Upscaler(gan, realism=0.0, **kw)
    assert at1.kernels == at0.kernels == "amx"
    assert torch.equal(at1.upscale_tensor(x), Upscaler(gan, **kw).upscale_tensor(x))
    assert torch.equal(at0.upscale_tensor(x), Upscaler(parent, **kw).upscale_tensor(x))
