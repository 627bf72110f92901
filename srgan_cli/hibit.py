"""Lossless 16-bit-per-channel PNG and TIFF reading and writing.

Pillow truncates 16-bit colour PNG and TIFF to 8 bits per channel. This module keeps
all 16 bits: PNG pixels are decoded by torchvision (libpng), PNG chunks and TIFF
directories are parsed here, and both formats are written here with numpy and zlib.

Arrays are uint16 with shape (H, W) gray, (H, W, 2) gray+alpha, (H, W, 3) RGB or
(H, W, 4) RGBA (straight, not premultiplied, alpha). Read errors raise
:class:`~srgan_cli.errors.ImageError` with a one-line ``"<path>: <reason>"`` message.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from typing import BinaryIO

import numpy as np

from srgan_cli.errors import ImageError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXIF_PREFIX = b"Exif\x00\x00"  # Pillow's convention for raw EXIF bytes
PNG_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type
PNG_CHANNELS = {v: k for k, v in PNG_COLOR_TYPES.items()}  # PNG colour type -> channels
PNG_CRITICAL = {b"IHDR", b"PLTE", b"IDAT", b"IEND"}
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2))  # interlace passes: x0, y0, dx, dy
LIBPNG_MAX_SIDE = 1_000_000  # libpng's default width/height limit
INFLATE_PIECE = 1 << 22  # bytes inflated at a time while checking PNG image data
MAX_METADATA = 64 << 20  # largest decompressed iCCP profile accepted
IDAT_SIZE = 1 << 20  # bytes of compressed data per IDAT chunk

TIFF_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
TIFF_INT_FORMAT = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 13: "I"}
T_WIDTH, T_HEIGHT, T_BITS, T_COMPRESSION, T_PHOTOMETRIC = 256, 257, 258, 259, 262
T_STRIP_OFFSETS, T_ORIENTATION, T_SAMPLES, T_ROWS_PER_STRIP = 273, 274, 277, 278
T_STRIP_BYTES, T_XRES, T_YRES, T_PLANAR, T_RES_UNIT = 279, 282, 283, 284, 296
T_TILE_WIDTH, T_EXTRA_SAMPLES, T_SAMPLE_FORMAT, T_ICC = 322, 338, 339, 34675
TIFF_TAGS_READ = {T_WIDTH, T_HEIGHT, T_BITS, T_COMPRESSION, T_PHOTOMETRIC, T_STRIP_OFFSETS,
                  T_ORIENTATION, T_SAMPLES, T_ROWS_PER_STRIP, T_STRIP_BYTES, T_PLANAR,
                  T_TILE_WIDTH, T_EXTRA_SAMPLES, T_SAMPLE_FORMAT, T_ICC}
CONVERT_HINT = "convert it to 16-bit PNG"

PathLike = str | os.PathLike
Entry = tuple[int, int, bytes]  # TIFF field: (type, count, raw value bytes)


# --------------------------------------------------------------------------- shared


def _read_bytes(path: PathLike, limit: int | None = None) -> bytes:
    """The file's bytes (at most ``limit``); OS errors become :class:`ImageError`."""
    try:
        with open(path, "rb") as f:
            return f.read() if limit is None else f.read(limit)
    except OSError as e:
        raise ImageError(f"{path}: cannot read ({e.strerror or e})") from None


def _check_array(arr: np.ndarray) -> np.ndarray:
    """``arr`` as (H, W, C) uint16 with C in 1..4; ValueError for anything else."""
    arr = np.asarray(arr)
    if arr.dtype != np.uint16:
        raise ValueError(f"expected a uint16 array, got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4) or 0 in arr.shape:
        raise ValueError(f"expected shape (H, W) or (H, W, 1..4), got {arr.shape}")
    return arr


def _safe_decompress(data: bytes, what: str, path: PathLike) -> bytes:
    """zlib-decompress metadata, refusing corrupt streams and zlib bombs."""
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, MAX_METADATA)
    except zlib.error as e:
        raise ImageError(f"{path}: corrupt {what} ({e})") from None
    if d.unconsumed_tail:
        raise ImageError(f"{path}: {what} larger than {MAX_METADATA} bytes")
    return out


