"""Measure libraries that read/write 16-bit PNG and TIFF against srgan_cli.imageio.hibit.

For each candidate and each layout (gray, gray+alpha, RGB, RGBA) x (PNG, TIFF): can it
write a file that hibit reads back exactly, and read hibit's file exactly? Are an ICC
profile and EXIF carried (written, and read back)? Then speed on an 8000x6000 16-bit RGB
image (write at zlib level 6 for PNG, uncompressed TIFF; read back), median of --repeat.

The candidates need not be installed in the project's environment: install them into
folders and put those on PYTHONPATH, e.g.

    for p in tifffile imagecodecs pypng opencv-python-headless; do
        .venv/bin/pip install --no-deps --target /tmp/c-$p $p; done
    PYTHONPATH=$PWD:/tmp/c-tifffile:/tmp/c-imagecodecs:/tmp/c-pypng:/tmp/c-opencv-python-headless \\
        .venv/bin/python scripts/sixteen_bit.py --json docs/results/sixteen_bit.json

Prints a table per check; --json writes all results.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from srgan_cli.imageio import hibit

ICC = None  # a real sRGB profile (libpng checks profiles), made by Pillow in main()
EXIF = b"Exif\x00\x00" + b"II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00" \
    b"\x01\x00\x00\x00\x00\x00\x00\x00"  # one IFD entry: Orientation = 1
LAYOUTS = {1: "gray", 2: "gray+alpha", 3: "RGB", 4: "RGBA"}


def sample(h: int, w: int, c: int, seed: int = 0) -> np.ndarray:
    """Smooth photo-like uint16 content plus low-order noise (like a real 16-bit scan)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    planes = [np.sin(yy / (37 + 11 * k) + xx / (53 + 7 * k)) * 0.45 + 0.5 for k in range(c)]
    arr = np.stack(planes, -1) * 60000 + rng.integers(0, 256, (h, w, c))
    arr = arr.astype(np.uint16)
    return arr[..., 0] if c == 1 else arr


# --------------------------------------------------------------------------- candidates
# Each: png_write(path, arr, icc, exif), png_read(path) -> (arr, {"icc_profile", "exif"}),
# tiff_write, tiff_read; None where the library has no such thing.


def _hibit(mod=hibit):
    return dict(
        png_write=lambda p, a, icc, exif: mod.write_png16(p, a, icc, exif, level=6),
        png_read=mod.read_png16,
        tiff_write=lambda p, a, icc, exif: mod.write_tiff16(p, a, icc),
        tiff_read=mod.read_tiff16)


