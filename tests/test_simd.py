"""The fused AVX2 fp32 kernels (srgan_cli/inference/kernels/simd.c) against PyTorch's fp32 convolutions,
their network (Fp32SRResNet), the kernel choice, and the speed benchmark's yardsticks.

The kernels compute in fp32 like ``F.conv2d``, in another summation order (and, with
Winograd, through transforms with entries 0, +-1, +-1/2 for F(2x2), up to 8 and 1/24 for
F(4x4)): they must agree to a few fp32 roundings (absolute 2e-5 on values of order 1,
1e-4 for F(4x4)). A wrong tap, channel order, stride or
transform gives errors of the order of the values themselves. They run on every x86-64
CPU with AVX2 + FMA, AMX ones included, so these tests run wherever CI lands on x86-64.
"""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from conftest import REPO, photo_like, simulate_cpu, trained_looking

from srgan_cli.bench import speed
from srgan_cli.cli import main
from srgan_cli.distribution.loading import load_file
from srgan_cli.errors import SrganError
from srgan_cli.imageio.imaging import Decoded
from srgan_cli.inference import device
from srgan_cli.inference.kernels import simd
from srgan_cli.inference.kernels.build import Loader
from srgan_cli.inference.kernels.fused_fp32 import Fp32SRResNet, fp32_or_reason
from srgan_cli.inference.rewrite import inference_copy
from srgan_cli.inference.upscale import Upscaler
from srgan_cli.nets.generator import GeneratorSpec

SHIPPED = [REPO / "weights" / "srresnet_x4.safetensors", REPO / "weights" / "srgan_x4.safetensors"]
needs_simd = pytest.mark.skipif(simd.unavailable_reason() is not None,
                                reason=f"fused AVX2 kernels cannot run here: {simd.unavailable_reason()}")
KINDS = [0, 2, 4]  # winograd: the direct kernel, F(2x2, 3x3), F(4x4, 3x3)
KIND_IDS = ["direct", "F2", "F4"]


def _padded(x: torch.Tensor) -> torch.Tensor:
    """(C, H, W) -> padded fp32 (H + 2, W + 2, C)."""
    c, h, w = x.shape
    p = simd.padded(h, w, c)
    p[1:-1, 1:-1] = x.permute(1, 2, 0)
    return p


def _close(got: torch.Tensor, ref: torch.Tensor, winograd: int = 0) -> None:
    """F(4x4)'s transforms (entries up to 8 and 1/24) lose a few more bits than F(2x2)'s."""
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-4 if winograd == 4 else 2e-5)


