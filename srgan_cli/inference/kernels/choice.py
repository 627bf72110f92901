"""Which kernels run a prepared network: the one place that decides.

A :class:`KernelFamily` is a set of fused CPU kernels for one architecture (today, for
SRResNet: the AMX-BF16 kernels of :mod:`srgan_cli.inference.kernels.fused`, and the AVX2 + FMA fp32
kernels of :mod:`srgan_cli.inference.kernels.fused_fp32`, which run on every x86-64 CPU with AVX2, AMX
ones included). :data:`FAMILIES` lists them in the
order ``--kernels auto`` tries them; :func:`choose` runs the first that can run here and
says why none did. What rules a family out is answered in two parts: the caller's
settings (another architecture, device or precision, ``optimise=False``; no note, since the
caller chose them), then the family's own check of the network, the CPU and its build
(:attr:`KernelFamily.build`, which returns the reason; worth a note). A second family is one
more :class:`KernelFamily` in :data:`FAMILIES`. Nothing here imports torch at module level.

``auto`` on a CPU with AMX tries only the AMX family: in fp32 it keeps PyTorch's operators
there (oneDNN's AVX-512 kernels have twice the AVX2 FMA width; not measured against the AVX2
kernels). On a CPU with AVX512-BF16 but no AMX (Zen 4) ``--precision auto`` is bf16, which
PyTorch's kernels run: as fast as the AVX2 fp32 kernels there (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from srgan_cli.errors import SrganError


def _amx(net: Any) -> tuple[Any, str | None]:
    from srgan_cli.inference.kernels.fused import fused_or_reason

    return fused_or_reason(net)


def _avx2(net: Any) -> tuple[Any, str | None]:
    from srgan_cli.inference.kernels.fused_fp32 import fp32_or_reason

    return fp32_or_reason(net)


def _no_amx() -> bool:
    """Whether this CPU lacks AMX-BF16 (then ``auto`` tries the AVX2 kernels in fp32)."""
    from srgan_cli.inference.device import cpu_has_amx

    return not cpu_has_amx()


@dataclass(frozen=True)
class KernelFamily:
    """Fused kernels for one architecture: ``name`` (the ``--kernels`` value), ``label``
    (for notes), the architecture, device type and precision they run, ``build``:
    ``net`` (the architecture's inference form) -> (the network run by these kernels,
    None), or (``net``, why they cannot run it here); ``in_auto``: whether ``auto`` tries
    them on this machine; ``value_bytes``: bytes per activation value their peak memory
    is planned with (None: the precision's)."""

    name: str
    label: str
    arch: str
    device: str
    precision: str
    build: Callable[[Any], tuple[Any, str | None]]
    in_auto: Callable[[], bool] = lambda: True
    value_bytes: int | None = None

    def ruled_out(self, arch: str, device: str, precision: str, optimise: bool) -> str | None:
        """Why the caller's settings rule these kernels out, or None."""
        if arch != self.arch:
            return f"no fused kernels exist for {arch}"
        if device != self.device:
            return f"they run on the {self.device.upper()}, not {device}"
        if precision != self.precision:
            return f"they compute in {self.precision}, not {precision}"
        if not optimise:
            return "optimise=False runs the network as trained"
        return None


#: every family, in the order ``auto`` tries them
FAMILIES: tuple[KernelFamily, ...] = (
    KernelFamily("amx", "fused AMX kernels", "srresnet", "cpu", "bf16", _amx),
    # no PyTorch intermediates: a whole 536x536 pass peaks at 895 MB, under the 2-byte
    # estimate (1,197 MB; docs/performance.md), so tiles are planned with it
    KernelFamily("avx2", "fused AVX2 kernels", "srresnet", "cpu", "fp32", _avx2,
                 in_auto=_no_amx, value_bytes=2),
)
#: the ``kernels`` choices: ``auto``, each family, ``torch`` (PyTorch's own operators)
CHOICES = ("auto", *(f.name for f in FAMILIES), "torch")


@dataclass(frozen=True)
class Choice:
    """What :func:`choose` picked: the network to run, the kernels' name (``torch`` for
    PyTorch's own operators) and, when a family that applied could not run, why."""

    net: Any
    kernels: str = "torch"
    note: str | None = None


def choose(net: Any, *, arch: str, device: str, precision: str, optimise: bool,
           requested: str = "auto") -> Choice:
    """The kernels that run ``net`` (an inference form of ``arch``, or the network as
    trained when not ``optimise``) on ``device`` (a device type) in ``precision``.

    ``requested``: ``auto`` (the first family of :data:`FAMILIES` that runs here, else
    PyTorch), a family's name (that one, or a :class:`SrganError` saying why it cannot
    run) or ``torch``."""
    if requested not in CHOICES:
        raise SrganError(f"unknown kernels {requested!r} ({', '.join(CHOICES)})")
    if requested == "torch":
        return Choice(net)
    note = None
    for family in FAMILIES:
        if requested not in ("auto", family.name):
            continue
        if requested == "auto" and not family.in_auto():
            continue
        why = family.ruled_out(arch, device, precision, optimise)
        if why is None:
            fused, why = family.build(net)
            if why is None:
                return Choice(fused, family.name)
            note = note or f"{family.label} not used: {why}"
        if requested == family.name:
            raise SrganError(f"--kernels {family.name}: the fused kernels cannot run: {why}")
    return Choice(net, "torch", note)


def value_bytes(kernels: str) -> int | None:
    """Bytes per activation value the family ``kernels`` plans memory with (None: the
    precision's)."""
    return next((f.value_bytes for f in FAMILIES if f.name == kernels), None)


__all__ = ["CHOICES", "FAMILIES", "Choice", "KernelFamily", "choose", "value_bytes"]
