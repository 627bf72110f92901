"""Devices, CPU features and precision: what `auto` means, the CPU flags it reads, and the
malloc setting the command line turns on."""

import numpy as np
import pytest
import torch

from srgan_cli import Upscaler
from srgan_cli.imageio import imaging
from srgan_cli.inference.device import (
    autocast_dtype,
    cpu_flags,
    cpu_has_bf16,
    cpu_model,
    training_dtype,
)


def test_auto_precision_is_bf16_exactly_on_cpus_with_native_bf16(tiny_weights):
    up = Upscaler(tiny_weights, device="cpu")
    assert up.precision == ("bf16" if cpu_has_bf16() else "fp32")
    assert up.optimise and Upscaler(tiny_weights, device="cpu", precision="fp32").precision == "fp32"


def test_keep_freed_memory_applies_on_glibc_and_changes_no_pixel(tiny_weights):
    import platform

    from srgan_cli.inference.device import keep_freed_memory

    assert keep_freed_memory() is (platform.libc_ver()[0] == "glibc")  # mallopt is glibc's
    x = np.random.default_rng(0).random((20, 24, 3), np.float32)
    d = imaging.Decoded(x, None, "RGB")
    a, _, _ = Upscaler(tiny_weights, device="cpu", reuse_memory=False).upscale_decoded(d)
    b, _, _ = Upscaler(tiny_weights, device="cpu").upscale_decoded(d)
    assert np.array_equal(a, b)


def test_cpu_flags_and_model_come_from_the_first_processor_of_proc_cpuinfo(tmp_path,
                                                                          monkeypatch):
    import srgan_cli.inference.device as device

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu avx512_bf16\n\n"
                    "processor\t: 1\nmodel name\t: Other\nflags\t\t: fpu\n")
    monkeypatch.setattr(device, "CPUINFO", str(info))
    assert cpu_flags() == {"fpu", "avx512_bf16"} and cpu_model() == "Test CPU 9000"
    assert cpu_has_bf16()
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512f\n")
    assert not cpu_has_bf16() and cpu_model() is None
    info.unlink()
    assert cpu_flags() == set() and not cpu_has_bf16()


def test_training_runs_in_bf16_on_a_cpu_with_native_bf16_and_as_asked_otherwise(monkeypatch):
    import srgan_cli.inference.device as device

    cpu = torch.device("cpu")
    assert training_dtype("fp32", cpu) is None and training_dtype("fp16", cpu) is torch.float16
    assert training_dtype("bf16", cpu) is autocast_dtype("bf16", cpu) is torch.bfloat16
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: True)
    assert training_dtype("auto", cpu) is torch.bfloat16
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: False)
    assert training_dtype("auto", cpu) is None
    assert training_dtype("auto", torch.device("meta")) is None  # neither CUDA nor a CPU
    with pytest.raises(ValueError, match="unknown precision"):
        training_dtype("fp8", cpu)
