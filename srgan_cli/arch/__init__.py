"""Architectures: what each one declares about a network (a :class:`ModelDescriptor`) and
the registry that finds one from a weights file's ``arch`` metadata or from a bare state dict.

Each architecture is one module here (``srresnet`` for ours) holding an
:class:`Architecture`; the rest of the program asks the descriptor (scale, parameter
count, FLOPs, receptive radius, memory, precisions, output range, inference form) and
never repeats a layout. A second source of architectures, whose networks are built from a
state dict without metadata, fits the same door: an :class:`Architecture` that implements
:meth:`~Architecture.recognise` and :meth:`~Architecture.load_state_dict` and
is registered by one line here. Nothing here imports torch at module level.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from srgan_cli.arch.base import (PRECISIONS, UNIT_RANGE, ActivationMemory, Architecture,
                                 InferenceForm, ModelDescriptor)
from srgan_cli.errors import WeightsError

_REGISTRY: dict[str, Architecture] = {}


def register(arch: Architecture) -> Architecture:
    """Add ``arch`` to the registry (by :attr:`Architecture.name`); returns it."""
    if not arch.name:
        raise ValueError("an architecture needs a name")
    _REGISTRY[arch.name] = arch
    return arch


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def get(name: str, where: Any = None) -> Architecture:
    """The registered architecture ``name``; a one-line :class:`WeightsError` (naming
    ``where``, e.g. the file) for any other."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        pre = f"{where}: " if where is not None else ""
        raise WeightsError(f"{pre}unknown architecture {name!r} (known: "
                           f"{', '.join(_REGISTRY)})") from None


def of_spec(spec: Any) -> Architecture:
    """The architecture whose spec ``spec`` is."""
    for arch in _REGISTRY.values():
        if arch.owns(spec):
            return arch
    raise WeightsError(f"no registered architecture builds {spec!r}")


def from_metadata(meta: Mapping[str, str], where: Any) -> ModelDescriptor:
    """The descriptor of the network a weights file's metadata describes (its ``arch``
    selects the architecture)."""
    name = meta.get("arch")
    if name is None:
        raise WeightsError(f"{where}: its metadata names no architecture (no 'arch' key; "
                           f"known: {', '.join(_REGISTRY)})")
    arch = get(name, where)
    return arch.describe(arch.spec_from_metadata(meta, where))


def recognise(state: Mapping) -> tuple[Architecture, str] | None:
    """``(architecture, layout)`` of the first registered architecture that recognises a
    bare state dict, or None."""
    for arch in _REGISTRY.values():
        layout = arch.recognise(state)
        if layout is not None:
            return arch, layout
    return None


def load_state_dict(state: Mapping, where: Any):
    """``(network, descriptor)`` of a bare state dict (a file without our metadata): built
    by the first registered architecture that recognises it (our own layouts first, then
    community architectures through spandrel), on the CPU in eval mode; a one-line
    :class:`WeightsError` naming ``where`` when none does."""
    found = recognise(state)
    if found is None:
        first = next(iter(state), "")
        raise WeightsError(f"{where}: not a model srgan recognises: no srgan metadata, and "
                           f"neither an SRResNet layout nor an architecture spandrel "
                           f"recognises ({len(state)} tensors, first {first!r})")
    return found[0].load_state_dict(state, where)


def layouts() -> dict[str, Architecture]:
    """Every convertible state-dict layout and the architecture it belongs to."""
    return {lay: arch for arch in _REGISTRY.values() for lay in arch.layouts}


__all__ = ["ActivationMemory", "Architecture", "InferenceForm", "ModelDescriptor", "PRECISIONS",
           "UNIT_RANGE", "from_metadata", "get", "layouts", "load_state_dict", "names", "of_spec",
           "recognise", "register"]

# one import and one register() per architecture
from srgan_cli.arch import community, srresnet  # noqa: E402

register(srresnet.ARCH)
register(community.ARCH)  # last: spandrel recognises many layouts, ours are tried first
