"""Reading and writing images: modes, bit depth, orientation, metadata, atomic writes.

Every input becomes a :class:`Decoded`: float32 RGB in [0, 1] for the model, an optional
alpha plane, the output mode family (``RGB``, ``L``, ``RGBA``, ``LA``), the bit depth
(8 or 16) and the metadata to carry over (ICC profile, EXIF with orientation reset).
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from srgan_cli.errors import ImageError
from srgan_cli.files import atomic_write

FORMATS = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP",
    ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP",
}
FORMAT_SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp"}
INPUT_SUFFIXES = set(FORMATS) | {".ppm", ".pgm", ".pbm", ".gif", ".tga", ".jp2"}
DEFAULT_MAX_PIXELS = 100_000_000  # input pixels; larger inputs are refused (decompression bombs)
#: PNG zlib level of outputs: on 2048x2048 outputs of photos as small as level 6 (Pillow's
#: default) and 2.6x faster to write; level 1 is faster still but 12% larger
#: (docs/performance.md, "PNG level"; scripts/png_level.py).
DEFAULT_PNG_LEVEL = 4
HIGH_BIT_FORMATS = {"PNG", "TIFF"}
ORIENTATION_TAG = 0x0112

# Pillow's own bomb check would fire first for huge images; ours is the one that applies.
Image.MAX_IMAGE_PIXELS = None


@dataclass
class Decoded:
    """An image ready for the model plus what is needed to write the result back."""

    rgb: np.ndarray  # float32 (H, W, 3) in [0, 1]
    alpha: np.ndarray | None  # float32 (H, W) in [0, 1]
    mode: str  # output mode family: "RGB", "L", "RGBA" or "LA"
    bits: int = 8  # 8 or 16 bits per channel
    info: dict = field(default_factory=dict)  # "icc_profile", "exif" (bytes)
    frames: int = 1  # frames in the file (animated GIF/WebP/PNG); only the first is decoded

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]


# --------------------------------------------------------------------------- reading


# What Pillow's format plugins raise on damaged bytes: besides OSError and friends, a
# truncated animated GIF raises IndexError from n_frames (found by the bad-input corpus,
# tests/test_bad_input_corpus.py).
_PARSER_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError,
                  KeyError, TypeError, ZeroDivisionError)


def read_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> Decoded:
    """Decode ``path`` with EXIF orientation applied. Raises :class:`ImageError`."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except OSError as e:
        raise ImageError(f"{path}: cannot read ({e.strerror or e})") from None
    if path.is_dir():
        raise ImageError(f"{path}: is a directory")
    if size == 0:
        raise ImageError(f"{path}: empty file")
    from srgan_cli.imageio import hibit

    try:
        if hibit.png_bit_depth(path) == 16:
            with open(path, "rb") as f:
                w, h = struct.unpack(">II", f.read(24)[16:24])  # IHDR width, height
            _check_pixels(path, w, h, max_pixels)
            arr, info = hibit.read_png16(path)
            return _from_uint16(arr, _orient_info(info), path)
        tinfo = hibit.tiff_info(path)
        if tinfo and tinfo["bits"] == 16 and tinfo["samples"] >= 2:
            _check_pixels(path, tinfo["width"], tinfo["height"], max_pixels)
            arr, info = hibit.read_tiff16(path)
            return _from_uint16(arr, info, path)
        with Image.open(path) as im:
            _check_pixels(path, im.width, im.height, max_pixels)
            frames = getattr(im, "n_frames", 1)
            im.load()
            im = ImageOps.exif_transpose(im)  # also drops the orientation tag from its EXIF
            d = decode(im, path, _metadata(im))
            d.frames = frames
            return d
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not a recognised image file") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"{path}: refused as a decompression bomb ({e})") from None
    except _PARSER_ERRORS as e:
        reason = str(e) or type(e).__name__
        raise ImageError(f"{path}: corrupt or truncated image ({reason})") from None


