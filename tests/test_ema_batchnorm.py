"""The EMA's BatchNorm statistics fit its weights: averaged like them during training, and
recomputable at export (``srgan models export --recalibrate-bn N``). Copied from the
generator, they did not (run gr2's EMA lost 2.2 dB of Set5 Y-PSNR to a colour shift)."""

import torch
from click.testing import CliRunner
from conftest import make_train_dir
from test_train import tiny_cfg

from srgan_cli.cli import main
from srgan_cli.distribution.loading import load_file
from srgan_cli.train.export import export, recalibrate_bn
from srgan_cli.train.loop import train
from srgan_cli.train.state import load_checkpoint


def _bn_stats(state: dict) -> dict:
    return {k: v for k, v in state.items() if k.endswith(("running_mean", "running_var"))}


def test_the_ema_averages_batchnorm_statistics_as_it_averages_weights(tmp_path):
    data = make_train_dir(tmp_path / "train", 4, 64, 80, seed=10)
    run = tmp_path / "run"
    train(tiny_cfg(data, run, ema=0.5, iters=1, ckpt_every=1, val_every=0))
    one = load_checkpoint(run / "last.pt")
    train(tiny_cfg(data, run, ema=0.5, iters=2, ckpt_every=1, val_every=0),
          resume=run / "last.pt")
    two = load_checkpoint(run / "last.pt")
    stats = _bn_stats(two["model"])
    assert stats
    for k in stats:  # EMA_2 = (EMA_1 + model_2) / 2, statistics included
        want = (one["ema"][k] + two["model"][k]) / 2
        assert torch.allclose(two["ema"][k], want, atol=1e-6), k
        assert not torch.allclose(two["ema"][k], two["model"][k]), k
    assert torch.equal(two["ema"]["body.0.bn1.num_batches_tracked"],
                       two["model"]["body.0.bn1.num_batches_tracked"])


def test_recalibration_sets_each_norm_to_the_mean_of_its_batch_statistics():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4))
    net[1].running_mean.fill_(5.0)
    batches = [torch.rand(2, 3, 8, 8) * (i + 1) for i in range(3)]
    with torch.no_grad():
        feats = [net[0](x) for x in batches]
    assert recalibrate_bn(net, batches) == 1
    assert not net.training
    mean = torch.stack([f.mean((0, 2, 3)) for f in feats]).mean(0)
    var = torch.stack([f.transpose(0, 1).reshape(4, -1).var(1) for f in feats]).mean(0)
    assert torch.allclose(net[1].running_mean, mean, atol=1e-5)
    assert torch.allclose(net[1].running_var, var, atol=1e-5)
    assert net[1].momentum == 0.1  # restored for any later training


def test_a_network_without_batchnorm_is_left_alone():
    net = torch.nn.Conv2d(3, 3, 1)
    calls = []
    assert recalibrate_bn(net, (calls.append(1) or torch.zeros(1, 3, 2, 2) for _ in range(2))) == 0
    assert calls == []


def test_export_recalibrates_the_ema_on_the_runs_data_and_says_so(tmp_path):
    data = make_train_dir(tmp_path / "train", 4, 64, 80, seed=10)
    run = tmp_path / "run"
    train(tiny_cfg(data, run, ema=0.5, iters=3, val_every=0))
    ckpt = load_checkpoint(run / "last.pt")
    plain = load_file(export(run / "last.pt", tmp_path / "a.safetensors", weights="ema"),
                      ours_only=True)
    out = export(run / "last.pt", tmp_path / "b.safetensors", weights="ema", bn_batches=2)
    again = export(run / "last.pt", tmp_path / "c.safetensors", weights="ema", bn_batches=2)
    info = load_file(out, ours_only=True)
    assert "2 batches of 4 32-px crops" in info.metadata["bn_recalibrated"]
    assert "bn_recalibrated" not in plain.metadata
    got, kept = info.net.state_dict(), plain.net.state_dict()
    for k in _bn_stats(ckpt["ema"]):
        assert torch.equal(kept[k], ckpt["ema"][k]), k
        assert not torch.allclose(got[k], kept[k]), k
        assert torch.equal(got[k], load_file(again, ours_only=True).net.state_dict()[k]), k
    for k, v in ckpt["ema"].items():  # the weights themselves are the EMA's
        if "running" not in k and "num_batches" not in k:
            assert torch.equal(got[k], v), k


def test_export_without_the_runs_images_is_one_line(tmp_path):
    data = make_train_dir(tmp_path / "train", 4, 64, 80, seed=10)
    run = tmp_path / "run"
    train(tiny_cfg(data, run, ema=0.5, iters=1, val_every=0))
    for p in data.iterdir():
        p.unlink()
    r = CliRunner().invoke(main, ["models", "export", str(run / "last.pt"),
                                  str(tmp_path / "w.safetensors"), "--recalibrate-bn", "2"])
    assert r.exit_code != 0
    assert "BatchNorm recalibration: no images found" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "w.safetensors").exists()
