import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srgan_cli.distribution.modelfile import save_generator
from srgan_cli.nets.generator import GeneratorSpec, SRResNet

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SRGAN_SHARED_DIR", REPO.parent / "shared"))

# Small test networks gain nothing from threads, and oversubscribed OpenMP threads
# (e.g. beside a training run) slow everything down a hundredfold.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def no_user_registry(tmp_path_factory, monkeypatch):
    """Tests never read or write the real user's registry (``~/.config/srgan``)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.getbasetemp() / "user-config"))


def needs_shared(*parts: str):
    path = SHARED.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(),
                              reason=f"needs {path} (the project's ../shared data)")


def photo_like(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth colourful image with edges: enough structure for SR tests."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        for _ in range(4):
            fy, fx, ph = rng.uniform(0.01, 0.15), rng.uniform(0.01, 0.15), rng.uniform(0, 6.3)
            img[..., c] += np.sin(fy * yy + fx * xx + ph)
    img += (xx > w / 2)[..., None] * 1.5  # a hard edge
    img = (img - img.min()) / (img.max() - img.min())
    return (img * 255).astype(np.uint8)


def trained_looking(spec: GeneratorSpec, seed: int) -> SRResNet:
    """A random generator in eval mode whose BN layers have non-trivial statistics and
    affine terms and whose PReLU slopes differ per channel."""
    torch.manual_seed(seed)
    model = SRResNet(spec)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.3, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
        if isinstance(m, torch.nn.PReLU):
            m.weight.data.uniform_(0.0, 0.5)
    return model.eval()


@pytest.fixture
def tiny_spec() -> GeneratorSpec:
    return GeneratorSpec(scale=4, blocks=2, width=8)


@pytest.fixture
def tiny_weights(tmp_path, tiny_spec) -> Path:
    """Random-initialised small generator saved as a weights file (tests shapes, not quality)."""
    torch.manual_seed(0)
    model = SRResNet(tiny_spec)
    # Give BN non-trivial statistics so eval mode is exercised.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "tiny.safetensors"
    save_generator(model, path, {"stage": "test", "iterations": 0, "data": "none"})
    return path


@pytest.fixture
def image_dir(tmp_path) -> Path:
    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(3):
        Image.fromarray(photo_like(40 + 8 * i, 52 + 4 * i, seed=i)).save(d / f"im{i}.png")
    return d


def make_train_dir(d: Path, n: int, h: int, w: int, seed: int) -> Path:
    """A folder of ``n`` photo-like PNGs of h x w (training data for the train tests)."""
    d.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(photo_like(h, w, seed=seed + i)).save(d / f"t{i}.png")
    return d


def make_val_dir(d: Path, n: int, h: int, w: int, seed: int) -> Path:
    """A benchmark-style folder ``d`` with <name>_HR/ and <name>_LR_x4/ (bicubic LR)."""
    (d / f"{d.name}_HR").mkdir(parents=True)
    (d / f"{d.name}_LR_x4").mkdir()
    for i in range(n):
        hr = photo_like(h, w, seed=seed + i)
        Image.fromarray(hr).save(d / f"{d.name}_HR" / f"v{i}.png")
        Image.fromarray(hr).resize((w // 4, h // 4), Image.BICUBIC).save(d / f"{d.name}_LR_x4" / f"v{i}.png")
    return d


#: The CPU kinds the suite must pass on, as /proc/cpuinfo flags (srgan reads no other
#: source: srgan_cli.inference.device.CPUINFO is the switch).
CPU_KINDS = {
    "avx2": "fpu sse4_2 avx f16c fma avx2",  # e.g. AMD Zen 2: no AVX-512, no bf16
    "avx512": "fpu sse4_2 avx f16c fma avx2 avx512f avx512bw avx512_vnni avx512_bf16",  # Zen 4
    "amx": "fpu sse4_2 avx f16c fma avx2 avx512f avx512bw avx512_vnni avx512_bf16 "
           "avx512_fp16 amx_bf16 amx_tile amx_int8",  # Xeon Sapphire Rapids and later
}
AMX_FLAGS = {"amx_bf16", "amx_tile", "avx512_bf16"}


def simulate_cpu(kind: str, folder: Path, monkeypatch) -> str:
    """Let srgan see a CPU of ``kind`` (:data:`CPU_KINDS`). The fused AMX kernels only run
    where the real CPU has AMX and the simulated one too."""
    from srgan_cli.inference import device
    from srgan_cli.inference.kernels import amx
    from srgan_cli.inference.kernels.build import Loader

    real_amx = AMX_FLAGS <= device.cpu_flags()
    info = folder / f"cpuinfo-{kind}"
    info.write_text(f"processor\t: 0\nmodel name\t: simulated {kind} CPU\n"
                    f"flags\t\t: {CPU_KINDS[kind]}\n")
    monkeypatch.setattr(device, "CPUINFO", str(info))
    if not (kind == "amx" and real_amx):
        why = ("the CPU has no AMX-BF16" if kind != "amx" else
               "simulated AMX CPU: the real one cannot run the kernels")

        def refuse():
            raise RuntimeError(why)

        monkeypatch.setattr(amx, "_loader", Loader(refuse))
    return kind


@pytest.fixture(params=list(CPU_KINDS))
def cpu_kind(request, tmp_path, monkeypatch) -> str:
    """Runs a test once per CPU kind of :data:`CPU_KINDS`, srgan seeing that CPU's flags."""
    return simulate_cpu(request.param, tmp_path, monkeypatch)


@pytest.fixture(autouse=True)
def simulated_cpu(tmp_path_factory, monkeypatch):
    """``SRGAN_TEST_CPU=avx2`` (or avx512, amx): the whole suite in this process sees that
    CPU kind (subprocesses and skip conditions still see the real one)."""
    kind = os.environ.get("SRGAN_TEST_CPU")
    if kind:
        simulate_cpu(kind, tmp_path_factory.getbasetemp(), monkeypatch)
