"""The training degradations (srgan_cli.train.degrade, ``srgan train --degradation``)."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import make_train_dir, make_val_dir, photo_like

from srgan_cli.cli import main
from srgan_cli.distribution.loading import load_file
from srgan_cli.errors import TrainError
from srgan_cli.train.config import TrainConfig
from srgan_cli.train.data import ImageBank, downscale, sample_batch
from srgan_cli.train.degrade import (
    DegradationError,
    DegradationSpec,
    Degrader,
    blur,
    format_degradation,
    gaussian_kernels,
    parse_degradation,
)
from srgan_cli.train.loop import train
from srgan_cli.train.state import load_checkpoint

# one degradation alone: everything else off, a single resize kernel
ONLY = dict(blur_prob=0.0, noise_prob=0.0, jpeg_prob=0.0, resize_modes=("bicubic",))


@pytest.fixture
def train_dir(tmp_path):
    return make_train_dir(tmp_path / "train", 3, 64, 80, seed=30)


def photo_batch(n=4, size=48, seed=0) -> torch.Tensor:
    imgs = [torch.from_numpy(photo_like(size, size, seed=seed + i)).permute(2, 0, 1)
            for i in range(n)]
    return torch.stack(imgs).float() / 255


def degrade(spec: DegradationSpec, hr: torch.Tensor, seed: int = 0) -> torch.Tensor:
    return Degrader(spec)(hr, 4, torch.Generator().manual_seed(seed))


def tiny_cfg(data, run_dir, **kw) -> TrainConfig:
    base = dict(data=[str(data)], run_dir=str(run_dir), iters=4, batch=4, crop=32, blocks=1,
                width=8, lr=1e-3, ckpt_every=2, val_every=100, log_every=1, precision="fp32",
                device="cpu", seed=5, degradation="real")
    base.update(kw)
    return TrainConfig(**base)


def test_clean_is_the_default_and_parses_to_no_degradation():
    assert TrainConfig(data=[]).degradation == "clean"
    assert parse_degradation("clean") is None
    assert parse_degradation("real") == DegradationSpec()


def test_settings_override_the_real_defaults_and_format_back_to_the_same_text():
    spec = parse_degradation("real, jpeg_quality=50:90, noise_prob=0.5, resize_modes=area+bicubic,"
                             "blur_sigma=1")
    assert spec.jpeg_quality == (50, 90) and spec.noise_prob == 0.5
    assert spec.resize_modes == ("area", "bicubic") and spec.blur_sigma == (1.0, 1.0)
    assert spec.blur_aniso_prob == DegradationSpec().blur_aniso_prob
    assert parse_degradation(format_degradation(spec)) == spec
    assert format_degradation(None) == "clean" and format_degradation(DegradationSpec()) == "real"


@pytest.mark.parametrize("text, says", [
    ("blurry", "expected clean or real"),
    ("clean,jpeg_prob=0", "takes no settings"),
    ("real,jpeg=50", "KEY=VALUE with KEY one of"),
    ("real,jpeg_prob", "KEY=VALUE"),
    ("real,jpeg_prob=often", "a number"),
    ("real,jpeg_quality=50:high", "LOW:HIGH"),
    ("real,noise_prob=1.5", "probability must be in [0, 1]"),
    ("real,noise_sigma=30:1", "low <= high"),
    ("real,jpeg_quality=0:101", "1..100"),
    ("real,blur_sigma=0:2", "above 0"),
    ("real,resize_modes=lanczos", "lanczos"),
])
def test_bad_specs_are_one_line_errors_naming_the_problem(text, says):
    with pytest.raises(DegradationError) as e:
        parse_degradation(text)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_the_cli_refuses_a_bad_degradation_with_one_line_and_status_2(train_dir, tmp_path):
    r = CliRunner().invoke(main, ["train", "--data", str(train_dir), "--run-dir",
                                  str(tmp_path / "run"), "--degradation", "real,jpeg_prob=2"])
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [
        "error: --degradation: jpeg_prob = 2: a probability must be in [0, 1]"]
    assert not (tmp_path / "run" / "last.pt").exists()


def test_the_library_refuses_a_bad_degradation_as_a_train_error(train_dir, tmp_path):
    with pytest.raises(TrainError, match="degradation: .*expected clean or real"):
        train(tiny_cfg(train_dir, tmp_path / "run", degradation="dirty"))


def test_degraded_crops_are_reproducible_from_the_data_seed(train_dir):
    bank = ImageBank.from_dirs([train_dir], 32)
    deg = Degrader(DegradationSpec())
    a = sample_batch(bank, 8, 32, 4, torch.Generator().manual_seed(1), degrade=deg)
    b = sample_batch(bank, 8, 32, 4, torch.Generator().manual_seed(1), degrade=deg)
    c = sample_batch(bank, 8, 32, 4, torch.Generator().manual_seed(2), degrade=deg)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert a[0].shape == (8, 3, 8, 8) and a[0].min() >= 0 and a[0].max() <= 1


def test_the_degraded_crops_are_the_clean_runs_crops(train_dir):
    """The degradations draw after the crops: the same HR crops as a clean run's batch."""
    bank = ImageBank.from_dirs([train_dir], 32)
    _, hr_clean = sample_batch(bank, 8, 32, 4, torch.Generator().manual_seed(3))
    lr, hr = sample_batch(bank, 8, 32, 4, torch.Generator().manual_seed(3),
                          degrade=Degrader(DegradationSpec()))
    assert torch.equal(hr, hr_clean)
    assert not torch.allclose(lr, downscale((hr + 1) / 2, 4), atol=1 / 255)


