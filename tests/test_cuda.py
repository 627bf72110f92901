"""The CUDA paths, run on a GPU (``pytest -m cuda``; the GPU kit runs them first thing).

Without a GPU every test here is skipped. Tolerances, stated once:
- CUDA fp32 vs CPU fp32 (the same network, TF32 off): 8-bit outputs differ by at most one
  level; CUDA at the default precision (fp16) vs CPU fp32: Y-PSNR between them >= 40 dB.
- Tiled vs whole on CUDA (fp32, TF32 off): at most 1e-4 apart on the [-1, 1] output (the
  convolution algorithms may differ with the tile's shape; on the CPU they are equal).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_train_dir, make_val_dir, photo_like, trained_looking

from srgan_cli.distribution.modelfile import save_generator
from srgan_cli.imageio import imaging
from srgan_cli.inference.upscale import Upscaler
from srgan_cli.nets.generator import GeneratorSpec

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "weights" / "srresnet_x4.safetensors"


@pytest.fixture(autouse=True)
def no_tf32():
    """Plain fp32 on CUDA: TF32 off (PyTorch's default lets cuDNN convolutions use it)."""
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


def decoded(h: int, w: int, seed: int = 0) -> imaging.Decoded:
    return imaging.Decoded(photo_like(h, w, seed).astype(np.float32) / 255, None, "RGB")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def test_cuda_upscale_equals_the_cpu_fp32_result_within_tolerance():
    d = decoded(96, 128)
    cpu, _, _ = Upscaler(SHIPPED, device="cpu", precision="fp32", kernels="torch",
                         tile=0).upscale_decoded(d)
    gpu32, _, _ = Upscaler(SHIPPED, device="cuda", precision="fp32", tile=0).upscale_decoded(d)
    up = Upscaler(SHIPPED, device="cuda", tile=0)
    assert up.precision == "fp16"  # the CUDA default
    gpu16, _, retries = up.upscale_decoded(d)
    assert np.abs(cpu.astype(int) - gpu32.astype(int)).max() <= 1
    assert psnr(cpu, gpu16) >= 40 and retries == 0


def test_tiled_output_equals_whole_image_output_on_cuda():
    d = decoded(80, 112, seed=1)
    x = torch.from_numpy(d.rgb).permute(2, 0, 1)[None]
    whole = Upscaler(SHIPPED, device="cuda", precision="fp32", tile=0).upscale_tensor(x)
    tiled_up = Upscaler(SHIPPED, device="cuda", precision="fp32", tile=32)
    tiles = []
    tiled = tiled_up.upscale_tensor(x, on_tile=lambda i, n: tiles.append(n))
    assert tiles and tiles[-1] > 1
    assert (whole - tiled).abs().max().item() <= 1e-4


def test_out_of_memory_really_halves_the_tile_on_cuda():
    """The whole 1024^2 image needs ~13 GB in fp32; with this process capped at 3 GB,
    CUDA runs out of memory and the tile is halved until it fits."""
    d = decoded(1024, 1024, seed=2)
    up = Upscaler(SHIPPED, device="cuda", precision="fp32", tile=0)
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(min(1.0, (3 << 30) / total), 0)
    events: list[str] = []
    try:
        planes, tile, _ = up.upscale_decoded(d, on_event=events.append)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, 0)
        torch.cuda.empty_cache()
    assert 0 < tile < 1024 and events and all("out of memory" in e for e in events)
    ref, _, _ = Upscaler(SHIPPED, device="cuda", precision="fp32", tile=tile).upscale_decoded(d)
    assert np.abs(planes.astype(int) - ref.astype(int)).max() <= 1


def test_an_fp16_tile_that_overflows_is_redone_in_fp32(tmp_path):
    """A network whose activations exceed fp16's range (65504) but not fp32's: every fp16
    tile comes out non-finite and is recomputed in fp32, giving the fp32 result."""
    spec = GeneratorSpec(scale=4, blocks=2, width=8)
    model = trained_looking(spec, seed=3)
    with torch.no_grad():
        model.head.conv.weight.mul_(2e5)  # weights stay below 65504, outputs do not
    path = tmp_path / "hot.safetensors"
    save_generator(model, path, {"stage": "test", "iterations": 0, "data": "none"})
    d = decoded(32, 32, seed=4)
    planes, tile, retries = Upscaler(path, device="cuda", precision="fp16",
                                     tile=16).upscale_decoded(d)
    assert tile == 16 and retries >= 1
    ref, _, _ = Upscaler(path, device="cuda", precision="fp32", tile=16).upscale_decoded(d)
    assert np.abs(planes.astype(int) - ref.astype(int)).max() <= 1


# --------------------------------------------------------------------------- training


@pytest.fixture
def train_dir(tmp_path) -> Path:
    return make_train_dir(tmp_path / "train", 4, 64, 80, seed=50)


@pytest.fixture
def val_dir(tmp_path) -> Path:
    return make_val_dir(tmp_path / "Val", 2, 48, 64, seed=60)


