"""The fused AMX-BF16 kernels (srgan_cli/inference/kernels/amx.c) against PyTorch's convolutions.

Kernel tests compare with ``F.conv2d`` in fp32 on the same bf16-rounded inputs: the
kernel accumulates in fp32 and rounds once to bf16, so it must agree to bf16 rounding
(relative 2^-8, allowed 2^-7 for the different summation order). A wrong tap, channel
order or stride gives errors of the order of the values themselves.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from conftest import REPO, trained_looking

from srgan_cli.cli import main
from srgan_cli.errors import SrganError
from srgan_cli.inference.device import cpu_flags
from srgan_cli.inference.kernels import amx
from srgan_cli.inference.kernels.build import Loader
from srgan_cli.inference.kernels.fused import FusedSRResNet, supported
from srgan_cli.inference.rewrite import inference_copy
from srgan_cli.inference.upscale import Upscaler
from srgan_cli.nets.generator import GeneratorSpec, SRResNet

SHIPPED = REPO / "weights" / "srresnet_x4.safetensors"
needs_amx = pytest.mark.skipif(amx.unavailable_reason() is not None,
                               reason=f"fused AMX kernels cannot run here: {amx.unavailable_reason()}")


def _bf(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.bfloat16).float()


def _padded(x: torch.Tensor) -> torch.Tensor:
    """(C, H, W) float -> padded bf16 (H + 2, W + 2, C)."""
    c, h, w = x.shape
    p = amx.padded(h, w, c)
    p[1:-1, 1:-1] = x.permute(1, 2, 0).to(torch.bfloat16)
    return p


def _hwc(t: torch.Tensor) -> torch.Tensor:
    return t.permute(1, 2, 0).to(torch.bfloat16).contiguous()


def _close(got: torch.Tensor, ref: torch.Tensor) -> None:
    torch.testing.assert_close(got.float(), ref, rtol=2**-7, atol=1e-4)


@needs_amx
@pytest.mark.parametrize("cin,cout", [(32, 32), (64, 64), (64, 96), (32, 256)])
@pytest.mark.parametrize("w", [32, 45, 64, 70])
@pytest.mark.parametrize("prelu,residual", [(False, False), (True, False), (False, True),
                                            (True, True)])
def test_conv3x3_matches_conv2d(cin, cout, w, prelu, residual):
    g = torch.Generator().manual_seed(cin * 1000 + cout + w)
    h = 5
    x = _bf(torch.randn(cin, h, w, generator=g))
    wt = _bf(torch.randn(cout, cin, 3, 3, generator=g) * 0.05)
    b = torch.randn(cout, generator=g) * 0.1
    a = torch.rand(cout, generator=g) * 0.5 if prelu else None
    r = _bf(torch.randn(cout, h, w, generator=g)) if residual else None
    ref = F.conv2d(x[None], wt, b, padding=1)[0]
    if a is not None:
        ref = F.prelu(ref[None], a)[0]
    if r is not None:
        ref = ref + r
    out = torch.empty(h, w, cout, dtype=torch.bfloat16)
    amx.Conv3x3(wt, b, a)(_padded(x), out, res=None if r is None else _hwc(r))
    _close(out.permute(2, 0, 1), ref)


@needs_amx
@pytest.mark.parametrize("w", [32, 50])
def test_conv3x3_shuffle_stores_the_pixel_shuffled_prelu_into_a_padded_image(w):
    g = torch.Generator().manual_seed(w)
    cin, c, h = 64, 32, 4
    x = _bf(torch.randn(cin, h, w, generator=g))
    wt = _bf(torch.randn(4 * c, cin, 3, 3, generator=g) * 0.05)
    b = torch.randn(4 * c, generator=g) * 0.1
    a = torch.rand(c, generator=g) * 0.5
    ref = F.prelu(F.pixel_shuffle(F.conv2d(x[None], wt, b, padding=1), 2), a)[0]
    dst = amx.padded(2 * h, 2 * w, c)
    amx.Conv3x3(wt, b, a.repeat_interleave(4), shuffle=True)(_padded(x), dst[1:-1, 1:-1])
    _close(dst[1:-1, 1:-1].permute(2, 0, 1), ref)
    border = torch.cat([dst[0].flatten(), dst[-1].flatten(), dst[:, 0].flatten(),
                        dst[:, -1].flatten()])
    assert border.abs().max() == 0


@needs_amx
def test_conv3x3_rows_write_only_their_band():
    """``rows`` + ``out_row0`` (the banded last stage): only those rows, at the band's origin."""
    g = torch.Generator().manual_seed(7)
    cin, cout, h, w = 64, 64, 9, 40
    x = _bf(torch.randn(cin, h, w, generator=g))
    wt = _bf(torch.randn(cout, cin, 3, 3, generator=g) * 0.05)
    b = torch.randn(cout, generator=g) * 0.1
    ref = F.conv2d(x[None], wt, b, padding=1)[0]
    band = torch.full((5, w, cout), 7.0, dtype=torch.bfloat16)
    amx.Conv3x3(wt, b)(_padded(x), band[1:4], rows=(3, 6), out_row0=3)
    _close(band[1:4].permute(2, 0, 1), ref[:, 3:6])
    assert (band[0] == 7).all() and (band[4] == 7).all()


