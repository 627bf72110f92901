"""Architectures: what each one states about a network (its :class:`ModelFacts`) and the
registry that finds one by name (a weights file's ``arch`` metadata, a registry entry's
``spec`` block), by spec, or from a bare state dict.

Each architecture is one module here (``srresnet`` for ours, ``community`` for the models
spandrel recognises) holding an :class:`Architecture`, registered by one line below.
Loading a file into a :class:`~srgan_cli.model.Model` is :func:`srgan_cli.load`. Nothing
here imports torch at module level.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from srgan_cli.arch.base import PRECISIONS, UNIT_RANGE, ActivationMemory, Architecture, ModelFacts
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


def from_metadata(meta: Mapping[str, str], where: Any) -> tuple[Architecture, Any]:
    """``(architecture, spec)`` of the network a weights file's metadata describes (its
    ``arch`` selects the architecture)."""
    name = meta.get("arch")
    if name is None:
        raise WeightsError(f"{where}: its metadata names no architecture (no 'arch' key; "
                           f"known: {', '.join(_REGISTRY)})")
    arch = get(name, where)
    return arch, arch.spec_from_metadata(meta, where)


def from_block(block: Mapping[str, Any], where: Any) -> tuple[Architecture, Any]:
    """``(architecture, spec)`` of a registry entry's ``spec`` block."""
    if not isinstance(block, Mapping):
        raise WeightsError(f"{where}: spec must be an object like "
                           "{\"arch\": \"srresnet\", \"scale\": 4, ...}")
    arch = get(block.get("arch", "srresnet"), where)
    return arch, arch.spec_from_block(block, where)


def recognise(state: Mapping) -> tuple[Architecture, str] | None:
    """``(architecture, what it calls it)`` of the first registered architecture that
    recognises a bare state dict, or None (``srgan models convert``'s diagnosis)."""
    for arch in _REGISTRY.values():
        found = arch.recognise(state)
        if found is not None:
            return arch, found
    return None


def from_state_dict(state: Mapping, where: Any):
    """``(architecture, network, facts)`` of a bare state dict (a file without our
    metadata): built by the first registered architecture that takes it (our own layouts
    first, then community architectures through spandrel), on the CPU in eval mode; a
    one-line :class:`WeightsError` naming ``where`` when none does."""
    for arch in _REGISTRY.values():
        built = arch.from_state_dict(state, where)
        if built is not None:
            return (arch, *built)
    first = next(iter(state), "")
    raise WeightsError(f"{where}: not a model srgan recognises: no srgan metadata, and "
                       f"neither an SRResNet layout nor an architecture spandrel "
                       f"recognises ({len(state)} tensors, first {first!r})")


__all__ = ["ActivationMemory", "Architecture", "ModelFacts", "PRECISIONS", "UNIT_RANGE",
           "from_block", "from_metadata", "from_state_dict", "get", "names", "of_spec",
           "recognise", "register"]

# one import and one register() per architecture
from srgan_cli.arch import community, srresnet  # noqa: E402

register(srresnet.ARCH)
register(community.ARCH)  # last: spandrel recognises many layouts, ours are tried first
