"""Reading and writing images: modes, orientation, atomic writes.

Colour images travel through the model as float RGB in [0, 1]; alpha is upscaled
separately with bicubic; grayscale goes through the model as RGB and comes back as L.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from srgan_cli.errors import ImageError
from srgan_cli.weights import atomic_write

FORMATS = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP",
    ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP",
}
INPUT_SUFFIXES = set(FORMATS) | {".ppm", ".pgm", ".gif"}
DEFAULT_MAX_PIXELS = 178_956_970  # Pillow's own default limit (~179 MP)


@dataclass
class Decoded:
    """An image ready for the model: RGB float32 (H, W, 3) in [0,1] plus what to restore."""

    rgb: np.ndarray
    alpha: np.ndarray | None  # (H, W) float32 in [0,1]
    mode: str  # output mode: "RGB", "L", "RGBA" or "LA"
    info: dict


def read_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> Decoded:
    """Decode ``path``; EXIF orientation applied. Raises :class:`ImageError`."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageError(f"{path}: empty file")
        with Image.open(path) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise ImageError(f"{path}: {w}x{h} exceeds the {max_pixels}-pixel limit")
            im.load()
            im = ImageOps.exif_transpose(im)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a directory") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not a recognised image file") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"{path}: refused as a decompression bomb ({e})") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise ImageError(f"{path}: corrupt or truncated image ({e})") from None
    return decode(im, path)


def decode(im: Image.Image, name: str | os.PathLike = "<image>") -> Decoded:
    info = {}
    if "icc_profile" in im.info:
        info["icc_profile"] = im.info["icc_profile"]
    mode = im.mode
    alpha = None
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in ("RGBA", "LA", "PA"):
        alpha = np.asarray(im.getchannel("A"), dtype=np.float32) / 255.0
        out_mode = "LA" if mode == "LA" else "RGBA"
        rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    elif mode in ("L", "1"):
        out_mode = "L"
        rgb = np.repeat(np.asarray(im.convert("L"), dtype=np.float32)[..., None] / 255.0, 3, 2)
    elif mode in ("RGB", "CMYK", "YCbCr", "LAB", "HSV"):
        out_mode = "RGB"
        rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    else:
        raise ImageError(f"{name}: unsupported image mode {mode!r}")
    return Decoded(np.ascontiguousarray(rgb), alpha, out_mode, info)


def encode(rgb: np.ndarray, alpha: np.ndarray | None, mode: str) -> Image.Image:
    """Float [0,1] RGB (+ alpha) back to a PIL image of ``mode``."""
    rgb8 = (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    im = Image.fromarray(rgb8, "RGB")
    if mode in ("L", "LA"):
        im = im.convert("L")
    if alpha is not None and mode in ("RGBA", "LA"):
        a = Image.fromarray((np.clip(alpha, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), "L")
        im.putalpha(a)
    return im


def output_format(path: str | os.PathLike, fmt: str | None = None) -> str:
    if fmt:
        f = fmt.upper()
        f = "JPEG" if f == "JPG" else f
        if f not in set(FORMATS.values()):
            raise ImageError(f"{path}: unsupported output format {fmt!r}")
        return f
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ImageError(f"{path}: cannot tell the output format from {suffix or 'no extension'!r}"
                         " (use .png, .jpg, .webp, .tif or .bmp)")
    return FORMATS[suffix]


def write_image(im: Image.Image, path: str | os.PathLike, fmt: str | None = None,
                quality: int = 95, info: dict | None = None) -> None:
    """Write atomically: a temporary file in the target folder, then a rename."""
    path = Path(path)
    fmt = output_format(path, fmt)
    if fmt == "JPEG" and im.mode in ("RGBA", "LA"):
        im = im.convert("RGB" if im.mode == "RGBA" else "L")
    kwargs: dict = {}
    if fmt in ("JPEG", "WEBP"):
        kwargs["quality"] = quality
    if info and info.get("icc_profile") and fmt in ("PNG", "JPEG", "WEBP", "TIFF"):
        kwargs["icc_profile"] = info["icc_profile"]
    try:
        atomic_write(path, lambda tmp: im.save(tmp, format=fmt, **kwargs))
    except OSError as e:
        raise ImageError(f"{path}: cannot write ({e.strerror or e})") from None
