"""Tiles: tiled output equals the whole image, the tile size follows memory, and
out-of-memory or non-finite tiles are retried, never returned half-made."""

import numpy as np
import pytest
import torch
from conftest import photo_like

from srgan_cli import Upscaler
from srgan_cli.errors import SrganError
from srgan_cli.imageio import imaging

# --------------------------------------------------------------------------- exact tiling


@pytest.mark.parametrize("tile", [3, 8, 13, 24])
def test_tiled_output_equals_whole_image_output(tiny_weights, tile):
    x = torch.from_numpy(photo_like(29, 37, seed=4)).permute(2, 0, 1)[None].float() / 255
    whole = Upscaler(tiny_weights, device="cpu", tile=0).upscale_tensor(x)
    tiled = Upscaler(tiny_weights, device="cpu", tile=tile).upscale_tensor(x)
    assert tiled.shape == whole.shape == (1, 3, 29 * 4, 37 * 4)
    assert (tiled - whole).abs().max().item() <= 1e-4


def test_tiling_without_context_would_leave_seams(tiny_weights):
    """Guards the test above: with no padding the tiles visibly disagree."""
    x = torch.from_numpy(photo_like(29, 37, seed=4)).permute(2, 0, 1)[None].float() / 255
    whole = Upscaler(tiny_weights, device="cpu", tile=0).upscale_tensor(x)
    seamy = Upscaler(tiny_weights, device="cpu", tile=8, tile_pad=0).upscale_tensor(x)
    assert (seamy - whole).abs().max().item() > 1e-3


@pytest.mark.parametrize("tile,batch", [(7, 1), (7, 4), (16, 3), (1000, 1)])
def test_quantised_tiled_path_matches_whole_image(tiny_weights, tile, batch):
    """The file path quantises tile by tile (and may batch tiles); same pixels as whole."""
    from srgan_cli.imageio import imaging

    rgb = photo_like(23, 30, seed=9).astype(np.float32) / 255
    d = imaging.Decoded(rgb, None, "RGB")
    whole, _, _ = Upscaler(tiny_weights, device="cpu", tile=0).upscale_decoded(d)
    tiled, used, _ = Upscaler(tiny_weights, device="cpu", tile=tile,
                              tile_batch=batch).upscale_decoded(d)
    assert used == tile
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1  # rounding ties only
    assert np.mean(whole != tiled) < 1e-3


# --------------------------------------------------------------------------- blended tiling


def _nearest2(t: torch.Tensor) -> torch.Tensor:
    """A network that sees one pixel: any seam left comes from the blending weights."""
    return t.repeat_interleave(2, -1).repeat_interleave(2, -2)


@pytest.mark.parametrize("tile,pad,batch,margin", [(8, 2, 1, 0), (8, 6, 3, 0), (16, 3, 2, 5),
                                                   (5, 8, 1, 0), (13, 1, 4, 2)])
def test_blending_weights_sum_to_one_everywhere(tile, pad, batch, margin):
    from srgan_cli.inference.tiling import run_tiled

    x = torch.rand(1, 3, 37, 53, generator=torch.Generator().manual_seed(1))
    whole = _nearest2(x)
    y = run_tiled(_nearest2, x, 2, tile, pad, batch=batch, margin=margin, blend=True)
    assert (y - whole).abs().max().item() <= 1e-6
    got = torch.full_like(whole, float("nan"))

    def store(t, v):  # bands of whole rows, each written once
        assert t.x0 == 0 and t.x1 == 53 and got[..., t.y0 * 2 : t.y1 * 2, :].isnan().all()
        got[..., t.y0 * 2 : t.y1 * 2, :] = v

    run_tiled(_nearest2, x, 2, tile, pad, batch=batch, margin=margin, blend=True, store=store)
    assert (got - whole).abs().max().item() <= 1e-6