# --------------------------------------------------------------------------- PNG reading


def png_bit_depth(path: PathLike) -> int | None:
    """Bit depth from the PNG header (IHDR), or None if ``path`` is not a PNG."""
    head = _read_bytes(path, 33)
    if len(head) < 33 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return head[24]


def _png_chunks(data: bytes, path: PathLike) -> list[tuple[bytes, bytes]]:
    """(type, data) of every chunk up to IEND; checks lengths and critical CRCs.

    Ancillary chunks with a bad CRC are dropped, as libpng does.
    """
    chunks, pos = [], len(PNG_SIGNATURE)
    while True:
        if pos + 12 > len(data):
            raise ImageError(f"{path}: truncated PNG (no IEND chunk)")
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 8 + length
        name = kind.decode("latin-1")
        if end + 4 > len(data):
            raise ImageError(f"{path}: truncated PNG ({name!r} chunk cut short)")
        body = data[pos + 8:end]
        crc_ok = zlib.crc32(kind + body) == struct.unpack(">I", data[end:end + 4])[0]
        critical = not kind[0] & 0x20
        if critical and kind not in PNG_CRITICAL:
            raise ImageError(f"{path}: unsupported PNG (unknown critical chunk {name!r})")
        if critical and not crc_ok:
            raise ImageError(f"{path}: corrupt PNG (CRC error in {name!r} chunk)")
        if crc_ok:
            chunks.append((kind, body))
        if kind == b"IEND":
            return chunks
        pos = end + 4


def _png_header(chunks: list[tuple[bytes, bytes]], path: PathLike) -> tuple[int, int, int, int]:
    """(width, height, channels, interlace) from IHDR, requiring 16-bit gray/RGB(A)."""
    if (not chunks or chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13
            or sum(kind == b"IHDR" for kind, _ in chunks) != 1):
        raise ImageError(f"{path}: corrupt PNG (missing, misplaced or bad IHDR chunk)")
    w, h, depth, ctype, method, filt, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if depth != 16:
        raise ImageError(f"{path}: not a 16-bit PNG (bit depth {depth})")
    if ctype not in PNG_CHANNELS or method or filt or interlace > 1 or not (w and h):
        raise ImageError(f"{path}: corrupt PNG (bad IHDR: colour type {ctype}, "
                         f"methods {method}/{filt}/{interlace}, size {w}x{h})")
    if max(w, h) > LIBPNG_MAX_SIDE:
        raise ImageError(f"{path}: {w}x{h} PNG exceeds {LIBPNG_MAX_SIDE} pixels per side")
    return w, h, PNG_CHANNELS[ctype], interlace


def _png_metadata(chunks: list[tuple[bytes, bytes]], path: PathLike) -> dict:
    """ICC profile (iCCP, decompressed) and EXIF (eXIf, with Pillow's "Exif" prefix)."""
    info: dict = {}
    for kind, body in chunks:
        if kind == b"iCCP" and "icc_profile" not in info:
            nul = body.find(b"\x00")
            if nul < 1 or nul + 2 > len(body) or body[nul + 1] != 0:
                raise ImageError(f"{path}: corrupt PNG (bad iCCP chunk)")
            info["icc_profile"] = _safe_decompress(body[nul + 2:], "PNG iCCP chunk", path)
        elif kind == b"eXIf" and "exif" not in info and body:
            info["exif"] = EXIF_PREFIX + body
    return info


