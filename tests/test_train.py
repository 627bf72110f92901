import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import make_train_dir, make_val_dir, photo_like
from PIL import Image

from srgan_cli.cli import main
from srgan_cli.distribution.loading import load_file
from srgan_cli.errors import TrainError
from srgan_cli.train.config import TrainConfig, lr_at
from srgan_cli.train.data import ImageBank, downscale, sample_batch
from srgan_cli.train.export import export
from srgan_cli.train.loop import train
from srgan_cli.train.state import load_checkpoint


@pytest.fixture
def train_dir(tmp_path) -> Path:
    d = make_train_dir(tmp_path / "train", 4, 64, 80, seed=10)
    (d / "notes.txt").write_text("not an image")
    return d


@pytest.fixture
def val_dir(tmp_path) -> Path:
    return make_val_dir(tmp_path / "Val", 2, 48, 64, seed=20)


def tiny_cfg(data, run_dir, **kw) -> TrainConfig:
    base = dict(data=[str(data)], run_dir=str(run_dir), iters=6, batch=4, crop=32, blocks=2,
                width=8, lr=1e-3, ckpt_every=3, val_every=3, log_every=1, precision="fp32",
                device="cpu", seed=5)
    base.update(kw)
    return TrainConfig(**base)


def read_log(run_dir: Path) -> list[dict]:
    return [json.loads(l) for l in (Path(run_dir) / "log.jsonl").read_text().splitlines()]


def test_batches_are_paired_and_in_range(train_dir):
    bank = ImageBank.from_dirs([train_dir], 32)
    assert len(bank) == 4
    lr, hr = sample_batch(bank, 6, 32, 4, torch.Generator().manual_seed(0))
    assert lr.shape == (6, 3, 8, 8) and hr.shape == (6, 3, 32, 32)
    assert lr.min() >= 0 and lr.max() <= 1 and hr.min() >= -1 and hr.max() <= 1
    assert torch.allclose(downscale((hr + 1) / 2, 4), lr, atol=1e-6)


def test_packed_bank_cuts_the_same_batches_as_the_per_crop_path(train_dir):
    bank = ImageBank.from_dirs([train_dir], 32)
    packed = bank.pack()
    assert packed.packed is not None and len(packed) == len(bank)
    for a, b in zip(bank.images, packed.images):  # views into the flat buffer, same pixels
        assert torch.equal(a, b)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    for _ in range(5):  # 5 x 16 crops: every flip/transpose combination comes up
        lr1, hr1 = sample_batch(bank, 16, 32, 4, g1)
        lr2, hr2 = sample_batch(packed, 16, 32, 4, g2)
        assert torch.equal(hr1, hr2) and torch.equal(lr1, lr2)
    assert torch.equal(g1.get_state(), g2.get_state())


def test_the_crop_gather_applies_each_augmentation_as_the_per_crop_path():
    from srgan_cli.train.data import PackedImages, gather_crops

    img = torch.arange(3 * 5 * 7, dtype=torch.int64).remainder(251).to(torch.uint8).view(3, 5, 7)
    packed = PackedImages.build([torch.zeros(3, 4, 4, dtype=torch.uint8), img], "cpu")
    u = torch.tensor([[0.5, 0.9]] * 8)  # y = floor(0.5 * 3) = 1, x = floor(0.9 * 5) = 4
    got = gather_crops(packed, torch.ones(8, dtype=torch.int64), u, torch.arange(8), 3)
    c = img[:, 1:4, 4:7]
    for a in range(8):
        want = c.flip(2) if a & 1 else c
        want = want.flip(1) if a & 2 else want
        want = want.transpose(1, 2) if a & 4 else want
        assert torch.equal(got[a], want), a


def test_downscale_matches_pillow_bicubic():
    hr = photo_like(64, 64, seed=1)
    ours = downscale(torch.from_numpy(hr).permute(2, 0, 1)[None].float() / 255, 4)
    pil = np.asarray(Image.fromarray(hr).resize((16, 16), Image.BICUBIC), np.float32) / 255
    ours = ours[0].permute(1, 2, 0).numpy()
    # compare away from the border, where the two libraries pad differently
    mse = np.mean((ours[2:-2, 2:-2] - pil[2:-2, 2:-2]) ** 2)
    assert 10 * np.log10(1 / mse) > 45