def test_the_packed_layout_gives_the_same_degraded_batches_as_the_per_crop_path(train_dir):
    bank = ImageBank.from_dirs([train_dir], 32)
    deg = Degrader(DegradationSpec())
    g1, g2 = torch.Generator().manual_seed(6), torch.Generator().manual_seed(6)
    for _ in range(3):
        a = sample_batch(bank, 8, 32, 4, g1, degrade=deg)
        b = sample_batch(bank.pack(), 8, 32, 4, g2, degrade=deg)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_a_restored_data_stream_continues_with_the_same_degraded_crops(train_dir):
    bank = ImageBank.from_dirs([train_dir], 32)
    deg = Degrader(DegradationSpec())
    gen = torch.Generator().manual_seed(4)
    sample_batch(bank, 4, 32, 4, gen, degrade=deg)
    saved = gen.get_state()
    want = sample_batch(bank, 4, 32, 4, gen, degrade=deg)
    again = sample_batch(bank, 4, 32, 4, torch.Generator().set_state(saved), degrade=deg)
    assert torch.equal(want[0], again[0]) and torch.equal(want[1], again[1])


def test_a_real_run_resumes_exactly_and_records_its_degradation(train_dir, tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    train(tiny_cfg(train_dir, full))
    train(tiny_cfg(train_dir, part, iters=2))
    train(tiny_cfg(train_dir, part), resume=part / "last.pt")
    logs = [[json.loads(l)["l_g_pix"] for l in (d / "log.jsonl").read_text().splitlines()
             if "l_g_pix" in l] for d in (full, part)]
    assert len(logs[0]) == 4 and logs[0] == logs[1]
    a, b = load_checkpoint(full / "last.pt"), load_checkpoint(part / "last.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert json.loads(a["config"])["degradation"] == "real"


def test_an_exported_real_model_names_its_degradation_and_a_clean_one_does_not(train_dir,
                                                                             tmp_path):
    from srgan_cli.train.export import export

    for degradation in ("real,jpeg_quality=50:95", "clean"):
        run = tmp_path / degradation.split(",")[0]
        train(tiny_cfg(train_dir, run, iters=1, degradation=degradation))
        info = load_file(export(run / "last.pt", tmp_path / f"{run.name}.safetensors"), ours_only=True)
        assert info.metadata.get("degradation") == (None if degradation == "clean"
                                                    else degradation)


def test_resuming_with_another_degradation_is_refused(train_dir, tmp_path):
    run = tmp_path / "run"
    train(tiny_cfg(train_dir, run, iters=2))
    with pytest.raises(TrainError, match="--degradation clean differ from the run's "
                                         "--degradation real"):
        train(tiny_cfg(train_dir, run, degradation="clean"), resume=run / "last.pt")


def test_the_cli_resumes_a_real_run_with_its_degradation_and_refuses_another(train_dir,
                                                                           tmp_path):
    run, out = tmp_path / "run", tmp_path / "w.safetensors"
    args = ["train", "--data", str(train_dir), "--run-dir", str(run), "--batch", "2", "--crop",
            "32", "--blocks", "1", "--width", "8", "--precision", "fp32", "--device", "cpu",
            "--val-dir", str(make_val_dir(tmp_path / "Val", 1, 48, 48, seed=50)),
            "--val-every", "100"]
    r = CliRunner().invoke(main, args + ["--degradation", "real,jpeg_quality=40:60",
                                         "--iters", "2"])
    assert r.exit_code == 0, r.output
    resume = ["--resume", str(run / "last.pt")]
    r = CliRunner().invoke(main, ["train", *resume, "--iters", "4", "--export", str(out)])
    assert r.exit_code == 0, r.output
    assert load_file(out, ours_only=True).metadata["degradation"] == "real,jpeg_quality=40:60"
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["iteration"] == 4
    assert json.loads(ckpt["config"])["degradation"] == "real,jpeg_quality=40:60"
    r = CliRunner().invoke(main, ["train", *resume, "--iters", "6", "--degradation", "clean"])
    assert r.exit_code == 1
    errors = [l for l in r.output.splitlines() if l.startswith("error: ")]
    assert len(errors) == 1 and "--degradation clean" in r.output
    assert "--degradation real,jpeg_quality=40:60" in r.output


def test_clean_prob_one_gives_the_clean_pipelines_lr():
    hr = photo_batch()
    lr = degrade(DegradationSpec(clean_prob=1.0), hr)
    assert torch.equal(lr, downscale(hr, 4))


def test_gaussian_kernels_have_the_drawn_sigmas_and_orientation():
    k = gaussian_kernels(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 1.2]),
                         torch.tensor([0.0, 0.0]), 21).double()
    r = torch.arange(21, dtype=torch.float64) - 10
    var_x = (k.sum(1) * r**2).sum(1)  # along columns (x)
    var_y = (k.sum(2) * r**2).sum(1)
    assert torch.allclose(k.sum((1, 2)), torch.ones(2, dtype=torch.float64))
    assert torch.allclose(var_x, torch.tensor([1.0, 4.0], dtype=torch.float64), atol=1e-3)
    assert torch.allclose(var_y, torch.tensor([1.0, 1.44], dtype=torch.float64), atol=1e-3)
    turned = gaussian_kernels(torch.tensor([2.0]), torch.tensor([1.2]),
                              torch.tensor([np.pi / 2]), 21)
    assert torch.allclose(turned[0], k[1].float().T, atol=1e-6)


