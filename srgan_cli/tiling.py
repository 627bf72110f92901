"""Exact tiling.

Each tile is padded by the generator's receptive radius with real image pixels, so the
tiled result equals the whole-image result up to floating-point rounding. Tiles whose
padded input has the same shape can be run together in one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Tile:
    y0: int  # valid region, LR pixels
    y1: int
    x0: int
    x1: int
    py0: int  # padded input region
    py1: int
    px0: int
    px1: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.py1 - self.py0, self.px1 - self.px0


def plan_tiles(h: int, w: int, tile: int, pad: int) -> list[Tile]:
    """Tiles covering an h x w LR image; ``tile`` <= 0 means one tile for everything."""
    if tile <= 0 or (h <= tile and w <= tile):
        return [Tile(0, h, 0, w, 0, h, 0, w)]
    return [
        Tile(y0, y1, x0, x1, max(y0 - pad, 0), min(y1 + pad, h), max(x0 - pad, 0),
             min(x1 + pad, w))
        for y0, y1, x0, x1 in _grid(h, w, tile)
    ]


def _grid(h: int, w: int, tile: int) -> Iterator[tuple[int, int, int, int]]:
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            yield y0, min(y0 + tile, h), x0, min(x0 + tile, w)


def run_tiled(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    scale: int,
    tile: int,
    pad: int,
    on_tile: Callable[[int, int], None] | None = None,
    batch: int = 1,
    store: Callable[[Tile, torch.Tensor], None] | None = None,
) -> torch.Tensor | None:
    """Apply ``fn`` (LR NCHW -> SR NCHW at ``scale``) tile by tile on a 1-image batch.

    ``batch`` > 1 stacks up to that many same-shaped padded tiles into one call.
    Without ``store`` the result is assembled into one tensor on ``x``'s device; with it,
    ``store(tile, sr_valid_region)`` receives each tile's valid output instead and nothing
    is assembled (so callers can quantise tile by tile). Any exception from ``fn``
    propagates; nothing partial is returned.
    """
    if x.shape[0] != 1 and tile > 0:
        if store is not None:
            raise ValueError("store= needs a single-image batch")
        return torch.cat([run_tiled(fn, x[i : i + 1], scale, tile, pad, on_tile, batch)
                          for i in range(x.shape[0])])
    n, c, h, w = x.shape
    tiles = plan_tiles(h, w, tile, pad)
    if len(tiles) == 1:
        out = fn(x)
        if on_tile:
            on_tile(1, 1)
        if store is not None:
            store(tiles[0], out)
            return None
        return out
    groups: dict[tuple[int, int], list[Tile]] = {}
    for t in tiles:
        groups.setdefault(t.shape, []).append(t)
    out = None
    done = 0
    for same in groups.values():
        for i in range(0, len(same), max(batch, 1)):
            chunk = same[i : i + max(batch, 1)]
            inp = torch.cat([x[:, :, t.py0 : t.py1, t.px0 : t.px1] for t in chunk])
            y = fn(inp)
            if out is None and store is None:
                out = y.new_empty((n, y.shape[1], h * scale, w * scale))
            for j, t in enumerate(chunk):
                oy, ox = (t.y0 - t.py0) * scale, (t.x0 - t.px0) * scale
                valid = y[j : j + 1, :, oy : oy + (t.y1 - t.y0) * scale,
                          ox : ox + (t.x1 - t.x0) * scale]
                if store is not None:
                    store(t, valid)
                else:
                    out[:, :, t.y0 * scale : t.y1 * scale, t.x0 * scale : t.x1 * scale] = valid
            done += len(chunk)
            if on_tile:
                on_tile(done, len(tiles))
    return out
