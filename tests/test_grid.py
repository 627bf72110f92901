"""The lattice of issue 21 as a measured quantity: the grid score of the benchmark, its
training form (the grid loss), the phase-tied sub-pixel stages that keep flat areas flat,
and the discriminator warm-up of a run restarted from released weights."""

import numpy as np
import pytest
import torch

from srgan_cli.bench.metrics import grid_excess, grid_score, local_grid_excess, tile_grid_scores
from srgan_cli.nets.generator import GeneratorSpec, SRResNet, tie_phases
from srgan_cli.train.losses import GridLoss


def _smooth(h: int = 128, w: int = 160, seed: int = 0) -> np.ndarray:
    """A smooth RGB image (low-frequency waves plus a gradient), 0-255 float."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    for c in range(3):
        for _ in range(4):
            fy, fx = rng.uniform(0.005, 0.04, 2)
            img[..., c] += rng.uniform(10, 30) * np.sin(2 * np.pi * (fy * y + fx * x)
                                                        + rng.uniform(0, 6))
        img[..., c] += 128 + 0.3 * x - 0.2 * y
    return img.clip(0, 255)


def _lattice(h: int, w: int, amplitude: float, seed: int = 1) -> np.ndarray:
    """A pattern that repeats every 4 pixels in both axes (the x4 models' LR grid)."""
    tile = np.random.default_rng(seed).uniform(-1, 1, (4, 4))
    return amplitude * np.tile(tile, (h // 4, w // 4))[..., None]


def test_a_smooth_image_scores_near_zero_and_the_same_with_a_4px_pattern_scores_high():
    clean = _smooth()
    patterned = (clean + _lattice(*clean.shape[:2], 4.0)).clip(0, 255)
    assert abs(grid_score(clean)) < 3.0
    assert grid_score(patterned) > 20.0
    assert grid_excess([patterned], [clean]) > 20.0
    assert abs(grid_excess([clean], [clean])) < 1e-9


def test_the_grid_score_crops_to_a_multiple_of_the_period_and_reads_gray_images():
    clean = _smooth(130, 163)
    gray = clean[..., 1]
    assert abs(grid_score(gray)) < 3.0
    lat = np.zeros_like(gray)
    lat[:128, :160] = _lattice(128, 160, 4.0)[..., 0]
    assert grid_score(gray + lat) > 20.0
    assert np.isfinite(grid_score(np.full((64, 64, 3), 77.0)))  # a flat image: no NaN
    with pytest.raises(ValueError, match="too small"):
        grid_score(np.zeros((8, 8)))


def test_the_grid_loss_is_zero_for_real_crops_and_pushes_a_lattice_down():
    hr = torch.from_numpy(np.stack([_smooth(96, 96, s) for s in range(4)])).permute(0, 3, 1, 2)
    hr = (hr.float() / 127.5 - 1).contiguous()
    loss = GridLoss()
    assert loss(hr, hr).item() == 0.0
    lattice = torch.from_numpy(_lattice(96, 96, 4.0 / 127.5)[..., 0]).float()
    sr = (hr + lattice).requires_grad_(True)
    value = loss(sr, hr)
    assert value.item() > 1.0  # offsets of a few levels, squared
    value.backward()
    # the gradient is the lattice itself (up to scale): what the loss pushes down
    g = sr.grad[0, 0, :32, :32]
    corr = torch.corrcoef(torch.stack([g.flatten(), lattice[:32, :32].flatten()]))[0, 1]
    assert corr > 0.99
    # noise and blur that are not locked to the grid cost (almost) nothing
    noisy = hr + 0.05 * torch.randn(hr.shape, generator=torch.Generator().manual_seed(0))
    blurred = torch.nn.functional.avg_pool2d(hr, 3, 1, 1)
    assert loss(noisy, hr).item() < 0.1 * value.item()
    assert loss(blurred, hr).item() < 0.05 * value.item()


def _random_generator(seed: int = 0) -> SRResNet:
    torch.manual_seed(seed)
    model = SRResNet(GeneratorSpec(blocks=1, width=8)).eval()
    with torch.no_grad():  # phases far apart, as a GAN-trained generator has them
        for up in model.up:
            up.conv.bias.uniform_(-0.5, 0.5)
            up.conv.weight.mul_(3)
    return model


@torch.no_grad()
@pytest.mark.parametrize("mode", ["dc", "resize", "mixed"])
def test_a_phase_tied_generator_maps_a_flat_image_to_a_flat_image(mode):
    model = _random_generator()
    flat = torch.full((1, 3, 40, 40), 0.4)
    before = model(flat)[..., 48:-48, 48:-48]  # away from the zero-padded borders
    assert (before.amax((2, 3)) - before.amin((2, 3))).max() > 0.05
    tie_phases(model, mode)
    after = model(flat)[..., 48:-48, 48:-48]
    assert (after.amax((2, 3)) - after.amin((2, 3))).max() < 1e-5


@torch.no_grad()
@pytest.mark.parametrize("mode", ["dc", "resize", "mixed"])
def test_tying_the_phases_is_a_projection_and_keeps_the_layout(mode):
    model = _random_generator(1)
    keys = {k: v.shape for k, v in model.state_dict().items()}
    once = {k: v.clone() for k, v in tie_phases(model, mode).state_dict().items()}
    for _ in range(20):  # idempotent: repeated after every step, it must not grow anything
        twice = tie_phases(model, mode).state_dict()
    assert {k: v.shape for k, v in twice.items()} == keys
    assert all(torch.allclose(once[k], twice[k], atol=1e-6) for k in keys)
    w = model.up[0].conv.weight.view(8, 4, 8, -1).sum(-1)  # per output map: 4 phases' sums
    assert torch.allclose(w, w[:, :1].expand_as(w), atol=1e-5)
    # orthogonal: what the projection takes away is perpendicular to what it keeps
    orig = _random_generator(1).up[0].conv.weight.double()
    kept = model.up[0].conv.weight.double()
    assert abs(((orig - kept) * kept).sum()) < 1e-5 * (orig * orig).sum()
    assert 0 < ((orig - kept) ** 2).sum() < (orig * orig).sum()


@torch.no_grad()
@pytest.mark.parametrize("seed", [0, 1])
def test_a_resize_tied_subpixel_stage_is_exactly_nearest_upsampling_then_a_3x3_convolution(seed):
    import torch.nn.functional as F

    model = tie_phases(_random_generator(seed), "resize")
    up = model.up[0]
    x = torch.randn(1, 8, 7, 9, generator=torch.Generator().manual_seed(seed))
    sub_pixel = up.shuffle(up.conv(x))
    kernel = _kernel_from_phases(up.conv.weight)
    resized = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), kernel,
                       up.conv.bias.view(8, 4)[:, 0], padding=1)
    assert torch.allclose(sub_pixel, resized, atol=1e-5)
    untied = _random_generator(seed).up[0]
    assert not torch.allclose(untied.shuffle(untied.conv(x)), F.conv2d(
        F.interpolate(x, scale_factor=2, mode="nearest"), _kernel_from_phases(
            untied.conv.weight), untied.conv.bias.view(8, 4)[:, 0], padding=1), atol=1e-2)


def _kernel_from_phases(weight: torch.Tensor) -> torch.Tensor:
    """The 3x3 kernel K whose nearest x2 + conv(K) best matches the sub-pixel ``weight``
    (least squares over the 36 LR taps of the four phases; exact for a resize-tied one)."""
    rows = ((0, 1, 1), (1, 1, 2))
    a = torch.zeros(36, 9)
    for pa in range(2):
        for pb in range(2):
            for ky in range(3):
                for kx in range(3):
                    a[(pa * 2 + pb) * 9 + rows[pa][ky] * 3 + rows[pb][kx], ky * 3 + kx] = 1
    co4, ci = weight.shape[:2]
    w = weight.view(co4 // 4, 4, ci, 9).permute(0, 2, 1, 3).reshape(co4 // 4, ci, 36)
    k = torch.linalg.lstsq(a.expand(co4 // 4, ci, 36, 9), w.unsqueeze(-1)).solution
    return k.view(co4 // 4, ci, 3, 3)


def test_a_lattice_on_one_tile_scores_high_there_while_the_whole_image_score_is_diluted():
    clean = _smooth(256, 256)
    patched = clean.copy()
    patched[64:128, 128:192] += _lattice(64, 64, 4.0)
    tiles = tile_grid_scores(patched) - tile_grid_scores(clean)
    assert tiles.shape == (16,)
    assert tiles[1 * 4 + 2] > 30.0  # the patched tile (row 1, column 2)
    assert np.abs(np.delete(tiles, 6)).max() < 1e-9
    assert grid_excess([patched], [clean]) < 10.0  # the whole-image score: diluted
    local = local_grid_excess([patched, clean], [clean, clean])
    assert local["tiles"] == 32 and local["over_6db"] == pytest.approx(1 / 32)
    assert local["mean"] == pytest.approx(tiles[6] / 32)
    refs = [tile_grid_scores(clean)] * 2  # the references' scores, computed once for many models
    assert local_grid_excess([patched, clean], [clean, clean], reference_scores=refs) == local


def test_the_local_grid_excess_refuses_images_of_another_size_and_too_small_images():
    clean = _smooth(128, 128)
    with pytest.raises(ValueError, match="references' size"):
        local_grid_excess([clean], [clean[:64]])
    with pytest.raises(ValueError, match="smaller than one 64-px tile"):
        tile_grid_scores(clean[:32, :100])
