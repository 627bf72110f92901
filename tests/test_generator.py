import pytest
import torch

from srgan_cli.nets.generator import GeneratorSpec, SRResNet, count_parameters, to_unit_range


@pytest.mark.parametrize("scale,params", [(2, 1_402_883), (4, 1_550_659), (8, 1_698_435)])
def test_shapes_and_parameter_count(scale, params):
    model = SRResNet(GeneratorSpec(scale=scale)).eval()
    assert count_parameters(model) == params
    with torch.no_grad():
        y = model(torch.rand(1, 3, 7, 11))
    assert y.shape == (1, 3, 7 * scale, 11 * scale)


def test_default_is_the_paper_network():
    model = SRResNet()
    assert abs(count_parameters(model) - 1.55e6) < 0.01e6
    assert len(model.body) == 16 and len(model.up) == 2
    assert model.head.conv.kernel_size == (9, 9) and model.tail.kernel_size == (9, 9)
    assert model.up[0].conv.out_channels == 256
    assert isinstance(model.body[0].bn1, torch.nn.BatchNorm2d)
    assert abs(GeneratorSpec().flops_per_lr_pixel() - 4.44e6) < 0.01e6


def test_configurable_depth_and_width():
    model = SRResNet(GeneratorSpec(blocks=3, width=16))
    assert len(model.body) == 3 and model.head.conv.out_channels == 16


@pytest.mark.parametrize("bad", [dict(scale=3), dict(blocks=0), dict(width=0)])
def test_invalid_specs_rejected(bad):
    with pytest.raises(ValueError):
        GeneratorSpec(**bad)


def test_to_unit_range_maps_and_clamps():
    y = torch.tensor([-2.0, -1.0, 0.0, 1.0, 3.0])
    assert to_unit_range(y).tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]