@needs_simd
@pytest.mark.parametrize("winograd", KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("cin,cout", [(64, 64), (32, 128), (16, 16), (64, 256)])
@pytest.mark.parametrize("h,w", [(5, 13), (1, 1), (2, 7), (6, 12), (3, 45)])
@pytest.mark.parametrize("prelu,residual", [(False, False), (True, False), (False, True),
                                            (True, True)])
def test_conv3x3_matches_conv2d(winograd, cin, cout, h, w, prelu, residual):
    g = torch.Generator().manual_seed(cin * 1000 + cout + 7 * w + h)
    x = torch.randn(cin, h, w, generator=g)
    wt = torch.randn(cout, cin, 3, 3, generator=g) * 0.05
    b = torch.randn(cout, generator=g) * 0.1
    a = torch.rand(cout, generator=g) * 0.5 if prelu else None
    r = torch.randn(cout, h, w, generator=g) if residual else None
    ref = F.conv2d(x[None], wt, b, padding=1)[0]
    if a is not None:
        ref = F.prelu(ref[None], a)[0]
    if r is not None:
        ref = ref + r
    out = torch.full((h, w, cout), float("nan"))
    k = simd.Conv3x3(wt, b, a, winograd=winograd)
    assert k.winograd == winograd
    k(_padded(x), out, res=None if r is None else r.permute(1, 2, 0).contiguous())
    _close(out.permute(2, 0, 1), ref, winograd)


@needs_simd
def test_winograd_is_the_default_where_the_channels_allow_it():
    assert simd.Conv3x3(torch.zeros(64, 64, 3, 3), torch.zeros(64)).winograd == simd.WINO_DEFAULT
    assert not simd.Conv3x3(torch.zeros(16, 3, 3, 3), torch.zeros(16)).winograd  # cin % 8
    with pytest.raises(ValueError, match="Winograd needs"):
        simd.Conv3x3(torch.zeros(16, 3, 3, 3), torch.zeros(16), winograd=2)
    with pytest.raises(ValueError, match="not 3"):
        simd.Conv3x3(torch.zeros(16, 8, 3, 3), torch.zeros(16), winograd=3)


@needs_simd
@pytest.mark.parametrize("winograd", KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("h,w", [(4, 9), (3, 1)])
def test_conv3x3_shuffle_stores_the_pixel_shuffled_prelu_into_a_padded_image(winograd, h, w):
    g = torch.Generator().manual_seed(w)
    cin, c = 64, 16
    x = torch.randn(cin, h, w, generator=g)
    wt = torch.randn(4 * c, cin, 3, 3, generator=g) * 0.05
    b = torch.randn(4 * c, generator=g) * 0.1
    a = torch.rand(c, generator=g) * 0.5
    ref = F.prelu(F.pixel_shuffle(F.conv2d(x[None], wt, b, padding=1), 2), a)[0]
    dst = simd.padded(2 * h, 2 * w, c)
    simd.Conv3x3(wt, b, a.repeat_interleave(4), shuffle=True, winograd=winograd)(
        _padded(x), dst[1:-1, 1:-1])
    _close(dst[1:-1, 1:-1].permute(2, 0, 1), ref, winograd)
    border = torch.cat([dst[0].flatten(), dst[-1].flatten(), dst[:, 0].flatten(),
                        dst[:, -1].flatten()])
    assert border.abs().max() == 0


@needs_simd
@pytest.mark.parametrize("winograd", KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("rows", [(3, 6), (0, 1), (8, 9), (2, 6), (1, 8)])
def test_conv3x3_rows_write_only_their_band(winograd, rows):
    """``rows`` + ``out_row0`` (the banded last stage): only those rows, at the band's origin,
    whatever the band's length and parity, and the image's last row."""
    g = torch.Generator().manual_seed(7)
    cin, cout, h, w = 64, 32, 9, 21
    x = torch.randn(cin, h, w, generator=g)
    wt = torch.randn(cout, cin, 3, 3, generator=g) * 0.05
    b = torch.randn(cout, generator=g) * 0.1
    ref = F.conv2d(x[None], wt, b, padding=1)[0]
    r0, r1 = rows
    band = torch.full((r1 - r0 + 2, w, cout), 7.0)
    simd.Conv3x3(wt, b, winograd=winograd)(_padded(x), band[1:-1], rows=rows, out_row0=r0)
    _close(band[1:-1].permute(2, 0, 1), ref[:, r0:r1], winograd)
    assert (band[0] == 7).all() and (band[-1] == 7).all()


@needs_simd
def test_conv3x3_refuses_views_it_would_write_past():
    k = simd.Conv3x3(torch.zeros(64, 64, 3, 3), torch.zeros(64))
    x = simd.padded(4, 40, 64)
    with pytest.raises(ValueError, match="at least"):
        k(x, torch.empty(4, 39, 64))
    with pytest.raises(ValueError, match="at least"):
        k(x, torch.empty(4, 40, 64, dtype=torch.bfloat16))
    with pytest.raises(ValueError, match="padded fp32"):
        k(x.to(torch.bfloat16), torch.empty(4, 40, 64))
    with pytest.raises(ValueError, match="residual"):
        k(x, torch.empty(4, 40, 64), res=torch.empty(4, 20, 64))
    with pytest.raises(ValueError, match="rows"):
        k(x, torch.empty(4, 40, 64), rows=(0, 5))
    with pytest.raises(ValueError, match="multiples of 16"):
        simd.Conv3x3(torch.zeros(40, 64, 3, 3), torch.zeros(40))
    with pytest.raises(ValueError, match="multiples of 64"):
        simd.Conv3x3(torch.zeros(32, 64, 3, 3), torch.zeros(32), shuffle=True)


@needs_simd
@pytest.mark.parametrize("winograd", KINDS, ids=KIND_IDS)
def test_conv3x3_gives_the_same_bits_on_any_number_of_threads(winograd):
    g = torch.Generator().manual_seed(3)
    x = _padded(torch.randn(64, 11, 23, generator=g))
    k = simd.Conv3x3(torch.randn(64, 64, 3, 3, generator=g) * 0.05, torch.randn(64, generator=g),
                     torch.rand(64, generator=g), winograd=winograd)
    threads = torch.get_num_threads()
    outs = []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            outs.append(k(x, torch.empty(11, 23, 64)))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])


def _levels(y: torch.Tensor) -> torch.Tensor:
    return ((y.float() + 1) * 127.5).clamp(0, 255).round()


def _check_network(model, x: torch.Tensor) -> None:
    """Fp32SRResNet of ``model``'s inference copy against the plain fp32 network: within
    1e-4 (outputs in [-1, 1]) and at most 1 8-bit level apart on at most 0.1% of values."""
    fused = Fp32SRResNet(inference_copy(model).to(memory_format=torch.channels_last))
    xc = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        ref = model(x)
        assert fused.uses_kernels(xc)
        got = fused(xc)
    assert got.shape == ref.shape
    assert float((got - ref).abs().max()) <= 1e-4
    d = (_levels(got) - _levels(ref)).abs()
    assert d.max() <= 1 and float((d > 0).float().mean()) <= 1e-3


@needs_simd
@pytest.mark.parametrize("spec", [GeneratorSpec(scale=4, blocks=2, width=64),
                                  GeneratorSpec(scale=2, blocks=3, width=32),
                                  GeneratorSpec(scale=8, blocks=1, width=32),
                                  GeneratorSpec(scale=4, blocks=1, width=32, delattice=3)],
                         ids=str)
@pytest.mark.parametrize("band_bytes", [None, 1], ids=["default-bands", "16-row-bands"])
def test_fused_network_matches_the_plain_fp32_network(spec, band_bytes, monkeypatch):
    import srgan_cli.inference.rewrite as inf

    if band_bytes is not None:
        monkeypatch.setattr(inf, "BAND_BYTES", band_bytes)
    x = torch.rand(2, 3, 21, 37, generator=torch.Generator().manual_seed(1))
    _check_network(trained_looking(spec, 3), x)


@needs_simd
@pytest.mark.parametrize("weights", SHIPPED, ids=lambda p: p.stem)
@pytest.mark.parametrize("h,w", [(33, 47), (1, 1), (2, 5), (40, 9)])
def test_fused_network_matches_the_shipped_models_in_fp32(weights, h, w):
    model = load_file(weights).net
    x = torch.from_numpy(photo_like(h, w, seed=h + w)).permute(2, 0, 1)[None].float() / 255
    _check_network(model.eval(), x)


@needs_simd
def test_fused_network_runs_pytorch_under_autocast():
    model = trained_looking(GeneratorSpec(scale=4, blocks=1, width=32), 0)
    copy = inference_copy(model).to(memory_format=torch.channels_last)
    fused = Fp32SRResNet(copy)
    x = torch.rand(1, 3, 8, 12)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert not fused.uses_kernels(x)
        assert torch.equal(fused(x), copy(x))


@needs_simd
def test_tiles_match_the_whole_image():
    """Tiles carry the receptive radius: the tiled image equals the whole one to fp32
    rounding (Winograd's 2x2 tiles sit differently in each tile, so not bit for bit)."""
    d = Decoded(photo_like(40, 52).astype(np.float32) / 255, None, "RGB")
    whole = Upscaler(SHIPPED[0], device="cpu", precision="fp32", kernels="avx2", tile=0)
    tiled = Upscaler(SHIPPED[0], device="cpu", precision="fp32", kernels="avx2", tile=16)
    a, ta, _ = whole.upscale_decoded(d)
    b, tb, _ = tiled.upscale_decoded(d)
    assert (ta, tb) == (0, 16)
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() <= 1e-3


# --------------------------------------------------------------------------- the choice


@needs_simd
def test_auto_runs_the_avx2_kernels_on_a_cpu_without_amx(tmp_path, monkeypatch):
    """On an AVX2-only CPU (Zen 2) precision auto is fp32, and auto runs the AVX2 kernels."""
    simulate_cpu("avx2", tmp_path, monkeypatch)
    up = Upscaler(SHIPPED[0], device="cpu")
    assert (up.precision, up.kernels, up.kernels_note) == ("fp32", "avx2", None)
    assert isinstance(up.net, Fp32SRResNet)
    assert up.tile_for(512, 512) == 0  # planned with its own (smaller) memory


@needs_simd
def test_zen4_keeps_bf16_with_torch_and_runs_avx2_in_fp32(tmp_path, monkeypatch):
    simulate_cpu("avx512", tmp_path, monkeypatch)
    up = Upscaler(SHIPPED[0], device="cpu")
    assert (up.precision, up.kernels) == ("bf16", "torch")
    assert up.kernels_note == "fused AMX kernels not used: the CPU has no AMX-BF16"
    assert Upscaler(SHIPPED[0], device="cpu", precision="fp32").kernels == "avx2"


@needs_simd
def test_amx_cpus_keep_their_choice_and_avx2_runs_there_when_asked(tmp_path, monkeypatch):
    simulate_cpu("amx", tmp_path, monkeypatch)
    up = Upscaler(SHIPPED[0], device="cpu", precision="fp32")
    assert (up.kernels, up.kernels_note) == ("torch", None)  # as before the AVX2 kernels
    up = Upscaler(SHIPPED[0], device="cpu", precision="fp32", kernels="avx2")
    assert up.kernels == "avx2" and isinstance(up.net, Fp32SRResNet)
    up = Upscaler(SHIPPED[0], device="cpu", precision="bf16")
    assert up.kernels in ("amx", "torch") and not isinstance(up.net, Fp32SRResNet)


def test_kernels_avx2_insists(tiny_weights):
    with pytest.raises(SrganError, match="--kernels avx2: .*compute in fp32, not bf16"):
        Upscaler(tiny_weights, device="cpu", precision="bf16", kernels="avx2")
    with pytest.raises(SrganError, match="--kernels avx2: .*optimise=False"):
        Upscaler(tiny_weights, device="cpu", precision="fp32", optimise=False, kernels="avx2")
    if simd.available():
        with pytest.raises(SrganError, match="--kernels avx2: .*multiple of 32"):
            Upscaler(tiny_weights, device="cpu", precision="fp32", kernels="avx2")
    assert Upscaler(tiny_weights, device="cpu", precision="fp32", kernels="torch").kernels == "torch"


def test_cli_kernels_avx2_that_cannot_run_is_a_one_line_error(tiny_weights, tmp_path):
    from PIL import Image

    src = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(src)
    res = CliRunner().invoke(main, ["upscale", str(src), "-o", str(tmp_path / "b.png"),
                                    "-m", str(tiny_weights), "--device", "cpu",
                                    "--precision", "bf16", "--kernels", "avx2"])
    assert res.exit_code == 1
    assert "--kernels avx2: the fused kernels cannot run: they compute in fp32, not bf16" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "b.png").exists()


