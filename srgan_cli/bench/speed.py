"""Speed benchmark: the full upscale path on a fixed synthetic photo-like input.

Each run times ``Upscaler.upscale_decoded`` (tiling, model, quantisation; no file I/O)
after warm-up runs, and reports output megapixels per second (median, min, max), peak
memory (resident set of the whole process during that measurement, weights and libraries
included; CUDA: peak allocated) and the achieved GFLOP/s from the model's FLOP count (useful work only: the
overlap recomputed between tiles is not counted).
"""

from __future__ import annotations

import copy
import resource
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch


def synthetic_photo(width: int, height: int, seed: int = 1234) -> np.ndarray:
    """A deterministic photo-like RGB image in [0, 1]: smooth shading, edges and texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.empty((height, width, 3), np.float32)
    for c in range(3):
        fy, fx = rng.uniform(0.002, 0.02, 2)
        img[..., c] = 0.5 + 0.25 * np.sin(fy * yy + 1.3 * c) * np.cos(fx * xx + 0.7 * c)
    cx, cy, r = width * 0.6, height * 0.4, min(width, height) * 0.25
    img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] *= 0.6  # a hard-edged disc
    img[:, : width // 3] += 0.1 * (np.floor(xx[:, : width // 3] / 8) % 2)[..., None]  # stripes
    img += rng.normal(0, 0.03, img.shape).astype(np.float32)  # fine texture
    return np.clip(img, 0, 1)


@dataclass
class SpeedResult:
    label: str
    model: str
    device: str
    precision: str
    in_size: tuple[int, int]
    out_size: tuple[int, int]
    tile: int
    runs: int
    seconds: list[float]
    mp_per_s_median: float
    mp_per_s_min: float
    mp_per_s_max: float
    gflops: float | None  # achieved, from the model's FLOP count (None: not known) and the median time
    peak_rss_mb: float
    cuda_peak_mb: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def reset_peak_rss() -> bool:
    """Start a new peak-RSS window (Linux: write 5 to /proc/self/clear_refs); False if not."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident memory of this process since the last :func:`reset_peak_rss` (else
    since it started), in MiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _time(fn: Callable[[], object], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t


def measure(label: str, run: Callable[[], object], *, model: str, device: torch.device,
            precision: str, in_size: tuple[int, int], scale: int, flops_per_px: float | None,
            tile: int, warmup: int = 1, runs: int = 5) -> SpeedResult:
    """Time ``run`` ``runs`` times after ``warmup`` untimed calls."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    reset_peak_rss()  # so each path reports its own peak, not the largest so far
    for _ in range(warmup):
        _time(run, device)
    secs = [_time(run, device) for _ in range(runs)]
    w, h = in_size
    out_mp = w * h * scale * scale / 1e6
    rates = [out_mp / s for s in secs]
    med = statistics.median(secs)
    return SpeedResult(
        label=label, model=model, device=str(device), precision=precision, in_size=in_size,
        out_size=(w * scale, h * scale), tile=tile, runs=runs, seconds=secs,
        mp_per_s_median=out_mp / med, mp_per_s_min=min(rates), mp_per_s_max=max(rates),
        gflops=None if flops_per_px is None else flops_per_px * w * h / med / 1e9,
        peak_rss_mb=peak_rss_mb(),
        cuda_peak_mb=(torch.cuda.max_memory_allocated(device) / 2**20
                      if device.type == "cuda" else None),
    )


def eager_fp32_baseline(net: torch.nn.Module, x: torch.Tensor) -> Callable[[], object]:
    """What peer repos run: a plain fp32 ``model(x)`` on the whole image, NCHW, no_grad."""
    import copy

    plain = copy.deepcopy(net).to(memory_format=torch.contiguous_format).float().eval()

    def run():
        with torch.no_grad():
            return plain(x)

    return run


#: Seconds of timed runs the eager fp32 baseline gets (at least one run, at most ``--runs``):
#: on a CPU without bf16 one 512x512 pass can take minutes (175 s on a 2-core Zen 2).
BASELINE_BUDGET_S = 60.0
CALIBRATION_SIDE = 64  # LR px: the crop the baseline's time per run is estimated from


def baseline_plan(net: torch.nn.Module, x: torch.Tensor, runs: int,
                  budget_s: float | None = None) -> tuple[int, float]:
    """(timed runs, estimated seconds per run) of :func:`eager_fp32_baseline` on ``x``:
    one pass over a corner crop of at most ``CALIBRATION_SIDE`` px, scaled by the pixel
    count, then as many runs as fit ``budget_s`` (default :data:`BASELINE_BUDGET_S`),
    between 1 and ``runs``."""
    budget = BASELINE_BUDGET_S if budget_s is None else budget_s
    h, w = x.shape[-2:]
    c = x[..., :min(h, CALIBRATION_SIDE), :min(w, CALIBRATION_SIDE)]
    run = eager_fp32_baseline(net, c)
    run()  # the first call sets oneDNN up
    per_run = _time(run, x.device) * (h * w) / (c.shape[-2] * c.shape[-1])
    return max(1, min(runs, int(budget // per_run) if per_run > 0 else runs)), per_run


def gemm_rate(device: torch.device, dtype: torch.dtype = torch.bfloat16, n: int = 2048,
              repeats: int = 5) -> float:
    """Measured dense matmul rate in GFLOP/s (median of ``repeats``), the hardware yardstick."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    torch.matmul(a, b)
    secs = [_time(lambda: torch.matmul(a, b), device) for _ in range(repeats)]
    return 2 * n**3 / statistics.median(secs) / 1e9


GEMM_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
#: A path said to beat the matmul rate of its own precision by more than this is not a
#: comparison worth printing (the rate was disturbed, or the path does not run in it).
MAX_GEMM_FRACTION = 1.5


def gemm_rates(device: torch.device, precisions) -> dict[str, float]:
    """The matmul rate (GFLOP/s) of each distinct precision in ``precisions``."""
    return {p: gemm_rate(device, GEMM_DTYPES[p]) for p in dict.fromkeys(precisions)}


def gemm_fraction(gflops: float | None, rate: float | None) -> float | None:
    """A path's achieved GFLOP/s as a fraction of the matmul rate of its precision, or None
    where that says nothing: no rate, a rate of about zero (the precision has no fast
    matmul on this device), or a fraction above :data:`MAX_GEMM_FRACTION`."""
    if gflops is None or rate is None or not rate >= 1.0:
        return None
    fraction = gflops / rate
    return fraction if 0 <= fraction <= MAX_GEMM_FRACTION else None


def hardware(device: torch.device) -> dict:
    """What the numbers were measured on: CPU model and bf16 features, threads, GPU, torch."""
    import os
    import platform

    from srgan_cli.inference.device import cpu_flags, cpu_model, cpu_vendor

    cpu, flags = platform.processor() or platform.machine(), cpu_flags()
    if cpu in ("", platform.machine()):
        cpu = cpu_model() or cpu
    vendor, family = cpu_vendor()
    info = {"cpu": cpu, "cpu_vendor": vendor, "cpu_family": family,
            "logical_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cpu_bf16": sorted(flags & {"amx_bf16", "amx_tile", "avx512_bf16", "avx512f"}),
            "cpu_simd": sorted(flags & {"avx2", "fma", "avx512f"}),
            "torch": torch.__version__}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


# --------------------------------------------------------------------------- peak FMA rate

#: FMA pipes per core: two on every x86-64 core with AVX2 + FMA since Haswell (Intel) and
#: Zen 2 (AMD). Some AVX-512 Xeons (Silver, Bronze) have one 512-bit pipe: there the
#: peak below is twice the real one, still an upper limit.
FMA_PIPES = 2
#: bf16 FLOP per cycle and core of Intel's AMX tile unit (TDPBF16PS), Intel's figure.
AMX_BF16_FLOP_PER_CYCLE = 1024


def flop_per_cycle(precision: str, flags: set[str], vendor: tuple[str | None, int | None]
                   ) -> int | None:
    """Peak FLOP per cycle and core for work in ``precision``, from the CPU's flags (None:
    no AVX2 + FMA, or not an x86 CPU). fp32: ``FMA_PIPES`` x the FMA's fp32 lanes x 2 (a
    multiply and an add): 16 lanes with AVX-512F, except AMD before Zen 5 (family 25 and
    older), which runs a 512-bit FMA as two 256-bit halves, so 8 as with AVX2. bf16: the
    AMX tile unit's rate where AMX-BF16 is, twice fp32 with AVX512-BF16 (a dot product of
    pairs), else fp32's (bf16 is converted). fp16 on a CPU: fp32's."""
    if not {"avx2", "fma"} <= flags:
        return None
    name, family = vendor
    full_512 = "avx512f" in flags and not (name == "AuthenticAMD" and (family or 0) <= 25)
    fp32 = FMA_PIPES * (16 if full_512 else 8) * 2
    if precision == "bf16":
        if {"amx_bf16", "amx_tile"} <= flags:
            return AMX_BF16_FLOP_PER_CYCLE
        if "avx512_bf16" in flags:
            return 2 * fp32
    return fp32


@dataclass
class Peak:
    """The CPU's peak FMA rate: ``threads`` cores x FLOP per cycle (by precision, from the
    flags: :func:`flop_per_cycle`) x the clock measured while ``threads`` cores run."""

    ghz: float
    threads: int
    flop_per_cycle: dict[str, int]

    def gflops(self, precision: str) -> float | None:
        fpc = self.flop_per_cycle.get(precision)
        return None if fpc is None else self.threads * fpc * self.ghz

    def as_dict(self) -> dict:
        return {"measured_ghz": self.ghz, "threads": self.threads,
                "flop_per_cycle_per_core": self.flop_per_cycle,
                "gflops": {p: self.gflops(p) for p in self.flop_per_cycle}}


def peak_fma(device: torch.device, precisions) -> tuple[Peak | None, str | None]:
    """The peak FMA rate of the CPU for each precision in ``precisions`` (on torch's
    threads), or None and why not (another device, a CPU without AVX2 + FMA, no compiler
    for the clock loop)."""
    from srgan_cli.inference.device import cpu_flags, cpu_vendor

    if device.type != "cpu":
        return None, f"no peak FMA rate for {device.type} devices"
    flags, vendor = cpu_flags(), cpu_vendor()
    fpc = {p: flop_per_cycle(p, flags, vendor) for p in dict.fromkeys(precisions)}
    if any(v is None for v in fpc.values()):
        return None, "no peak FMA rate: the CPU has no AVX2 + FMA"
    from srgan_cli.inference.kernels import simd

    try:
        ghz = simd.clock_ghz()
    except RuntimeError as e:
        return None, f"no peak FMA rate: the clock loop cannot run ({e})"
    return Peak(ghz, torch.get_num_threads(), fpc), None


def peak_fraction(gflops: float | None, peak: float | None) -> float | None:
    """A path's GFLOP/s (from the direct-convolution FLOP count) over the peak FMA rate of
    its precision; None without both. It may pass 1 for kernels that do fewer multiplies
    than the FLOP count (Winograd)."""
    if gflops is None or peak is None or not peak > 0:
        return None
    return gflops / peak


# --------------------------------------------------------------------------- OpenVINO

def openvino_reason() -> str | None:
    """Why the OpenVINO baseline cannot run (the package is not importable), or None."""
    try:
        import openvino  # noqa: F401
    except ImportError as e:
        return (f"--baseline openvino needs the openvino package (pip install "
                f"'srgan[openvino]'): {e}")
    return None


def openvino_baseline(net: torch.nn.Module, x: torch.Tensor,
                      threads: int | None = None) -> tuple[Callable[[], object], str]:
    """The same network through OpenVINO on the CPU, f32 (``INFERENCE_PRECISION_HINT``),
    latency hint, ``threads`` inference threads (default torch's), the whole image ``x``
    in one request; and OpenVINO's version. The network as trained is converted from a
    16x16 example (tracing it at full size would run eager fp32 once) and reshaped to
    ``x``'s size; OpenVINO folds the BatchNorms itself. Compiling is not timed."""
    import openvino as ov

    plain = copy.deepcopy(net).float().eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notices from the converter
        model = ov.convert_model(plain, example_input=torch.zeros(1, 3, 16, 16))
    model.reshape([1, 3, x.shape[2], x.shape[3]])
    compiled = ov.Core().compile_model(model, "CPU", {
        "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
        "INFERENCE_NUM_THREADS": str(threads or torch.get_num_threads())})
    request = compiled.create_infer_request()
    xn = x.detach().float().cpu().numpy()

    def run():
        return request.infer({0: xn})

    return run, ov.__version__