def test_the_blur_is_a_reflect_padded_convolution_with_each_crops_kernel():
    img = photo_batch(2, 24)
    k = gaussian_kernels(torch.tensor([1.5, 0.7]), torch.tensor([0.6, 1.2]),
                         torch.tensor([0.3, -1.0]), 9)
    got = blur(img, k)
    padded = torch.nn.functional.pad(img, (4, 4, 4, 4), mode="reflect")
    want = torch.stack([torch.nn.functional.conv2d(padded[i : i + 1],
                                                   k[i].flip(0, 1).expand(3, 1, 9, 9), groups=3)[0]
                        for i in range(2)])
    assert torch.allclose(got, want, atol=1e-5)


def high_freq(x: torch.Tensor) -> float:
    return float((x[..., 1:] - x[..., :-1]).abs().mean())


def test_blur_makes_the_lr_smoother_the_more_the_larger_sigma():
    hr = photo_batch()
    clean = downscale(hr, 4)
    small = degrade(DegradationSpec(**{**ONLY, "blur_prob": 1.0, "blur_sigma": (1.0, 1.0)}), hr)
    large = degrade(DegradationSpec(**{**ONLY, "blur_prob": 1.0, "blur_sigma": (3.0, 3.0)}), hr)
    assert high_freq(large) < high_freq(small) < high_freq(clean)


