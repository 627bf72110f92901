"""The :class:`Layout` record, and what the SRResNet layouts share: numbered keys and the
scale of their upsampling stages."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from srgan_cli.errors import ConvertError


@dataclass(frozen=True)
class Layout:
    """One layout: its ``name``, the architecture it converts to, a one-line description
    (``srgan models convert --help``), ``recognise(state) -> bool`` and
    ``convert(state, where) -> (spec, state, used keys)`` (:class:`ConvertError` naming
    ``where``)."""

    name: str
    arch: str
    about: str
    recognise: Callable[[Mapping], bool]
    convert: Callable[[Mapping, Any], tuple[Any, dict, set]]


def indices(state: Mapping, pattern: str) -> list[int]:
    """The numbers ``pattern``'s group matches in ``state``'s keys, sorted, once each."""
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in state if (m := rx.match(k))})


def scale_for(stages: int, where: Any) -> int:
    if stages not in (1, 2, 3):
        raise ConvertError(f"{where}: {stages} upsampling stages (expected 1-3, i.e. x2/x4/x8)")
    return 2 ** stages