def test_the_packed_bank_on_cuda_cuts_the_cpu_path_crops(train_dir):
    from srgan_cli.train.data import ImageBank, sample_batch

    cpu = ImageBank.from_dirs([train_dir], 32)
    gpu = ImageBank.from_dirs([train_dir], 32, device="cuda")
    assert gpu.packed is not None and gpu.packed.flat.device.type == "cuda"
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    lr1, hr1 = sample_batch(cpu, 32, 32, 4, g1)
    lr2, hr2 = sample_batch(gpu, 32, 32, 4, g2, device="cuda")
    assert hr2.device.type == "cuda" and torch.equal(hr1, hr2.cpu())
    assert (lr1 - lr2.cpu()).abs().max().item() <= 1e-4  # CUDA's bicubic vs the CPU's


def _cfg(data, run, **kw):
    from srgan_cli.train.config import TrainConfig

    base = dict(data=[str(data)], run_dir=str(run), iters=6, batch=8, crop=32, blocks=2, width=16,
                lr=1e-3, ckpt_every=3, val_every=3, log_every=1, precision="bf16",
                device="cuda", seed=7)
    base.update(kw)
    return TrainConfig(**base)


def _log(run: Path) -> list[dict]:
    import json

    return [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines()]


@pytest.fixture
def gpu_banks(monkeypatch):
    """Every ImageBank the training loop loads, to check where its pixels live."""
    from srgan_cli.train import loop

    banks = []
    real = loop.ImageBank.from_dirs

    def spy(*a, **kw):
        banks.append(real(*a, **kw))
        return banks[-1]

    monkeypatch.setattr(loop.ImageBank, "from_dirs", spy)
    return banks


def test_srresnet_and_gan_stages_train_on_cuda_with_the_data_on_the_gpu(train_dir, val_dir,
                                                                        tmp_path, gpu_banks):
    from safetensors.torch import save_file
    from torchvision.models import vgg19

    from srgan_cli.train.export import export
    from srgan_cli.train.loop import train
    from srgan_cli.train.state import load_checkpoint

    pre = tmp_path / "pre"
    train(_cfg(train_dir, pre, val_dir=str(val_dir)))
    assert gpu_banks[-1].packed is not None and gpu_banks[-1].packed.flat.device.type == "cuda"
    losses = [r["l_g_pix"] for r in _log(pre) if "l_g_pix" in r]
    assert len(losses) == 6 and all(np.isfinite(losses))
    release = export(pre / "last.pt", tmp_path / "pre.safetensors")

    torch.manual_seed(0)
    vgg = tmp_path / "vgg.safetensors"
    save_file({k: v.half().contiguous() for k, v in vgg19(weights=None).features.state_dict().items()},
              str(vgg))
    gan = tmp_path / "gan"
    train(_cfg(train_dir, gan, stage="gan", init=str(release), content_loss="vgg54",
               vgg_weights=str(vgg), ema=0.999, pixel_weight=0.5, adv_warmup=2, lr=1e-4))
    assert gpu_banks[-1].packed.flat.device.type == "cuda"
    recs = [r for r in _log(gan) if "l_d" in r]
    assert len(recs) == 6 and all(np.isfinite([r["l_d"], r["l_g_gan"], r["l_g_percep"],
                                               r["l_g_l1"]]).all() for r in recs)
    ck = load_checkpoint(gan / "last.pt")
    assert ck["iteration"] == 6 and "disc" in ck and "ema" in ck


def test_resume_on_cuda_equals_an_uninterrupted_run(train_dir, val_dir, tmp_path):
    from srgan_cli.train.loop import train
    from srgan_cli.train.state import load_checkpoint

    old = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        full, part = tmp_path / "full", tmp_path / "part"
        train(_cfg(train_dir, full, val_dir=str(val_dir)))
        train(_cfg(train_dir, part, iters=3, val_dir=str(val_dir)))
        train(_cfg(train_dir, part, val_dir=str(val_dir)), resume=part / "last.pt")
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = old
    a, b = _log(full), _log(part)
    assert [r["l_g_pix"] for r in a if "l_g_pix" in r] == [r["l_g_pix"] for r in b if "l_g_pix" in r]
    assert [r["val_psnr"] for r in a if "val_psnr" in r] == [r["val_psnr"] for r in b if "val_psnr" in r]
    sa, sb = load_checkpoint(full / "last.pt"), load_checkpoint(part / "last.pt")
    for k in sa["model"]:
        assert torch.equal(sa["model"][k], sb["model"][k]), k


def test_one_process_nccl_group_initialises_and_reduces(monkeypatch):
    import socket

    import torch.distributed as dist

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port))
    dist.init_process_group(backend="nccl", rank=0, world_size=1)
    try:
        assert dist.get_backend() == "nccl"
        t = torch.full((4,), 2.0, device="cuda")
        dist.all_reduce(t)
        dist.broadcast(t, 0)
        assert t.tolist() == [2.0] * 4
        out = [None]  # what srgan_cli.train.dist.gather_objects does over NCCL
        dist.all_gather_object(out, {"a": 1})
        assert out == [{"a": 1}]
    finally:
        dist.destroy_process_group()
