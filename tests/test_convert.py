"""Converting other projects' SRResNet state dicts (``srgan_cli.distribution.convert``)."""

import pytest
import torch
from torch import nn

from srgan_cli.distribution.convert import convert
from srgan_cli.distribution.loading import load_file
from srgan_cli.errors import ConvertError
from srgan_cli.nets.generator import GeneratorSpec


class _TwtyBlock(nn.Module):
    """The twtygqyy/pytorch-SRResNet residual block's layout (written for this test)."""

    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.LeakyReLU(0.2)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        return x + self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))


class _TwtyNet(nn.Module):
    def __init__(self, c=8, blocks=2):
        super().__init__()
        self.conv_input = nn.Conv2d(3, c, 9, 1, 4, bias=False)
        self.relu = nn.LeakyReLU(0.2)
        self.residual = nn.Sequential(*[_TwtyBlock(c) for _ in range(blocks)])
        self.conv_mid = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn_mid = nn.BatchNorm2d(c)
        self.upscale4x = nn.Sequential(
            nn.Conv2d(c, 4 * c, 3, 1, 1, bias=False), nn.PixelShuffle(2), nn.LeakyReLU(0.2),
            nn.Conv2d(c, 4 * c, 3, 1, 1, bias=False), nn.PixelShuffle(2), nn.LeakyReLU(0.2))
        self.conv_output = nn.Conv2d(c, 3, 9, 1, 4, bias=False)

    def forward(self, x):
        out = self.relu(self.conv_input(x))
        out = self.bn_mid(self.conv_mid(self.residual(out))) + out
        return self.conv_output(self.upscale4x(out))


def _twty(seed=0):
    torch.manual_seed(seed)
    net = _TwtyNet()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    return net.eval()


def test_convert_twtygqyy_layout_matches_numerically(tmp_path):
    net = _twty()
    src = tmp_path / "model_srresnet.pth"
    torch.save({"epoch": 3, "model": net.state_dict()}, src)
    dst = tmp_path / "converted.safetensors"
    layout, _ = convert(src, dst)
    assert layout == "twtygqyy"
    info = load_file(dst, ours_only=True)
    ours = info.net
    assert info.spec == GeneratorSpec(4, 2, 8) and info.metadata["source_layout"] == "twtygqyy"
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        theirs = net(x)  # [0, 1] convention
        mine = ours(x)  # [-1, 1] convention
    assert mine.shape == theirs.shape == (1, 3, 48, 40)
    assert (mine - (2 * theirs - 1)).abs().max().item() < 1e-4


def test_convert_refusals(tmp_path):
    unknown = tmp_path / "unknown.pth"
    torch.save({"encoder.weight": torch.zeros(3, 3)}, unknown)
    with pytest.raises(ConvertError, match="unrecognised state-dict layout"):
        convert(unknown, tmp_path / "a.safetensors")

    pickled = tmp_path / "module.pth"
    torch.save(_twty(), pickled)  # a whole nn.Module: never unpickled
    with pytest.raises(ConvertError, match="refused"):
        convert(pickled, tmp_path / "b.safetensors")

    sd = _twty().state_dict()
    sd["conv_mid.weight"] = torch.zeros(8, 8, 5, 5)
    bad = tmp_path / "bad.pth"
    torch.save(sd, bad)
    with pytest.raises(ConvertError, match=r"fuse.conv.weight has shape \(8, 8, 5, 5\)"):
        convert(bad, tmp_path / "c.safetensors")

    sd = {k.replace(".bn1.", ".in1.").replace(".bn2.", ".in2."): v
          for k, v in _twty().state_dict().items() if "running" not in k and "batches" not in k}
    inorm = tmp_path / "inorm.pth"
    torch.save(sd, inorm)  # the InstanceNorm variant: no fixed-statistics equivalent
    with pytest.raises(ConvertError, match="InstanceNorm"):
        convert(inorm, tmp_path / "e.safetensors")

    sd = _twty().state_dict()
    del sd["conv_mid.weight"]
    missing = tmp_path / "missing.pth"
    torch.save(sd, missing)
    with pytest.raises(ConvertError, match="missing tensor conv_mid.weight"):
        convert(missing, tmp_path / "f.safetensors")

    sd = _twty().state_dict()
    sd["extra.weight"] = torch.zeros(1)
    extra = tmp_path / "extra.pth"
    torch.save(sd, extra)
    with pytest.raises(ConvertError, match="does not use"):
        convert(extra, tmp_path / "d.safetensors")
    assert not list(tmp_path.glob("?.safetensors"))


def test_convert_our_own_state_dict(tmp_path, tiny_weights):
    model = load_file(tiny_weights, ours_only=True).net
    src = tmp_path / "ours.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, src)
    layout, info = convert(src, tmp_path / "ours.safetensors")
    back = load_file(tmp_path / "ours.safetensors", ours_only=True).net
    x = torch.rand(1, 3, 9, 9)
    with torch.no_grad():
        assert layout == "srgan" and torch.equal(back(x), model(x))