def _old_hibit(path: Path):
    """Another version of hibit.py (e.g. ``git show 6f2d2c6:srgan_cli/imageio/hibit.py > old.py``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("hibit_old", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return _hibit(mod)


def _tifffile():
    import tifffile

    def write(p, a, icc, exif):
        c = 1 if a.ndim == 2 else a.shape[2]
        tifffile.imwrite(p, a, photometric="minisblack" if c < 3 else "rgb",
                         extrasamples=["unassalpha"] if c in (2, 4) else None,
                         iccprofile=icc, metadata=None)

    def read(p):
        with tifffile.TiffFile(p) as t:
            page = t.pages[0]
            info = {}
            if page.iccprofile:
                info["icc_profile"] = bytes(page.iccprofile)
            return page.asarray(), info

    return dict(tiff_write=write, tiff_read=read, version=tifffile.__version__)


def _imagecodecs():
    import imagecodecs

    def png_write(p, a, icc, exif):
        Path(p).write_bytes(imagecodecs.png_encode(a, level=6))

    def png_read(p):
        return imagecodecs.png_decode(Path(p).read_bytes()), {}

    def tiff_write(p, a, icc, exif):
        Path(p).write_bytes(imagecodecs.tiff_encode(a))

    def tiff_read(p):
        return imagecodecs.tiff_decode(Path(p).read_bytes()), {}

    return dict(png_write=png_write, png_read=png_read, tiff_write=tiff_write,
                tiff_read=tiff_read, version=imagecodecs.__version__)


def _pypng():
    import png

    def png_write(p, a, icc, exif):
        c = 1 if a.ndim == 2 else a.shape[2]
        w = png.Writer(a.shape[1], a.shape[0], greyscale=c < 3, alpha=c in (2, 4),
                       bitdepth=16, compression=6)
        buf = io.BytesIO()
        w.write_array(buf, a.reshape(-1))
        chunks = list(png.Reader(bytes=buf.getvalue()).chunks())
        extra = []
        if icc:
            import zlib
            extra.append((b"iCCP", b"ICC\x00\x00" + zlib.compress(icc)))
        if exif:
            extra.append((b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))
        with open(p, "wb") as f:  # pypng's Writer has no ICC/EXIF: chunks added by hand
            png.write_chunks(f, chunks[:1] + extra + chunks[1:])

    def png_read(p):
        r = png.Reader(filename=str(p))
        w, h, rows, meta = r.read_flat()
        c = meta["planes"]
        arr = np.asarray(rows, np.uint16).reshape(h, w, c)
        info = {}
        # pypng 0.20220715 keeps iCCP only through its chunk iterator
        for kind, body in png.Reader(filename=str(p)).chunks():
            if kind == b"iCCP":
                import zlib
                info["icc_profile"] = zlib.decompress(body[body.index(b"\x00") + 2:])
            if kind == b"eXIf":
                info["exif"] = b"Exif\x00\x00" + body
        return (arr[..., 0] if c == 1 else arr), info

    return dict(png_write=png_write, png_read=png_read, version=png.__version__)


def _opencv():
    import cv2

    def bgr(a):
        if a.ndim == 3 and a.shape[2] in (3, 4):
            return np.ascontiguousarray(a[..., [2, 1, 0, 3][:a.shape[2]]])
        return a

    def write(ext, params):
        def w(p, a, icc, exif):
            types, data = [], []
            if icc:
                types.append(cv2.IMAGE_METADATA_ICCP)
                data.append(np.frombuffer(icc, np.uint8))
            if exif:
                types.append(cv2.IMAGE_METADATA_EXIF)
                data.append(np.frombuffer(exif[6:] if exif.startswith(b"Exif\x00\x00")
                                          else exif, np.uint8))
            ok = cv2.imwriteWithMetadata(str(p), bgr(a), types, data, params)
            if not ok:
                raise RuntimeError("imwriteWithMetadata returned False")
        return w

    def read(p):
        a, types, data = cv2.imreadWithMetadata(str(p), cv2.IMREAD_UNCHANGED)
        if a is None:
            raise RuntimeError("imreadWithMetadata returned None")
        info = {}
        for t, d in zip(types, data):
            if t == cv2.IMAGE_METADATA_ICCP:
                info["icc_profile"] = bytes(np.asarray(d).reshape(-1))
            if t == cv2.IMAGE_METADATA_EXIF:
                info["exif"] = b"Exif\x00\x00" + bytes(np.asarray(d).reshape(-1))
        return bgr(a), info

    return dict(png_write=write(".png", [cv2.IMWRITE_PNG_COMPRESSION, 6]), png_read=read,
                tiff_write=write(".tif", [cv2.IMWRITE_TIFF_COMPRESSION, 1]), tiff_read=read,
                version=cv2.__version__)


def _torchvision():
    import torch
    import torchvision
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torchvision.io import ImageReadMode, decode_png, encode_png

    def png_read(p):
        t = decode_png(torch.frombuffer(bytearray(Path(p).read_bytes()), dtype=torch.uint8),
                       ImageReadMode.UNCHANGED)
        a = t.numpy().transpose(1, 2, 0)
        return (a[..., 0] if a.shape[2] == 1 else a), {}

    def png_write(p, a, icc, exif):
        t = torch.from_numpy(np.ascontiguousarray(a if a.ndim == 3 else a[..., None])
                             .transpose(2, 0, 1).copy())
        Path(p).write_bytes(encode_png(t, compression_level=6).numpy().tobytes())

    return dict(png_write=png_write, png_read=png_read, version=torchvision.__version__)


def _pillow():
    import PIL
    from PIL import Image

    def png_write(p, a, icc, exif):
        Image.fromarray(a).save(p, compress_level=6, **_meta(icc, exif))

    def read(p):
        with Image.open(p) as im:
            if im.mode not in ("I;16", "I;16B", "I;16L"):
                raise RuntimeError(f"opened as mode {im.mode}: not 16 bits per channel")
            return np.asarray(im).astype(np.uint16), {k: im.info[k] for k in
                                                       ("icc_profile", "exif") if k in im.info}

    def tiff_write(p, a, icc, exif):
        Image.fromarray(a).save(p, **_meta(icc, exif))

    def _meta(icc, exif):
        return {k: v for k, v in (("icc_profile", icc), ("exif", exif)) if v}

    return dict(png_write=png_write, png_read=read, tiff_write=tiff_write, tiff_read=read,
                version=PIL.__version__)


CANDIDATES = {"hibit": _hibit, "tifffile": _tifffile, "imagecodecs": _imagecodecs,
              "pypng": _pypng, "opencv": _opencv, "torchvision.io": _torchvision,
              "pillow": _pillow}


# --------------------------------------------------------------------------- checks


def _try(fn):
    try:
        return fn(), None
    except Exception as e:  # noqa: BLE001 - a measurement: any failure is a result
        return None, (str(e).strip().splitlines() or [type(e).__name__])[0][:90]


def exactness(lib: dict, tmp: Path) -> dict:
    """Per format and layout: 'ok' if the library's file reads back exactly with hibit and
    hibit's file reads back exactly with the library, else what went wrong."""
    ref = _hibit()
    out = {}
    for fmt in ("png", "tiff"):
        w, r = lib.get(f"{fmt}_write"), lib.get(f"{fmt}_read")
        for c, layout in LAYOUTS.items():
            a = sample(31, 47, c, seed=c)
            notes = []
            if w:
                p = tmp / f"lib_{c}.{fmt}"
                _, e = _try(lambda: w(p, a, None, None))
                back, e2 = (None, e) if e else _try(lambda: ref[f"{fmt}_read"](p)[0])
                notes.append("write ok" if back is not None and np.array_equal(back, a)
                             else f"write: {e2 or 'not exact'}")
            if r:
                p = tmp / f"ref_{c}.{fmt}"
                ref[f"{fmt}_write"](p, a, None, None)
                back, e = _try(lambda: r(p)[0])
                notes.append("read ok" if back is not None and np.array_equal(back, a)
                             else f"read: {e or 'not exact'}")
            out[f"{fmt} {layout}"] = "; ".join(notes) or "-"
    return out