def bit_depth(path: str | os.PathLike) -> int:
    """16 for a 16-bit PNG/TIFF/PNM/gray image, else 8, from the header only (8 when the
    file cannot be read: :func:`read_image` reports that)."""
    from srgan_cli.imageio import hibit

    try:
        if hibit.png_bit_depth(path) == 16:
            return 16
        tinfo = hibit.tiff_info(path)
        if tinfo and tinfo["bits"] == 16:
            return 16
        with Image.open(path) as im:  # reads the header only
            return 16 if im.mode.startswith("I") else 8
    except Exception:  # noqa: BLE001 - a header that cannot be read is read_image's error
        return 8


# --------------------------------------------------------------------------- JPEG quality

#: The IJG (libjpeg) standard luminance quantisation table, ITU-T T.81 Annex K.1, Table
#: K.1, in natural (row-major) order: what libjpeg scales by the quality setting.
IJG_LUMINANCE = (
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)
JPEG_SUFFIXES = {".jpg", ".jpeg"}  # the JPEG names among INPUT_SUFFIXES
#: ``srgan upscale`` suggests a model trained for compressed photos for JPEG inputs whose
#: estimated quality is below this. Phones and cameras save at 85-95, web pages and
#: messengers at 60-85. A model trained on clean LR magnifies JPEG's 8-px blocks into
#: 32-px ones: on a photo crop upscaled by `srresnet` they are faint at 90, show in flat
#: texture at 85 and are plain at 80 and below, and on Set5 its lead over bicubic shrinks
#: from 2.97 dB (clean LR) to 1.08 at 85, 0.77 at 80 and 0.48 at 75 (docs/benchmarks.md,
#: "Which JPEGs get the notice"). 85 spares camera originals and catches what was
#: recompressed for the web.
LOW_JPEG_QUALITY = 85


def ijg_luma_table(quality: int) -> tuple[int, ...]:
    """The luminance table libjpeg writes at ``quality`` (1-100; baseline, as Pillow
    saves): jpeg_quality_scaling's percentage (5000 / q below 50, else 200 - 2q) applied to
    :data:`IJG_LUMINANCE`, rounded, clamped to 1..255."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return tuple(min(max((b * scale + 50) // 100, 1), 255) for b in IJG_LUMINANCE)


_IJG_TABLES = {q: np.array(ijg_luma_table(q)) for q in range(1, 101)}


def jpeg_quality(im: Image.Image) -> int | None:
    """The libjpeg quality (1-100) a JPEG was most likely saved at, from its luminance
    quantisation table (``im.quantization[0]``, which Pillow gives in natural order): the
    quality whose IJG table is nearest (least sum of absolute differences; the higher
    quality on a tie). Exact for files libjpeg or Pillow wrote; for encoders with tables of
    their own (cameras, phones) the IJG quality of about the same coarseness. None for
    images that are not JPEGs or carry no usable table."""
    jpeg = im.format in ("JPEG", "MPO")  # MPO: cameras' multi-picture JPEGs
    tables = getattr(im, "quantization", None) if jpeg else None
    table = tables.get(0) if isinstance(tables, dict) else None
    if table is None or len(table) != 64:
        return None
    t = np.asarray(table, dtype=np.int64)
    return min(_IJG_TABLES, key=lambda q: (int(np.abs(_IJG_TABLES[q] - t).sum()), -q))


def file_jpeg_quality(path: str | os.PathLike) -> int | None:
    """:func:`jpeg_quality` of the file at ``path``, from its header only (no pixels are
    decoded); None for a file that is not a readable JPEG (its error is
    :func:`read_image`'s to report, and so are Pillow's warnings about it)."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                return jpeg_quality(im)
    except Exception:  # noqa: BLE001 - a header that cannot be read is read_image's error
        return None


def _check_pixels(path: Path, w: int, h: int, max_pixels: int) -> None:
    if max_pixels and w * h > max_pixels:
        raise ImageError(f"{path}: {w}x{h} = {w * h} pixels exceeds --max-pixels {max_pixels}")


def _metadata(im: Image.Image) -> dict:
    """ICC profile and EXIF (orientation reset to 1, since we apply it) of a PIL image."""
    info = {}
    if im.info.get("icc_profile"):
        info["icc_profile"] = im.info["icc_profile"]
    exif = Image.Exif()
    exif.update(im.getexif())  # a copy: never change the image's own EXIF
    if len(exif):
        if ORIENTATION_TAG in exif:
            exif[ORIENTATION_TAG] = 1
        info["exif"] = exif.tobytes()
    return info