@pytest.fixture
def fresh_simd(monkeypatch, tmp_path):
    """simd.py as in a new process, its cache in an empty folder."""
    monkeypatch.setattr(simd, "_loader", Loader(simd._load))
    monkeypatch.setenv("SRGAN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("cc,reason", [("/nonexistent", "cannot run the C compiler '/nonexistent'"),
                                       ("false", "false failed")])
def test_no_compiler_falls_back_to_torch_with_the_reason(fresh_simd, monkeypatch, cc, reason):
    if not simd.NEEDS <= device.cpu_flags():
        pytest.skip("this CPU has no AVX2 + FMA: the build is never attempted")
    monkeypatch.setenv("CC", cc)
    assert simd.unavailable_reason().startswith(reason)
    assert not [p for p in fresh_simd.rglob("*") if p.is_file()]  # nothing half-written left
    if device.cpu_flags() >= {"amx_bf16", "amx_tile"}:
        return  # auto keeps AMX CPUs on PyTorch in fp32: no note to check there
    up = Upscaler(SHIPPED[0], device="cpu", precision="fp32")
    assert up.kernels == "torch" and up.kernels_note.startswith(f"fused AVX2 kernels not used: {reason}")
    with pytest.raises(SrganError, match=f"--kernels avx2: the fused kernels cannot run: {reason}"):
        Upscaler(SHIPPED[0], device="cpu", precision="fp32", kernels="avx2")


