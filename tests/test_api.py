"""The public Python API: ``srgan_cli.load`` returns one ``Model`` (network, facts,
provenance) for our files, registered names and community models; ``Model.upscale`` and
``Upscaler(model)`` run it as ``srgan upscale`` does."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import photo_like
from foreign_nets import model_file, save, state_dict
from PIL import Image

import srgan_cli
from srgan_cli.arch.srresnet import SRResNetModel
from srgan_cli.cli import main
from srgan_cli.distribution.hub import sha256_file
from srgan_cli.distribution.loading import load_file
from srgan_cli.distribution.registry import lookup, resolve_model
from srgan_cli.errors import WeightsError
from srgan_cli.nets.generator import SRResNet


def _cli_output(tmp_path, im: Image.Image, model, *options) -> Image.Image:
    src, dst = tmp_path / "in.png", tmp_path / "out.png"
    im.save(src)
    r = CliRunner().invoke(main, ["upscale", str(src), "-o", str(dst), "-m", str(model),
                                  "--device", "cpu", "--overwrite", *map(str, options)])
    assert r.exit_code == 0, r.output
    dst.with_name("copy.png").write_bytes(dst.read_bytes())
    return Image.open(dst.with_name("copy.png"))


def test_loading_our_file_gives_one_model_with_its_facts_and_provenance(tiny_weights, tiny_spec):
    model = srgan_cli.load(tiny_weights)
    assert isinstance(model, srgan_cli.Model) and isinstance(model, SRResNetModel)
    assert isinstance(model.net, SRResNet) and not model.net.training
    assert (model.arch, model.spec, model.scale, model.channels) == ("srresnet", tiny_spec, 4, 3)
    assert model.precisions == ("fp32", "bf16", "fp16") and model.output_range == (-1.0, 1.0)
    assert model.tile_pad == tiny_spec.receptive_radius() and not model.blend_tiles
    assert model.parameters == sum(p.numel() for p in model.net.parameters())
    assert (model.path, model.stage, model.iterations, model.bare) == (
        tiny_weights, "test", 0, False)
    assert model.sha256 == sha256_file(tiny_weights)
    assert model.metadata["data"] == "none" and model.parent_sha256 is None


def test_a_registered_name_loads_the_verified_shipped_file_with_its_registry_sha256():
    model = srgan_cli.load("srgan")
    entry = lookup("srgan")
    assert model.path == resolve_model("srgan") and model.sha256 == entry.sha256
    assert model.stage == "gan" and model.parent_sha256 == entry.parent_sha256
    assert model.facts == entry.facts  # the registry's spec block states the file's facts


def test_a_community_model_is_a_plain_model_that_runs_as_it_is(tmp_path):
    model = srgan_cli.load(model_file(tmp_path, "swinir"))
    assert type(model) is srgan_cli.Model and model.arch == "spandrel" and model.bare
    assert model.spec.arch == "SwinIR" and model.scale == 2 and model.blend_tiles
    assert model.output_range == (0.0, 1.0) and model.size_rule().align == 4
    assert "recognised by spandrel" in model.describe()
    prepared = model.prepare(torch.device("cpu"), "fp32")
    assert prepared.net is model.net and not prepared.banded and prepared.kernels == "torch"


def test_preparing_our_model_builds_the_banded_inference_form_and_leaves_the_model_as_loaded(
        tiny_weights):
    model = srgan_cli.load(tiny_weights)
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    prepared = model.prepare(torch.device("cpu"), "fp32")
    assert prepared.banded and prepared.net is not model.net
    assert prepared.net.inference is not None and model.net.inference is None
    assert prepared.activation_bytes(100, 100, 2) < prepared.activation_bytes(100, 100, 4)
    plain = model.prepare(torch.device("cpu"), "fp32", optimise=False)
    assert not plain.banded and plain.activation_bytes(100, 100, 2) == plain.activation_bytes(
        100, 100, 4)
    after = model.net.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())


@pytest.mark.parametrize("mode", ["RGB", "L", "LA", "RGBA"])
def test_model_upscale_gives_the_command_lines_image_in_every_mode(tiny_weights, tmp_path, mode):
    im = Image.fromarray(photo_like(13, 17, seed=4)).convert(mode)
    out = srgan_cli.load(tiny_weights).upscale(im, device="cpu", precision="fp32")
    cli = _cli_output(tmp_path, im, tiny_weights, "--precision", "fp32")
    assert out.mode == cli.mode == mode and out.size == (68, 52)
    assert np.array_equal(np.asarray(out), np.asarray(cli))


def test_model_upscale_takes_the_upscalers_options(tiny_weights, tmp_path):
    im = Image.fromarray(photo_like(20, 24, seed=5))
    model = srgan_cli.load(tiny_weights)
    out = model.upscale(im, device="cpu", precision="fp32", tile=8, border="zero", outscale=3)
    cli = _cli_output(tmp_path, im, tiny_weights, "--precision", "fp32", "--tile", 8,
                      "--border", "zero", "--outscale", 3)
    assert out.size == (72, 60) and np.array_equal(np.asarray(out), np.asarray(cli))


def test_an_upscaler_runs_a_loaded_model_as_it_runs_the_same_file_by_path(tiny_weights):
    model = srgan_cli.load(tiny_weights)
    up = srgan_cli.Upscaler(model, device="cpu", precision="fp32")
    assert up.model is model and up.weights_path == tiny_weights and up.scale == 4
    x = torch.from_numpy(photo_like(16, 12)).permute(2, 0, 1)[None].float() / 255
    by_path = srgan_cli.Upscaler(tiny_weights, device="cpu", precision="fp32")
    assert torch.equal(up.upscale_tensor(x), by_path.upscale_tensor(x))


def test_a_community_model_upscales_through_the_api_as_through_the_command_line(tmp_path):
    path = model_file(tmp_path, "compact")
    model = srgan_cli.load(path)
    for mode in ("L", "RGBA"):
        im = Image.fromarray(photo_like(12, 16, seed=2)).convert(mode)
        out = model.upscale(im, device="cpu", precision="fp32")
        cli = _cli_output(tmp_path, im, path, "--precision", "fp32")
        assert out.mode == mode and np.array_equal(np.asarray(out), np.asarray(cli))


def test_a_bare_state_dict_of_our_layout_loads_but_is_refused_where_our_files_are_required(
        tmp_path):
    net = SRResNet(srgan_cli.load(resolve_model("srresnet")).spec)
    path = save(net.state_dict(), tmp_path / "ours.pth")
    model = srgan_cli.load(path)
    assert model.bare and model.arch == "srresnet" and model.stage == "bare state dict"
    with pytest.raises(WeightsError, match="pickled PyTorch file"):
        load_file(path, ours_only=True)


def test_a_file_no_architecture_takes_is_refused_in_one_line_naming_it(tmp_path):
    state = {k.replace("body", "trunk"): v for k, v in state_dict("compact").items()}
    path = save(state, tmp_path / "odd.pth")
    with pytest.raises(WeightsError) as e:
        srgan_cli.load(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    assert "not a model srgan recognises" in str(e.value)
