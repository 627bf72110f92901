"""The lattice filter (spec ``delattice``, :mod:`srgan_cli.nets.delattice`): what it removes
and keeps, that it is part of the network everywhere it runs (tiles, kernels, files, the
registry, --realism), and what it does for the shipped ``srgan-delattice``."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import photo_like, trained_looking
from PIL import Image

from srgan_cli import Upscaler
from srgan_cli.arch.srresnet import ARCH
from srgan_cli.distribution.loading import load_file
from srgan_cli.distribution.modelfile import save_generator
from srgan_cli.nets.delattice import Delattice
from srgan_cli.nets.srresnet_spec import GeneratorSpec

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "weights" / "srgan_delattice_x4.safetensors"


def _bicubic(x: torch.Tensor, scale: int = 4) -> torch.Tensor:
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False) * 2 - 1


def test_the_filter_takes_a_lattice_and_a_colour_drift_off_and_keeps_fine_texture():
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(24.0), torch.arange(20.0), indexing="ij")
    x = torch.stack([0.5 + 0.3 * torch.sin(yy / 5), 0.4 + xx / 60, 0.5 + 0.0 * yy])[None]
    lattice = torch.rand(1, 3, 4, 4, generator=g).repeat(1, 1, 24, 20) * 0.2  # on the LR grid
    drift = torch.tensor([0.05, -0.04, 0.03])[None, :, None, None]  # a colour shift
    # texture that averages out over 3 LR pixels on every phase: period 3 LR px
    hr_y = torch.arange(96.0)[:, None]
    texture = 0.1 * torch.cos(2 * torch.pi * (hr_y // 4) / 3).expand(96, 80)[None, None]
    filt = Delattice(3, 4)
    out = filt(x, _bicubic(x) + lattice + drift + texture)
    inner = (..., slice(8, -8), slice(8, -8))
    assert (out - (_bicubic(x) + texture))[inner].abs().max() < 0.02
    assert (lattice - lattice.mean()).abs().max() > 0.05 and texture.abs().max() > 0.05


@pytest.mark.parametrize("window", [2, 3, 4, 5, 7])
def test_each_phase_mean_is_the_box_mean_of_that_phase_with_replicated_edges(window):
    """phase_means against the plain definition: for phase (i, j) at LR position (y, x),
    the mean of the phase's pixels over the window's LR positions, positions outside the
    image clamped to it."""
    from srgan_cli.nets.delattice import phase_means

    img = torch.randn(1, 2, 4 * 9, 4 * 7, generator=torch.Generator().manual_seed(window))
    got = phase_means(img, window)
    lo = window // 2
    for i, j in ((0, 0), (1, 3), (3, 2)):
        ph = img[0, :, i::4, j::4]  # (2, 9, 7)
        for y, x in ((0, 0), (4, 3), (8, 6), (2, 6)):
            ys = [min(max(y + d, 0), 8) for d in range(-lo, window - lo)]
            xs = [min(max(x + d, 0), 6) for d in range(-lo, window - lo)]
            want = ph[:, ys][:, :, xs].mean(dim=(1, 2))
            assert torch.allclose(got[0, :, 4 * i + j, y, x], want, atol=1e-6)


def test_a_solid_colour_comes_back_exactly_whatever_the_network_does_to_it():
    spec = GeneratorSpec(scale=4, blocks=1, width=8, delattice=3)
    net = trained_looking(spec, 0).eval()
    x = torch.tensor([0.1, 0.7, 0.95])[None, :, None, None].expand(1, 3, 40, 40)
    with torch.no_grad():
        out = net(x)
        net.post = None
        raw = net(x)
    m = 4 * (spec.receptive_radius() + 1)  # away from the zero-padded border's reach
    centre = (..., slice(m, -m), slice(m, -m))
    assert (raw - _bicubic(x))[centre].abs().max() > 0.01  # the network moves it
    assert (out - _bicubic(x))[centre].abs().max() < 1e-5


@pytest.mark.parametrize("window", [3, 4])
def test_the_receptive_radius_with_the_filter_is_exact(window):
    spec = GeneratorSpec(scale=4, blocks=1, width=4, delattice=window)
    r = ARCH.describe(spec).receptive_radius
    assert r == GeneratorSpec(scale=4, blocks=1, width=4).receptive_radius() + window // 2
    net = trained_looking(spec, 1).double()
    n = 2 * r + 7
    q = n // 2
    x = torch.rand(1, 3, n, n, dtype=torch.float64)
    def moved(row: int) -> bool:  # whether LR row ``row`` moves the output over LR pixel q
        x2 = x.clone()
        x2[0, :, row, q] += 1.0
        diff = (net(x2) - base).abs()[0].sum(0)[4 * q:4 * q + 4, 4 * q:4 * q + 4]
        return bool(diff.max() > 1e-12)

    with torch.no_grad():
        base = net(x)
        assert not moved(q - r - 1) and not moved(q + r + 1)
        # an even window reaches window // 2 on one side only (its box is off-centre)
        assert moved(q - r) and (moved(q + r) or window % 2 == 0)


@pytest.fixture
def delattice_file(tmp_path) -> Path:
    path = tmp_path / "dl.safetensors"
    save_generator(trained_looking(GeneratorSpec(scale=4, blocks=2, width=32, delattice=3), 2),
                   path, {"stage": "gan", "iterations": 0, "data": "none"})
    return path


@pytest.mark.parametrize("tile", [5, 12])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_tiled_output_with_the_filter_equals_the_whole_image(delattice_file, tile, precision):
    x = torch.from_numpy(photo_like(29, 37, seed=4)).permute(2, 0, 1)[None].float() / 255
    whole = Upscaler(delattice_file, device="cpu", tile=0, precision=precision).upscale_tensor(x)
    tiled = Upscaler(delattice_file, device="cpu", tile=tile, precision=precision).upscale_tensor(x)
    assert (tiled - whole).abs().max().item() <= 1e-4


def test_the_filter_is_stored_in_the_file_and_older_files_read_without_it(delattice_file,
                                                                          tmp_path):
    from srgan_cli.distribution.modelfile import provenance_of

    info = load_file(delattice_file, ours_only=True)
    assert info.net.spec.delattice == 3 and info.metadata["delattice"] == "3"
    # what a file made from it carries over: no architecture key, so its own spec decides
    assert provenance_of(dict(info.metadata)) == {"stage": "gan", "iterations": "0",
                                                  "data": "none"}
    assert "lattice filter 3" in ARCH.describe(info.net.spec).summary
    plain = tmp_path / "plain.safetensors"
    save_generator(trained_looking(GeneratorSpec(scale=4, blocks=2, width=32), 2), plain,
                   {"stage": "gan", "iterations": 0, "data": "none"})
    p = load_file(plain, ours_only=True)
    assert p.net.spec.delattice == 0 and "delattice" not in p.metadata
    assert ARCH.spec_block(p.net.spec) == {"arch": "srresnet", "scale": 4, "blocks": 2,
                                           "width": 32, "channels": 3}


def test_a_one_pixel_window_is_refused_everywhere_it_could_be_given():
    from srgan_cli.errors import TrainError
    from srgan_cli.train.config import TrainConfig

    with pytest.raises(ValueError, match="at least 2"):
        GeneratorSpec(delattice=1)
    with pytest.raises(ValueError, match="at least 2"):
        Delattice(1, 4)
    for option in ("delattice", "teacher_delattice"):
        with pytest.raises(TrainError, match="window must be 0 .off. or at least 2"):
            TrainConfig(data=[], **{option: 1})


def test_the_filter_keeps_fp32_under_bf16_autocast():
    x = torch.rand(1, 3, 8, 8)
    y = _bicubic(x).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = Delattice(3, 4)(x, y)
    assert out.dtype == torch.float32


@pytest.mark.parametrize("parent_filtered", [False, True])
def test_realism_blends_a_filtered_gan_with_its_parent(tmp_path, parent_filtered):
    from srgan_cli.distribution.hub import sha256_file

    parent = tmp_path / "parent.safetensors"
    pspec = GeneratorSpec(scale=4, blocks=1, width=8, delattice=3 if parent_filtered else 0)
    save_generator(trained_looking(pspec, 0), parent,
                   {"stage": "srresnet", "iterations": 0, "data": "none"})
    gan = tmp_path / "gan.safetensors"
    save_generator(trained_looking(GeneratorSpec(scale=4, blocks=1, width=8, delattice=3), 1),
                   gan, {"stage": "gan", "iterations": 0, "data": "none",
                         "parent_sha256": sha256_file(parent), "parent_file": parent.name})
    img = Image.fromarray(photo_like(12, 10, seed=1))
    half = Upscaler(gan, device="cpu", precision="fp32", realism=0.5, parent=parent)
    assert half.net is not None and half.model.spec.delattice == 3
    assert half.upscale_image(img).size == (40, 48)


@pytest.mark.skipif(not SHIPPED.is_file(), reason="srgan_delattice_x4.safetensors not shipped")
def test_the_shipped_srgan_delattice_is_srgan_trained_on_through_the_filter():
    from srgan_cli.distribution.hub import sha256_file

    d = load_file(SHIPPED, ours_only=True)
    assert d.net.spec.delattice == 3 and d.stage == "gan" and d.iterations > 5000
    assert d.metadata["init_sha256"] == sha256_file(REPO / "weights" / "srgan_x4.safetensors")
    assert d.parent_sha256 == sha256_file(REPO / "weights" / "srresnet_x4.safetensors")


@pytest.mark.skipif(not SHIPPED.is_file(), reason="srgan_delattice_x4.safetensors not shipped")
def test_srgan_delattice_gives_solid_colours_back_exactly_where_srgan_paints_a_lattice():
    filtered = Upscaler(SHIPPED, device="cpu", precision="fp32")
    raw = Upscaler(REPO / "weights" / "srgan_x4.safetensors", device="cpu", precision="fp32")
    for colour in ((20, 180, 240), (128, 128, 128), (250, 5, 90)):
        im = Image.new("RGB", (64, 64), colour)
        got = np.asarray(filtered.upscale_image(im)).astype(int)
        assert np.abs(got - np.array(colour)).max() <= 1, colour
        spread = np.ptp(np.asarray(raw.upscale_image(im)).astype(int), axis=(0, 1)).max()
        assert spread >= 4, colour  # what the filter takes off
