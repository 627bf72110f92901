"""Lossless 16-bit-per-channel PNG and TIFF reading and writing.

Pillow (13.0 included) has no 16-bit RGB mode: it truncates 16-bit colour PNG and TIFF to
8 bits per channel. This module keeps all 16 bits, with libraries where one does the job
(measurements and commands: docs/sixteen_bit.md):

* TIFF: tifffile reads and writes (strips or tiles, chunky or planar, classic or BigTIFF,
  uncompressed/Deflate/PackBits; LZW and other codecs with the optional ``srgan[tiff]``
  extra, imagecodecs). Kept here: refusing what is not unsigned 16-bit gray/RGB(A) with a
  one-line reason, WhiteIsZero and associated (premultiplied) alpha turned into our
  layout, the Orientation tag handed to the caller.
* PNG: pixels are decoded by torchvision (libpng). Kept here, because no kept library does
  it and the candidates that do are either 80-150 MB (imagecodecs: no ICC/EXIF;
  opencv-python-headless: no gray+alpha) or pure Python and unmaintained (pypng): the
  chunk parsing (iCCP and eXIf read, CRCs checked), the check of the image data before
  libpng sees it (libpng errors inside torchvision abort the process), and the writer
  (numpy "Up" filter + zlib, iCCP/eXIf chunks).

Arrays are uint16 with shape (H, W) gray, (H, W, 2) gray+alpha, (H, W, 3) RGB or
(H, W, 4) RGBA (straight, not premultiplied, alpha). Read errors raise
:class:`~srgan_cli.errors.ImageError` with a one-line ``"<path>: <reason>"`` message.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import struct
import warnings
import zlib

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

T_ORIENTATION = 274
TIFF_BUILTIN_CODECS = {1, 8, 32773, 32946}  # none, Deflate, PackBits: tifffile alone decodes
TIFF_EXTRA_HINT = "pip install 'srgan[tiff]'"
CONVERT_HINT = "convert it to 16-bit PNG"

PathLike = str | os.PathLike


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


# --------------------------------------------------------------------------- TIFF (tifffile)


def _tiff_magic(path: PathLike) -> bool:
    """Whether ``path`` starts like a classic TIFF or a BigTIFF."""
    return _read_bytes(path, 4) in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _tifffile(path: PathLike):
    """The tifffile module, its log records kept off stderr (library code never prints;
    an application that configures logging still receives them)."""
    try:
        import tifffile
    except ImportError:  # a dependency of srgan, missing only from a --no-deps install
        raise ImageError(f"{path}: 16-bit TIFF needs the tifffile package "
                         "(pip install tifffile)") from None

    log = logging.getLogger("tifffile")
    if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
        log.addHandler(logging.NullHandler())
    return tifffile


def _tiff_first_page(tf, path: PathLike):
    pages = tf.pages
    if len(pages) == 0:
        raise ImageError(f"{path}: corrupt TIFF (no image directory)")
    return pages.first


def _tiff_summary(page) -> dict:
    return {"bits": int(page.bitspersample), "samples": int(page.samplesperpixel),
            "compression": int(page.compression), "photometric": int(page.photometric),
            "width": int(page.imagewidth), "height": int(page.imagelength),
            "planar": int(page.planarconfig)}


def _tiff_error(path: PathLike, e: Exception) -> ImageError:
    if isinstance(e, ImageError):
        return e
    if isinstance(e, OSError) and not isinstance(e, EOFError):
        return ImageError(f"{path}: cannot read ({e.strerror or e})")
    reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return ImageError(f"{path}: corrupt TIFF ({reason})")


def tiff_info(path: PathLike) -> dict | None:
    """Bits, samples, compression, photometric, width, height and planar config of the
    first TIFF image, or None if ``path`` is not a TIFF."""
    if not _tiff_magic(path):
        return None
    tifffile = _tifffile(path)
    try:
        with tifffile.TiffFile(path) as tf:
            return _tiff_summary(_tiff_first_page(tf, path))
    except Exception as e:  # noqa: BLE001 - any failure of the parser is a bad file
        raise _tiff_error(path, e) from None


def _check_tiff16(page, s: dict, path: PathLike) -> None:
    """Refuse what is not unsigned 16-bit gray/RGB (with or without alpha), and compressed
    data that needs a codec from the optional imagecodecs package when it is missing."""
    if s["bits"] != 16:
        raise ImageError(f"{path}: not a 16-bit TIFF (BitsPerSample {s['bits']})")
    unsupported = None
    if int(page.sampleformat) != 1:
        unsupported = "signed or floating-point 16-bit TIFF"
    elif s["photometric"] not in (0, 1, 2):
        unsupported = f"16-bit TIFF with photometric interpretation {s['photometric']}"
    elif s["samples"] not in ((1, 2) if s["photometric"] < 2 else (3, 4)):
        unsupported = f"16-bit TIFF with {s['samples']} samples per pixel"
    elif len(page.shape) != (2 if s["samples"] == 1 else 3):
        unsupported = f"16-bit TIFF of shape {page.shape}"
    if unsupported:
        raise ImageError(f"{path}: {unsupported} is not supported; {CONVERT_HINT}")
    if s["compression"] not in TIFF_BUILTIN_CODECS and importlib.util.find_spec(
            "imagecodecs") is None:
        name = getattr(page.compression, "name", s["compression"])
        raise ImageError(f"{path}: 16-bit TIFF with {name} compression (compression "
                         f"{s['compression']}) needs the imagecodecs package: "
                         f"{TIFF_EXTRA_HINT}, or {CONVERT_HINT}")


def _unpremultiply(arr: np.ndarray) -> np.ndarray:
    """Straight alpha from associated (premultiplied) alpha, rounded to uint16."""
    a = arr[..., -1:].astype(np.float64)
    c = arr[..., :-1] * (65535.0 / np.maximum(a, 1))
    c = np.where(a > 0, np.clip(np.rint(c), 0, 65535), 0).astype(np.uint16)
    return np.concatenate([c, arr[..., -1:]], axis=2)


def read_tiff16(path: PathLike) -> tuple[np.ndarray, dict]:
    """A 16-bit gray/RGB TIFF (with or without alpha) as uint16 (H, W[, C]) plus info.

    Read by tifffile: strips or tiles, chunky or planar, classic or BigTIFF, uncompressed,
    Deflate or PackBits (other codecs, e.g. LZW, with the optional imagecodecs package).
    WhiteIsZero is inverted and associated (premultiplied) alpha made straight here.
    ``info`` has ``"icc_profile"`` (tag 34675) when present, and ``"_orientation"``
    (the Orientation tag, 2-8) when the image is not stored upright.
    """
    if not _tiff_magic(path):
        raise ImageError(f"{path}: not a TIFF file")
    tifffile = _tifffile(path)
    try:
        with tifffile.TiffFile(path) as tf:
            page = _tiff_first_page(tf, path)
            s = _tiff_summary(page)
            _check_tiff16(page, s, path)
            arr = page.asarray()
            icc = page.iccprofile
            orientation = page.tags.valueof(T_ORIENTATION, 1)
            extra = tuple(int(x) for x in page.extrasamples)
            axes, shape = page.axes, tuple(page.shape)
    except Exception as e:  # noqa: BLE001 - any failure of the parser is a bad file
        raise _tiff_error(path, e) from None
    if arr.dtype != np.uint16 or arr.shape != shape:
        raise ImageError(f"{path}: corrupt TIFF (decoded {arr.dtype} {arr.shape})")
    if axes.startswith("S"):  # planar: (S, H, W)
        arr = np.moveaxis(arr, 0, -1)
    arr = np.ascontiguousarray(arr if arr.ndim == 3 else arr[..., None], dtype=np.uint16)
    if s["photometric"] == 0:
        arr[..., 0] = 65535 - arr[..., 0]
    if s["samples"] in (2, 4) and extra and extra[0] == 1:
        arr = _unpremultiply(arr)
    info: dict = {}
    if icc:
        info["icc_profile"] = bytes(icc)
    if isinstance(orientation, int) and 2 <= orientation <= 8:
        info["_orientation"] = orientation
    return (arr[..., 0] if arr.shape[2] == 1 else arr), info


def write_tiff16(path: PathLike, arr: np.ndarray, icc_profile: bytes | None = None) -> None:
    """Write uint16 (H, W[, C]) as an uncompressed 16-bit TIFF at ``path`` (tifffile).

    Chunky samples, gray (1-2 channels) or RGB (3-4), unassociated alpha; BigTIFF when the
    image does not fit in 4 GiB. OS errors propagate as :class:`OSError`.
    """
    arr = _check_array(arr)
    c = arr.shape[2]
    tifffile = _tifffile(path)
    tifffile.imwrite(path, arr if c > 1 else arr[..., 0],
                     photometric="minisblack" if c < 3 else "rgb",
                     extrasamples=["unassalpha"] if c in (2, 4) else None,
                     iccprofile=bytes(icc_profile) if icc_profile else None,
                     resolution=(72, 72), resolutionunit="inch", metadata=None,
                     bigtiff=arr.nbytes + (len(icc_profile or b"")) > 2**32 - 2**25)
