"""Tiling (exact, or overlapping with blended seams), and reflection padding at the image borders.

Exact: each tile is padded by the generator's receptive radius with real image pixels, so
the tiled result equals the whole-image result up to floating-point rounding. Tiles whose
padded input has the same shape can be run together in one batch.

Blended (``blend=True``, for networks without a known finite receptive radius, such as
transformers): each tile's input reaches ``pad`` LR pixels past each cut, as above, and
over the middle ``pad`` pixels of that overlap (``pad // 2`` on each side of the cut) the
two outputs are mixed with linear ramps whose weights sum to 1, so no seam is cut hard
and every output pixel used has at least ``pad // 2`` pixels of context. A network that
sees no farther than ``pad // 2`` comes out exact; for others the result differs from the
whole image by a small error that shrinks as ``pad`` grows (docs/foreign_models.md). Tiles are run and blended one row at
a time, so with ``store`` only a band of rows is ever held.

A :class:`SizeRule` (minimum side, side multiple, square) is met by growing each tile's
input with more real context where the image allows, and otherwise by mirroring the
input at its bottom and right edges and cropping the output.

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


@dataclass(frozen=True)
class SizeRule:
    """Input sizes a network accepts: each side at least ``minimum`` and a multiple of
    ``multiple_of``; with ``square``, as high as wide. ``align``: tiles start at multiples
    of it (of the image's corner), for networks that compute in windows anchored at their
    input's corner (window attention, pixel unshuffle), so a tile's windows are the
    whole image's. The default accepts any size anywhere."""

    minimum: int = 0
    multiple_of: int = 1
    square: bool = False
    align: int = 1

    def side(self, n: int) -> int:
        """The smallest accepted side of at least ``n`` pixels (``square`` aside)."""
        m = max(1, self.multiple_of)
        return -(-max(n, self.minimum, 1) // m) * m

    def padding(self, h: int, w: int) -> tuple[int, int]:
        """Rows and columns to add to an h x w input so the network accepts it."""
        hh, ww = self.side(h), self.side(w)
        if self.square:
            hh = ww = max(hh, ww)
        return hh - h, ww - w

    @property
    def any_size(self) -> bool:
        return (self.minimum <= 1 and self.multiple_of <= 1 and not self.square
                and self.align <= 1)


def plan_tiles(h: int, w: int, tile: int, pad: int, *, margin: int = 0,
               size: SizeRule | None = None, blend: bool = False) -> list[Tile]:
    """Tiles covering an h x w LR image; ``tile`` <= 0 means one tile for everything.

    The valid regions are in image coordinates; the padded input regions are in the
    coordinates of the image extended by ``margin`` on every side. ``blend``: the cuts are
    spread evenly, with every tile at least ``pad`` long (so the blending ramps of a
    tile's two sides never meet). ``size``: each padded region is grown with more context
    (within the extended image) to start on ``size.align`` and towards a size the network
    accepts."""
    hh, ww, m = h + 2 * margin, w + 2 * margin, margin
    if tile <= 0 or (h <= tile and w <= tile):
        tiles = [Tile(0, h, 0, w, 0, hh, 0, ww)]
    else:
        tiles = [
            Tile(y0, y1, x0, x1, max(y0 + m - pad, 0), min(y1 + m + pad, hh),
                 max(x0 + m - pad, 0), min(x1 + m + pad, ww))
            for y0, y1 in _cuts(h, tile, pad, blend) for x0, x1 in _cuts(w, tile, pad, blend)
        ]
    if size is None or size.any_size:
        return tiles
    grown = []
    for t in tiles:
        py0, py1 = _grow(t.py0 - t.py0 % max(size.align, 1), t.py1, hh, size)
        px0, px1 = _grow(t.px0 - t.px0 % max(size.align, 1), t.px1, ww, size)
        grown.append(Tile(t.y0, t.y1, t.x0, t.x1, py0, py1, px0, px1))
    return grown


def _cuts(n: int, tile: int, pad: int, even: bool) -> list[tuple[int, int]]:
    """Spans cutting an axis of ``n`` pixels into pieces of at most ``tile`` (the last one
    shorter), or with ``even``, into equal pieces (within a pixel) of at most ``tile``
    and at least ``pad`` (the latter wins)."""
    if not even:
        return [(a, min(a + tile, n)) for a in range(0, n, tile)]
    k = -(-n // tile)
    if pad > 0:
        k = max(1, min(k, n // pad))
    return [(n * i // k, n * (i + 1) // k) for i in range(k)]


def _grow(p0: int, p1: int, n: int, size: SizeRule) -> tuple[int, int]:
    """The span [p0, p1) of an axis of ``n`` grown (forwards first, then backwards,
    never past the axis) towards the side ``size`` accepts."""
    extra = min(size.side(p1 - p0), n) - (p1 - p0)
    if extra <= 0:
        return p0, p1
    fwd = min(extra, n - p1)
    return p0 - (extra - fwd), p1 + fwd


def call_fitted(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, scale: int,
                size: SizeRule | None) -> torch.Tensor:
    """``fn(x)`` for a network that only accepts sizes ``size`` allows: ``x`` (NCHW) is
    extended at its bottom and right by mirroring (repeated if needed) and those rows and
    columns are cropped from the output."""
    if size is None or size.any_size:
        return fn(x)
    h, w = x.shape[-2], x.shape[-1]
    ph, pw = size.padding(h, w)
    if not ph and not pw:
        return fn(x)
    k = max(ph, pw)
    return fn(_region(x, k, (k, k + h + ph), (k, k + w + pw), "reflect"))[
        ..., : h * scale, : w * scale]


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
    # a tensor divisor: torch's ONNX exporter cannot take a symbolic size as a scalar one
    i = i.remainder(torch.full((), period, dtype=i.dtype))
    return torch.where(i >= n, period - i - (1 if mode == "symmetric" else 0), i)


def mirror_pad(x: torch.Tensor, margin: int, mode: str = "symmetric") -> torch.Tensor:
    """``x`` (..., H, W) extended by ``margin`` mirrored pixels on every side."""
    return _region(x, margin, (0, x.shape[-2] + 2 * margin), (0, x.shape[-1] + 2 * margin),
                   mode)


def _region(x: torch.Tensor, margin: int, rows: tuple[int, int], cols: tuple[int, int],
            mode: str = "symmetric") -> torch.Tensor:
    """Rows y0:y1 and columns x0:x1 of ``x`` extended by ``margin`` (padded coordinates):
    a view when the region lies inside the image, else gathered by mirroring."""
    (y0, y1), (x0, x1) = rows, cols
    h, w = x.shape[-2], x.shape[-1]
    if margin <= y0 and y1 <= h + margin:
        x = x[..., y0 - margin : y1 - margin, :]
    else:
        x = x.index_select(-2, mirror_index(h, margin, mode)[y0:y1].to(x.device))
    if margin <= x0 and x1 <= w + margin:
        return x[..., x0 - margin : x1 - margin]
    return x.index_select(-1, mirror_index(w, margin, mode)[x0:x1].to(x.device))


def _tile_input(x: torch.Tensor, t: Tile, margin: int, mirror: str) -> torch.Tensor:
    """The padded input region of tile ``t`` (:func:`_region`)."""
    return _region(x, margin, (t.py0, t.py1), (t.px0, t.px1), mirror)


def run_tiled(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    scale: int,
    tile: int,
    pad: int,
    *,
    on_tile: Callable[[int, int], None] | None = None,
    batch: int = 1,
    store: Callable[[Tile, torch.Tensor], None] | None = None,
    margin: int = 0,
    mirror: str = "symmetric",
    size: SizeRule | None = None,
    blend: bool = False,
) -> torch.Tensor | None:
    """Apply ``fn`` (LR NCHW -> SR NCHW at ``scale``) tile by tile on a 1-image batch.

    ``batch`` > 1 stacks up to that many same-shaped padded tiles into one call.
    Without ``store`` the result is assembled into one tensor on ``x``'s device; with it,
    ``store(tile, sr_valid_region)`` receives each tile's valid output instead and nothing
    is assembled (so callers can quantise tile by tile). ``margin``: extend the image by
    that many mirrored pixels (``mirror``: a :data:`MIRRORS` mode) on every side first (the
    result keeps the image's size). ``size``: the input sizes ``fn`` accepts
    (:func:`call_fitted`). ``blend``: ``pad`` is an overlap, not an exact context: the
    outputs of neighbouring tiles are blended over the ``pad`` LR pixels around each cut
    (module docstring), and ``store`` receives bands of whole rows. Any exception from
    ``fn`` propagates; nothing partial is returned.
    """
    if x.shape[0] != 1 and tile > 0:
        if store is not None:
            raise ValueError("store= needs a single-image batch")
        return torch.cat([run_tiled(fn, x[i : i + 1], scale, tile, pad, on_tile=on_tile,
                                    batch=batch, margin=margin, mirror=mirror, size=size,
                                    blend=blend)
                          for i in range(x.shape[0])])
    tiles = plan_tiles(x.shape[2], x.shape[3], tile, pad, margin=margin, size=size, blend=blend)
    if len(tiles) == 1:
        return _run_whole(fn, x, scale, tiles[0], on_tile=on_tile, store=store, margin=margin,
                          mirror=mirror, size=size)
    how = dict(on_tile=on_tile, batch=batch, store=store, margin=margin, mirror=mirror,
               size=size)
    if blend:
        return _run_blended(fn, x, scale, tiles, pad=pad, **how)
    return _run_exact(fn, x, scale, tiles, **how)


def _run_whole(fn, x, scale, t, *, on_tile, store, margin, mirror, size):
    """:func:`run_tiled` with one tile ``t``: the whole (mirror-extended) image at once."""
    h, w = x.shape[2], x.shape[3]
    out = call_fitted(fn, _tile_input(x, t, margin, mirror) if margin else x, scale, size)
    if margin:
        out = out[:, :, margin * scale : (margin + h) * scale,
                  margin * scale : (margin + w) * scale]
    if on_tile:
        on_tile(1, 1)
    if store is not None:
        store(t, out)
        return None
    return out


def _run_exact(fn, x, scale, tiles, *, on_tile, batch, store, margin, mirror, size):
    """:func:`run_tiled` without ``blend``: each tile's valid region cut from its padded
    output, handed to ``store`` or written into the assembled result."""
    n, _, h, w = x.shape
    out = None
    done = 0
    for chunk in _chunks(tiles, batch):
        inp = torch.cat([_tile_input(x, t, margin, mirror) for t in chunk])
        y = call_fitted(fn, inp, scale, size)
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


def _chunks(tiles: list[Tile], batch: int) -> Iterator[list[Tile]]:
    """``tiles`` in runs of at most ``batch`` tiles of the same input shape."""
    groups: dict[tuple[int, int], list[Tile]] = {}
    for t in tiles:
        groups.setdefault(t.shape, []).append(t)
    for same in groups.values():
        for i in range(0, len(same), max(batch, 1)):
            yield same[i : i + max(batch, 1)]


def _ramp(span: tuple[int, int], valid: tuple[int, int], *, n: int, half: int, scale: int,
          device: torch.device) -> torch.Tensor:
    """Blending weights of output pixels ``lo * scale`` to ``hi * scale`` (``span`` = (lo,
    hi) in LR coordinates) of a tile whose ``valid`` span of an axis of ``n`` pixels is
    [a0, a1): rising from 0 to 1 over [a0 - half, a0 + half) and falling back over
    [a1 - half, a1 + half), at the pixel centres; the ramps of the two tiles at a cut sum
    to 1. No ramp at the image's edges; with ``half`` 0 the cut is hard."""
    (lo, hi), (a0, a1) = span, valid
    u = (torch.arange(lo * scale, hi * scale, device=device, dtype=torch.float32) + 0.5) / scale
    if half == 0:
        return ((u >= a0) & (u < a1)).float()
    wt = torch.ones_like(u)
    if a0 > 0:
        wt = torch.minimum(wt, ((u - (a0 - half)) / (2 * half)).clamp(0, 1))
    if a1 < n:
        wt = torch.minimum(wt, ((a1 + half - u) / (2 * half)).clamp(0, 1))
    return wt


def _run_blended(fn, x, scale, tiles, *, pad, on_tile, batch, store, margin, mirror, size):
    """:func:`run_tiled` with ``blend``: one row of tiles at a time, each tile's output
    over its valid span plus ``pad // 2`` on each side weighted by :func:`_ramp` and added
    to a band of rows; the rows no later tile reaches are handed on, the rest carried."""
    n, _, h, w = x.shape
    s, half = scale, pad // 2
    rows: dict[tuple[int, int], list[Tile]] = {}
    for t in tiles:
        rows.setdefault((t.y0, t.y1), []).append(t)
    out, band, band_lo, emitted, done = None, None, 0, 0, 0
    for (y0, y1), row in rows.items():
        lo, hi = max(y0 - half, 0), min(y1 + half, h)
        acc = None
        for chunk in _chunks(row, batch):
            inp = torch.cat([_tile_input(x, t, margin, mirror) for t in chunk])
            y = call_fitted(fn, inp, s, size)
            if acc is None:
                acc = y.new_zeros((n, y.shape[1], (hi - lo) * s, w * s))
                if band is not None:  # the rows of the last band that this one reaches
                    acc[:, :, : band.shape[2] - (lo - band_lo) * s] = band[:, :, (lo - band_lo) * s :]
            wy = _ramp((lo, hi), (y0, y1), n=h, half=half, scale=s, device=y.device)
            for j, t in enumerate(chunk):
                c0, c1 = max(t.x0 - half, 0), min(t.x1 + half, w)
                oy, ox = lo + margin - t.py0, c0 + margin - t.px0
                part = y[j : j + 1, :, oy * s : (oy + hi - lo) * s, ox * s : (ox + c1 - c0) * s]
                wx = _ramp((c0, c1), (t.x0, t.x1), n=w, half=half, scale=s, device=y.device)
                acc[:, :, :, c0 * s : c1 * s] += part * (wy[:, None] * wx[None, :])
            done += len(chunk)
            if on_tile:
                on_tile(done, len(tiles))
        end = h if y1 == h else y1 - half  # rows below reach into the next row of tiles
        final = acc[:, :, (emitted - lo) * s : (end - lo) * s]
        span = Tile(emitted, end, 0, w, emitted, end, 0, w)
        if store is not None:
            store(span, final)
        else:
            if out is None:
                out = acc.new_empty((n, acc.shape[1], h * s, w * s))
            out[:, :, emitted * s : end * s] = final
        band, band_lo, emitted = acc, lo, end
    return out