def _orient_info(info: dict) -> dict:
    """Reset the orientation inside raw EXIF bytes (16-bit PNGs rarely carry one)."""
    if "exif" in info:
        exif = Image.Exif()
        try:
            exif.load(info["exif"])
        except Exception:  # noqa: BLE001 - malformed EXIF is dropped, pixels still fine
            return {k: v for k, v in info.items() if k != "exif"}
        info = dict(info, _orientation=exif.get(ORIENTATION_TAG, 1))
        if ORIENTATION_TAG in exif:
            exif[ORIENTATION_TAG] = 1
        info["exif"] = exif.tobytes()
    return info


def _apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """EXIF orientation 1-8 applied to an (H, W, ...) array."""
    ops = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: np.swapaxes(a, 0, 1), 6: lambda a: np.swapaxes(a[::-1], 0, 1),
           7: lambda a: np.swapaxes(a[::-1, ::-1], 0, 1), 8: lambda a: np.swapaxes(a[:, ::-1], 0, 1)}
    return np.ascontiguousarray(ops[orientation](arr)) if orientation in ops else arr


def _from_uint16(arr: np.ndarray, info: dict, path: Path) -> Decoded:
    arr = _apply_orientation(arr, info.pop("_orientation", 1))
    f = arr.astype(np.float32) / 65535.0
    if f.ndim == 2:
        f = f[..., None]
    c = f.shape[2]
    if c in (1, 2):
        rgb = np.repeat(f[..., :1], 3, axis=2)
        return Decoded(np.ascontiguousarray(rgb), f[..., 1].copy() if c == 2 else None,
                       "LA" if c == 2 else "L", 16, info)
    if c in (3, 4):
        return Decoded(np.ascontiguousarray(f[..., :3]), f[..., 3].copy() if c == 4 else None,
                       "RGBA" if c == 4 else "RGB", 16, info)
    raise ImageError(f"{path}: unsupported channel count {c}")


def _cmyk_to_rgb(im: Image.Image, info: dict) -> Image.Image:
    """CMYK through its embedded ICC profile to sRGB when possible, else Pillow's formula."""
    icc = info.pop("icc_profile", None)
    if icc:
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"),
                                             outputMode="RGB")
        except Exception:  # noqa: BLE001 - a broken profile falls back to the plain formula
            pass
    return im.convert("RGB")


def decode(im: Image.Image, name: str | os.PathLike = "<image>", info: dict | None = None) -> Decoded:
    """A PIL image (orientation already applied) to a :class:`Decoded`."""
    info = dict(_metadata(im) if info is None else info)
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode == "PA":
        im = im.convert("RGBA")
    elif mode in ("RGBa", "La"):
        im = im.convert("RGBA" if mode == "RGBa" else "LA")
    elif mode == "CMYK":
        im = _cmyk_to_rgb(im, info)
    elif mode in ("YCbCr", "LAB", "HSV", "RGBX"):
        im = im.convert("RGB")
    elif mode == "1":
        im = im.convert("L")
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        g = np.asarray(im, dtype=np.float64)
        if mode == "I" and g.max(initial=0) > 65535:
            raise ImageError(f"{name}: 32-bit integer images are not supported")
        g = (np.clip(g, 0, 65535) / 65535.0).astype(np.float32)
        return Decoded(np.ascontiguousarray(np.repeat(g[..., None], 3, 2)), None, "L", 16, info)
    if mode in ("RGBA", "LA"):
        alpha = np.asarray(im.getchannel("A"), dtype=np.float32) / 255.0
        rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
        return Decoded(np.ascontiguousarray(rgb), alpha, mode, 8, info)
    if mode == "L":
        g = np.asarray(im, dtype=np.float32) / 255.0
        return Decoded(np.ascontiguousarray(np.repeat(g[..., None], 3, 2)), None, "L", 8, info)
    if mode == "RGB":
        return Decoded(np.asarray(im, dtype=np.float32) / 255.0, None, "RGB", 8, info)
    raise ImageError(f"{name}: unsupported image mode {mode!r}")