@needs_amx
def test_conv3x3_refuses_views_it_would_write_past():
    k = amx.Conv3x3(torch.zeros(64, 64, 3, 3), torch.zeros(64))
    x = amx.padded(4, 40, 64)
    with pytest.raises(ValueError, match="at least"):
        k(x, torch.empty(4, 39, 64, dtype=torch.bfloat16))
    with pytest.raises(ValueError, match="at least"):
        k(x, torch.empty(4, 40, 64, dtype=torch.float32))
    with pytest.raises(ValueError, match="width"):
        k(amx.padded(4, 31, 64), torch.empty(4, 31, 64, dtype=torch.bfloat16))
    with pytest.raises(ValueError, match="residual"):
        k(x, torch.empty(4, 40, 64, dtype=torch.bfloat16),
          res=torch.empty(4, 20, 64, dtype=torch.bfloat16))
    with pytest.raises(ValueError, match="rows"):
        k(x, torch.empty(4, 40, 64, dtype=torch.bfloat16), rows=(0, 5))
    with pytest.raises(ValueError, match="multiples of 32"):
        amx.Conv3x3(torch.zeros(64, 48, 3, 3), torch.zeros(64))


def _levels(y: torch.Tensor) -> torch.Tensor:
    return ((y.float() + 1) * 127.5).clamp(0, 255).round()


@needs_amx
@pytest.mark.parametrize("spec", [GeneratorSpec(scale=4, blocks=2, width=64),
                                  GeneratorSpec(scale=2, blocks=3, width=32),
                                  GeneratorSpec(scale=8, blocks=1, width=32),
                                  GeneratorSpec(scale=4, blocks=1, width=32, delattice=3)],
                         ids=str)
