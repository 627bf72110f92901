"""Exact tiling, and reflection padding at the image borders.

Each tile is padded by the generator's receptive radius with real image pixels, so the
tiled result equals the whole-image result up to floating-point rounding. Tiles whose
padded input has the same shape can be run together in one batch.

With a ``margin``, the image is first extended on every side by mirroring it (as
``numpy.pad`` with mode ``symmetric``, ``reflect`` or ``edge``, repeated when the image is
smaller than the margin), so the network sees image-like context at the borders instead
of its own zero padding; the margin is cropped from the result. Tiles read the mirrored
pixels by index, so the padded image is never built.
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


def plan_tiles(h: int, w: int, tile: int, pad: int, margin: int = 0) -> list[Tile]:
    """Tiles covering an h x w LR image; ``tile`` <= 0 means one tile for everything.

    The valid regions are in image coordinates; the padded input regions are in the
    coordinates of the image extended by ``margin`` on every side."""
    hh, ww, m = h + 2 * margin, w + 2 * margin, margin
    if tile <= 0 or (h <= tile and w <= tile):
        return [Tile(0, h, 0, w, 0, hh, 0, ww)]
    return [
        Tile(y0, y1, x0, x1, max(y0 + m - pad, 0), min(y1 + m + pad, hh),
             max(x0 + m - pad, 0), min(x1 + m + pad, ww))
        for y0, y1, x0, x1 in _grid(h, w, tile)
    ]


MIRRORS = ("symmetric", "reflect", "edge")


def mirror_index(n: int, margin: int, mode: str = "symmetric") -> torch.Tensor:
    """Source index of each position of a length-``n`` axis extended by ``margin`` on both
    sides, as ``numpy.pad(np.arange(n), margin, mode)``: ``symmetric`` mirrors about the
    edge including the edge pixel (c b a | a b c | c b a), ``reflect`` about the edge
    pixel (d c b | a b c d | c b a), both repeated as often as needed; ``edge`` repeats
    the edge pixel."""
    i = torch.arange(-margin, n + margin)
    if mode == "edge" or n == 1:
        return i.clamp(0, n - 1)
    period = 2 * n if mode == "symmetric" else 2 * (n - 1)
    i = i.remainder(period)
    return torch.where(i >= n, period - i - (1 if mode == "symmetric" else 0), i)


def mirror_pad(x: torch.Tensor, margin: int, mode: str = "symmetric") -> torch.Tensor:
    """``x`` (..., H, W) extended by ``margin`` mirrored pixels on every side."""
    return _region(x, margin, 0, x.shape[-2] + 2 * margin, 0, x.shape[-1] + 2 * margin, mode)


def _region(x: torch.Tensor, margin: int, y0: int, y1: int, x0: int, x1: int,
            mode: str = "symmetric") -> torch.Tensor:
    """Rows y0:y1 and columns x0:x1 of ``x`` extended by ``margin`` (padded coordinates):
    a view when the region lies inside the image, else gathered by mirroring."""
    h, w = x.shape[-2], x.shape[-1]
    if margin <= y0 and y1 <= h + margin:
        x = x[..., y0 - margin : y1 - margin, :]
    else:
        x = x.index_select(-2, mirror_index(h, margin, mode)[y0:y1].to(x.device))
    if margin <= x0 and x1 <= w + margin:
        return x[..., x0 - margin : x1 - margin]
    return x.index_select(-1, mirror_index(w, margin, mode)[x0:x1].to(x.device))


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
    margin: int = 0,
    mirror: str = "symmetric",
) -> torch.Tensor | None:
    """Apply ``fn`` (LR NCHW -> SR NCHW at ``scale``) tile by tile on a 1-image batch.

    ``batch`` > 1 stacks up to that many same-shaped padded tiles into one call.
    Without ``store`` the result is assembled into one tensor on ``x``'s device; with it,
    ``store(tile, sr_valid_region)`` receives each tile's valid output instead and nothing
    is assembled (so callers can quantise tile by tile). ``margin``: extend the image by
    that many mirrored pixels (``mirror``: a :data:`MIRRORS` mode) on every side first (the
    result keeps the image's size). Any exception from ``fn`` propagates; nothing partial
    is returned.
    """
    if x.shape[0] != 1 and tile > 0:
        if store is not None:
            raise ValueError("store= needs a single-image batch")
        return torch.cat([run_tiled(fn, x[i : i + 1], scale, tile, pad, on_tile, batch,
                                    margin=margin, mirror=mirror)
                          for i in range(x.shape[0])])
    n, c, h, w = x.shape
    tiles = plan_tiles(h, w, tile, pad, margin)
    if len(tiles) == 1:
        t = tiles[0]
        out = fn(_region(x, margin, t.py0, t.py1, t.px0, t.px1, mirror) if margin else x)
        if margin:
            out = out[:, :, margin * scale : (margin + h) * scale,
                      margin * scale : (margin + w) * scale]
        if on_tile:
            on_tile(1, 1)
        if store is not None:
            store(t, out)
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
            inp = torch.cat([_region(x, margin, t.py0, t.py1, t.px0, t.px1, mirror)
                             for t in chunk])
            y = fn(inp)
            if out is None and store is None:
                out = y.new_empty((n, y.shape[1], h * scale, w * scale))
            for j, t in enumerate(chunk):
                oy, ox = (t.y0 + margin - t.py0) * scale, (t.x0 + margin - t.px0) * scale
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
