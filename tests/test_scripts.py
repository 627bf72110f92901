"""Every script under scripts/ runs, on toy sizes, as CI runs the suite (issue 23: scripts
that rot). Each is run as a person runs it, ``python scripts/NAME.py ARGS``, in a
subprocess; what it measures is not checked, only that it runs to the end and prints.
scripts/demo.py, perception_plot.py, gpu_session.py and choose_default.py have their own tests
(test_release_scripts.py, test_gpu_session.py, test_default_rule.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from conftest import AMX_FLAGS, REPO, SHARED, photo_like
from PIL import Image

from srgan_cli.distribution.modelfile import save_generator
from srgan_cli.inference.device import cpu_flags
from srgan_cli.inference.kernels import simd
from srgan_cli.nets.generator import GeneratorSpec, SRResNet

SCRIPTS = REPO / "scripts"
TESTED_ELSEWHERE = {"demo.py", "perception_plot.py", "gpu_session.py", "choose_default.py"}
BENCH = SHARED / "datasets" / "benchmark"
PHOTOS = SHARED / "datasets" / "train" / "photos"
needs_sets = pytest.mark.skipif(not (BENCH / "Set14").is_dir(), reason=f"needs {BENCH}")
needs_photos = pytest.mark.skipif(not PHOTOS.is_dir(), reason=f"needs {PHOTOS}")
needs_vgg = pytest.mark.skipif(not (SHARED / "weights").is_dir() or not (BENCH / "Set14").is_dir(),
                               reason="needs ../shared/weights (VGG19) and Set14")


@pytest.fixture(scope="module")
def toys(tmp_path_factory):
    """A tiny x4 model file, two small photos in a folder, one of them alone."""
    d = tmp_path_factory.mktemp("toys")
    torch.manual_seed(0)
    save_generator(SRResNet(GeneratorSpec(4, 2, 8)), d / "tiny.safetensors",
                   {"stage": "test", "iterations": 0, "data": "none"})
    (d / "imgs").mkdir()
    for i in range(2):
        Image.fromarray(photo_like(40, 48, seed=i)).save(d / "imgs" / f"p{i}.png")
    return d


def run_script(name: str, *args, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO),
           "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, str(SCRIPTS / name), *map(str, args)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout)


def ok(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    return r.stdout + r.stderr


def _saved_outputs(toys, out):
    """A --save-images folder with one method's output, and its HR folder."""
    (out / "set5" / "m").mkdir(parents=True)
    (out / "hr").mkdir()
    Image.fromarray(photo_like(40, 48, seed=0)).save(out / "hr" / "p0.png")
    Image.fromarray(photo_like(40, 48, seed=1)).save(out / "set5" / "m" / "p0.png")
    return [out, "set5", "p0", "--box", "4,4,24", "--methods", "m", "--hr-dir", out / "hr",
            "--highpass", "--out", out / "strip.png"]


def _saved_set5(toys, out):
    """A --save-images folder with one method's Set5-like outputs and a benchmark folder."""
    (out / "sr" / "set5" / "m").mkdir(parents=True)
    (out / "bench" / "Set5" / "Set5_HR").mkdir(parents=True)
    Image.fromarray(photo_like(64, 72, seed=0)).save(out / "bench" / "Set5" / "Set5_HR" / "a.png")
    Image.fromarray(photo_like(64, 72, seed=1)).save(out / "sr" / "set5" / "m" / "a.png")
    return [out / "sr", "m", "--windows", "4", "--datasets", "set5", "--bench-dir",
            out / "bench", "--no-lpips"]