def test_blended_tiling_is_exact_for_a_network_that_sees_less_than_half_the_pad(tiny_weights):
    """The SRResNet test network sees its receptive radius r (12 LR pixels): with pad 2r
    the blend only mixes outputs that had all their context; with pad r/2 it cannot."""
    from srgan_cli.inference.tiling import run_tiled

    up = Upscaler(tiny_weights, device="cpu", tile=0)
    x = torch.from_numpy(photo_like(29, 37, seed=4)).permute(2, 0, 1)[None].float() / 255
    radius = up.model.spec.receptive_radius()
    with torch.inference_mode():
        whole = up.net(x)
        tiled = run_tiled(up.net, x, 4, 12, 2 * radius, blend=True)
        short = run_tiled(up.net, x, 4, 12, radius // 2, blend=True)
    assert (tiled - whole).abs().max().item() <= 1e-4
    assert (short - whole).abs().max().item() > 1e-3


def test_a_network_only_sees_the_sizes_it_accepts_and_the_output_is_cropped():
    from srgan_cli.inference.tiling import SizeRule, run_tiled

    seen = set()

    def picky(t):
        assert t.shape[-1] % 8 == 0 and t.shape[-2] % 8 == 0 and min(t.shape[-2:]) >= 16
        seen.add(tuple(t.shape[-2:]))
        return _nearest2(t)

    x = torch.rand(1, 3, 37, 53, generator=torch.Generator().manual_seed(2))
    rule = SizeRule(minimum=16, multiple_of=8)
    for tile, pad, blend in [(0, 0, False), (10, 3, False), (10, 4, True), (20, 8, True)]:
        y = run_tiled(picky, x, 2, tile, pad, size=rule, blend=blend)
        assert (y - _nearest2(x)).abs().max().item() <= 1e-6
    tiny = torch.rand(1, 3, 5, 7)
    assert run_tiled(picky, tiny, 2, 0, 0, size=rule).shape == (1, 3, 10, 14)
    assert (16, 16) in seen  # a 5 x 7 image was mirrored up to the minimum


def test_tiles_start_on_the_alignment_grid():
    from srgan_cli.inference.tiling import SizeRule, plan_tiles

    tiles = plan_tiles(100, 130, 30, 8, margin=3, size=SizeRule(align=8), blend=True)
    assert len(tiles) > 4
    assert all(t.py0 % 8 == 0 and t.px0 % 8 == 0 for t in tiles)
    assert all(t.py0 <= t.y0 + 3 - 8 or t.py0 == 0 for t in tiles)  # context kept


# --------------------------------------------------------------------------- retries and the tile size


def test_non_finite_reduced_precision_tiles_are_redone_in_fp32(tiny_weights, monkeypatch):
    up = Upscaler(tiny_weights, device="cpu", precision="bf16", tile=8)
    real = up.net.forward
    calls = {"n": 0}

    def flaky(x):
        y = real(x)
        if torch.is_autocast_enabled("cpu"):
            calls["n"] += 1
            if calls["n"] == 2:  # the second tile overflows
                y = y.clone()
                y[..., 0, 0] = float("nan")
        return y

    monkeypatch.setattr(up.net, "forward", flaky)
    x = torch.from_numpy(photo_like(20, 20)).permute(2, 0, 1)[None].float() / 255
    d = imaging.Decoded(x[0].permute(1, 2, 0).numpy(), None, "RGB")
    planes, tile, retries = up.upscale_decoded(d)
    assert retries == 1 and tile == 8
    ref = Upscaler(tiny_weights, device="cpu", precision="fp32", tile=8).upscale_tensor(x)
    assert np.abs(planes / 255.0 - ref[0].permute(1, 2, 0).numpy()).max() < 0.05


def test_fp32_redo_of_a_whole_bf16_image_runs_in_sub_tiles_that_fit(tiny_weights, monkeypatch):
    """An image sized to run whole at 2 bytes per value, whose bf16 output is non-finite,
    is redone in fp32 in sub-tiles sized for 4 bytes (the same budget), and the result is
    the fp32 image."""
    import srgan_cli.inference.runner as U

    up = Upscaler(tiny_weights, device="cpu", precision="bf16")
    h = w = 40
    hp = h + 2 * up.border_pad  # the image with its mirrored border, if any
    budget = up.prepared.activation_bytes(hp, hp, 2)
    assert up.prepared.activation_bytes(hp, hp, 4) > budget
    monkeypatch.setattr(U, "tile_budget", lambda dev: budget)
    real = up.net.forward
    fp32_inputs = []

    def overflowing(x):
        y = real(x)
        if torch.is_autocast_enabled("cpu"):
            return torch.full_like(y, float("inf"))
        fp32_inputs.append(tuple(x.shape[2:]))
        return y

    monkeypatch.setattr(up.net, "forward", overflowing)
    x = torch.from_numpy(photo_like(h, w)).permute(2, 0, 1)[None].float() / 255
    d = imaging.Decoded(x[0].permute(1, 2, 0).numpy(), None, "RGB")
    planes, tile, retries = up.upscale_decoded(d)
    assert tile == 0 and retries == 1  # planned whole at bf16, one redo
    assert len(fp32_inputs) > 1 and all(a < hp or b < hp for a, b in fp32_inputs)
    ref = Upscaler(tiny_weights, device="cpu", precision="fp32", tile=0).upscale_tensor(x)
    assert np.abs(planes / 255.0 - ref[0].permute(1, 2, 0).numpy()).max() <= 1 / 255 + 1e-6


def test_out_of_memory_halves_the_tile_and_never_returns_a_partial_image(tiny_weights, monkeypatch):
    up = Upscaler(tiny_weights, device="cpu", tile=32)
    real = up.net.forward

    def limited(x):
        if x.shape[-1] > 24:
            raise torch.OutOfMemoryError("fake OOM")
        return real(x)

    monkeypatch.setattr(up.net, "forward", limited)
    events = []
    x = photo_like(40, 40) / 255.0
    d = imaging.Decoded(x.astype(np.float32), None, "RGB")
    up.tile_pad = 2  # keep padded tiles small enough for the fake limit
    planes, tile, _ = up.upscale_decoded(d, on_event=events.append)
    assert tile == 16 and len(events) == 1 and "retrying with --tile 16" in events[0]
    assert planes.shape == (160, 160, 3)
    monkeypatch.setattr(up.net, "forward", lambda x: (_ for _ in ()).throw(
        torch.OutOfMemoryError("always")))
    with pytest.raises(SrganError, match="out of memory"):
        up.upscale_decoded(d)


def test_auto_tile_fits_memory_on_every_cpu_kind(tiny_weights, monkeypatch, cpu_kind):
    """The auto tile is the largest that fits the CPU budget in the precision auto picks
    on each CPU kind (bf16 where the CPU has it, fp32 on AVX2-only CPUs); bands, which
    take the full-resolution tensors out of the estimate, give larger tiles in bf16 (in
    fp32 the tiny test network's measured heap slack can outweigh them)."""
    import srgan_cli.inference.runner as U

    up = Upscaler(tiny_weights, device="cpu")
    assert up.precision == ("fp32" if cpu_kind == "avx2" else "bf16")
    monkeypatch.setattr(U, "available_memory", lambda dev: 8 << 30)
    t = up.tile_for(4000, 3000)
    assert up.prepared.banded  # optimised CPU path: the last stage runs in bands
    vb = up._value_bytes()
    assert vb == (4 if cpu_kind == "avx2" else 2)
    for u, tile in ((up, t),
                    (Upscaler(tiny_weights, device="cpu", optimise=False), None)):
        tile = u.tile_for(4000, 3000) if tile is None else tile
        side = tile + 2 * u.tile_pad
        assert u.prepared.activation_bytes(side, side, vb) <= U.CPU_TILE_BUDGET
        assert u.prepared.activation_bytes(side + 8, side + 8, vb) > U.CPU_TILE_BUDGET
    plain = Upscaler(tiny_weights, device="cpu", optimise=False)
    assert not plain.prepared.banded
    dev = up.device
    assert U.auto_tile(up.prepared, dev, up.tile_pad, 2) > plain.tile_for(4000, 3000)
    assert up.tile_for(10, 10) == 0  # small images run whole
    monkeypatch.setattr(U, "available_memory", lambda dev: 64 << 20)
    assert up.tile_for(4000, 3000) < t


