"""The GAN stage (Sec. 2.2 of the paper): losses, discriminator updates, exact resume,
EMA, export, and DistributedDataParallel with 2 CPU processes (gloo)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import make_train_dir, make_val_dir
from safetensors.torch import save_file

from srgan_cli.cli import main
from srgan_cli.distribution.loading import load_file
from srgan_cli.errors import TrainError
from srgan_cli.train.config import TrainConfig
from srgan_cli.train.export import export
from srgan_cli.train.loop import train
from srgan_cli.train.state import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory) -> Path:
    """A VGG19 ``features`` file in torchvision's layout. Its weights are random: these tests
    check the training mechanics, not perceptual quality (real runs use ImageNet weights)."""
    from torchvision.models import vgg19

    torch.manual_seed(0)
    state = {k: v.half().contiguous() for k, v in vgg19(weights=None).features.state_dict().items()}
    path = tmp_path_factory.mktemp("vgg") / "vgg19-test.safetensors"
    save_file(state, str(path))
    return path


@pytest.fixture
def data(tmp_path) -> Path:
    return make_train_dir(tmp_path / "train", 4, 48, 56, seed=30)


@pytest.fixture
def val_dir(tmp_path) -> Path:
    return make_val_dir(tmp_path / "Val", 1, 32, 48, seed=40)


@pytest.fixture
def pretrained(data, tmp_path) -> Path:
    """A tiny generator from a short SRResNet stage, released as a file (the GAN's --init)."""
    run = tmp_path / "pre"
    train(TrainConfig(data=[str(data)], run_dir=str(run), iters=2, batch=2, crop=32, blocks=1,
                      width=8, precision="fp32", device="cpu", log_every=1))
    return export(run / "last.pt", tmp_path / "pre.safetensors")


def gan_cfg(data, run, pretrained, vgg_file, **kw) -> TrainConfig:
    base = dict(data=[str(data)], run_dir=str(run), stage="gan", iters=4, batch=2, crop=32,
                blocks=1, width=8, lr=1e-3, ckpt_every=2, val_every=2, log_every=1,
                precision="fp32", device="cpu", seed=3, init=str(pretrained),
                content_loss="vgg54", vgg_weights=str(vgg_file))
    base.update(kw)
    return TrainConfig(**base)


def log_of(run: Path) -> list[dict]:
    return [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines()]


def test_gan_stage_updates_both_networks_and_logs_the_named_losses(data, tmp_path, pretrained,
                                                                   vgg_file, val_dir):
    run = tmp_path / "gan"
    train(gan_cfg(data, run, pretrained, vgg_file, val_dir=str(val_dir)))
    steps = [r for r in log_of(run) if "l_d" in r]
    assert len(steps) == 4
    for r in steps:
        assert {"l_g_pix", "l_g_percep", "l_g_gan", "l_d", "d_real", "d_fake"} <= r.keys()
        assert r["l_d"] > 0 and 0 < r["d_real"] < 1 and 0 < r["d_fake"] < 1
    assert any("val_psnr" in r for r in log_of(run))
    ckpt = load_checkpoint(run / "last.pt")
    assert {"disc", "optim_d", "scaler_d"} <= ckpt.keys()
    assert ckpt["optim_d"]["state"], "the discriminator was never stepped"
    start = load_file(pretrained, ours_only=True).net
    moved = [k for k, v in start.state_dict().items()
             if v.is_floating_point() and not torch.equal(ckpt["model"][k], v)]
    assert moved, "the generator did not move from its --init weights"
    info = load_file(export(run / "last.pt", tmp_path / "srgan.safetensors"), ours_only=True)
    assert info.stage == "gan" and info.iterations == 4  # GAN iterations, not SRResNet's
    assert info.metadata["content_loss"] == "vgg54" and info.metadata["adv_weight"] == "0.001"
    assert "pre.safetensors" in info.metadata["init"]


def test_a_gan_run_with_the_multi_layer_and_artifact_losses_logs_them_and_exports_their_weights(
        data, tmp_path, pretrained, vgg_file):
    run = tmp_path / "multi"
    train(gan_cfg(data, run, pretrained, vgg_file, iters=2, content_loss="vgg-multi",
                  content_weight=2e-3, artifact_weight=100.0, ema=0.9))
    steps = [r for r in log_of(run) if "l_d" in r]
    assert len(steps) == 2 and all(r["l_g_percep"] > 0 and "l_g_artifact" in r for r in steps)
    info = load_file(export(run / "last.pt", tmp_path / "m.safetensors"), ours_only=True)
    assert info.metadata["content_loss"] == "vgg-multi"
    assert info.metadata["content_weight"] == "0.002"
    assert info.metadata["artifact_weight"] == "100.0"
    with pytest.raises(TrainError, match="--content-weight 0.001 differ"):  # kept on resume
        train(gan_cfg(data, run, pretrained, vgg_file, iters=3, content_loss="vgg-multi",
                      content_weight=1e-3, artifact_weight=100.0, ema=0.9),
              resume=run / "last.pt")


def test_a_gan_run_with_the_lattice_filter_trains_through_it_and_exports_it(data, tmp_path,
                                                                          pretrained, vgg_file):
    from srgan_cli.nets.delattice import Delattice

    run = tmp_path / "filtered"
    train(gan_cfg(data, run, pretrained, vgg_file, iters=1, delattice=3))
    ckpt = load_checkpoint(run / "last.pt")
    assert json.loads(ckpt["spec"])["delattice"] == 3
    info = load_file(export(run / "last.pt", tmp_path / "f.safetensors"), ours_only=True)
    assert info.net.spec.delattice == 3 and isinstance(info.net.post, Delattice)
    assert info.metadata["delattice"] == "3"
    # the unfiltered --init file is accepted as the parent of the filtered run
    export(run / "last.pt", tmp_path / "p.safetensors", parent=pretrained)
    # a run from a filtered file keeps its filter unless --delattice says otherwise
    kept, dropped = tmp_path / "kept", tmp_path / "dropped"
    filtered = tmp_path / "f.safetensors"
    train(gan_cfg(data, kept, filtered, vgg_file, iters=1))
    train(gan_cfg(data, dropped, filtered, vgg_file, iters=1, delattice=0))
    assert json.loads(load_checkpoint(kept / "last.pt")["spec"])["delattice"] == 3
    assert json.loads(load_checkpoint(dropped / "last.pt")["spec"])["delattice"] == 0


def test_a_gan_run_distils_a_teacher_and_records_it(data, tmp_path, pretrained, vgg_file):
    run = tmp_path / "distil"
    train(gan_cfg(data, run, pretrained, vgg_file, iters=2, teacher=str(pretrained),
                  teacher_weight=5.0))
    steps = [r for r in log_of(run) if "l_d" in r]
    assert len(steps) == 2 and all(r["l_g_teacher"] > 0 for r in steps)
    info = load_file(export(run / "last.pt", tmp_path / "d.safetensors"), ours_only=True)
    assert info.metadata["teacher"] == "pre.safetensors"
    assert info.metadata["teacher_weight"] == "5.0" and info.metadata["teacher_loss"] == "l1"
    from srgan_cli.distribution.hub import sha256_file

    assert info.metadata["teacher_sha256"] == sha256_file(pretrained)
    # on degraded LR, the teacher fed the clean downscale
    clean = tmp_path / "clean"
    train(gan_cfg(data, clean, pretrained, vgg_file, iters=1, teacher=str(pretrained),
                  teacher_weight=5.0, teacher_input="clean", degradation="real",
                  teacher_delattice=4))
    assert [r["l_g_teacher"] > 0 for r in log_of(clean) if "l_d" in r] == [True]
    meta = load_file(export(clean / "last.pt", tmp_path / "c.safetensors"), ours_only=True).metadata
    assert meta["teacher_input"] == "clean" and meta["degradation"].startswith("real")
    assert meta["teacher_delattice"] == "4" and "teacher_on" not in meta
    # the term on the clean crops only: recorded, and refused where it means nothing
    only = tmp_path / "clean_only"
    train(gan_cfg(data, only, pretrained, vgg_file, iters=1, teacher=str(pretrained),
                  teacher_weight=5.0, teacher_input="clean", teacher_on="clean",
                  degradation="real,clean_prob=0.5"))
    assert "l_g_teacher" in [r for r in log_of(only) if "l_d" in r][0]
    meta = load_file(export(only / "last.pt", tmp_path / "o.safetensors"), ours_only=True).metadata
    assert meta["teacher_on"] == "clean"
    with pytest.raises(TrainError, match="--teacher-on clean needs --degradation real"):
        train(gan_cfg(data, tmp_path / "bad5", pretrained, vgg_file, teacher=str(pretrained),
                      teacher_weight=1.0, teacher_on="clean"))
    with pytest.raises(TrainError, match="--teacher-on clean needs --teacher MODEL"):
        train(gan_cfg(data, tmp_path / "bad6", pretrained, vgg_file, teacher_on="clean"))
    with pytest.raises(TrainError, match="unknown --teacher-on"):
        TrainConfig(data=[str(data)], stage="gan", teacher_on="some")
    # a resumed run whose --teacher now resolves to other weights is refused
    from srgan_cli.distribution.modelfile import save_generator

    info0 = load_file(pretrained, ours_only=True)  # (this test's own file)
    save_generator(info0.net, pretrained, {**dict(info0.metadata), "note": "changed"})
    with pytest.raises(TrainError, match="the run distilled pre.safetensors"):
        train(gan_cfg(data, run, pretrained, vgg_file, iters=3, teacher=str(pretrained),
                      teacher_weight=5.0), resume=run / "last.pt")
    with pytest.raises(TrainError, match="--teacher-delattice needs --teacher"):
        train(gan_cfg(data, tmp_path / "bad4", pretrained, vgg_file, teacher_delattice=8))
    with pytest.raises(TrainError, match="--teacher-loss content needs a VGG content loss"):
        train(gan_cfg(data, tmp_path / "bad3", pretrained, vgg_file, content_loss="mse",
                      teacher=str(pretrained), teacher_weight=1.0, teacher_loss="content"))
    for kw in (dict(teacher=str(pretrained)), dict(teacher_weight=1.0)):
        with pytest.raises(TrainError, match="--teacher MODEL and --teacher-weight W go together"):
            train(gan_cfg(data, tmp_path / "bad", pretrained, vgg_file, **kw))
    with pytest.raises(TrainError, match="no-such.safetensors"):
        train(gan_cfg(data, tmp_path / "bad2", pretrained, vgg_file,
                      teacher=str(tmp_path / "no-such.safetensors"), teacher_weight=1.0))


def test_a_gan_run_can_weigh_the_adversarial_term_on_degraded_crops_and_records_it(
        data, tmp_path, pretrained, vgg_file):
    run = tmp_path / "adv_degraded"
    train(gan_cfg(data, run, pretrained, vgg_file, iters=1, adv_degraded=0.0,
                  degradation="real,clean_prob=0.5"))
    assert [r["l_g_gan"] >= 0 for r in log_of(run) if "l_d" in r] == [True]
    meta = load_file(export(run / "last.pt", tmp_path / "a.safetensors"), ours_only=True).metadata
    assert meta["adv_degraded"] == "0.0"
    with pytest.raises(TrainError, match="--adv-degraded weighs .* needs --stage gan and "
                                         "--degradation real"):
        train(gan_cfg(data, tmp_path / "bad", pretrained, vgg_file, adv_degraded=0.5))


def test_gan_resume_continues_exactly(data, tmp_path, pretrained, vgg_file):
    full, part = tmp_path / "full", tmp_path / "part"
    train(gan_cfg(data, full, pretrained, vgg_file, ema=0.9))
    train(gan_cfg(data, part, pretrained, vgg_file, ema=0.9, iters=2))
    train(gan_cfg(data, part, pretrained, vgg_file, ema=0.9), resume=part / "last.pt")
    keys = ("l_g_pix", "l_g_percep", "l_g_gan", "l_d")
    a = [[r[k] for k in keys] for r in log_of(full) if "l_d" in r]
    b = [[r[k] for k in keys] for r in log_of(part) if "l_d" in r]
    assert a == b
    sa, sb = load_checkpoint(full / "last.pt"), load_checkpoint(part / "last.pt")
    for part_name in ("model", "disc", "ema"):
        for k in sa[part_name]:
            assert torch.equal(sa[part_name][k], sb[part_name][k]), (part_name, k)
    assert sa["optim_d"]["state"][0]["step"] == sb["optim_d"]["state"][0]["step"] == 4


def test_ema_is_what_gets_exported(data, tmp_path, pretrained, vgg_file):
    run = tmp_path / "ema"
    train(gan_cfg(data, run, pretrained, vgg_file, ema=0.5, content_loss="mse"))
    ckpt = load_checkpoint(run / "last.pt")
    k = "head.0.weight" if "head.0.weight" in ckpt["model"] else next(iter(ckpt["ema"]))
    assert not torch.equal(ckpt["ema"][k], ckpt["model"][k])
    info = load_file(export(run / "last.pt", tmp_path / "e.safetensors"), ours_only=True)
    model = info.net
    assert torch.equal(model.state_dict()[k], ckpt["ema"][k]) and info.metadata["ema"] == "0.5"
    assert not any("l_g_percep" in r for r in log_of(run))  # mse content: no VGG term
    raw_info = load_file(export(run / "last.pt", tmp_path / "m.safetensors",
                                          weights="model"), ours_only=True)
    raw = raw_info.net
    assert torch.equal(raw.state_dict()[k], ckpt["model"][k]) and "ema" not in raw_info.metadata
    assert "val_set5_psnr" not in raw_info.metadata  # that validation scored the EMA


def test_exporting_the_ema_of_a_run_without_one_is_refused(data, tmp_path, pretrained,
                                                              vgg_file):
    run = tmp_path / "no_ema"
    train(gan_cfg(data, run, pretrained, vgg_file, ema=0.0, content_loss="mse"))
    with pytest.raises(TrainError, match="no EMA"):
        export(run / "last.pt", tmp_path / "e.safetensors", weights="ema")


def test_gan_needs_generator_weights_and_a_real_vgg(data, tmp_path, pretrained, monkeypatch):
    with pytest.raises(TrainError, match="--init"):
        train(gan_cfg(data, tmp_path / "a", None, None, init=""))  # None: the stage default
    monkeypatch.setenv("SRGAN_SHARED_DIR", str(tmp_path / "nowhere"))
    monkeypatch.delenv("SRGAN_VGG_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TrainError, match="VGG19"):
        train(gan_cfg(data, tmp_path / "b", pretrained, None, vgg_weights=None))
    with pytest.raises(TrainError, match="multiple of 16"):
        train(gan_cfg(data, tmp_path / "c", pretrained, None, crop=40, content_loss="mse"))


def test_srresnet_checkpoint_cannot_resume_the_gan_stage(data, tmp_path, pretrained, vgg_file):
    pre_ckpt = tmp_path / "pre" / "last.pt"
    with pytest.raises(TrainError, match="--init"):
        train(gan_cfg(data, tmp_path / "g", pretrained, vgg_file), resume=pre_ckpt)


def test_cli_gan_stage_defaults(data, tmp_path, pretrained, vgg_file):
    run = tmp_path / "cli"
    r = CliRunner().invoke(main, [
        "train", "--stage", "gan", "--data", str(data), "--run-dir", str(run), "--iters", "2",
        "--batch", "2", "--crop", "32", "--blocks", "1", "--width", "8", "--precision", "fp32",
        "--device", "cpu", "--init", str(pretrained), "--vgg-weights", str(vgg_file),
        "--export", str(tmp_path / "out.safetensors")])
    assert r.exit_code == 0, r.output
    cfg = json.loads(load_checkpoint(run / "last.pt")["config"])
    assert cfg["content_loss"] == "vgg54" and cfg["adv_weight"] == 1e-3
    assert cfg["lr_schedule"] == "step" and cfg["lr_milestones"] == [100000]
    assert cfg["pixel_weight"] == 0.0 and cfg["adv_warmup"] == 0  # the paper's recipe
    info = load_file(tmp_path / "out.safetensors", ours_only=True)
    assert info.stage == "gan"


def test_a_gan_config_from_python_gets_the_papers_recipe():
    cfg = TrainConfig(data=["d"], stage="gan")
    assert (cfg.content_loss, cfg.lr_schedule, cfg.lr_milestones) == ("vgg54", "step", [100_000])
    assert (cfg.iters, cfg.init, cfg.run_dir) == (200_000, "srresnet", str(Path("runs/gan")))
    sr = TrainConfig(data=["d"])
    assert (sr.content_loss, sr.lr_schedule, sr.lr_milestones) == ("mse", "constant", [])
    assert (sr.iters, sr.init, sr.run_dir) == (1_000_000, None, str(Path("runs/srresnet")))
    # what is given is kept; a cosine gan run gets no step milestones
    own = TrainConfig(data=["d"], stage="gan", content_loss="mse", lr_schedule="cosine", iters=5)
    assert (own.content_loss, own.lr_schedule, own.lr_milestones, own.iters) == (
        "mse", "cosine", [], 5)
    with pytest.raises(TrainError, match="unknown stage"):
        TrainConfig(data=["d"], stage="esrgan")


@pytest.mark.parametrize("stage", ["srresnet", "gan"])
def test_the_cli_trains_exactly_the_config_python_gets_by_default(stage, data, tmp_path,
                                                                  monkeypatch):
    import srgan_cli.train.loop as loop

    seen = []

    def fake_train(cfg, resume=None, on_progress=None):
        seen.append(cfg)
        raise TrainError("stopped by the test")

    monkeypatch.setattr(loop, "train", fake_train)
    monkeypatch.chdir(tmp_path)
    val = tmp_path / "Val"
    r = CliRunner().invoke(main, ["train", "--stage", stage, "--data", str(data),
                                  "--val-dir", str(val)])
    assert r.exit_code == 1 and "stopped by the test" in r.output
    assert seen == [TrainConfig(data=[str(data)], stage=stage, val_dir=str(val))]


def test_ddp_two_cpu_processes_stay_identical(data, tmp_path, pretrained, vgg_file, val_dir):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "srgan_cli", "train", "--stage", "gan",
           "--data", str(data), "--run-dir", str(run), "--iters", "4", "--batch", "4",
           "--crop", "32", "--blocks", "1", "--width", "8", "--precision", "fp32",
           "--device", "cpu", "--init", str(pretrained), "--vgg-weights", str(vgg_file),
           "--ckpt-every", "2", "--val-dir", str(val_dir)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    recs = log_of(run)
    checks = [r for r in recs if "rank_max_diff" in r]
    assert [r["iteration"] for r in checks] == [2, 4]
    assert all(r["ranks"] == 2 and r["rank_max_diff"] == 0.0 for r in checks)
    assert "(2 + 2 over 2 processes)" in p.stderr  # each rank has its own half of the data
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["iteration"] == 4 and len(ckpt["data_rng_ranks"]) == 2
    assert not torch.equal(ckpt["data_rng_ranks"][0], ckpt["data_rng_ranks"][1])


# --------------------------------------------------------------------------- recipe aids


def test_adversarial_weight_ramps_linearly_over_the_warmup_then_holds():
    from srgan_cli.train.config import adv_weight_at

    cfg = TrainConfig(data=[], stage="gan", adv_weight=1e-3, adv_warmup=4)
    assert [adv_weight_at(cfg, i) for i in range(6)] == pytest.approx(
        [0.25e-3, 0.5e-3, 0.75e-3, 1e-3, 1e-3, 1e-3])
    paper = TrainConfig(data=[], stage="gan")
    assert paper.adv_warmup == 0 and paper.pixel_weight == 0.0  # the paper's recipe
    assert adv_weight_at(paper, 0) == adv_weight_at(paper, 10**5) == 1e-3


def test_the_training_loop_uses_the_ramped_adversarial_weight(data, tmp_path, pretrained,
                                                              vgg_file):
    """Iteration 0 of a 2-iteration warm-up to 2w weighs the adversarial loss by w: one step
    of it moves the generator exactly as one step at w without warm-up, and not as one at 2w."""
    def one_step(name, **kw):
        train(gan_cfg(data, tmp_path / name, pretrained, vgg_file, iters=1, **kw))
        return load_checkpoint(tmp_path / name / "last.pt")["model"]

    plain = one_step("w", adv_weight=0.1)
    ramped = one_step("ramp", adv_weight=0.2, adv_warmup=2)
    doubled = one_step("2w", adv_weight=0.2)
    assert all(torch.equal(plain[k], ramped[k]) for k in plain)
    assert any(not torch.equal(doubled[k], ramped[k]) for k in plain)


def test_pixel_weight_adds_a_logged_l1_term_that_moves_the_generator(data, tmp_path, pretrained,
                                                                     vgg_file):
    train(gan_cfg(data, tmp_path / "paper", pretrained, vgg_file, iters=1))
    train(gan_cfg(data, tmp_path / "l1", pretrained, vgg_file, iters=1, pixel_weight=0.5))
    paper, l1 = log_of(tmp_path / "paper")[-1], log_of(tmp_path / "l1")[-1]
    assert "l_g_l1" not in paper and l1["l_g_l1"] > 0
    assert l1["l_g_percep"] == paper["l_g_percep"]  # same start, same batch
    a = load_checkpoint(tmp_path / "paper" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "l1" / "last.pt")["model"]
    assert any(not torch.equal(a[k], b[k]) for k in a)
    info = load_file(export(tmp_path / "l1" / "last.pt", tmp_path / "l1.safetensors"), ours_only=True)
    assert info.metadata["pixel_weight"] == "0.5"
    info = load_file(export(tmp_path / "paper" / "last.pt", tmp_path / "p.safetensors"), ours_only=True)
    assert "pixel_weight" not in info.metadata and "adv_warmup" not in info.metadata


# --------------------------------------------------------------------------- provenance


def test_a_gan_run_records_its_parent_and_the_export_names_it_by_sha256(data, tmp_path,
                                                                        pretrained, vgg_file):
    from srgan_cli.distribution.hub import sha256_file

    run = tmp_path / "gan"
    train(gan_cfg(data, run, pretrained, vgg_file, iters=1, content_loss="mse"))
    init = json.loads(load_checkpoint(run / "last.pt")["history"])["init"]
    assert init["sha256"] == sha256_file(pretrained) and init["filename"] == "pre.safetensors"
    info = load_file(export(run / "last.pt", tmp_path / "g.safetensors"), ours_only=True)
    assert info.metadata["parent_sha256"] == sha256_file(pretrained)
    assert info.metadata["parent_file"] == "pre.safetensors"
    with pytest.raises(TrainError, match="not the file the run started from"):
        export(run / "last.pt", tmp_path / "h.safetensors", parent=tmp_path / "g.safetensors")


def _legacy_checkpoint(run: Path) -> Path:
    """The checkpoint with its history as runs wrote it before they recorded the sha256."""
    ckpt = load_checkpoint(run / "last.pt")
    history = json.loads(ckpt["history"])
    for k in ("sha256", "filename"):
        del history["init"][k]
    history["init"]["file"] = "srresnet"  # --init by registered name
    ckpt["history"] = json.dumps(history)
    torch.save(ckpt, run / "legacy.pt")
    return run / "legacy.pt"


def test_an_older_checkpoint_is_exported_with_an_explicit_parent_checked_against_the_run(
        data, tmp_path, pretrained, vgg_file, tiny_weights):
    from srgan_cli.distribution.hub import sha256_file
    from srgan_cli.distribution.modelfile import save_generator
    from srgan_cli.nets.generator import GeneratorSpec, SRResNet

    run = tmp_path / "gan"
    train(gan_cfg(data, run, pretrained, vgg_file, iters=1, content_loss="mse"))
    legacy = _legacy_checkpoint(run)
    info = load_file(export(legacy, tmp_path / "none.safetensors"), ours_only=True)
    assert "parent_sha256" not in info.metadata
    info = load_file(export(legacy, tmp_path / "p.safetensors", parent=pretrained), ours_only=True)
    assert info.metadata["parent_sha256"] == sha256_file(pretrained)
    other = tmp_path / "other.safetensors"  # same architecture, another history
    save_generator(SRResNet(GeneratorSpec(4, 1, 8)), other, {"stage": "srresnet",
                                                             "iterations": 7})
    with pytest.raises(TrainError, match="7 iterations.*not its parent"):
        export(legacy, tmp_path / "x.safetensors", parent=other)
    with pytest.raises(TrainError, match="not its parent"):  # 2 blocks, the run has 1
        export(legacy, tmp_path / "x.safetensors", parent=tiny_weights)
    assert not (tmp_path / "x.safetensors").exists()

    out = tmp_path / "cli.safetensors"
    r = CliRunner().invoke(main, ["models", "export", str(legacy), str(out)])
    assert r.exit_code == 0 and "no parent recorded" in r.output, r.output
    r = CliRunner().invoke(main, ["models", "export", str(legacy), str(out), "--parent",
                                  str(pretrained)])
    assert r.exit_code == 1 and "already exists" in r.output
    r = CliRunner().invoke(main, ["models", "export", str(legacy), str(out), "--parent",
                                  str(pretrained), "--overwrite"])
    assert r.exit_code == 0 and sha256_file(pretrained) in r.output, r.output
    assert load_file(out, ours_only=True).metadata["parent_file"] == "pre.safetensors"


def test_a_fresh_discriminator_is_warmed_up_before_the_first_generator_step_and_only_once(
        data, tmp_path, pretrained, vgg_file):
    run = tmp_path / "warm"
    train(gan_cfg(data, run, pretrained, vgg_file, iters=2, d_warmup=3))
    log = log_of(run)
    warm = [r["d_warmup"] for r in log if "d_warmup" in r]
    assert warm == [1, 2, 3]
    first_step = next(i for i, r in enumerate(log) if "iteration" in r)
    assert all("d_warmup" in r for r in log[:first_step])
    assert all(0 < r["d_real"] < 1 and "l_g_percep" not in r for r in log[:first_step])
    ckpt = load_checkpoint(run / "last.pt")
    assert json.loads(ckpt["history"])["d_warmup"] == 3
    train(gan_cfg(data, run, pretrained, vgg_file, iters=4, d_warmup=3), resume=run / "last.pt")
    assert [r["d_warmup"] for r in log_of(run) if "d_warmup" in r] == [1, 2, 3]


def test_a_gan_run_can_replace_its_discriminator_every_n_iterations_and_resumes_exactly(
        data, tmp_path, pretrained, vgg_file):
    full, part = tmp_path / "full", tmp_path / "part"
    kw = dict(d_warmup=2, d_reset_every=2, discriminator="unet", gan_loss="ragan", crop=24)
    train(gan_cfg(data, full, pretrained, vgg_file, **kw))
    log = log_of(full)
    assert [r["d_reset"] for r in log if "d_reset" in r] == [2]
    warm = [(r["d_warmup"], r.get("d_born")) for r in log if "d_warmup" in r]
    assert warm == [(1, None), (2, None), (1, 2), (2, 2)]
    reset_at = next(i for i, r in enumerate(log) if "d_reset" in r)
    assert [r["iteration"] for r in log[:reset_at] if "l_g_gan" in r] == [1, 2]
    ckpt = load_checkpoint(full / "last.pt")
    assert ckpt["optim_d"]["state"][0]["step"] == 4  # 2 warm-up + 2 steps since the reset
    # stopped at the reset's iteration, the resumed run resets there, drawing the same D
    train(gan_cfg(data, part, pretrained, vgg_file, **{**kw, "iters": 2}))
    train(gan_cfg(data, part, pretrained, vgg_file, **kw), resume=part / "last.pt")
    keys = ("l_d", "d_real", "d_fake", "l_g_gan")  # warm-up records have no l_g_gan
    assert ([[r.get(k) for k in keys] for r in log_of(part) if "l_d" in r]
            == [[r.get(k) for k in keys] for r in log if "l_d" in r])
    again = load_checkpoint(part / "last.pt")
    for name in ("model", "disc"):
        assert all(torch.equal(ckpt[name][k], again[name][k]) for k in ckpt[name])
    info = load_file(export(full / "last.pt", tmp_path / "reset.safetensors"), ours_only=True)
    assert info.metadata["d_reset_every"] == "2"
    with pytest.raises(TrainError, match="--d-reset-every replaces the discriminator"):
        TrainConfig(data=[str(data)], stage="srresnet", d_reset_every=10)


def test_a_gan_run_can_train_against_the_unet_discriminator_and_keeps_it_on_resume(
        data, tmp_path, pretrained, vgg_file):
    from srgan_cli.nets.discriminator import UNetDiscriminator

    run = tmp_path / "unet"
    train(gan_cfg(data, run, pretrained, vgg_file, iters=2, crop=24, discriminator="unet",
                  gan_loss="ragan", content_loss="mse"))
    steps = [r for r in log_of(run) if "l_d" in r]
    assert len(steps) == 2 and all(0 < r["d_real"] < 1 and r["l_g_gan"] > 0 for r in steps)
    ckpt = load_checkpoint(run / "last.pt")
    fresh = UNetDiscriminator().state_dict()
    assert ckpt["disc"].keys() == fresh.keys()
    assert any(not torch.equal(ckpt["disc"][k], v) for k, v in fresh.items()
               if k.endswith("original"))  # its weights were stepped
    info = load_file(export(run / "last.pt", tmp_path / "unet.safetensors"), ours_only=True)
    assert info.metadata["discriminator"] == "unet"
    with pytest.raises(TrainError, match="--discriminator vgg differ"):
        train(gan_cfg(data, run, pretrained, vgg_file, iters=3, crop=24, gan_loss="ragan",
                      content_loss="mse"), resume=run / "last.pt")
    train(gan_cfg(data, run, pretrained, vgg_file, iters=3, crop=24, discriminator="unet",
                  gan_loss="ragan", content_loss="mse"), resume=run / "last.pt")
    assert len([r for r in log_of(run) if "l_d" in r]) == 3
    with pytest.raises(TrainError, match="multiple of 16"):  # the paper's D at that crop
        train(gan_cfg(data, tmp_path / "vgg24", pretrained, vgg_file, crop=24,
                      content_loss="mse"))
    with pytest.raises(TrainError, match="unknown discriminator"):
        TrainConfig(data=[str(data)], stage="gan", discriminator="patch")


def test_ctrl_c_during_the_discriminator_warm_up_stops_there_and_the_resume_finishes_it(
        data, tmp_path, pretrained, vgg_file, monkeypatch):
    import os
    import signal

    from srgan_cli.train import loop

    step, calls = loop.discriminator_step, []

    def ctrl_c_on_the_second(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return step(*args, **kw)

    run = tmp_path / "warm_int"
    monkeypatch.setattr(loop, "discriminator_step", ctrl_c_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        train(gan_cfg(data, run, pretrained, vgg_file, iters=2, d_warmup=5))
    monkeypatch.undo()
    assert len(calls) == 2  # stopped after the warm-up step it was in, not after all five
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["iteration"] == 0 and json.loads(ckpt["history"])["d_warmup"] == 2
    train(gan_cfg(data, run, pretrained, vgg_file, iters=2, d_warmup=5), resume=run / "last.pt")
    assert [r["d_warmup"] for r in log_of(run) if "d_warmup" in r] == [1, 2, 3, 4, 5]
    assert [r["iteration"] for r in log_of(run) if "l_d" in r and "iteration" in r] == [1, 2]


def test_the_generator_stays_phase_tied_and_the_log_has_the_grid_loss_and_grid_excess(
        data, tmp_path, pretrained, vgg_file, val_dir):
    from srgan_cli.nets.generator import tie_phases

    run = tmp_path / "tied"
    train(gan_cfg(data, run, pretrained, vgg_file, val_dir=str(val_dir), tie_phases="resize",
                  grid_weight=0.01, flat_weight=0.5, ema=0.5, gan_loss="ragan", d_warmup=2,
                  d_lr=2e-4))
    log = log_of(run)
    assert all(r["l_g_grid"] >= 0 and r["l_g_flat"] >= 0 for r in log if "l_g_percep" in r)
    vals = [r for r in log if "val_psnr" in r]
    assert vals and all(isinstance(r["val_grid"], float) for r in vals)
    info = load_file(export(run / "last.pt", tmp_path / "tied.safetensors"), ours_only=True)
    model = info.net
    assert info.metadata["tie_phases"] == "resize" and info.metadata["grid_weight"] == "0.01"
    assert info.metadata["flat_weight"] == "0.5" and info.metadata["gan_loss"] == "ragan"
    assert info.metadata["d_lr"] == "0.0002"
    before = {k: v.clone() for k, v in model.state_dict().items()}
    after = tie_phases(model, "resize").state_dict()
    assert all(torch.allclose(before[k], after[k], atol=1e-6) for k in before)
    untied = load_file(pretrained, ours_only=True).net
    assert not torch.allclose(untied.up[0].conv.bias, model.up[0].conv.bias)
