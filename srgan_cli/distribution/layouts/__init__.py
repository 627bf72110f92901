"""State-dict layouts: other projects' key names (and our own bare ones) converted to an
architecture's own, one module per layout (``srgan models convert``, and loading a bare
state dict). A :class:`Layout` recognises its state dicts and converts one into
``(spec, state in the architecture's names, source keys used)``; which architecture it
belongs to is its :attr:`Layout.arch`. A new layout is a module here, named in :data:`NAMES`
and :func:`_layouts`. Nothing here imports torch at module level.
"""

from __future__ import annotations

from collections.abc import Mapping

from srgan_cli.distribution.layouts.base import Layout
from srgan_cli.errors import ConvertError


def _layouts() -> dict[str, Layout]:
    from srgan_cli.distribution.layouts import srgan, twtygqyy

    return {lay.name: lay for lay in (twtygqyy.LAYOUT, srgan.LAYOUT)}


#: the layouts' names, in the order they are tried
NAMES = ("twtygqyy", "srgan")


def get(name: str) -> Layout:
    """The layout ``name``; :class:`ConvertError` for any other."""
    found = _layouts().get(name)
    if found is None:
        raise ConvertError(f"unknown layout {name!r} (supported: {', '.join(NAMES)})")
    return found


def recognise(state: Mapping, arch: str | None = None) -> Layout | None:
    """The first layout (of architecture ``arch``, default any) that recognises ``state``."""
    return next((lay for lay in _layouts().values()
                 if (arch is None or lay.arch == arch) and lay.recognise(state)), None)


def all_layouts() -> list[Layout]:
    return list(_layouts().values())


__all__ = ["Layout", "NAMES", "all_layouts", "get", "recognise"]
