"""Exact tiling: each tile is padded by the generator's receptive radius with real image
pixels, so tiled output equals whole-image output up to floating-point rounding."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch


def tile_grid(h: int, w: int, tile: int) -> Iterator[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) of the valid region of each tile, covering an h x w image."""
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
) -> torch.Tensor:
    """Apply ``fn`` (LR NCHW -> SR NCHW at ``scale``) tile by tile.

    ``tile`` is the valid tile size in LR pixels (0 = whole image); ``pad`` LR pixels of
    context are taken from the image on each side (less at the image border, where the
    network's own zero padding applies exactly as in a whole-image pass).
    """
    n, c, h, w = x.shape
    if tile <= 0 or (h <= tile and w <= tile):
        out = fn(x)
        if on_tile:
            on_tile(1, 1)
        return out
    boxes = list(tile_grid(h, w, tile))
    out = None
    for i, (y0, y1, x0, x1) in enumerate(boxes):
        py0, py1 = max(y0 - pad, 0), min(y1 + pad, h)
        px0, px1 = max(x0 - pad, 0), min(x1 + pad, w)
        y = fn(x[:, :, py0:py1, px0:px1])
        if out is None:
            out = y.new_empty((n, y.shape[1], h * scale, w * scale))
        oy, ox = (y0 - py0) * scale, (x0 - px0) * scale
        out[:, :, y0 * scale : y1 * scale, x0 * scale : x1 * scale] = \
            y[:, :, oy : oy + (y1 - y0) * scale, ox : ox + (x1 - x0) * scale]
        if on_tile:
            on_tile(i + 1, len(boxes))
    return out
