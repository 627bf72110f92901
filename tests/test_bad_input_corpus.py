"""A corpus of damaged and odd inputs through one `srgan upscale` batch (issue 15).

From a few small real images in every input format and mode, a seeded generator makes a few
hundred files: truncations at random offsets, bytes flipped in headers and in data, wrong
extensions, empty files, text named as images, huge declared sizes, odd modes (CMYK JPEG
and TIFF, 1-bit, I;16, 16-bit RGBA TIFF and PGM, LAB, palette with transparency, LA; float
and 32-bit TIFF, refused) and names that look like rich markup. One batch
runs over all of them; what must hold is what a user relies on: no traceback, every good
file written, every file that is not written named on exactly one error line, nothing
temporary left, exit status 1.
"""

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from conftest import photo_like
from PIL import Image

from srgan_cli.cli import main
from srgan_cli.imageio import hibit

SEED = 15
# Outputs of these input formats default to PNG (no writer for them).
PNG_OUTPUT = {".gif", ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".jp2"}


def base_images(folder: Path) -> dict[str, bytes]:
    """Small valid images, one per format and mode, as {file name: bytes}."""
    rgb = photo_like(10, 12, seed=3)
    alpha = np.linspace(0, 255, 120, dtype=np.uint8).reshape(10, 12)
    gray = rgb[..., 1]
    deep = rgb.astype(np.uint16) * 250 + np.arange(12, dtype=np.uint16)[None, :, None] * 3
    pal = Image.fromarray(rgb).quantize(16)
    pal.info["transparency"] = 0
    images = {
        "rgb.png": Image.fromarray(rgb),
        "rgba.png": Image.fromarray(np.dstack([rgb, alpha])),
        "la.png": Image.fromarray(np.dstack([gray, alpha])),
        "palette.png": pal,
        "bilevel.png": Image.fromarray(gray > 128),
        "gray16.png": Image.fromarray(np.ascontiguousarray(deep[..., 0])),
        "rgb.jpg": Image.fromarray(rgb),
        "gray.jpg": Image.fromarray(gray),
        "cmyk.jpg": Image.fromarray(rgb).convert("CMYK"),
        "rgb.webp": Image.fromarray(rgb),
        "rgba.webp": Image.fromarray(np.dstack([rgb, alpha])),
        "rgb.bmp": Image.fromarray(rgb),
        "rgb.tif": Image.fromarray(rgb),
        "gray16.tif": Image.fromarray(np.ascontiguousarray(deep[..., 0])),
        "anim.gif": Image.fromarray(rgb).quantize(32),
        "rgb.ppm": Image.fromarray(rgb),
        "rgb.tga": Image.fromarray(rgb),
        "gray16.pgm": Image.fromarray(np.ascontiguousarray(deep[..., 0])),
        "bilevel.pbm": Image.fromarray(gray > 128),
        "bilevel.tif": Image.fromarray(gray > 128),
        "cmyk.tif": Image.fromarray(rgb).convert("CMYK"),
        "lab.tif": Image.fromarray(rgb).convert("LAB"),
        "int32.tif": Image.fromarray(gray.astype(np.int32) * 100),  # mode I, 16-bit values
    }
    out = {}
    for name, im in images.items():
        path = folder / name
        if name == "palette.png":
            im.save(path, transparency=0)
        elif name == "anim.gif":
            im.save(path, save_all=True, append_images=[im.rotate(90)], duration=50, loop=0)
        elif name.endswith(".webp"):
            im.save(path, lossless=True)
        else:
            im.save(path)
        out[name] = path.read_bytes()
    hibit.write_png16(folder / "rgb16.png", deep)
    hibit.write_tiff16(folder / "rgb16.tif", np.dstack([deep, deep[..., :1]]))  # RGBA
    for name in ("rgb16.png", "rgb16.tif"):
        out[name] = (folder / name).read_bytes()
    return out


def tiff_bytes(im: Image.Image, scratch: Path) -> bytes:
    im.save(scratch / "x.tif")
    return (scratch / "x.tif").read_bytes()


def rgb_float(bases: dict[str, bytes]) -> np.ndarray:
    with Image.open(io.BytesIO(bases["gray.jpg"])) as im:
        return np.asarray(im, dtype=np.float32) / 255.0


def png_with_size(data: bytes, w: int, h: int) -> bytes:
    """A PNG whose IHDR declares w x h, with a correct CRC (so only the size is wrong)."""
    ihdr = bytearray(data[12:29])  # type + 13 data bytes
    ihdr[4:12] = struct.pack(">II", w, h)
    return data[:12] + bytes(ihdr) + struct.pack(">I", zlib.crc32(bytes(ihdr))) + data[33:]


def jpeg_with_size(data: bytes, w: int, h: int) -> bytes:
    i = data.index(b"\xff\xc0")  # baseline SOF: length(2) precision(1) height(2) width(2)
    return data[:i + 5] + struct.pack(">HH", h, w) + data[i + 9:]


