"""Building blocks of the SRGAN stage: the discriminator and the VGG content loss."""

import pytest
import torch

from conftest import SHARED, needs_shared
from srgan_cli.errors import WeightsError
from srgan_cli.nets.discriminator import Discriminator
from srgan_cli.nets.vgg import VGGFeatures, content_loss


def test_discriminator_matches_figure_4():
    d = Discriminator()
    convs = [m for m in d.features if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.stride[0], c.kernel_size) for c in convs] == [
        (64, 1, (3, 3)), (64, 2, (3, 3)), (128, 1, (3, 3)), (128, 2, (3, 3)),
        (256, 1, (3, 3)), (256, 2, (3, 3)), (512, 1, (3, 3)), (512, 2, (3, 3))]
    bns = [m for m in d.features if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 7  # all but the first conv
    acts = [m for m in d.modules() if isinstance(m, torch.nn.LeakyReLU)]
    assert len(acts) == 9 and all(a.negative_slope == 0.2 for a in acts)
    dense = [m for m in d.head if isinstance(m, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in dense] == [(512 * 6 * 6, 1024), (1024, 1)]
    assert d(torch.randn(2, 3, 96, 96)).shape == (2,)
    with pytest.raises(ValueError):
        Discriminator(crop=90)


def test_vgg_without_weights_refuses(tmp_path, monkeypatch):
    monkeypatch.setenv("SRGAN_SHARED_DIR", str(tmp_path))
    monkeypatch.delenv("SRGAN_VGG_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no cached torchvision copy
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # and no download attempt
    with pytest.raises(WeightsError, match="--vgg-weights"):
        VGGFeatures.load("vgg54")


@needs_shared("weights", "vgg19-features-imagenet-f16.safetensors")
def test_vgg_content_loss_from_shared_weights():
    vgg = VGGFeatures.load("vgg22", SHARED / "weights" / "vgg19-features-imagenet-f16.safetensors")
    assert not any(p.requires_grad for p in vgg.parameters())
    torch.manual_seed(0)
    hr = torch.rand(1, 3, 32, 32) * 2 - 1
    sr = (hr + 0.2 * torch.randn_like(hr)).requires_grad_()
    assert content_loss(vgg, hr, hr).item() == 0.0
    loss = content_loss(vgg, sr, hr)
    loss.backward()
    assert loss.item() > 0 and sr.grad is not None and sr.grad.abs().sum() > 0
    from safetensors.torch import load_file

    raw = load_file(str(SHARED / "weights" / "vgg19-features-imagenet-f16.safetensors"))
    assert torch.equal(vgg.features[7].weight, raw["7.weight"].float())  # loaded, not random