def test_a_cpu_without_avx2_never_builds(fresh_simd, tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: old\nflags\t\t: fpu sse4_2 avx\n")
    monkeypatch.setattr(device, "CPUINFO", str(info))
    monkeypatch.setenv("CC", "false")  # would fail if a build were tried
    assert simd.unavailable_reason() == "the CPU has no AVX2 + FMA"
    ok, why = fp32_or_reason(inference_copy(trained_looking(GeneratorSpec(scale=4, blocks=1, width=32), 0)))
    assert why == "the CPU has no AVX2 + FMA" and not isinstance(ok, Fp32SRResNet)


# --------------------------------------------------------------------------- yardsticks


@pytest.mark.parametrize("flags,vendor,prec,want", [
    ("fpu avx fma avx2", ("AuthenticAMD", 23), "fp32", 32),  # Zen 2
    ("fpu avx fma avx2", ("AuthenticAMD", 23), "bf16", 32),  # bf16 emulated
    ("avx fma avx2 avx512f avx512_bf16", ("AuthenticAMD", 25), "fp32", 32),  # Zen 4: 2 x 256
    ("avx fma avx2 avx512f avx512_bf16", ("AuthenticAMD", 25), "bf16", 64),
    ("avx fma avx2 avx512f", ("AuthenticAMD", 26), "fp32", 64),  # Zen 5
    ("avx fma avx2 avx512f", ("GenuineIntel", 6), "fp32", 64),
    ("avx fma avx2 avx512f avx512_bf16 amx_bf16 amx_tile", ("GenuineIntel", 6), "bf16", 1024),
    ("fpu avx", ("GenuineIntel", 6), "fp32", None),
])
def test_peak_flop_per_cycle_from_the_flags(flags, vendor, prec, want):
    assert speed.flop_per_cycle(prec, set(flags.split()), vendor) == want


def test_peak_fraction():
    assert speed.peak_fraction(50.0, 200.0) == pytest.approx(0.25)
    assert speed.peak_fraction(300.0, 200.0) == pytest.approx(1.5)  # Winograd may pass 1
    assert speed.peak_fraction(None, 200.0) is None and speed.peak_fraction(5.0, None) is None


def _speed_json(tiny_weights, tmp_path, *args):
    out = tmp_path / "speed.json"
    r = CliRunner().invoke(main, ["benchmark", "--speed", "-m", str(tiny_weights), "--device",
                                  "cpu", "--size", "8x8", "--runs", "1", "--json", str(out),
                                  *args])
    assert r.exit_code == 0, r.output
    return r.output, json.loads(out.read_text())


def test_speed_report_compares_each_path_with_the_peak_fma_rate(tiny_weights, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setattr(speed, "gemm_rate", lambda *a, **k: 100.0)
    monkeypatch.setattr(simd, "clock_ghz", lambda threads=None: 2.5)
    monkeypatch.setattr(device, "cpu_vendor", lambda: ("AuthenticAMD", 23))
    monkeypatch.setattr(device, "cpu_flags", lambda: {"avx2", "fma"})
    text, data = _speed_json(tiny_weights, tmp_path, "--precision", "fp32")
    threads = torch.get_num_threads()
    peak = threads * 32 * 2.5
    assert data["peak_fma"]["gflops"] == {"fp32": pytest.approx(peak)}
    ours = data["results"][0]
    assert ours["peak_gflops"] == pytest.approx(peak)
    assert ours["peak_fraction"] == pytest.approx(ours["gflops"] / peak)
    assert f"peak FMA ({threads} cores" in text and "2.50 GHz measured" in text
    assert "of the fp32 peak" in text


def test_speed_report_says_why_there_is_no_peak(tiny_weights, tmp_path, monkeypatch):
    monkeypatch.setattr(speed, "gemm_rate", lambda *a, **k: 100.0)
    monkeypatch.setattr(device, "cpu_flags", lambda: {"fpu", "avx"})
    text, data = _speed_json(tiny_weights, tmp_path, "--precision", "fp32")
    assert "no peak FMA rate: the CPU has no AVX2 + FMA" in text
    assert data["results"][0]["peak_fraction"] is None


def test_openvino_baseline_without_the_package_is_a_one_line_error(tiny_weights, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino raises ImportError
    r = CliRunner().invoke(main, ["benchmark", "--speed", "-m", str(tiny_weights), "--device",
                                  "cpu", "--size", "8x8", "--runs", "1", "--baseline", "openvino"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "--baseline openvino needs the openvino package" in r.output


def test_openvino_baseline_times_the_same_network(tiny_weights, tmp_path, monkeypatch):
    pytest.importorskip("openvino", reason="the openvino package is not installed (optional: "
                        "pip install 'srgan[openvino]')")
    monkeypatch.setattr(speed, "gemm_rate", lambda *a, **k: 100.0)
    text, data = _speed_json(tiny_weights, tmp_path, "--precision", "fp32",
                             "--baseline", "openvino")
    ours, ov = data["results"]
    assert ov["label"].startswith("baseline openvino") and ov["precision"] == "fp32"
    assert ov["out_size"] == ours["out_size"] == [32, 32]
    assert "speed-up over OpenVINO" in text


def test_openvino_baseline_computes_the_network(tiny_weights):
    """The timed OpenVINO request computes what the network does (so it times real work)."""
    pytest.importorskip("openvino", reason="the openvino package is not installed")
    net = load_file(tiny_weights).net
    x = torch.rand(1, 3, 12, 20)
    run, _ = speed.openvino_baseline(net.eval(), x, threads=1)
    got = torch.from_numpy(np.asarray(next(iter(run().values()))))
    with torch.no_grad():
        ref = net(x)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)