# --------------------------------------------------------------------------- writing


def output_format(path: str | os.PathLike, fmt: str | None = None) -> str:
    if fmt:
        f = fmt.upper()
        f = {"JPG": "JPEG", "TIF": "TIFF"}.get(f, f)
        if f not in FORMAT_SUFFIX:
            raise ImageError(f"{path}: unsupported output format {fmt!r}")
        return f
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ImageError(f"{path}: cannot tell the output format from {suffix or 'no extension'!r}"
                         " (use .png, .jpg, .webp, .tif or .bmp, or --format)")
    return FORMATS[suffix]


def to_8bit(planes: np.ndarray) -> np.ndarray:
    """uint16 planes to uint8 with rounding; uint8 passes through."""
    if planes.dtype == np.uint8:
        return planes
    return ((planes.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def to_pil(planes: np.ndarray) -> Image.Image:
    """(H, W, C) planes to a PIL image: L, LA, RGB, RGBA (16-bit gray stays I;16)."""
    c = planes.shape[2]
    if c == 1 and planes.dtype == np.uint16:
        return Image.fromarray(planes[..., 0])
    planes = to_8bit(planes)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[c]
    return Image.fromarray(planes[..., 0] if c == 1 else planes, mode)


def write_image(path: str | os.PathLike, planes: np.ndarray, *, fmt: str | None = None,
                quality: int = 95, info: dict | None = None,
                png_level: int = DEFAULT_PNG_LEVEL) -> None:
    """Write (H, W, C) uint8/uint16 planes (C = 1 L, 2 LA, 3 RGB, 4 RGBA) atomically.

    The file is written to a temporary name in the target folder, then renamed.
    16-bit planes stay 16-bit in PNG and TIFF; JPEG, WebP and BMP are 8-bit formats.
    JPEG has no alpha channel, so a transparent image written as JPEG loses its alpha.
    ``png_level`` is the PNG zlib level (0-9; default :data:`DEFAULT_PNG_LEVEL`, 4): higher
    levels write slower for (on photos) no smaller files, 1 faster for 12% larger ones;
    the pixels are the same.
    """
    path = Path(path)
    fmt = output_format(path, fmt)
    info = info or {}
    c = planes.shape[2]
    if fmt == "JPEG" and c in (2, 4):
        planes, c = planes[..., : c - 1], c - 1
    if fmt == "BMP" and c == 2:
        planes, c = planes[..., :1], 1  # BMP has no gray+alpha
    if planes.dtype == np.uint16 and fmt in HIGH_BIT_FORMATS:
        from srgan_cli.imageio import hibit

        arr = planes[..., 0] if c == 1 else planes
        if fmt == "PNG":
            def save(tmp: Path) -> None:
                hibit.write_png16(tmp, arr, info.get("icc_profile"), info.get("exif"),
                                  png_level)
        else:
            def save(tmp: Path) -> None:
                hibit.write_tiff16(tmp, arr, info.get("icc_profile"))
    else:
        im = to_pil(to_8bit(planes))
        if fmt == "WEBP" and im.mode in ("L", "LA"):
            im = im.convert("RGBA" if im.mode == "LA" else "RGB")
        kwargs: dict = {}
        if fmt in ("JPEG", "WEBP"):
            kwargs["quality"] = quality
        if fmt == "PNG":
            kwargs["compress_level"] = png_level
        if info.get("icc_profile") and fmt in ("PNG", "JPEG", "WEBP", "TIFF"):
            kwargs["icc_profile"] = info["icc_profile"]
        if info.get("exif") and fmt in ("PNG", "JPEG", "WEBP", "TIFF"):
            kwargs["exif"] = info["exif"]

        def save(tmp: Path) -> None:
            im.save(tmp, format=fmt, **kwargs)

    try:
        atomic_write(path, save)
    except OSError as e:
        raise ImageError(f"{path}: cannot write ({e.strerror or e})") from None