def metadata(lib: dict, tmp: Path) -> dict:
    """Per format: ICC and EXIF written by the library (read back by hibit, PNG) and read by
    the library from hibit's file."""
    ref = _hibit()
    a = sample(16, 16, 3)
    out = {}
    for fmt in ("png", "tiff"):
        w, r = lib.get(f"{fmt}_write"), lib.get(f"{fmt}_read")
        res = []
        if w:
            p = tmp / f"meta.{fmt}"
            _, e = _try(lambda: w(p, a, ICC, EXIF))
            if e:
                res.append(f"write: {e}")
            else:
                info = ref[f"{fmt}_read"](p)[1] if fmt == "png" else _tifffile_tags(p)
                res.append("writes " + ("+".join(
                    k for k, key, v in (("ICC", "icc_profile", ICC), ("EXIF", "exif", EXIF))
                    if info.get(key) == v) or "none"))
        if r:
            p = tmp / f"meta_ref.{fmt}"
            ref[f"{fmt}_write"](p, a, ICC, EXIF)
            got, e = _try(lambda: r(p)[1])
            res.append(f"read: {e}" if e else "reads " + ("+".join(
                k for k, key, v in (("ICC", "icc_profile", ICC), ("EXIF", "exif", EXIF))
                if got.get(key) == v) or "none"))
        out[fmt] = "; ".join(res) or "-"
    return out


def _tifffile_tags(p: Path) -> dict:
    """ICC and EXIF of a TIFF as stored (tag 34675; EXIF sub-IFD 34665), via tifffile when
    present, else hibit (ICC only)."""
    try:
        import tifffile
    except ImportError:
        return hibit.read_tiff16(p)[1]
    with tifffile.TiffFile(p) as t:
        page = t.pages[0]
        info = {"icc_profile": bytes(page.iccprofile) if page.iccprofile else None}
        if 34665 in page.tags:
            info["exif"] = EXIF  # an EXIF IFD is there; its bytes are re-laid, not comparable
        return info


def speed(lib: dict, tmp: Path, h: int, w: int, repeat: int, formats: list[str]) -> dict:
    a = sample(h, w, 3)
    out = {}
    for fmt, ext in (("png", "png"), ("tiff", "tif")):
        if fmt not in formats:
            continue
        wr, rd = lib.get(f"{fmt}_write"), lib.get(f"{fmt}_read")
        p = tmp / f"big.{ext}"
        if wr:
            ts = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                _, e = _try(lambda: wr(p, a, ICC, None))
                ts.append(time.perf_counter() - t0)
                if e:
                    break
            out[f"{fmt} write s"] = f"error: {e}" if e else round(statistics.median(ts), 2)
            if not e:
                out[f"{fmt} MB"] = round(p.stat().st_size / 1e6, 1)
        if rd:
            _hibit()[f"{fmt}_write"](p, a, ICC, None)
            ts = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                back, e = _try(lambda: rd(p)[0])
                ts.append(time.perf_counter() - t0)
                if e:
                    break
            ok = back is not None and np.array_equal(back, a)
            out[f"{fmt} read s"] = (f"error: {e}" if e else round(statistics.median(ts), 2)
                                    if ok else "not exact")
            del back
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", default=list(CANDIDATES))
    ap.add_argument("--size", default="8000x6000", help="WxH of the speed image")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--speed-formats", nargs="+", default=["png", "tiff"])
    ap.add_argument("--old-hibit", type=Path, default=None,
                    help="also measure this file as 'hibit-old' (an earlier hibit.py)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    global ICC
    from PIL import ImageCms
    ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    results = {}
    if args.old_hibit:
        CANDIDATES["hibit-old"] = lambda: _old_hibit(args.old_hibit)
        args.only = ["hibit-old", *args.only]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for name in args.only:
            lib, e = _try(CANDIDATES[name])
            if e:
                results[name] = {"error": e}
                print(f"{name}: not available ({e})", file=sys.stderr)
                continue
            res = {"version": lib.get("version", "-"), "exact": exactness(lib, tmp),
                   "metadata": metadata(lib, tmp)}
            if not args.no_speed:
                res["speed"] = speed(lib, tmp, h, w, args.repeat, args.speed_formats)
            results[name] = res
            print(json.dumps({name: res}, indent=1), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
