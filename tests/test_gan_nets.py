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


def _codebook_file(path, state):
    """``state`` written in the u8 codebook form: each weight as idx (uint8) + codebook."""
    from safetensors.torch import save_file

    out = {}
    for k, v in state.items():
        if k.endswith("weight"):
            book, idx = torch.unique(v.half(), return_inverse=True)
            assert book.numel() <= 256
            out[k + ".codebook"] = torch.cat([book, book.new_zeros(256 - book.numel())])
            out[k + ".idx"] = idx.to(torch.uint8)
        else:
            out[k] = v.half()
    save_file(out, str(path), metadata={"format": "codebook-u8"})


def test_vgg_loads_the_u8_codebook_form_to_the_same_weights(tmp_path):
    from torchvision.models import vgg19

    torch.manual_seed(0)
    levels = torch.linspace(-0.1, 0.1, 200)  # at most 256 distinct values per tensor
    state = {k: (levels[torch.randint(200, v.shape)] if k.endswith("weight") else v.half().float())
             for k, v in vgg19(weights=None).features[:9].state_dict().items()}
    path = tmp_path / "vgg-u8.safetensors"
    _codebook_file(path, state)
    vgg = VGGFeatures.load("vgg22", path)
    for k, v in vgg.features.state_dict().items():
        assert torch.equal(v, state[k].half().float()), k


def test_a_codebook_without_its_index_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "broken.safetensors"
    save_file({"0.weight.codebook": torch.zeros(256, dtype=torch.float16)}, str(path))
    with pytest.raises(WeightsError, match="broken.safetensors.*no matching .idx"):
        VGGFeatures.load("vgg22", path)


@needs_shared("weights", "vgg19-features-imagenet-u8.safetensors")
@needs_shared("weights", "vgg19-features-imagenet-f16.safetensors")
def test_shared_u8_vgg_file_decodes_exactly_to_the_f16_file():
    from safetensors.torch import load_file

    from srgan_cli.nets.vgg import decode_state

    u8 = decode_state(load_file(str(SHARED / "weights" / "vgg19-features-imagenet-u8.safetensors")))
    f16 = load_file(str(SHARED / "weights" / "vgg19-features-imagenet-f16.safetensors"))
    assert sorted(u8) == sorted(f16)
    for k in f16:
        assert u8[k].dtype == f16[k].dtype and torch.equal(u8[k], f16[k]), k


def test_the_u8_vgg_file_is_preferred_in_the_shared_folder(tmp_path, monkeypatch):
    from srgan_cli.nets.vgg import SHARED_FILES, default_weights

    w = tmp_path / "weights"
    w.mkdir()
    monkeypatch.setenv("SRGAN_SHARED_DIR", str(tmp_path))
    monkeypatch.delenv("SRGAN_VGG_WEIGHTS", raising=False)
    (w / SHARED_FILES[1]).write_bytes(b"")
    assert default_weights() == w / "vgg19-features-imagenet-f16.safetensors"  # only f16: used
    (w / SHARED_FILES[0]).write_bytes(b"")
    assert default_weights() == w / "vgg19-features-imagenet-u8.safetensors"


def test_the_unet_discriminator_gives_a_logit_per_pixel_with_spectrally_normalised_layers():
    from srgan_cli.nets.discriminator import UNetDiscriminator

    torch.manual_seed(0)
    d = UNetDiscriminator(width=8)
    x = torch.randn(2, 3, 32, 48)
    assert d(x).shape == (2, 32, 48)
    for _ in range(40):  # the power iteration converges over forward passes in train mode
        d(x)
    normed = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)
              and torch.nn.utils.parametrize.is_parametrized(m)]
    assert len(normed) == 8  # all but the first convolution and the head
    for conv in normed:
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert abs(float(sigma) - 1.0) < 0.05
    # each logit depends mostly on its own neighbourhood: the gradient of one corner's
    # logit is largest near that corner
    x = torch.randn(1, 3, 64, 64, requires_grad=True)
    d.eval()(x)[0, 3, 3].backward()
    g = x.grad.abs().sum(1)[0]
    assert g[:16, :16].sum() > 4 * g[32:, 32:].sum()
    with pytest.raises(ValueError, match="multiples of 8"):
        d(torch.randn(1, 3, 36, 48))