def make_corpus(folder: Path, scratch: Path) -> tuple[list[Path], set[Path], set[Path]]:
    """Write the corpus into ``folder``; return (all inputs, good ones, surely bad ones).
    Files that are neither may or may not decode: they must be written or refused."""
    rng = np.random.default_rng(SEED)
    bases = base_images(scratch)
    files: dict[str, bytes] = {}
    good: set[str] = set()
    bad: set[str] = set()

    def add(name: str, data: bytes, kind: set | None = None) -> None:
        assert name not in files
        files[name] = data
        if kind is not None:
            kind.add(name)

    exts = sorted({Path(n).suffix for n in bases})
    for i, (name, data) in enumerate(sorted(bases.items())):
        stem, ext = Path(name).stem, Path(name).suffix
        tag = f"{stem}-{ext[1:]}"
        add(f"{tag}{ext}", data, good)
        # the same bytes under another image extension: read by content, so still good
        other = exts[(exts.index(ext) + 1 + i) % len(exts)]
        if other != ext:
            add(f"{tag}-named{other}", data, good)
        n = len(data)
        for k, cut in enumerate(sorted(set(rng.integers(1, n, 8).tolist()))):
            add(f"{tag}-cut{k}{ext}", data[:cut])
        head = min(64, n - 1)
        for k in range(4):
            at = int(rng.integers(0, head))
            add(f"{tag}-head{k}{ext}", data[:at] + bytes([data[at] ^ int(rng.integers(1, 256))])
                + data[at + 1:])
        for k in range(4):
            at = int(rng.integers(head, n))
            add(f"{tag}-data{k}{ext}", data[:at] + bytes([data[at] ^ int(rng.integers(1, 256))])
                + data[at + 1:])
        for k in range(2):  # a run of random bytes over the data
            at, length = int(rng.integers(head, n)), int(rng.integers(4, 64))
            add(f"{tag}-noise{k}{ext}", data[:at] + rng.bytes(length) + data[at + length:])
    for ext in exts:
        add(f"empty-{ext[1:]}{ext}", b"", bad)
        add(f"text-{ext[1:]}{ext}", b"not an image at all\n" * 3, bad)
        add(f"garbage-{ext[1:]}{ext}", rng.bytes(300), bad)
    for name in ("rgb.png", "rgb16.png", "gray16.png"):
        add(f"huge-{Path(name).stem}.png", png_with_size(bases[name], 100_000, 100_000), bad)
    add("huge-rgb.jpg", jpeg_with_size(bases["rgb.jpg"], 65_000, 65_000), bad)
    bmp = bytearray(bases["rgb.bmp"])
    bmp[18:26] = struct.pack("<ii", 100_000, 100_000)
    add("huge-rgb.bmp", bytes(bmp), bad)
    gif = bytearray(bases["anim.gif"])
    gif[6:10] = struct.pack("<HH", 65_535, 65_535)
    add("huge-anim.gif", bytes(gif), bad)
    # modes that are refused: float samples, 32-bit integers beyond 16 bits
    add("float-mode.tif", tiff_bytes(Image.fromarray(rgb_float(bases)), scratch), bad)
    add("int32-wide.tif", tiff_bytes(Image.fromarray(np.full((6, 7), 10**6, np.int32)),
                                     scratch), bad)
    # names that look like rich markup, with spaces and non-ASCII letters
    add("copy [red] of rgb.png", bases["rgb.png"], good)
    add("ünïcödé [i] rgb.jpg", bases["rgb.jpg"], good)
    add("broken [bold] [link=x] name.png", bases["rgb.png"][:40], bad)
    add("broken [b]ünï[red].jpg", b"", bad)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return ([folder / n for n in sorted(files)], {folder / n for n in good},
            {folder / n for n in bad})


def output_for(src: Path, out: Path) -> Path:
    return out / (src.stem + (".png" if src.suffix in PNG_OUTPUT else src.suffix))


def test_a_batch_over_a_corpus_of_damaged_files_reports_each_once_and_writes_the_good(
        tiny_weights, tmp_path):
    src_dir, out, scratch = tmp_path / "in", tmp_path / "out", tmp_path / "scratch"
    for d in (src_dir, out, scratch):
        d.mkdir()
    inputs, good, bad = make_corpus(src_dir, scratch)
    assert len(inputs) >= 500 and len(good) >= 50 and len(bad) >= 40
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        r = CliRunner().invoke(main, ["upscale", str(src_dir), "-o", str(out), "-m",
                                      str(tiny_weights), "--device", "cpu", "--precision",
                                      "fp32"])
    text = r.output
    # Pillow's warnings about damaged files would print beside the file's one line
    assert not [str(w.message) for w in shown if "PIL" in w.filename]
    assert isinstance(r.exception, SystemExit), repr(r.exception)  # no crash
    assert "Traceback" not in text
    assert r.exit_code == 1, text[-3000:]
    lines = text.splitlines()
    errors = [ln for ln in lines if ln.startswith("error: ")]
    done = [ln for ln in lines if " -> " in ln and not ln.startswith(("error: ", "note: "))]
    written, refused = set(), set()
    for src in inputs:
        named = sum(ln.startswith(f"error: {src}: ") for ln in errors)
        ok = sum(ln.startswith(f"{src} -> ") for ln in done)
        dst = output_for(src, out)
        assert named + ok == 1, (src, named, ok)  # each input reported exactly once
        assert dst.is_file() == bool(ok), (src, dst)  # written iff reported as written
        (written if ok else refused).add(src)
    assert len(errors) == len(refused)  # no error line about anything else
    missing = sorted(str(p.name) for p in good - written)
    assert not missing, missing
    accepted = sorted(str(p.name) for p in bad & written)
    assert not accepted, accepted
    left = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert left == sorted(output_for(s, out).relative_to(out).as_posix() for s in written)
    summary = lines[-1]
    assert f"{len(written)} image(s) upscaled" in summary and f"{len(refused)} failed" in summary
