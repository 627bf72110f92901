"""Device and precision selection."""

from __future__ import annotations

import torch

CPUINFO = "/proc/cpuinfo"  # where the CPU's model and flags are read (Linux)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; explicit names are validated."""
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r} (use auto, cpu, cuda, cuda:N or mps)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError("device 'mps' requested but MPS is not available")
    elif dev.type != "cpu":
        raise ValueError(f"unsupported device {name!r}")
    return dev


def _cpuinfo_field(name: str) -> str | None:
    """The value of the first ``name`` line of /proc/cpuinfo (None: no such line or file)."""
    try:
        with open(CPUINFO) as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip() == name:
                    return value.strip()
    except OSError:
        pass
    return None


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    return set((_cpuinfo_field("flags") or "").split())


def cpu_model() -> str | None:
    """The CPU's model name from /proc/cpuinfo, or None."""
    return _cpuinfo_field("model name")


def cpu_vendor() -> tuple[str | None, int | None]:
    """The CPU's vendor id (GenuineIntel, AuthenticAMD) and family number, or None each."""
    family = _cpuinfo_field("cpu family")
    return _cpuinfo_field("vendor_id"), int(family) if family and family.isdigit() else None


def cpu_has_amx() -> bool:
    """Whether the CPU has AMX-BF16 (the fused AMX kernels' instructions)."""
    return {"amx_bf16", "amx_tile", "avx512_bf16"} <= cpu_flags()


def cpu_has_bf16() -> bool:
    """True when the CPU has native bf16 matrix support (AMX-BF16 or AVX512-BF16)."""
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def default_precision(device: torch.device) -> str:
    """What ``--precision auto`` means for inference on ``device``.

    fp16 on CUDA; bf16 on CPUs with native bf16 support (AMX-BF16 / AVX512-BF16), where
    the shipped SRResNet's Set5 Y-PSNR in bf16 is within 0.05 dB of fp32 (measured in
    docs/performance.md); fp32 elsewhere (MPS, and CPUs that would emulate bf16).
    """
    if device.type == "cuda":
        return "fp16"
    if device.type == "cpu" and cpu_has_bf16():
        return "bf16"
    return "fp32"


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a precision name, or None for plain fp32."""
    precision = precision.lower()
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if precision != "auto":
        raise ValueError(f"unknown precision {precision!r} (auto, fp32, bf16, fp16)")
    raise ValueError("'auto' must be resolved by the caller")


def training_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype training runs in (None: plain fp32). ``auto``: bf16 on CUDA
    (fp16 where bf16 is unsupported) and on CPUs with native bf16, else fp32."""
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device.type == "cpu":
            return torch.bfloat16 if cpu_has_bf16() else None
        return None
    return autocast_dtype(precision, device)


def _libc():
    """glibc through ctypes, or None where it cannot be loaded."""
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def release_freed_memory() -> bool:
    """Hand memory that malloc keeps (see :func:`keep_freed_memory`) back to the system
    (glibc ``malloc_trim``). Returns False where it does not apply."""
    trim = getattr(_libc(), "malloc_trim", None)
    return bool(trim(0)) if trim is not None else False


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep and reuse large freed blocks instead of unmapping them.

    By default every allocation above 32 MB is a fresh ``mmap`` whose pages the kernel
    zeroes on first touch, and every free unmaps it: at the sizes of this network's
    activations that page-fault work costs as much as the elementwise ops themselves.
    With a high mmap threshold and no trimming, freed activations are reused; the price
    is that the process keeps its peak memory until it exits. A process-wide setting,
    so the command line turns it on and library users choose. Returns False where it
    does not apply (not glibc).
    """
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    ok = mallopt(m_mmap_threshold, 1 << 30) == 1  # above this, allocations are mmap'ed
    return mallopt(m_trim_threshold, 2**31 - 1) == 1 and ok  # keep freed heap memory
