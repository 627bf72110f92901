"""Community SR models read by our code and recognised by spandrel: the architectures,
the refusals (one line, naming the file) and tiling them against the whole image."""

import math

import pytest
import torch
from conftest import photo_like
from foreign_nets import NETS, _compact, model_file, save, state_dict

import srgan_cli
from srgan_cli.distribution import community_files
from srgan_cli.errors import WeightsError
from srgan_cli.inference.tiling import SizeRule, run_tiled


def _image(h: int, w: int, seed: int = 3) -> torch.Tensor:
    return torch.from_numpy(photo_like(h, w, seed)).permute(2, 0, 1)[None].float() / 255


def _load(path):
    """(network, spandrel spec) of a community model file, through the public API."""
    model = srgan_cli.load(path)
    return model.net, model.spec


def _refusal(path) -> str:
    with pytest.raises(WeightsError) as e:
        srgan_cli.load(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    return msg


# --------------------------------------------------------------------------- recognition


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
@pytest.mark.parametrize("name", sorted(NETS))
def test_each_architecture_is_recognised_with_its_scale_and_channels(tmp_path, name, suffix):
    arch, scale, build = NETS[name]
    path = model_file(tmp_path, name, suffix)
    model = srgan_cli.load(path)
    net, info = model.net, model.spec
    assert (info.arch, model.arch, model.scale, model.channels) == (arch, "spandrel", scale, 3)
    assert model.path == path and model.bare and model.output_range == (0.0, 1.0)
    assert model.parameters == sum(p.numel() for p in build().parameters())
    with torch.inference_mode():
        y = net(_image(20, 24))
    assert y.shape == (1, 3, 20 * scale, 24 * scale)
    assert 0.0 <= y.min().item() and y.max().item() <= 1.0


def test_the_network_is_built_from_the_files_weights(tmp_path):
    state = state_dict("compact", seed=5)
    net, _ = _load(save(state, tmp_path / "c.pth"))
    for k, v in net.net.state_dict().items():
        assert torch.equal(v, state[k])


def test_window_attention_networks_report_their_window_as_the_tile_grid(tmp_path):
    _, info = _load(model_file(tmp_path, "swinir"))
    assert info.size.align == 4 and info.size.minimum == 16
    assert info.precisions == ("fp32", "bf16")  # no fp16
    _, conv = _load(model_file(tmp_path, "compact"))
    assert conv.size.align == 1


@pytest.mark.parametrize("wrap", [
    lambda sd: {"params_ema": sd, "params": {}},
    lambda sd: {"state_dict": {"module." + k: v for k, v in sd.items()}, "epoch": 7},
    lambda sd: {"model": sd},
])
def test_checkpoint_containers_and_prefixes_are_unwrapped(tmp_path, wrap):
    path = save(wrap(state_dict("esrgan")), tmp_path / "ckpt.pth")
    _, info = _load(path)
    assert info.arch == "ESRGAN" and info.scale == 4


def test_a_safetensors_file_is_recognised_by_its_header_whatever_its_name(tmp_path):
    path = model_file(tmp_path, "compact", ".safetensors").rename(tmp_path / "model.pth")
    assert _load(path)[1].arch == "Compact"


# --------------------------------------------------------------------------- refusals


class _Plant:
    """Unpickling this would create a file: a stand-in for any code a pickle can run."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_a_pickle_carrying_code_is_refused_without_running_it(tmp_path):
    planted = tmp_path / "planted"
    path = tmp_path / "evil.pth"
    torch.save({"params_ema": state_dict("compact"), "hook": _Plant(planted)}, path)
    msg = _refusal(path)
    assert "refused" in msg and "never unpickled" in msg
    assert not planted.exists()


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit's deprecation notices
def test_a_torchscript_archive_is_refused(tmp_path):
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.trace(_compact(4).eval(), torch.rand(1, 3, 8, 8)), str(path))
    assert "TorchScript" in _refusal(path)


def test_an_unrecognised_state_dict_is_refused_naming_the_file(tmp_path):
    path = save({"encoder.weight": torch.rand(4, 4), "decoder.bias": torch.rand(4)},
                tmp_path / "mystery.safetensors")
    assert "not a model srgan recognises" in _refusal(path)


@pytest.mark.parametrize("net,why", [
    (lambda: _compact(1), "restoration model (scale 1), not single-image super-resolution"),
    (lambda: _compact(6), "scale 6; supported scales are 2, 3, 4, 8"),
    (lambda: _compact(4, channels=1), "1 input and 1 output channels; only RGB"),
])
def test_models_we_cannot_run_as_rgb_super_resolution_are_refused(tmp_path, net, why):
    torch.manual_seed(0)
    assert why in _refusal(save(net().state_dict(), tmp_path / "other.pth"))


@pytest.mark.parametrize("content,why", [
    (b"hello, not a model", "not a readable PyTorch or safetensors file"),
    (b"\x20\x00\x00\x00\x00\x00\x00\x00{\"a\":", "truncated safetensors header"),
])
def test_a_file_that_is_not_a_model_is_refused(tmp_path, content, why):
    path = tmp_path / "broken.pth"
    path.write_bytes(content)
    assert why in _refusal(path)


def test_a_missing_file_and_a_list_instead_of_a_state_dict_are_refused(tmp_path):
    assert "no such weights file" in _refusal(tmp_path / "absent.pth")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    assert "not a state dict" in _refusal(tmp_path / "list.pth")


# --------------------------------------------------------------------------- tiling

# These small random networks barely use pixels farther than pad // 2 = 8 LR pixels (their
# own initialisations shrink far contributions: docs/foreign_models.md), so blending is
# exact up to rounding; the seam error of real-sized networks is measured, not tested.
SEAM_TOL = 1e-5


@pytest.mark.parametrize("name", sorted(NETS))
def test_blended_tiles_agree_with_the_whole_image(tmp_path, name):
    net, info = _load(model_file(tmp_path, name))
    x = _image(45, 70)
    with torch.inference_mode():
        whole = run_tiled(net, x, info.scale, 0, 0, size=info.size)
        tiled = run_tiled(net, x, info.scale, 20, 16, size=info.size, blend=True, batch=2)
        hard = run_tiled(net, x, info.scale, 20, 0, size=info.size, blend=True)
    assert tiled.shape == whole.shape == (1, 3, 45 * info.scale, 70 * info.scale)
    assert (tiled - whole).abs().max().item() <= SEAM_TOL
    assert (hard - whole).abs().max().item() > 1e-3  # guard: cut hard, the seams show


def test_window_networks_tiled_off_their_window_grid_would_disagree(tmp_path):
    """Guards the alignment: SwinIR's windows start at its input's corner, so tiles that
    start between window corners compute different windows everywhere."""
    net, info = _load(model_file(tmp_path, "swinir"))
    x = _image(45, 70)
    unaligned = SizeRule(info.size.minimum, info.size.multiple_of, info.size.square, 1)
    with torch.inference_mode():
        whole = run_tiled(net, x, 2, 0, 0, size=info.size)
        tiled = run_tiled(net, x, 2, 22, 16, size=unaligned, blend=True)
    assert (tiled - whole).abs().max().item() > 1e-3


def test_blended_tiles_are_close_for_a_network_with_global_attention(tmp_path):
    """OmniSR's grid attention mixes pixels across its whole input, so no overlap makes
    tiles exact; with the default-sized overlap the error stays small (stated bound)."""
    from spandrel.architectures.OmniSR import OmniSR

    torch.manual_seed(0)
    path = save(OmniSR(num_feat=8, block_num=1, up_scale=2, window_size=4, res_num=1)
                .state_dict(), tmp_path / "omni.pth")
    net, info = _load(path)
    x = _image(45, 70)
    with torch.inference_mode():
        whole = run_tiled(net, x, 2, 0, 0, size=info.size)
        tiled = run_tiled(net, x, 2, 24, 16, size=info.size, blend=True)
    err = (tiled - whole).abs()
    assert err.max().item() < 0.05
    assert 10 * math.log10(1 / err.pow(2).mean().item()) > 40  # PSNR of the difference


def test_the_seam_script_measures_a_users_model_file(tmp_path, capsys):
    import importlib.util

    from conftest import REPO
    from PIL import Image

    spec = importlib.util.spec_from_file_location("seam_error", REPO / "scripts/seam_error.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    img = tmp_path / "lr.png"
    Image.fromarray(photo_like(40, 50, 2)).save(img)
    mod.main(["--image", str(img), "--model", str(model_file(tmp_path, "compact")),
              "--tile", "20", "--pads", "0,16"])
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| Compact |")]
    assert [r.split("|")[2].strip() for r in rows] == ["0", "16"]
    assert float(rows[0].split("|")[4]) > 1e-3 >= float(rows[1].split("|")[4])


def test_the_largest_activation_is_measured_per_lr_pixel(tmp_path):
    """ESRGAN x4 with 8 features ends with 8-channel convolutions at 4x the resolution:
    8 x 16 = 128 values per LR pixel; the Compact model's largest tensor is its last
    convolution's 3 x 4^2 = 48 channels at the LR resolution."""
    for name, expected in (("esrgan", 128), ("compact", 48)):
        net, info = _load(model_file(tmp_path, name))
        assert community_files.largest_activation_per_px(net, info.size) == expected
        assert info.largest_per_px == expected


def test_the_generator_of_a_gan_checkpoint_is_found(tmp_path):
    both = {"generator": state_dict("compact"), "discriminator": {"d.weight": torch.rand(2)}}
    assert _load(save(both, tmp_path / "gan.pth"))[1].arch == "Compact"