def test_the_resize_kernels_differ_and_bicubic_alone_is_the_clean_downscale_rounded():
    hr = photo_batch()
    outs = {m: degrade(DegradationSpec(**{**ONLY, "resize_modes": (m,)}), hr)
            for m in ("bicubic", "bilinear", "area")}
    assert torch.allclose(outs["bicubic"], downscale(hr, 4), atol=0.5 / 255 + 1e-6)
    assert not torch.equal(outs["bilinear"], outs["bicubic"])
    assert not torch.equal(outs["area"], outs["bicubic"])
    assert torch.allclose(outs["area"], torch.nn.functional.avg_pool2d(hr, 4),
                          atol=0.5 / 255 + 1e-6)


def test_gaussian_noise_has_the_drawn_sigma_in_colour_and_in_gray():
    hr = torch.full((8, 3, 96, 96), 0.5)
    base = dict(ONLY, noise_prob=1.0, noise_gaussian_prob=1.0, noise_sigma=(10.0, 10.0))
    colour = degrade(DegradationSpec(**base, noise_gray_prob=0.0), hr) - 0.5
    gray = degrade(DegradationSpec(**base, noise_gray_prob=1.0), hr) - 0.5
    assert float(colour.std()) == pytest.approx(10 / 255, rel=0.05)
    assert float(gray.std()) == pytest.approx(10 / 255, rel=0.05)
    assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 0], gray[:, 2])
    assert not torch.equal(colour[:, 0], colour[:, 1])


def test_poisson_noise_grows_with_brightness_and_scale():
    hr = torch.cat([torch.full((4, 3, 96, 96), 0.1), torch.full((4, 3, 96, 96), 0.8)])
    base = dict(ONLY, noise_prob=1.0, noise_gaussian_prob=0.0, noise_gray_prob=0.0)
    one = degrade(DegradationSpec(**base, noise_poisson_scale=(1.0, 1.0)), hr) - hr[:, :, :24, :24]
    two = degrade(DegradationSpec(**base, noise_poisson_scale=(2.0, 2.0)), hr) - hr[:, :, :24, :24]
    dark, bright = float(one[:4].std()), float(one[4:].std())
    assert dark == pytest.approx((0.1 / 255) ** 0.5, rel=0.15)
    assert bright == pytest.approx((0.8 / 255) ** 0.5, rel=0.15)
    assert float(two[4:].std()) == pytest.approx(2 * bright, rel=0.15)


def test_jpeg_makes_the_lr_worse_the_lower_the_quality():
    hr = photo_batch(4, 128)
    clean = downscale(hr, 4)

    def err(q):
        spec = DegradationSpec(**{**ONLY, "jpeg_prob": 1.0, "jpeg_quality": (q, q)})
        return float(((degrade(spec, hr) - clean) ** 2).mean())

    assert err(30) > err(60) > err(95) > 0


def test_the_drawn_settings_stay_in_their_ranges():
    spec = parse_degradation("real,jpeg_quality=40:60,noise_sigma=2:4,blur_aniso_prob=0")
    d = Degrader(spec).draw(2000, torch.Generator().manual_seed(0))
    assert d.quality.min() == 40 and d.quality.max() == 60
    gauss = d.level[d.gaussian] * 255
    assert gauss.min() >= 2 and gauss.max() <= 4
    assert 0.4 < float(d.gaussian.float().mean()) < 0.6
    assert 0.35 < float(d.gray.float().mean()) < 0.45
    assert set(d.mode.tolist()) == {0, 1, 2} and not d.clean.any() and d.jpeg.all()
    k = d.kernels.double()
    assert torch.allclose(k, k.transpose(1, 2), atol=1e-6)  # isotropic only


def test_every_setting_is_documented_in_the_readme():
    from conftest import REPO

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for f in dataclasses.fields(DegradationSpec):
        assert f"`{f.name}`" in readme, f.name