@pytest.mark.parametrize("band_bytes", [None, 1], ids=["default-bands", "16-row-bands"])
def test_fused_network_matches_the_plain_fp32_network(spec, band_bytes, monkeypatch):
    """Same tolerance as the bf16 path of tests/test_inference.py: at most 4 8-bit levels
    and an RMS difference of at most 1.02 levels (>= 48 dB)."""
    import srgan_cli.inference.rewrite as inf

    if band_bytes is not None:
        monkeypatch.setattr(inf, "BAND_BYTES", band_bytes)
    model = trained_looking(spec, 3)
    fused = FusedSRResNet(inference_copy(model).to(memory_format=torch.channels_last))
    x = torch.rand(2, 3, 21, 37, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ref = _levels(model(x))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert fused.uses_kernels(x)
            got = _levels(fused(x.contiguous(memory_format=torch.channels_last)))
    d = (got - ref).abs()
    assert got.shape == ref.shape
    assert d.max() <= 4 and float((d**2).mean().sqrt()) <= 1.02


@needs_amx
def test_fused_network_runs_pytorch_outside_bf16_and_for_narrow_images():
    model = trained_looking(GeneratorSpec(scale=4, blocks=1, width=32), 0)
    copy = inference_copy(model).to(memory_format=torch.channels_last)
    fused = FusedSRResNet(copy)
    wide, narrow = torch.rand(1, 3, 8, 40), torch.rand(1, 3, 8, 31)
    with torch.inference_mode():
        assert not fused.uses_kernels(wide)  # no autocast: fp32, PyTorch
        assert torch.equal(fused(wide), copy(wide))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not fused.uses_kernels(narrow)
            assert torch.equal(fused(narrow), copy(narrow))
        with torch.autocast("cpu", dtype=torch.float16):
            assert not fused.uses_kernels(wide)


def test_networks_the_kernels_cannot_run_are_named():
    model = SRResNet(GeneratorSpec(scale=4, blocks=1, width=8))
    assert "multiple of 32" in supported(inference_copy(model))
    model = SRResNet(GeneratorSpec(scale=4, blocks=1, width=32))
    assert "sub-pixel tail" in supported(inference_copy(model, subpixel_tail=False))
    assert "BatchNorm" in supported(inference_copy(model, fold_bn=False))
    assert supported(inference_copy(model)) is None


@needs_amx
def test_upscaler_uses_the_kernels_by_default_for_the_shipped_model():
    up = Upscaler(SHIPPED, device="cpu", precision="bf16")
    assert up.kernels == "amx" and up.kernels_note is None
    assert isinstance(up.net, FusedSRResNet)


@needs_amx
def test_a_non_finite_fused_tile_is_redone_in_fp32_without_the_kernels(monkeypatch):
    """The fp32 redo runs PyTorch's fp32 network: the image equals the fp32 path's."""
    from conftest import photo_like

    from srgan_cli.imageio import imaging

    d = imaging.Decoded(photo_like(24, 40).astype(np.float32) / 255, None, "RGB")
    want, _, _ = Upscaler(SHIPPED, device="cpu", precision="fp32", tile=0).upscale_decoded(d)
    up = Upscaler(SHIPPED, device="cpu", precision="bf16", tile=0)
    calls = []

    def poisoned(self, x):
        calls.append(x.shape)
        return torch.full((1, 3, x.shape[2] * 4, x.shape[3] * 4), float("nan"))

    monkeypatch.setattr(FusedSRResNet, "_one", poisoned)
    got, _, retries = up.upscale_decoded(d)
    assert calls and retries == 1
    assert np.array_equal(got, want)


def test_upscaler_kernel_choice(tiny_weights):
    """auto: settings that rule the kernels out give no note; a network they cannot run
    gives one; amx insists; torch never uses them."""
    up = Upscaler(tiny_weights, device="cpu", precision="fp32", optimise=False)
    assert up.kernels == "torch" and up.kernels_note is None
    with pytest.raises(SrganError, match="bf16, not fp32"):
        Upscaler(tiny_weights, device="cpu", precision="fp32", kernels="amx")
    with pytest.raises(SrganError, match="optimise=False"):
        Upscaler(tiny_weights, device="cpu", precision="bf16", optimise=False, kernels="amx")
    up = Upscaler(tiny_weights, device="cpu", precision="bf16")
    assert up.kernels == "torch" and "multiple of 32" in up.kernels_note
    with pytest.raises(SrganError, match="multiple of 32"):
        Upscaler(tiny_weights, device="cpu", precision="bf16", kernels="amx")
    if SHIPPED.exists():
        assert Upscaler(SHIPPED, device="cpu", precision="bf16", kernels="torch").kernels == "torch"
    with pytest.raises(SrganError, match="unknown kernels"):
        Upscaler(tiny_weights, device="cpu", kernels="fast")


def test_cli_kernels_amx_that_cannot_run_is_a_one_line_error(tiny_weights, tmp_path):
    from PIL import Image

    src = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(src)
    res = CliRunner().invoke(main, ["upscale", str(src), "-o", str(tmp_path / "b.png"),
                                    "-m", str(tiny_weights), "--device", "cpu",
                                    "--precision", "bf16", "--kernels", "amx"])
    assert res.exit_code == 1
    assert "--kernels amx: the fused kernels cannot run: width 8" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "b.png").exists()


def test_a_failed_build_is_reported_not_raised(monkeypatch, tmp_path):
    """No usable compiler: the kernels are unavailable, the reason being the compiler's first
    error line."""
    if not {"amx_bf16", "amx_tile", "avx512_bf16"} <= cpu_flags():
        pytest.skip("this CPU has no AMX-BF16: the build is never attempted")
    monkeypatch.setattr(amx, "_loader", Loader(amx._load))
    monkeypatch.setenv("SRGAN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CC", "false")
    assert amx.unavailable_reason().startswith("false failed")
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing half-written left
