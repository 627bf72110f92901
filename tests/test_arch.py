"""The architecture descriptor and registry (``srgan_cli.arch``): its numbers are the real
network's, metadata round-trips, unknown architectures are refused in one line, and each
converter layout is recognised."""

import pytest
import torch
from conftest import trained_looking
from safetensors.torch import load_file, save_file
from test_convert import _twty
from torch import nn

from srgan_cli import arch
from srgan_cli.arch.srresnet import ARCH
from srgan_cli.distribution import layouts, loading
from srgan_cli.distribution.modelfile import save_generator
from srgan_cli.distribution.tensorfile import metadata
from srgan_cli.errors import SrganError, WeightsError
from srgan_cli.nets.generator import GeneratorSpec, SRResNet, count_parameters, to_unit_range

SPECS = [GeneratorSpec(4, 2, 8), GeneratorSpec(2, 3, 5), GeneratorSpec(8, 1, 4),
         GeneratorSpec(4, 1, 6, channels=1), GeneratorSpec()]


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_the_parameter_count_is_that_of_the_built_network(spec):
    d = ARCH.describe(spec)
    net = SRResNet(spec)
    assert d.parameters == count_parameters(net)
    assert ARCH.expected_state(spec) == {k: tuple(v.shape) for k, v in net.state_dict().items()
                                         if v.is_floating_point()}


@pytest.mark.parametrize("spec", SPECS[:4], ids=str)
def test_the_flops_per_lr_pixel_are_those_of_the_networks_convolutions(spec):
    net = SRResNet(spec).eval()
    flops = []

    def count(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1]
        flops.append(2 * out.numel() * m.in_channels * k)

    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(count)
    h, w = 5, 7
    with torch.no_grad():
        net(torch.rand(1, spec.channels, h, w))
    assert ARCH.describe(spec).flops_per_lr_pixel == sum(flops) / (h * w)


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_the_receptive_radius_is_exact(scale):
    """An LR pixel just inside the radius changes the output pixel; one just outside,
    nothing. Checked for every sub-pixel phase of the output and on both sides."""
    spec = GeneratorSpec(scale=scale, blocks=2, width=4)
    r = ARCH.describe(spec).receptive_radius
    net = trained_looking(spec, 1).double()
    n = 2 * r + 7
    q = n // 2
    x = torch.rand(1, 3, n, n, dtype=torch.float64)
    with torch.no_grad():
        base = net(x)

        def changed(lr_row: int) -> torch.Tensor:  # output rows (of column q) that moved
            x2 = x.clone()
            x2[0, :, lr_row, q] += 1.0
            return (net(x2) - base).abs()[0].sum(0)[:, q * scale:(q + 1) * scale].sum(1) > 0

    rows = range(q * scale, (q + 1) * scale)  # the output rows over LR row q
    for side in (-1, 1):
        assert not changed(q + side * (r + 1))[list(rows)].any()
        assert changed(q + side * r)[list(rows)].any()


def test_the_receptive_radius_of_the_shipped_architecture_is_40():
    assert ARCH.describe(GeneratorSpec()).receptive_radius == 40
    assert ARCH.describe(GeneratorSpec()).tile_pad == 40


def test_metadata_round_trips_to_the_same_descriptor(tmp_path):
    for spec in SPECS:
        meta = ARCH.metadata(spec)
        assert meta["arch"] == "srresnet"
        assert arch.from_metadata(meta, "x") == (ARCH, spec)
    spec = GeneratorSpec(2, 1, 4)
    path = tmp_path / "m.safetensors"
    save_generator(SRResNet(spec), path, {"stage": "test"})
    d = loading.facts_of_file(path)
    assert d == ARCH.describe(spec) and d.scale == 2 and d.output_range == (-1.0, 1.0)


def test_an_unknown_architecture_is_refused_in_one_line_naming_the_file(tiny_weights, tmp_path):
    meta = dict(metadata(tiny_weights), arch="rrdbnet")
    bad = tmp_path / "esrgan.safetensors"
    save_file(load_file(str(tiny_weights)), str(bad), metadata=meta)
    with pytest.raises(WeightsError) as e:
        loading.load_file(bad, ours_only=True)
    msg = str(e.value)
    assert "\n" not in msg and str(bad) in msg and "'rrdbnet'" in msg and "srresnet" in msg