def test_lr_schedules():
    cfg = TrainConfig(data=[], iters=100, lr=1e-4)
    assert lr_at(cfg, 0) == lr_at(cfg, 99) == 1e-4
    cfg.lr_schedule, cfg.lr_milestones = "step", [10, 50]
    assert lr_at(cfg, 9) == 1e-4 and lr_at(cfg, 10) == pytest.approx(1e-5)
    assert lr_at(cfg, 50) == pytest.approx(1e-6)
    cfg.lr_schedule = "cosine"
    assert lr_at(cfg, 0) == 1e-4 and lr_at(cfg, 50) == pytest.approx(5e-5)
    assert lr_at(cfg, 100) == pytest.approx(0.0, abs=1e-12)


def test_training_lowers_the_loss(train_dir, tmp_path):
    cfg = tiny_cfg(train_dir, tmp_path / "run", iters=120, width=16, lr=2e-3, ckpt_every=120,
                   val_every=120)
    train(cfg)
    losses = [r["l_g_pix"] for r in read_log(tmp_path / "run") if "l_g_pix" in r]
    assert len(losses) == 120
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5])


def test_resume_continues_exactly(train_dir, val_dir, tmp_path):
    full = tmp_path / "full"
    train(tiny_cfg(train_dir, full, val_dir=str(val_dir)))
    part = tmp_path / "part"
    train(tiny_cfg(train_dir, part, iters=3, val_dir=str(val_dir)))
    assert load_checkpoint(part / "last.pt")["iteration"] == 3
    train(tiny_cfg(train_dir, part, val_dir=str(val_dir)), resume=part / "last.pt")

    a, b = read_log(full), read_log(part)
    assert [r["l_g_pix"] for r in a if "l_g_pix" in r] == [r["l_g_pix"] for r in b if "l_g_pix" in r]
    assert [r["val_psnr"] for r in a if "val_psnr" in r] == [r["val_psnr"] for r in b if "val_psnr" in r]
    sa = load_checkpoint(full / "last.pt")
    sb = load_checkpoint(part / "last.pt")
    for k in sa["model"]:
        assert torch.equal(sa["model"][k], sb["model"][k]), k
    assert torch.equal(sa["data_rng"], sb["data_rng"])


def test_export_writes_a_loadable_release_file(train_dir, val_dir, tmp_path):
    run = tmp_path / "run"
    train(tiny_cfg(train_dir, run, val_dir=str(val_dir)))
    out = export(run / "last.pt", tmp_path / "release.safetensors")
    info = load_file(out, ours_only=True)
    assert info.stage == "srresnet" and info.iterations == 6
    assert info.spec.blocks == 2 and info.metadata["data"] == "train"
    assert float(info.metadata["val_set5_psnr"]) > 0


def test_no_images_is_a_clear_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TrainError, match="no images found"):
        train(tiny_cfg(empty, tmp_path / "run"))