def test_a_shifted_jpeg_grid_moves_the_blocks_and_an_unshifted_one_keeps_the_old_stream():
    from srgan_cli.train.degrade import jpeg, shifted_jpeg

    img = (photo_batch(1, 48)[0].permute(1, 2, 0) * 255).round().byte().numpy()
    assert np.array_equal(shifted_jpeg(img, 50, 0, 0), jpeg(img, 50))
    moved = shifted_jpeg(img, 50, 3, 5)
    assert moved.shape == img.shape and not np.array_equal(moved, jpeg(img, 50))

    def edges(x):  # mean luma step across each column boundary, by boundary phase mod 8
        y = x.astype(np.float64).mean(2)
        steps = np.abs(np.diff(y, axis=1)).mean(0)  # steps[j]: between columns j and j+1
        return np.array([steps[p::8].mean() for p in range(8)])

    # on smooth content the blocks' edges, where a JPEG's errors jump, lie between columns
    # 7|8 (mod 8) unshifted and 2|3 with the grid shifted 5 columns left of the corner
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float64)
    smooth = np.stack([128 + 60 * np.sin(xx / 9 + yy / 13), 100 + 0.8 * xx + 0.5 * yy,
                       150 + 50 * np.cos(yy / 7 - xx / 17)], 2).round().astype(np.uint8)
    for shift, edge in ((0, 7), (3, 4), (5, 2)):
        err = shifted_jpeg(smooth, 20, 0, shift).astype(np.float64) - smooth
        phases = edges(err)
        assert int(np.argmax(phases)) == edge and phases.max() > 2.5 * np.median(phases)
    # off (the default) draws nothing more: the same crops as before the setting existed
    hr = photo_batch(4, 64)
    base = dict(ONLY, jpeg_prob=1.0, jpeg_quality=(40.0, 40.0))
    off = Degrader(DegradationSpec(**base)).draw(4, torch.Generator().manual_seed(1))
    assert off.shift is None
    on = DegradationSpec(**base, jpeg_shift_prob=1.0)
    d = Degrader(on).draw(4000, torch.Generator().manual_seed(1))
    assert d.shift.min() == 0 and d.shift.max() == 15 and 6.5 < float(d.shift.float().mean()) < 8.5
    assert not torch.equal(degrade(on, hr), degrade(DegradationSpec(**base), hr))
    assert torch.equal(degrade(on, hr, seed=3), degrade(on, hr, seed=3))
    assert parse_degradation("real,jpeg_shift_prob=0.5").jpeg_shift_prob == 0.5


def test_a_second_pass_blurs_and_compresses_the_degraded_lr_again_and_off_draws_nothing():
    hr = photo_batch(4, 96)
    first = dict(ONLY, jpeg_prob=1.0, jpeg_quality=(90.0, 90.0))
    once = degrade(DegradationSpec(**first), hr, seed=2)
    # off (the default): the second pass's own settings change nothing, not even the stream
    assert torch.equal(once, degrade(DegradationSpec(**first, second_blur_sigma=(2.0, 3.0)),
                                     hr, seed=2))
    twice_spec = DegradationSpec(**first, second_prob=1.0, second_blur_prob=1.0,
                                 second_blur_sigma=(1.5, 1.5))
    twice = degrade(twice_spec, hr, seed=2)
    assert twice.shape == once.shape and torch.equal(twice, degrade(twice_spec, hr, seed=2))

    def detail(x):  # mean absolute horizontal step: what a blur of 1.5 LR px takes away
        return float((x[..., 1:] - x[..., :-1]).abs().mean())

    assert detail(twice) < 0.7 * detail(once)
    # the second JPEG is a real re-encode: no blur, quality 30 the second time moves pixels
    requant = DegradationSpec(**dict(first, jpeg_quality=(30.0, 30.0)), second_prob=1.0,
                              second_blur_prob=0.0)
    one_jpeg = degrade(DegradationSpec(**dict(first, jpeg_quality=(30.0, 30.0))), hr, seed=2)
    assert not torch.equal(degrade(requant, hr, seed=2), one_jpeg)
    # second_prob picks crops: about half of 64 get the pass, the rest keep the first's LR
    half = DegradationSpec(**first, second_prob=0.5, second_blur_prob=1.0,
                           second_blur_sigma=(1.5, 1.5))
    many = photo_batch(64, 32)
    a, b = degrade(DegradationSpec(**first), many, seed=4), degrade(half, many, seed=4)
    same = sum(torch.equal(x, y) for x, y in zip(a, b))
    assert 16 <= same <= 48
    spec = parse_degradation("real,second_prob=0.5,second_blur_sigma=0.3:0.9")
    assert spec.second_prob == 0.5 and spec.second_blur_sigma == (0.3, 0.9)
    assert parse_degradation(format_degradation(spec)) == spec
    with pytest.raises(DegradationError, match="second_blur_sigma"):
        parse_degradation("real,second_blur_sigma=0:1")