def test_a_file_whose_metadata_names_no_architecture_is_refused_naming_the_file(tmp_path):
    bad = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(1)}, str(bad), metadata={"scale": "4"})
    with pytest.raises(WeightsError, match=rf"^{bad}: .*no 'arch'"):
        loading.load_file(bad, ours_only=True)


def test_each_converter_layout_is_recognised():
    assert arch.recognise(_twty().state_dict()) == (ARCH, "twtygqyy")
    assert arch.recognise(SRResNet(GeneratorSpec(4, 1, 4)).state_dict()) == (ARCH, "srgan")
    assert arch.recognise({"encoder.weight": torch.zeros(3, 3)}) is None
    assert {lay.name: lay.arch for lay in layouts.all_layouts()} == {
        "twtygqyy": "srresnet", "srgan": "srresnet"}


def test_a_bare_state_dict_loads_into_the_network_it_describes():
    twty = _twty()
    net, d = ARCH.from_state_dict(twty.state_dict(), "twty.pth")
    assert d == ARCH.describe(GeneratorSpec(4, 2, 8)) and not net.training
    x = torch.rand(1, 3, 6, 5)
    with torch.no_grad():
        assert (net(x) - (2 * twty(x) - 1)).abs().max() < 1e-4
    ours = trained_looking(GeneratorSpec(2, 1, 4), 2)
    back, d = ARCH.from_state_dict(ours.state_dict(), "ours.pth")
    with torch.no_grad():
        assert d.scale == 2 and torch.equal(back(x), ours(x))


def test_the_kernel_choice_says_why_a_family_that_applies_cannot_run_a_network():
    from srgan_cli.inference.kernels import choice
    from srgan_cli.inference.rewrite import inference_copy

    narrow = inference_copy(SRResNet(GeneratorSpec(4, 1, 8)))
    picked = choice.choose(narrow, arch="srresnet", device="cpu", precision="bf16",
                            optimise=True)
    assert picked.kernels == "torch" and picked.net is narrow
    assert "multiple of 32" in picked.note and picked.note.startswith("fused AMX kernels")
    # the caller's own settings rule the kernels out without a note
    for arch_name, device, precision in (("spandrel", "cpu", "bf16"), ("srresnet", "cpu", "fp16"),
                                         ("srresnet", "cuda", "fp32")):
        quiet = choice.choose(narrow, arch=arch_name, device=device, precision=precision,
                               optimise=True)
        assert (quiet.kernels, quiet.note) == ("torch", None)
    with pytest.raises(SrganError, match="^--kernels amx: the fused kernels cannot run: no "
                                         "fused kernels exist for spandrel$"):
        choice.choose(narrow, arch="spandrel", device="cpu", precision="bf16",
                       optimise=True, requested="amx")
    assert choice.CHOICES == ("auto", "amx", "avx2", "torch")


def test_activation_memory_counts_bands_at_the_precisions_bytes():
    m = ARCH.describe(GeneratorSpec()).memory
    assert m.bytes_per_px() == 3 * 64 * 16 * 4  # three 64-map tensors at 4x4 output px, fp32
    assert m.bytes_per_px(True, 2) < m.bytes_per_px(True, 4) < m.bytes_per_px()
    assert m.fixed_bytes(True) > 0 and m.fixed_bytes(False) == 0


def test_the_output_range_maps_to_the_unit_range():
    y = torch.tensor([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0])
    assert to_unit_range(y.clone()).tolist() == [0.0, 0.0, 0.5, 0.75, 1.0, 1.0]
    assert to_unit_range(y.clone(), (0.0, 1.0)).tolist() == [0.0, 0.0, 0.0, 0.5, 1.0, 1.0]


def test_a_registry_entry_counts_its_parameters_through_its_architectures_facts(tmp_path):
    from srgan_cli.distribution.registry import RegistryEntry

    e = RegistryEntry(name="t", filename="t.safetensors", spec=GeneratorSpec(2, 3, 5))
    assert e.parameters == count_parameters(SRResNet(GeneratorSpec(2, 3, 5))) and e.scale == 2
    odd = RegistryEntry(name="t", filename="t.safetensors", spec=GeneratorSpec(), arch="swinir")
    with pytest.raises(WeightsError, match="unknown architecture 'swinir'"):
        odd.parameters  # noqa: B018 - the property raises