def test_bad_checkpoint_is_refused(train_dir, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(TrainError, match="bad.pt"):
        train(tiny_cfg(train_dir, tmp_path / "run"), resume=bad)


def test_cli_train_resume_and_export(train_dir, val_dir, tmp_path):
    run = tmp_path / "run"
    args = ["train", "--data", str(train_dir), "--run-dir", str(run), "--batch", "2",
            "--crop", "32", "--blocks", "1", "--width", "8", "--precision", "fp32",
            "--device", "cpu", "--val-dir", str(val_dir), "--ckpt-every", "2", "--val-every", "2"]
    r = CliRunner().invoke(main, args + ["--iters", "2"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "w.safetensors"
    r = CliRunner().invoke(main, args + ["--iters", "4", "--resume", str(run / "last.pt"),
                                         "--export", str(out)])
    assert r.exit_code == 0, r.output
    assert "Set5 Y-PSNR" in r.output or "Y-PSNR" in r.output
    info = load_file(out, ours_only=True)
    assert info.iterations == 4
    assert (run / "commands.txt").read_text().count("srgan train") == 2
    # a finished run re-exports without training or loading data
    out2 = tmp_path / "w2.safetensors"
    r = CliRunner().invoke(main, ["train", "--resume", str(run / "last.pt"), "--export",
                                  str(out2)])
    assert r.exit_code == 0, r.output
    assert load_file(out2, ours_only=True).iterations == 4


def test_sigterm_checkpoints_and_stops(train_dir, tmp_path):
    """A background job (SIGINT ignored by the shell) or a scheduler's SIGTERM must save."""
    import os
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "srgan_cli", "train", "--data", str(train_dir), "--run-dir",
         str(run), "--batch", "2", "--crop", "32", "--blocks", "1", "--width", "8",
         "--precision", "fp32", "--device", "cpu", "--iters", "1000000", "--ckpt-every",
         "1000000", "--val-every", "1000000"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    log = run / "log.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and not (log.exists() and log.stat().st_size > 0):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    it = load_checkpoint(run / "last.pt")["iteration"]
    assert it >= 10 and "interrupted" in out


def test_init_from_a_release_file_continues_its_weights_and_counts(train_dir, tmp_path):
    first = tmp_path / "first"
    train(tiny_cfg(train_dir, first))
    release = export(first / "last.pt", tmp_path / "first.safetensors")
    start = load_file(release, ours_only=True).net

    second = tmp_path / "second"
    train(tiny_cfg(train_dir, second, iters=1, lr=0.0, init=str(release)))
    ckpt = load_checkpoint(second / "last.pt")
    for k, v in start.state_dict().items():  # lr 0: weights unchanged, so really started there
        if v.is_floating_point() and "running" not in k:
            assert torch.equal(ckpt["model"][k], v), k
    info = load_file(export(second / "last.pt", tmp_path / "second.safetensors"), ours_only=True)
    assert info.iterations == 6 + 1
    assert "first.safetensors" in info.metadata["init"]


def test_init_with_a_different_architecture_is_refused(train_dir, tmp_path):
    train(tiny_cfg(train_dir, tmp_path / "a"))
    release = export(tmp_path / "a" / "last.pt", tmp_path / "a.safetensors")
    with pytest.raises(TrainError, match="B=2"):
        train(tiny_cfg(train_dir, tmp_path / "b", blocks=3, init=str(release)))


def test_a_time_limit_stops_cleanly_with_a_checkpoint_that_resumes(train_dir, val_dir, tmp_path):
    run = tmp_path / "run"
    cfg = tiny_cfg(train_dir, run, iters=1_000_000, ckpt_every=1_000_000, val_every=1_000_000,
                   log_every=1_000_000, val_dir=str(val_dir), max_seconds=1.5)
    res = train(cfg)
    assert 0 < res.iteration < 1_000_000 and res.val_psnr is not None
    assert load_checkpoint(run / "last.pt")["iteration"] == res.iteration
    log = read_log(run)
    assert log[-1] == {"iteration": res.iteration, "stopped": "time limit", "max_seconds": 1.5}
    assert any("l_g_pix" in r and r["iteration"] == res.iteration for r in log)  # last window
    assert any("val_psnr" in r for r in log)
    out = export(run / "last.pt", tmp_path / "w.safetensors")
    assert load_file(out, ours_only=True).iterations == res.iteration
    cfg.iters, cfg.max_seconds = res.iteration + 2, 0.0
    assert train(cfg, resume=run / "last.pt").iteration == res.iteration + 2


V1_CONFIG_FIELDS = ("data", "run_dir", "stage", "iters", "batch", "crop", "scale", "blocks",
                    "width", "lr", "lr_schedule", "lr_milestones", "precision", "channels_last",
                    "device", "seed", "ckpt_every", "val_every", "val_dir", "log_every", "init")


def test_a_version_1_checkpoint_still_resumes_exactly_and_exports(train_dir, tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    train(tiny_cfg(train_dir, full))
    train(tiny_cfg(train_dir, part, iters=3))
    ckpt = load_checkpoint(part / "last.pt")
    # as format version 1 wrote it: no grad scaler, one data stream, the config fields of then
    v1 = {k: ckpt[k] for k in ("iteration", "spec", "model", "optim", "data_rng", "torch_rng",
                               "history")}
    config = json.loads(ckpt["config"])
    v1.update(version=1, config=json.dumps({**{k: config[k] for k in V1_CONFIG_FIELDS},
                                            "lr_min": 0.0, "beta1": 0.9, "beta2": 0.999}))
    torch.save(v1, part / "v1.pt")
    info = load_file(export(part / "v1.pt", tmp_path / "v1.safetensors"), ours_only=True)
    assert info.iterations == 3 and info.metadata["content_loss"] == "mse"
    assert train(tiny_cfg(train_dir, part), resume=part / "v1.pt").iteration == 6
    a, b = load_checkpoint(full / "last.pt"), load_checkpoint(part / "last.pt")
    assert b["version"] == 2
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_ctrl_c_in_the_middle_of_an_iteration_saves_whole_iterations_that_resume_exactly(
        train_dir, tmp_path, monkeypatch):
    import os
    import signal

    from srgan_cli.train.state import TrainState

    full, part = tmp_path / "full", tmp_path / "part"
    train(tiny_cfg(train_dir, full, ema=0.5))
    update_ema, calls = TrainState.update_ema, []

    def ctrl_c_on_the_third(self, decay):  # after the third generator update, before D's
        update_ema(self, decay)
        calls.append(decay)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(TrainState, "update_ema", ctrl_c_on_the_third)
    events = []
    with pytest.raises(KeyboardInterrupt):
        train(tiny_cfg(train_dir, part, ema=0.5, ckpt_every=100), on_progress=events.append)
    monkeypatch.undo()
    assert load_checkpoint(part / "last.pt")["iteration"] == 3 and len(calls) == 3
    assert events[-1].message == f"interrupted; saved {part / 'last.pt'}"
    train(tiny_cfg(train_dir, part, ema=0.5), resume=part / "last.pt")
    a, b = load_checkpoint(full / "last.pt"), load_checkpoint(part / "last.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]) and torch.equal(a["ema"][k], b["ema"][k]), k


def test_ctrl_c_while_the_images_load_says_there_is_nothing_to_save(train_dir, tmp_path,
                                                                    monkeypatch):
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ImageBank, "from_dirs", ctrl_c)
    events = []
    with pytest.raises(KeyboardInterrupt):
        train(tiny_cfg(train_dir, tmp_path / "run"), on_progress=events.append)
    assert "before the first iteration: nothing to save" in events[-1].message
    assert not (tmp_path / "run" / "last.pt").exists()


CLI_TINY = ["--batch", "2", "--crop", "32", "--blocks", "1", "--width", "8", "--lr", "2e-3",
            "--precision", "fp32", "--device", "cpu", "--ckpt-every", "2", "--val-every", "2",
            "--log-every", "1", "--seed", "7"]


def test_resume_restores_the_runs_data_folder_and_settings_and_continues_exactly(
        train_dir, val_dir, tmp_path, monkeypatch):
    full, part = tmp_path / "full", tmp_path / "part"
    common = ["train", "--data", str(train_dir), "--val-dir", str(val_dir)] + CLI_TINY
    assert CliRunner().invoke(main, common + ["--run-dir", str(full), "--iters", "4"]).exit_code == 0
    r = CliRunner().invoke(main, common + ["--run-dir", str(part), "--iters", "2"])
    assert r.exit_code == 0, r.output
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no runs/ folder here, and no default training data:
    monkeypatch.setenv("SRGAN_SHARED_DIR", str(elsewhere))
    r = CliRunner().invoke(main, ["train", "--resume", str(part / "last.pt"), "--iters", "4"])
    assert r.exit_code == 0, r.output
    assert "resuming with --iters 4 (the run had --iters 2)" in " ".join(r.output.split())
    assert not (elsewhere / "runs").exists()
    a, b = load_checkpoint(full / "last.pt"), load_checkpoint(part / "last.pt")
    assert b["iteration"] == 4
    ca, cb = json.loads(a["config"]), json.loads(b["config"])
    assert {k: v for k, v in ca.items() if k != "run_dir"} == {
        k: v for k, v in cb.items() if k != "run_dir"}
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert (part / "commands.txt").read_text().count("srgan train") == 2


def test_resume_refuses_recipe_options_given_again_that_differ_naming_them(
        train_dir, val_dir, tmp_path):
    run = tmp_path / "run"
    args = ["train", "--data", str(train_dir), "--val-dir", str(val_dir), "--run-dir", str(run)]
    r = CliRunner().invoke(main, args + CLI_TINY + ["--iters", "2"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["train", "--resume", str(run / "last.pt"), "--batch", "4",
                                  "--crop", "32", "--tie-phases", "dc", "--iters", "3"])
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.output
    assert "--batch 4" in lines[0] and "--tie-phases dc" in lines[0] and "--batch 2" in lines[0]
    assert "--crop" not in lines[0]  # given again, but the same
    assert load_checkpoint(run / "last.pt")["iteration"] == 2


def test_the_library_refuses_to_resume_a_run_with_another_recipe(train_dir, tmp_path):
    run = tmp_path / "run"
    train(tiny_cfg(train_dir, run, iters=2))
    with pytest.raises(TrainError, match="--batch 2 differ from the run's --batch 4"):
        train(tiny_cfg(train_dir, run, batch=2), resume=run / "last.pt")
    # what may change: more iterations, checkpoint and log intervals, another run folder
    res = train(tiny_cfg(train_dir, tmp_path / "branch", iters=3, ckpt_every=1, log_every=2),
                resume=run / "last.pt")
    assert res.iteration == 3


@pytest.mark.parametrize("changed", [{"d_warmup": 5}, {"tie_phases": "dc"},
                                     {"grid_weight": 0.5}, {"adv_weight": 0.1}, {"seed": 1}])
def test_every_config_field_outside_the_changeable_ones_is_kept_on_resume(changed, tmp_path):
    from dataclasses import replace

    from srgan_cli.train.config import check_resumable, resumed_config

    saved = TrainConfig(data=["d"], run_dir=str(tmp_path), batch=4)
    name = next(iter(changed))
    with pytest.raises(TrainError, match="--" + name.replace("_", "-")):
        check_resumable(saved, replace(saved, **changed), "last.pt")
    with pytest.raises(TrainError, match="--" + name.replace("_", "-")):
        resumed_config(saved, changed, "last.pt")
    # given again with the run's value: accepted, nothing to say
    assert resumed_config(saved, {name: getattr(saved, name)}, "last.pt") == (saved, [])


def test_resume_restores_all_but_the_per_invocation_fields_and_notes_the_changeable_ones(
        tmp_path):
    from srgan_cli.train.config import RESUME_MAY_CHANGE, resumed_config, saved_config

    run = str(tmp_path)
    saved = TrainConfig(data=["d"], run_dir=run, batch=4, iters=10, device="cpu",
                        max_seconds=60.0, ckpt_every=5)
    cfg, notes = resumed_config(saved, {"iters": 20, "ckpt_every": 2}, "last.pt")
    assert (cfg.iters, cfg.ckpt_every, cfg.batch, cfg.run_dir) == (20, 2, 4, run)
    assert cfg.device == "cpu" and cfg.max_seconds == 0.0  # the limit is this invocation's
    assert notes == ["resuming with --iters 20 (the run had --iters 10)",
                     "resuming with --ckpt-every 2 (the run had --ckpt-every 5)"]
    assert {"iters", "ckpt_every", "device", "precision", "run_dir"} <= set(RESUME_MAY_CHANGE)
    # a checkpoint from before a field existed: the field's default, which the run used
    old = saved_config({"data": ["d"], "batch": 4, "beta1": 0.9})
    assert old.d_warmup == 0 and old.grid_weight == 0.0 and old.batch == 4


def test_init_with_a_model_of_another_scale_names_the_scales(train_dir, tmp_path):
    from srgan_cli.distribution.modelfile import save_generator
    from srgan_cli.nets.generator import GeneratorSpec, SRResNet

    x2 = tmp_path / "x2.safetensors"
    save_generator(SRResNet(GeneratorSpec(scale=2, blocks=2, width=8)), x2, {"stage": "test"})
    with pytest.raises(TrainError, match=r"x2 model; the run asks for --scale 4"):
        train(tiny_cfg(train_dir, tmp_path / "run", init=str(x2)))


def test_resume_from_another_folder_writes_beside_the_checkpoint_when_the_runs_folder_is_not_there(
        train_dir, val_dir, tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    monkeypatch.chdir(first)
    args = ["train", "--data", str(train_dir), "--val-dir", str(val_dir), "--run-dir", "runs/t1"]
    assert CliRunner().invoke(main, args + CLI_TINY + ["--iters", "2"]).exit_code == 0
    monkeypatch.chdir(second)
    monkeypatch.setenv("SRGAN_SHARED_DIR", str(second))  # no default training data
    ckpt = first / "runs" / "t1" / "last.pt"
    r = CliRunner().invoke(main, ["train", "--resume", str(ckpt), "--iters", "3"])
    assert r.exit_code == 0, r.output
    assert "the run's folder runs/t1 is not here" in " ".join(r.output.split())
    assert not (second / "runs").exists() and load_checkpoint(ckpt)["iteration"] == 3
