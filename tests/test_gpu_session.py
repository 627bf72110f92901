"""The GPU kit (scripts/gpu_session.py) on the CPU: its --dry-run makes every file the
device run brings back, each loadable, and --pack fits its budget."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import make_train_dir, make_val_dir, photo_like, trained_looking
from PIL import Image
from safetensors.torch import save_file

from srgan_cli.distribution.loading import load_file
from srgan_cli.distribution.modelfile import save_generator
from srgan_cli.nets.generator import GeneratorSpec

REPO = Path(__file__).resolve().parents[1]
KIT = REPO / "scripts" / "gpu_session.py"
VGG = "vgg19-features-imagenet-u8.safetensors"
REAL_DEGRADATION = "real,jpeg_prob=0.9,jpeg_quality=60:90,clean_prob=0.3"  # not the kit's usual
OUTPUTS = ("env.json", "tests.log", "speed.json", "srgan_real_x4.safetensors",
           "srgan_real_log.jsonl", "srgan_x4.safetensors", "srgan_log.jsonl", "session.log")


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def write_u8_vgg(path: Path) -> None:
    """A VGG19 features file in the u8 codebook form (random: the mechanics, not quality)."""
    from srgan_cli.nets.vgg import vgg19_features

    torch.manual_seed(0)
    out = {}
    for k, v in vgg19_features().state_dict().items():
        if k.endswith("weight"):
            out[k + ".codebook"] = torch.linspace(-0.05, 0.05, 256).half()
            out[k + ".idx"] = torch.randint(0, 256, v.shape, dtype=torch.uint8)
        else:
            out[k] = torch.zeros_like(v).half()
    save_file(out, str(path), metadata={"format": "codebook-u8"})


def env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")


def read_jsonl(p: Path) -> list[dict]:
    return [json.loads(l) for l in p.read_text().splitlines()]


def test_the_dry_run_makes_every_output_file_and_each_loads(tmp_path):
    pack = tmp_path / "pack"
    make_train_dir(pack / "train", 3, 48, 64, seed=70)
    make_val_dir(pack / "Set5", 1, 32, 48, seed=80)
    write_u8_vgg(pack / VGG)
    init = tmp_path / "init.safetensors"
    save_generator(trained_looking(GeneratorSpec(scale=4, blocks=1, width=8), 0), init,
                   {"stage": "srresnet", "iterations": 0, "data": "none"})
    gan_init, teacher = tmp_path / "gan_init.safetensors", tmp_path / "teacher.safetensors"
    save_generator(trained_looking(GeneratorSpec(scale=4, blocks=1, width=8, delattice=3), 1),
                   gan_init,
                   {"stage": "gan", "iterations": 0, "data": "none"})
    save_generator(trained_looking(GeneratorSpec(scale=4, blocks=1, width=8), 2), teacher,
                   {"stage": "gan", "iterations": 0, "data": "none"})
    real_init = tmp_path / "real_init.safetensors"  # a released real model: its filter on
    save_generator(trained_looking(GeneratorSpec(scale=4, blocks=1, width=8, delattice=7), 3),
                   real_init, {"stage": "gan", "iterations": 0, "data": "none",
                               "degradation": REAL_DEGRADATION})
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(KIT), "--out", str(out), "--pack-dir", str(pack),
                        "--dry-run", "--init", str(init), "--gan-init", str(gan_init),
                        "--gan-teacher", str(teacher), "--real-init", str(real_init),
                        "--real-teacher", str(teacher), "--dry-train-seconds", "2"],
                       cwd=REPO, env=env(), capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)

    machine = json.loads((out / "env.json").read_text())
    assert machine["bf16_matmul_gflops"] > 0
    import numpy
    import torchvision

    assert machine["numpy_version"] == numpy.__version__  # what the GPU machine must have
    assert machine["torchvision_version"] == torchvision.__version__
    assert "skipped" in (out / "tests.log").read_text()  # no GPU here: the CUDA tests skip
    speed = json.loads((out / "speed.json").read_text())
    assert speed["runs"][0]["exit"] == 0 and speed["runs"][0]["results"][0]["mp_per_s_median"] > 0

    parents = {"srgan_real": sha(real_init), "srgan": sha(gan_init)}
    for name, stage in (("srgan_real", "gan"), ("srgan", "gan")):
        info = load_file(out / f"{name}_x4.safetensors", ours_only=True)
        assert info.stage == stage and info.metadata["parent_sha256"] == parents[name]
        log = read_jsonl(out / f"{name}_log.jsonl")
        head, summary = log[0], log[-1]
        assert head["kit"] == name and head["parent_sha256"] == parents[name]
        assert summary["kit_summary"] == name and summary["exit"] == 0
        assert summary["stopped"] == "time limit" and summary["iterations"] >= 1
        assert summary["export_sha256"] == sha(out / f"{name}_x4.safetensors")
        assert any("l_g_pix" in rec for rec in log[1:-1])
    gan_head = read_jsonl(out / "srgan_log.jsonl")[0]["command"]
    for opt in ("--ema 0.999", "--pixel-weight 0.5", "--adv-weight 1e-3", "--content-loss vgg54",
                "--d-warmup 100", "--teacher-loss content", str(teacher), VGG):
        assert opt in gan_head
    # the GAN stage trains through the init file's lattice filter and exports it
    assert load_file(out / "srgan_x4.safetensors", ours_only=True).net.spec.delattice == 3
    assert load_file(out / "srgan_x4.safetensors", ours_only=True).metadata["teacher_sha256"] \
        == sha(teacher)
    # the real-photo stage: gr26's recipe on degraded LR, through the filter (window 7)
    real_head = read_jsonl(out / "srgan_real_log.jsonl")[0]["command"]
    for opt in ("--delattice 7", "--teacher-input clean", "--teacher-weight 50",
                "--teacher-on clean", "--gan-loss ragan", "--discriminator unet",
                "--adv-weight 0.25", "--artifact-weight 0", "--tie-phases resize",
                "--content-loss vgg-multi", f"--degradation {REAL_DEGRADATION}",
                f"--teacher {teacher}", VGG):
        assert opt in real_head
    assert "--d-lr" not in real_head  # the U-Net discriminator at the generator's lr
    real = load_file(out / "srgan_real_x4.safetensors", ours_only=True)
    assert real.net.spec.delattice == 7 and real.metadata["degradation"] == REAL_DEGRADATION
    assert real.metadata["tie_phases"] == "resize"
    assert "done in" in (out / "session.log").read_text()


def test_the_dry_run_can_train_the_srresnet_first_instead(tmp_path):
    pack = tmp_path / "pack"
    make_train_dir(pack / "train", 3, 48, 64, seed=70)
    make_val_dir(pack / "Set5", 1, 32, 48, seed=80)
    write_u8_vgg(pack / VGG)
    init, gan_init = tmp_path / "init.safetensors", tmp_path / "gan_init.safetensors"
    save_generator(trained_looking(GeneratorSpec(scale=4, blocks=1, width=8), 0), init,
                   {"stage": "srresnet", "iterations": 0, "data": "none"})
    save_generator(trained_looking(GeneratorSpec(scale=4, blocks=1, width=8, delattice=3), 1),
                   gan_init, {"stage": "gan", "iterations": 0, "data": "none"})
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(KIT), "--out", str(out), "--pack-dir", str(pack),
                        "--dry-run", "--first", "srresnet", "--init", str(init), "--gan-init",
                        str(gan_init), "--dry-train-seconds", "1"],
                       cwd=REPO, env=env(), capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (out / "srresnet_x4.safetensors").is_file() and (out / "srresnet_log.jsonl").is_file()
    assert not (out / "srgan_real_x4.safetensors").exists()
    info = load_file(out / "srresnet_x4.safetensors", ours_only=True)
    assert info.stage == "srresnet" and info.metadata["parent_sha256"] == sha(init)


def test_pack_fits_the_budget_by_cropping_the_training_photos(tmp_path):
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import gpu_session
    finally:
        sys.path.remove(str(REPO / "scripts"))
    shared = tmp_path / "shared"
    (shared / "weights").mkdir(parents=True)
    (shared / "weights" / VGG).write_bytes(b"\0" * 50_000)
    make_val_dir(shared / "datasets" / "benchmark" / "Set5", 1, 32, 48, seed=1)
    for k, name in enumerate(("photos", "bsds400")):
        d = shared / "datasets" / "train" / name
        d.mkdir(parents=True)
        for i in range(3):
            Image.fromarray(photo_like(300, 400, seed=10 * k + i)).save(d / f"im{i}.png")
    tree = gpu_session.tree_bytes(REPO, tmp_path)
    room = 60_000  # bytes left for the training JPEGs: less than the full images need
    room += 4096  # what the pack keeps for its manifest
    fixed = 50_000 + sum(p.stat().st_size for p in (shared / "datasets" / "benchmark").rglob("*")
                         if p.is_file())
    budget = (tree + fixed + room) / gpu_session.MiB
    m = gpu_session.pack(tmp_path / "pack", shared, budget, 0.0, 95, min_side=64)
    assert m["train_images"] == 6 and m["area_fraction"] < 1
    assert m["train_mib"] * gpu_session.MiB <= room + 0.01 * gpu_session.MiB
    assert m["total_mib"] <= budget + 0.005  # total_mib is rounded to 0.01
    jpgs = sorted((tmp_path / "pack" / "train").rglob("*.jpg"))
    assert len(jpgs) == 6 and {p.parent.name for p in jpgs} == {"photos", "bsds400"}
    for p in jpgs:
        with Image.open(p) as im:
            assert im.format == "JPEG" and min(im.size) >= 64 and im.size != (400, 300)
    assert (tmp_path / "pack" / VGG).stat().st_size == 50_000
    assert (tmp_path / "pack" / "Set5" / "Set5_HR").is_dir()


def test_pack_refuses_a_folder_inside_the_checkout_that_git_does_not_ignore(tmp_path):
    r = subprocess.run([sys.executable, str(KIT), "--pack", "scripts/not_ignored_pack",
                        "--shared", str(tmp_path)], cwd=REPO, env=env(), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode != 0 and "not ignored by git" in r.stderr
    assert not (REPO / "scripts" / "not_ignored_pack").exists()


@pytest.mark.parametrize("first", ["real", "srresnet"])
@pytest.mark.parametrize("minutes", [9.0, 8.0])
def test_the_stage_plan_fits_the_minutes_with_training_taking_most(minutes, first):
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import gpu_session
    finally:
        sys.path.remove(str(REPO / "scripts"))
    plan = gpu_session.make_plan(minutes, dry=False, first=first)
    assert list(plan.ends) == ["env", "tests", "speed", gpu_session.FIRST[first], "srgan"]
    ends = list(plan.ends.values())
    assert ends == sorted(ends) and ends[-1] <= minutes * 60 - 10
    train = plan.ends["srgan"] - plan.ends["speed"]
    assert train >= 2 / 3 * minutes * 60


def test_the_real_stage_continues_on_the_degradations_its_init_file_records(tmp_path):
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import gpu_session
    finally:
        sys.path.remove(str(REPO / "scripts"))
    spec = GeneratorSpec(scale=4, blocks=1, width=8)
    real, clean = tmp_path / "real.safetensors", tmp_path / "clean.safetensors"
    save_generator(trained_looking(spec, 0), real, {"stage": "gan", "degradation": REAL_DEGRADATION})
    save_generator(trained_looking(spec, 1), clean, {"stage": "gan"})
    assert gpu_session.real_degradation(real) == REAL_DEGRADATION
    with pytest.raises(ValueError, match=r"clean.safetensors: no 'real' degradation"):
        gpu_session.real_degradation(clean)
