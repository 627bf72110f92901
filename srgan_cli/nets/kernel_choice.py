"""Which kernels run a network on this machine: ``--kernels`` resolved.

* ``amx``: the fused AMX-BF16 kernels (:mod:`srgan_cli.nets.fused`), bf16 only.
* ``avx2``: the fused AVX2 + FMA fp32 kernels (:mod:`srgan_cli.nets.fused_fp32`), fp32
  only; they run on every x86-64 CPU with AVX2 (AMX ones included).
* ``torch``: PyTorch's own operators.

``auto`` runs AMX where it runs (bf16 on a CPU with AMX: unchanged by the AVX2 kernels);
on a CPU without AMX, in fp32 it runs the AVX2 kernels. A CPU with AMX in fp32 keeps
PyTorch's (oneDNN's AVX-512 kernels there have twice the AVX2 FMA width; unmeasured
against these). On a CPU with AVX512-BF16 but no AMX (Zen 4) ``--precision auto`` is
bf16, and PyTorch's bf16 kernels run: on this project's Zen 4 they beat the AVX2 fp32
kernels (docs/performance.md). ``amx`` and ``avx2`` insist: kernels that cannot run are
an error. Settings that rule the kernels out (another device or precision,
``optimise=False``) give ``auto`` no note; a CPU, a network or a build that cannot run
them gives a one-line note.
"""

from __future__ import annotations

from dataclasses import dataclass

from srgan_cli.device import cpu_flags

KERNELS = ("auto", "amx", "avx2", "torch")
AMX_FLAGS = {"amx_bf16", "amx_tile", "avx512_bf16"}
NAMES = {"amx": "AMX", "avx2": "AVX2"}
PRECISION = {"amx": "bf16", "avx2": "fp32"}  # what each fused path computes in


@dataclass(frozen=True)
class Setting:
    """What the caller chose, that the kernels depend on."""

    device: str  # torch.device.type
    precision: str  # resolved: fp32, bf16 or fp16
    optimise: bool
    has_fused: bool  # the architecture has fused kernels at all
    arch: str


@dataclass(frozen=True)
class Choice:
    net: object  # the network to run (wrapped by the fused kernels, or as given)
    kernels: str  # amx, avx2 or torch
    note: str | None  # why ``auto`` did not use fused kernels it could have tried


def _blocker(path: str, s: Setting) -> str | None:
    """Why the caller's settings rule ``path`` out, or None."""
    if not s.has_fused:
        return f"no fused kernels exist for {s.arch}"
    if s.device != "cpu":
        return f"they run on the CPU, not {s.device}"
    if s.precision != PRECISION[path]:
        return f"they compute in {PRECISION[path]}, not {s.precision}"
    if not s.optimise:
        return "optimise=False runs the network as trained"
    return None


def _wrap(path: str, net, descriptor):
    if path == "amx":
        return descriptor.fused_or_reason(net)
    from srgan_cli.nets.fused_fp32 import fp32_or_reason

    return fp32_or_reason(net)


def choose(net, asked: str, setting: Setting, descriptor) -> Choice:
    """Resolve ``asked`` (one of :data:`KERNELS`) for ``net`` (an inference form when
    ``setting.optimise``); ``descriptor`` builds the AMX form. ValueError (one line) when
    an insisted path cannot run or ``asked`` is unknown."""
    if asked not in KERNELS:
        raise ValueError(f"unknown kernels {asked!r} ({', '.join(KERNELS)})")
    if asked == "torch":
        return Choice(net, "torch", None)
    if asked == "auto":
        # AMX CPUs keep what they ran before the AVX2 kernels: AMX in bf16, else PyTorch.
        paths = ["amx"] if AMX_FLAGS <= cpu_flags() else ["amx", "avx2"]
    else:
        paths = [asked]
    note = None
    for path in paths:
        why = _blocker(path, setting)
        if why is None:
            wrapped, why = _wrap(path, net, descriptor)
            if why is None:
                return Choice(wrapped, path, None)
            note = f"fused {NAMES[path]} kernels not used: {why}"
        if asked != "auto":
            raise ValueError(f"--kernels {asked}: the fused kernels cannot run: {why}")
    return Choice(net, "torch", note)


__all__ = ["KERNELS", "Choice", "Setting", "choose"]