# Each entry: script -> a function of the toys folder and a tmp folder giving its args.
CASES = {
    "phase_offsets_removed.py": _saved_set5,
    "crop_strip.py": _saved_outputs,
    "border_quality.py": lambda t, o: ["--model", t / "tiny.safetensors", "--datasets", "",
                                       "--borders", "zero,symmetric"],
    "compare_crops.py": lambda t, o: ["--srresnet", t / "tiny.safetensors", "--srgan",
                                      t / "tiny.safetensors", "--out", o, "--size", "64",
                                      "--device", "cpu", "--extra",
                                      f"third={t / 'tiny.safetensors'}", "--window", "flat",
                                      "--zoom", "2", "--prefix", "flat_",
                                      "--degrade", "jpeg75", "--highpass"],
    "make_4000x3000.py": lambda t, o: [o / "big.jpg"],
    "make_delattice.py": lambda t, o: [t / "tiny.safetensors", o / "dl.safetensors",
                                       "--window", "3"],
    "local_grid.py": lambda t, o: [t / "tiny.safetensors", "--set", "set5", "--degrade",
                                   "jpeg75", "--data", BENCH, "--json", o / "lg.json"],
    "outscale_quality.py": lambda t, o: ["--model", t / "tiny.safetensors", "--datasets",
                                         "Set5"],
    "peak_memory.py": lambda t, o: ["fp32", "24", "--passes", "1", "--model",
                                    t / "tiny.safetensors"],
    "peer_upscale.py": lambda t, o: [t / "imgs" / "p0.png", o / "out.png", "--model",
                                     t / "tiny.safetensors"],
    "perf_data.py": lambda t, o: [t / "imgs", "--batch", "2", "--seconds", "0.2", "--crop",
                                  "24"],
    "perf_levers.py": lambda t, o: ["bf16-cl-fold-tail-split-band", "--mallopt", "--model",
                                    t / "tiny.safetensors", "--size", "24x16", "--runs", "1"],
    "perf_micro.py": lambda t, o: ["--size", "16", "--model", t / "tiny.safetensors"],
    "perf_train_overhead.py": lambda t, o: [t / "imgs", "--iters", "20"],
    "perf_tried.py": lambda t, o: ["band-blocks", "8", "--size", "24"],
    "png_level.py": lambda t, o: ["--images", t / "imgs" / "p0.png", "--side", "16",
                                  "--levels", "1,4", "--repeat", "1", "--model",
                                  t / "tiny.safetensors"],
    "profile_gan_iteration.py": lambda t, o: ["--iters", "1", "--warmup", "1", "--batch", "2",
                                              "--crop", "32", "--data", t / "imgs",
                                              "--flat-weight", "1", "--gan-loss", "ragan",
                                              "--content-loss", "vgg-multi",
                                              "--artifact-weight", "100",
                                              "--teacher-weight", "1",
                                              "--discriminator", "unet"],
    "seam_error.py": lambda t, o: ["--nets", "compact", "--tile", "16", "--pads", "0,8",
                                   "--inits", "default", "--image", t / "imgs" / "p0.png"],
    "sixteen_bit.py": lambda t, o: ["--only", "hibit", "--size", "32x24", "--repeat", "1"],
    "skip_existing_race.py": lambda t, o: ["3"],
    "kernel_agreement.py": lambda t, o: ["--models", REPO / "weights" / "srresnet_x4.safetensors",
                                         "--datasets", "set5", "--data-dir", BENCH],
    "loss_gradients.py": lambda t, o: [t / "tiny.safetensors", "--data", t / "imgs",
                                       "--batch", "2", "--crop", "32"],
    "perf_simd.py": lambda t, o: ["--size", "16", "--runs", "1", "--paths", "torch", "avx2"],
    "lr_edits.py": lambda t, o: ["--model", t / "tiny.safetensors", "--datasets", "Set5",
                                 "--edit", "none", "--edit", "noise:2", "--edit",
                                 "unsharp:0.8:0.3", "--edit", "jpeg:75:4:4", "--data-dir",
                                 BENCH, "--no-lpips",
                                 "--on", "output"],
    "feature_distill.py": lambda t, o: [t / "tiny.safetensors", o / "fd.safetensors", "--k",
                                        "1", "--iters", "2", "--batch", "2", "--crop", "32",
                                        "--data", t / "imgs"],
}
needs_simd = pytest.mark.skipif(simd.unavailable_reason() is not None,
                                reason=f"the AVX2 kernels cannot run here: {simd.unavailable_reason()}")
MARKS = {"compare_crops.py": needs_sets, "outscale_quality.py": needs_sets,
         "local_grid.py": needs_sets,
         "make_4000x3000.py": needs_photos, "profile_gan_iteration.py": needs_vgg,
         "loss_gradients.py": needs_vgg, "lr_edits.py": needs_sets,
         "kernel_agreement.py": [needs_sets, needs_simd], "perf_simd.py": needs_simd}


def test_every_script_has_a_smoke_test():
    scripts = {p.name for p in SCRIPTS.glob("*.py")}
    own_tests = {"perf_fused.py", "perf_batch.py", "perf_startup.py"}  # below
    assert scripts - TESTED_ELSEWHERE - own_tests == set(CASES)


@pytest.mark.parametrize("name", [pytest.param(n, marks=MARKS.get(n, ()), id=n[:-3])
                                  for n in CASES])
def test_the_script_runs_to_the_end_on_toy_sizes(name, toys, tmp_path):
    out = ok(run_script(name, *CASES[name](toys, tmp_path)))
    assert out.strip() or any(tmp_path.iterdir())  # it printed or wrote something


def test_perf_batch_makes_a_folder_and_times_it(toys, tmp_path):
    ok(run_script("perf_batch.py", "make", tmp_path / "in", 2, "--size", 16))
    assert len(list((tmp_path / "in").glob("*.png"))) == 2
    out = ok(run_script("perf_batch.py", "time", tmp_path / "in", tmp_path / "out",
                        "--no-overlap", "--model", toys / "tiny.safetensors"))
    assert '"images": 2' in out and len(list((tmp_path / "out").glob("*.png"))) == 2


def test_perf_startup_reports_the_first_tile(toys, tmp_path):
    out = ok(run_script("perf_startup.py", toys / "imgs" / "p0.png", "-o", tmp_path / "first.png",
                        "--model", toys / "tiny.safetensors", "--overwrite", "-q"))
    assert "first tile" in out and "nan" not in out  # the forward pass was reached


def test_perf_fused_runs_where_amx_does_and_says_why_not_elsewhere(tmp_path):
    r = run_script("perf_fused.py", "micro", 16)
    if AMX_FLAGS <= cpu_flags():
        ok(r)
    else:
        assert r.returncode != 0 and "Traceback" not in r.stderr
        assert "fused AMX kernels cannot run here" in r.stderr


def test_lr_edits_jpeg_edit_is_the_training_pipelines_shifted_jpeg():
    import importlib.util

    import numpy as np
    import torch

    from srgan_cli.train.degrade import jpeg, shifted_jpeg

    spec = importlib.util.spec_from_file_location("lr_edits", REPO / "scripts" / "lr_edits.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    img = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    x = torch.from_numpy(img.astype(np.float32) / 255).permute(2, 0, 1)[None]
    for top, left, want in ((0, 0, jpeg(img, 60)), (3, 5, shifted_jpeg(img, 60, 3, 5))):
        out = mod.edit(x, *mod.parse_edit(f"jpeg:60:{top}:{left}"))
        assert np.array_equal((out[0].permute(1, 2, 0) * 255).round().byte().numpy(), want)
    with pytest.raises(SystemExit, match="jpeg:Q:T:L"):
        mod.parse_edit("jpeg:60")