def _png_row_starts(w: int, h: int, channels: int, interlace: int) -> np.ndarray:
    """Offsets of every row's filter byte in the decompressed data, then its total size."""
    lengths = []
    for x0, y0, dx, dy in (ADAM7 if interlace else ((0, 0, 1, 1),)):
        pw, ph = -(-(w - x0) // dx), -(-(h - y0) // dy)
        if pw > 0 and ph > 0:
            lengths.append(np.full(ph, pw * channels * 2 + 1, np.int64))
    return np.concatenate([np.zeros(1, np.int64), np.cumsum(np.concatenate(lengths))])


def _check_png_stream(stream: bytes, starts: np.ndarray, path: PathLike) -> None:
    """Inflate the IDAT stream piece by piece, checking its size, checksum and filter bytes.

    libpng errors inside torchvision's decoder crash the process instead of raising, so
    libpng must only ever see image data that is known to decode cleanly.
    """
    filters, total = starts[:-1], int(starts[-1])
    d, pos, data = zlib.decompressobj(), 0, stream
    try:
        while not d.eof:
            piece = d.decompress(data, INFLATE_PIECE)
            data = d.unconsumed_tail
            if not piece and not data:
                break
            lo, hi = np.searchsorted(filters, [pos, pos + len(piece)])
            if hi > lo and np.frombuffer(piece, np.uint8)[filters[lo:hi] - pos].max() > 4:
                raise ImageError(f"{path}: corrupt PNG (bad row filter type)")
            pos += len(piece)
            if pos > total:
                raise ImageError(f"{path}: corrupt PNG (more image data than {total} bytes)")
    except zlib.error as e:
        raise ImageError(f"{path}: corrupt PNG image data ({e})") from None
    if pos != total or not d.eof or d.unused_data:
        raise ImageError(f"{path}: truncated or corrupt PNG image data "
                         f"({pos} of {total} bytes, stream {'ended' if d.eof else 'cut short'})")


def _decode_png_pixels(data: bytes, path: PathLike) -> np.ndarray:
    """(H, W, C) uint16 pixels of a validated IHDR+IDAT+IEND PNG, decoded by torchvision."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torchvision >= 0.29 image io
        from torchvision.io import ImageReadMode, decode_png

        try:
            t = decode_png(torch.frombuffer(bytearray(data), dtype=torch.uint8),
                           ImageReadMode.UNCHANGED)
        except (RuntimeError, ValueError) as e:
            reason = (str(e).strip().splitlines() or [type(e).__name__])[-1]
            raise ImageError(f"{path}: corrupt PNG ({reason})") from None
    if t.dtype != torch.uint16:
        raise ImageError(f"{path}: PNG decoded as {t.dtype}, expected 16 bits")
    return np.ascontiguousarray(t.numpy().transpose(1, 2, 0))


def read_png16(path: PathLike) -> tuple[np.ndarray, dict]:
    """A 16-bit PNG as uint16 (H, W[, C]) plus {"icc_profile", "exif"} where present.

    ``"exif"`` carries Pillow's ``b"Exif\\0\\0"`` prefix, as ``Image.info["exif"]`` does.
    """
    data = _read_bytes(path)
    if not data.startswith(PNG_SIGNATURE):
        raise ImageError(f"{path}: not a PNG file")
    chunks = _png_chunks(data, path)
    w, h, channels, interlace = _png_header(chunks, path)
    info = _png_metadata(chunks, path)
    idat = [body for kind, body in chunks if kind == b"IDAT"]
    _check_png_stream(b"".join(idat), _png_row_starts(w, h, channels, interlace), path)
    clean = b"".join([PNG_SIGNATURE, _png_chunk(b"IHDR", chunks[0][1]),
                      *(_png_chunk(b"IDAT", body) for body in idat), _png_chunk(b"IEND", b"")])
    arr = _decode_png_pixels(clean, path)
    if arr.shape != (h, w, channels):
        raise ImageError(f"{path}: corrupt PNG (decoded shape {arr.shape}, header {w}x{h})")
    return (arr[..., 0] if channels == 1 else arr), info


# --------------------------------------------------------------------------- PNG writing


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_scanlines(arr: np.ndarray) -> bytes:
    """Big-endian rows, each "Up"-filtered (type 2) and prefixed by its filter byte."""
    h = arr.shape[0]
    raw = arr.astype(">u2").reshape(h, -1).view(np.uint8)
    out = np.empty((h, raw.shape[1] + 1), np.uint8)
    out[:, 0] = 2
    out[0, 1:] = raw[0]  # the row above the first one counts as zeros
    np.subtract(raw[1:], raw[:-1], out=out[1:, 1:])  # uint8 arithmetic wraps modulo 256
    return out.tobytes()


def write_png16(path: PathLike, arr: np.ndarray, icc_profile: bytes | None = None,
                exif: bytes | None = None, level: int = 6) -> None:
    """Write uint16 (H, W[, C]) as a 16-bit PNG (colour type 0, 4, 2 or 6) at ``path``,
    zlib-compressed at ``level`` (0-9).

    ``exif`` may carry Pillow's ``b"Exif\\0\\0"`` prefix; it is stripped for the eXIf chunk.
    OS errors propagate as :class:`OSError`.
    """
    arr = _check_array(arr)
    h, w, c = arr.shape
    parts = [PNG_SIGNATURE,
             _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, PNG_COLOR_TYPES[c], 0, 0, 0))]
    if icc_profile:
        parts.append(_png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc_profile, 9)))
    if exif:
        body = exif[len(EXIF_PREFIX):] if exif.startswith(EXIF_PREFIX) else exif
        parts.append(_png_chunk(b"eXIf", bytes(body)))
    stream = zlib.compress(_png_scanlines(arr), level)
    parts += [_png_chunk(b"IDAT", stream[i:i + IDAT_SIZE])
              for i in range(0, len(stream), IDAT_SIZE)]
    parts.append(_png_chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.writelines(parts)


# --------------------------------------------------------------------------- TIFF reading


def _read_at(f: BinaryIO, offset: int, size: int, path: PathLike) -> bytes:
    """Exactly ``size`` bytes at ``offset``, else a truncation :class:`ImageError`."""
    if offset < 0 or offset + size > f.seek(0, os.SEEK_END):
        raise ImageError(f"{path}: truncated TIFF (needs {size} bytes at offset {offset})")
    f.seek(offset)
    return f.read(size)


def _tiff_byte_order(head: bytes, path: PathLike) -> str | None:
    """"<" or ">" for a classic TIFF header, None if not a TIFF."""
    if head[:4] == b"II*\x00":
        return "<"
    if head[:4] == b"MM\x00*":
        return ">"
    if head[:4] in (b"II+\x00", b"MM\x00+"):
        raise ImageError(f"{path}: BigTIFF is not supported; {CONVERT_HINT}")
    return None


def _tiff_ifd(f: BinaryIO, bo: str, path: PathLike) -> dict[int, Entry]:
    """The first IFD's fields that this module uses, as {tag: (type, count, raw value)}.

    Other tags are skipped unread, so a broken unrelated tag (say a MakerNote) is harmless.
    """
    size = f.seek(0, os.SEEK_END)
    (offset,) = struct.unpack(bo + "I", _read_at(f, 4, 4, path))
    (n,) = struct.unpack(bo + "H", _read_at(f, offset, 2, path))
    table = _read_at(f, offset + 2, 12 * n, path)
    ifd = {}
    for i in range(n):
        tag, typ, count, value = struct.unpack(bo + "HHI4s", table[12 * i:12 * i + 12])
        if tag not in TIFF_TAGS_READ:
            continue
        nbytes = TIFF_TYPE_SIZE.get(typ, 0) * count
        if nbytes > size:
            raise ImageError(f"{path}: corrupt TIFF (tag {tag} claims {nbytes} bytes)")
        if nbytes > 4:
            value = _read_at(f, struct.unpack(bo + "I", value)[0], nbytes, path)
        ifd[tag] = (typ, count, value[:nbytes])
    return ifd


def _tiff_ints(ifd: dict[int, Entry], tag: int, bo: str, default: list[int] | None = None,
               path: PathLike = "<tiff>") -> list[int]:
    """An integer field's values; ``default`` if absent (ImageError if also None)."""
    if tag not in ifd:
        if default is None:
            raise ImageError(f"{path}: corrupt TIFF (required tag {tag} missing)")
        return default
    typ, count, raw = ifd[tag]
    if typ not in TIFF_INT_FORMAT or count == 0:
        raise ImageError(f"{path}: corrupt TIFF (tag {tag}: type {typ}, {count} values)")
    return list(struct.unpack(f"{bo}{count}{TIFF_INT_FORMAT[typ]}", raw))


def _tiff_summary(ifd: dict[int, Entry], bo: str, path: PathLike) -> dict:
    """The fields :func:`tiff_info` reports, with TIFF defaults filled in."""
    samples = _tiff_ints(ifd, T_SAMPLES, bo, [1], path)[0]
    bits = _tiff_ints(ifd, T_BITS, bo, [1], path)
    return {
        "bits": max(bits), "samples": samples,
        "compression": _tiff_ints(ifd, T_COMPRESSION, bo, [1], path)[0],
        "photometric": _tiff_ints(ifd, T_PHOTOMETRIC, bo, [1 if samples < 3 else 2], path)[0],
        "width": _tiff_ints(ifd, T_WIDTH, bo, None, path)[0],
        "height": _tiff_ints(ifd, T_HEIGHT, bo, None, path)[0],
        "planar": _tiff_ints(ifd, T_PLANAR, bo, [1], path)[0],
    }


def _open_tiff(f: BinaryIO, path: PathLike) -> tuple[str, dict[int, Entry]] | None:
    """(byte order, first IFD) of an open file, or None if it is not a TIFF."""
    bo = _tiff_byte_order(f.read(4), path)
    if bo is None:
        return None
    try:
        return bo, _tiff_ifd(f, bo, path)
    except struct.error as e:
        raise ImageError(f"{path}: corrupt TIFF ({e})") from None


def tiff_info(path: PathLike) -> dict | None:
    """Bits, samples, compression, photometric, width, height and planar config of the
    first TIFF image, or None if ``path`` is not a TIFF."""
    try:
        with open(path, "rb") as f:
            opened = _open_tiff(f, path)
    except OSError as e:
        raise ImageError(f"{path}: cannot read ({e.strerror or e})") from None
    return None if opened is None else _tiff_summary(opened[1], opened[0], path)


def _check_tiff16(ifd: dict[int, Entry], s: dict, bo: str, path: PathLike) -> None:
    """Refuse anything but uncompressed, stripped, chunky, unsigned 16-bit gray/RGB."""
    bits = _tiff_ints(ifd, T_BITS, bo, [1], path)
    if set(bits) != {16}:
        raise ImageError(f"{path}: not a 16-bit TIFF (BitsPerSample {bits})")
    unsupported = None
    if s["compression"] != 1:
        unsupported = f"16-bit TIFF with compression {s['compression']}"
    elif T_TILE_WIDTH in ifd:
        unsupported = "tiled 16-bit TIFF"
    elif s["planar"] != 1 and s["samples"] > 1:
        unsupported = f"planar 16-bit TIFF (PlanarConfiguration {s['planar']})"
    elif set(_tiff_ints(ifd, T_SAMPLE_FORMAT, bo, [1], path)) != {1}:
        unsupported = "signed or floating-point 16-bit TIFF"
    elif s["photometric"] not in (0, 1, 2):
        unsupported = f"16-bit TIFF with photometric interpretation {s['photometric']}"
    elif s["samples"] not in ((1, 2) if s["photometric"] < 2 else (3, 4)):
        unsupported = f"16-bit TIFF with {s['samples']} samples per pixel"
    if unsupported:
        raise ImageError(f"{path}: {unsupported} is not supported; {CONVERT_HINT}")
    if s["width"] <= 0 or s["height"] <= 0:
        raise ImageError(f"{path}: corrupt TIFF (size {s['width']}x{s['height']})")


def _tiff_strips(f: BinaryIO, ifd: dict[int, Entry], s: dict, bo: str,
                 path: PathLike) -> bytearray:
    """The concatenated pixel bytes of all strips."""
    h, row = s["height"], s["width"] * s["samples"] * 2
    if h * row > f.seek(0, os.SEEK_END):
        raise ImageError(f"{path}: truncated TIFF ({s['width']}x{h} pixels need {h * row} bytes)")
    rps = _tiff_ints(ifd, T_ROWS_PER_STRIP, bo, [h], path)[0]
    rps = h if rps <= 0 else min(rps, h)
    offsets = _tiff_ints(ifd, T_STRIP_OFFSETS, bo, None, path)
    n = -(-h // rps)
    if len(offsets) < n:
        raise ImageError(f"{path}: corrupt TIFF ({len(offsets)} strips for {h} rows of {rps})")
    counts = _tiff_ints(ifd, T_STRIP_BYTES, bo, [rps * row] * n, path)
    if len(counts) < n:
        raise ImageError(f"{path}: corrupt TIFF ({len(counts)} strip sizes for {n} strips)")
    out = bytearray()
    for i in range(n):
        need = min(rps, h - i * rps) * row
        if counts[i] < need:
            raise ImageError(f"{path}: corrupt TIFF (strip {i} has {counts[i]} of {need} bytes)")
        out += _read_at(f, offsets[i], need, path)
    return out


def _unpremultiply(arr: np.ndarray) -> np.ndarray:
    """Straight alpha from associated (premultiplied) alpha, rounded to uint16."""
    a = arr[..., -1:].astype(np.float64)
    c = arr[..., :-1] * (65535.0 / np.maximum(a, 1))
    c = np.where(a > 0, np.clip(np.rint(c), 0, 65535), 0).astype(np.uint16)
    return np.concatenate([c, arr[..., -1:]], axis=2)


def _tiff_pixels(raw: bytes | bytearray, ifd: dict[int, Entry], s: dict, bo: str,
                 path: PathLike) -> np.ndarray:
    """(H, W, C) native uint16 from strip bytes, with WhiteIsZero and premultiplied alpha undone."""
    arr = np.frombuffer(raw, bo + "u2").reshape(s["height"], s["width"], s["samples"])
    arr = arr.astype(np.uint16)
    if s["photometric"] == 0:
        arr[..., 0] = 65535 - arr[..., 0]
    extra = _tiff_ints(ifd, T_EXTRA_SAMPLES, bo, [0], path)
    if s["samples"] in (2, 4) and extra and extra[0] == 1:
        arr = _unpremultiply(arr)
    return arr


def read_tiff16(path: PathLike) -> tuple[np.ndarray, dict]:
    """An uncompressed, stripped, chunky 16-bit TIFF as uint16 (H, W[, C]) plus info.

    ``info`` has ``"icc_profile"`` (tag 34675) when present, and ``"_orientation"``
    (the Orientation tag, 2-8) when the image is not stored upright.
    """
    try:
        with open(path, "rb") as f:
            opened = _open_tiff(f, path)
            if opened is None:
                raise ImageError(f"{path}: not a TIFF file")
            bo, ifd = opened
            s = _tiff_summary(ifd, bo, path)
            _check_tiff16(ifd, s, bo, path)
            arr = _tiff_pixels(_tiff_strips(f, ifd, s, bo, path), ifd, s, bo, path)
    except OSError as e:
        raise ImageError(f"{path}: cannot read ({e.strerror or e})") from None
    except struct.error as e:
        raise ImageError(f"{path}: corrupt TIFF ({e})") from None
    info: dict = {}
    if T_ICC in ifd and ifd[T_ICC][2]:
        info["icc_profile"] = ifd[T_ICC][2]
    orientation = _tiff_ints(ifd, T_ORIENTATION, bo, [1], path)[0]
    if 2 <= orientation <= 8:
        info["_orientation"] = orientation
    return (arr[..., 0] if arr.shape[2] == 1 else arr), info


# --------------------------------------------------------------------------- TIFF writing


def _tiff_entries(arr: np.ndarray, icc_profile: bytes | None) -> list[tuple[int, int, int, bytes]]:
    """(tag, type, count, little-endian value) for every field; StripOffsets is 0 for now."""
    h, w, c = arr.shape
    short = lambda *v: (3, len(v), struct.pack(f"<{len(v)}H", *v))  # noqa: E731
    long_ = lambda v: (4, 1, struct.pack("<I", v))  # noqa: E731
    rational = (5, 1, struct.pack("<II", 72, 1))
    fields = {
        T_WIDTH: long_(w), T_HEIGHT: long_(h), T_BITS: short(*[16] * c),
        T_COMPRESSION: short(1), T_PHOTOMETRIC: short(1 if c < 3 else 2),
        T_STRIP_OFFSETS: long_(0), T_SAMPLES: short(c), T_ROWS_PER_STRIP: long_(h),
        T_STRIP_BYTES: long_(arr.nbytes), T_XRES: rational, T_YRES: rational,
        T_PLANAR: short(1), T_RES_UNIT: short(2),
    }
    if c in (2, 4):
        fields[T_EXTRA_SAMPLES] = short(2)
    if icc_profile:
        fields[T_ICC] = (7, len(icc_profile), bytes(icc_profile))
    return [(tag, *fields[tag]) for tag in sorted(fields)]


def _tiff_layout(entries: list[tuple[int, int, int, bytes]]) -> tuple[bytes, bytes, int]:
    """(IFD bytes, out-of-line data, pixel offset) for a file with the IFD at offset 8."""
    ifd_end = 8 + 2 + 12 * len(entries) + 4
    extra = bytearray()
    table = [struct.pack("<H", len(entries))]
    for tag, typ, count, value in entries:
        if len(value) <= 4:
            slot = value.ljust(4, b"\x00")
        else:
            slot = struct.pack("<I", ifd_end + len(extra))
            extra += value + b"\x00" * (len(value) % 2)  # keep offsets word-aligned
        table.append(struct.pack("<HHI", tag, typ, count) + slot)
    table.append(struct.pack("<I", 0))  # no next IFD
    return b"".join(table), bytes(extra), ifd_end + len(extra)


def write_tiff16(path: PathLike, arr: np.ndarray, icc_profile: bytes | None = None) -> None:
    """Write uint16 (H, W[, C]) as an uncompressed little-endian 16-bit TIFF at ``path``.

    One strip, chunky samples, gray (1-2 channels) or RGB (3-4), unassociated alpha.
    OS errors propagate as :class:`OSError`.
    """
    arr = _check_array(arr)
    entries = _tiff_entries(arr, icc_profile)
    _, _, pixel_offset = _tiff_layout(entries)
    if pixel_offset + arr.nbytes > 0xFFFFFFFF:
        raise ImageError(f"{path}: {arr.shape[1]}x{arr.shape[0]} image is too large for TIFF")
    entries = [(t, ty, n, struct.pack("<I", pixel_offset) if t == T_STRIP_OFFSETS else v)
               for t, ty, n, v in entries]
    ifd, extra, _ = _tiff_layout(entries)
    with open(path, "wb") as f:
        f.writelines([b"II*\x00", struct.pack("<I", 8), ifd, extra,
                      arr.astype("<u2").tobytes()])
