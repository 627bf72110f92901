"""The kept scripts around the SRGAN release: make demo (scripts/demo.py) and the
perception-distortion table and plot (scripts/perception_plot.py)."""

import importlib.util
from types import SimpleNamespace

import numpy as np
from conftest import REPO, photo_like, trained_looking
from PIL import Image

from srgan_cli.distribution.hub import sha256_file
from srgan_cli.distribution.modelfile import save_generator
from srgan_cli.distribution.registry import register_file
from srgan_cli.nets.generator import GeneratorSpec

SPEC = GeneratorSpec(scale=4, blocks=1, width=8)


def script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_demo(tmp_path, capfd):
    src = tmp_path / "pic.png"
    Image.fromarray(photo_like(24, 32, 1)).save(src)
    code = script("demo").main([str(src), str(tmp_path / "out")])
    out, err = capfd.readouterr()
    return SimpleNamespace(returncode=code, stdout=out, stderr=err)


def test_demo_writes_each_released_model_side_by_side_and_says_which_is_which(
        tmp_path, monkeypatch, capfd):
    w = tmp_path / "weights"
    w.mkdir()
    monkeypatch.setenv("SRGAN_REGISTRY", str(w / "models.json"))
    monkeypatch.setenv("SRGAN_WEIGHTS_DIR", str(w))
    sr = w / "srresnet_x4.safetensors"
    save_generator(trained_looking(SPEC, 1), sr, {"stage": "srresnet"})
    register_file(sr, "srresnet", registry_file=w / "models.json")

    p = run_demo(tmp_path, capfd)  # before the srgan release
    assert p.returncode == 0, p.stderr
    assert "srgan: not released yet" in p.stderr
    assert "pic_x4_srresnet.png: srresnet: distortion-oriented (MSE) (the default model)" in p.stdout
    assert not (tmp_path / "out" / "pic_x4_srgan.png").exists()

    gan = w / "srgan_x4.safetensors"
    save_generator(trained_looking(SPEC, 2), gan, {"stage": "gan",
                                                   "parent_sha256": sha256_file(sr)})
    register_file(gan, "srgan", registry_file=w / "models.json", make_default=True)
    p = run_demo(tmp_path, capfd)
    assert p.returncode == 0, p.stderr
    assert ("pic_x4_srgan.png: srgan: photo-realistic (GAN), with a 4-px lattice (the default "
            "model)") in p.stdout
    assert "srgan-resize: not released yet" in p.stderr
    assert "srgan-real: not released yet" in p.stderr
    a = np.asarray(Image.open(tmp_path / "out" / "pic_x4_srresnet.png"))
    b = np.asarray(Image.open(tmp_path / "out" / "pic_x4_srgan.png"))
    assert a.shape == b.shape == (96, 128, 3) and not np.array_equal(a, b)
    side = Image.open(tmp_path / "out" / "pic_x4_side_by_side.png")
    assert side.width >= 3 * 96  # bicubic | srresnet | srgan
    assert "bicubic | srresnet: distortion-oriented (MSE) | srgan: photo-realistic (GAN)" in p.stdout


def test_perception_plot_tables_and_draws_every_realism_beside_the_references(tmp_path):
    pp = script("perception_plot")
    records = []
    for ds, base in (("set5", 31.4), ("set14", 28.0)):
        records.append({"dataset": ds, "method": "bicubic", "psnr": base - 3, "lpips": 0.34})
        for r in pp.REALISMS:
            records.append({"dataset": ds, "method": pp.realism_label("srgan", r),
                            "psnr": base - 2 * r, "lpips": 0.18 - 0.08 * r})
    results = {"srgan": {"model": "srgan", "file": "weights/srgan_x4.safetensors"},
               "realisms": list(pp.REALISMS), "records": records}
    md = pp.table(results)
    assert "| `--realism 0.5` | 30.40 | 0.1400 | 27.00 | 0.1400 |" in md
    assert "| paper's SRGAN | 29.40 | 0.088 (later work) | 26.02 | 0.166 (later work) |" in md
    assert "| paper's SRResNet | 32.05 | - | 28.49 | - |" in md
    png = tmp_path / "plane.png"
    pp.plot(results, png)
    im = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert im.shape == (402, 920, 3)
    blue = (abs(im[..., 0] - 40) < 30) & (abs(im[..., 1] - 90) < 30) & (im[..., 2] > 170)
    red = (im[..., 0] > 180) & (im[..., 1] < 90) & (im[..., 2] < 90)
    assert blue[:, :460].sum() > 100 and blue[:, 460:].sum() > 100  # the R chain, each set
    assert red[:, :460].sum() > 10 and red[:, 460:].sum() > 10  # the paper's SRGAN
