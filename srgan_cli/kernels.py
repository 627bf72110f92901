"""Which kernels run a prepared network: the one place that decides.

A :class:`KernelFamily` is a set of fused CPU kernels for one architecture (today the AMX-BF16
kernels of :mod:`srgan_cli.nets.fused` for SRResNet). :data:`FAMILIES` lists them in the
order ``--kernels auto`` tries them; :func:`choose` runs the first that can run here and
says why none did. What rules a family out is answered in two parts: the caller's
settings (another architecture, device or precision, ``optimise=False``; no note, since the
caller chose them), then the family's own check of the network, the CPU and its build
(:attr:`KernelFamily.build`, which returns the reason; worth a note). A second family is one
more :class:`KernelFamily` in :data:`FAMILIES`. Nothing here imports torch at module level.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from srgan_cli.errors import SrganError


def _amx(net: Any) -> tuple[Any, str | None]:
    from srgan_cli.nets.fused import fused_or_reason

    return fused_or_reason(net)


@dataclass(frozen=True)
class KernelFamily:
    """Fused kernels for one architecture: ``name`` (the ``--kernels`` value), ``label``
    (for notes), the architecture, device type and precision they run, and ``build``:
    ``net`` (the architecture's inference form) -> (the network run by these kernels,
    None), or (``net``, why they cannot run it here)."""

    name: str
    label: str
    arch: str
    device: str
    precision: str
    build: Callable[[Any], tuple[Any, str | None]]

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
        why = family.ruled_out(arch, device, precision, optimise)
        if why is None:
            fused, why = family.build(net)
            if why is None:
                return Choice(fused, family.name)
            note = note or f"{family.label} not used: {why}"
        if requested == family.name:
            raise SrganError(f"--kernels {family.name}: the fused kernels cannot run: {why}")
    return Choice(net, "torch", note)


__all__ = ["CHOICES", "FAMILIES", "Choice", "KernelFamily", "choose"]
