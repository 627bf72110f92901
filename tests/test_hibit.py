"""Lossless 16-bit PNG/TIFF reading and writing (srgan_cli.imageio.hibit)."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from srgan_cli.errors import ImageError
from srgan_cli.imageio import hibit

FAKE_ICC = bytes(range(256)) * 3 + b"not a real profile, just bytes to carry"
EXTREMES = np.array([0, 1, 65534, 65535], np.uint16)


def full_range(h: int, w: int, c: int, seed: int = 0) -> np.ndarray:
    """Random uint16 (H, W[, C]) that includes 0, 1, 65534 and 65535."""
    rng = np.random.default_rng(seed)
    shape = (h, w) if c == 1 else (h, w, c)
    arr = rng.integers(0, 65536, size=shape, dtype=np.uint16)
    flat = arr.reshape(-1)
    n = min(4, flat.size)
    flat[:n] = EXTREMES[:n]
    flat[-n:] = EXTREMES[::-1][:n]
    return arr


def png_chunk_types(path) -> list[bytes]:
    data, pos, kinds = path.read_bytes(), 8, []
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        assert zlib.crc32(data[pos + 4:pos + 8 + length]) == struct.unpack(
            ">I", data[pos + 8 + length:pos + 12 + length])[0]
        kinds.append(kind)
        pos += 12 + length
    return kinds


# --------------------------------------------------------------------------- PNG


@pytest.mark.parametrize("c", [1, 2, 3, 4])
@pytest.mark.parametrize("size", [(5, 7), (1, 1), (13, 2)])
def test_png_round_trip_exact(tmp_path, c, size):
    arr = full_range(*size, c, seed=c)
    p = tmp_path / "x.png"
    hibit.write_png16(p, arr)
    assert hibit.png_bit_depth(p) == 16
    out, info = hibit.read_png16(p)
    assert out.dtype == np.uint16 and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)
    assert info == {}
    assert png_chunk_types(p) == [b"IHDR", b"IDAT", b"IEND"]
    assert p.read_bytes()[25] == {1: 0, 2: 4, 3: 2, 4: 6}[c]  # IHDR colour type


def test_png_non_contiguous_input(tmp_path):
    arr = full_range(9, 11, 4)[::2, ::-1, :3]
    p = tmp_path / "v.png"
    hibit.write_png16(p, arr)
    np.testing.assert_array_equal(hibit.read_png16(p)[0], arr)


@pytest.mark.parametrize("c", [1, 2, 3, 4])
def test_pillow_opens_png(tmp_path, c):
    arr = full_range(5, 7, c)
    p = tmp_path / "x.png"
    hibit.write_png16(p, arr)
    with Image.open(p) as im:
        im.load()
        assert im.size == (7, 5)
        if c == 1:
            assert im.mode in ("I;16", "I", "I;16B")
            np.testing.assert_array_equal(np.asarray(im).astype(np.int64), arr)


def test_png_icc_and_exif(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Maker"
    exif_bytes = exif.tobytes()
    p = tmp_path / "m.png"
    arr = full_range(5, 7, 3)
    hibit.write_png16(p, arr, icc_profile=FAKE_ICC, exif=exif_bytes)
    assert png_chunk_types(p) == [b"IHDR", b"iCCP", b"eXIf", b"IDAT", b"IEND"]
    out, info = hibit.read_png16(p)
    np.testing.assert_array_equal(out, arr)
    assert info["icc_profile"] == FAKE_ICC
    assert info["exif"] == exif_bytes
    with Image.open(p) as im:
        assert im.info["icc_profile"] == FAKE_ICC
        assert im.getexif()[0x0112] == 6


def test_png_reads_pillow_metadata(tmp_path):
    arr = full_range(6, 4, 1)
    p = tmp_path / "pil.png"
    exif = Image.Exif()
    exif[0x0112] = 3
    Image.fromarray(arr).save(p, icc_profile=FAKE_ICC, exif=exif.tobytes())
    out, info = hibit.read_png16(p)
    np.testing.assert_array_equal(out, arr)
    assert info["icc_profile"] == FAKE_ICC
    loaded = Image.Exif()
    loaded.load(info["exif"])
    assert loaded[0x0112] == 3


def test_png_bit_depth(tmp_path):
    p8, jpg, short = tmp_path / "a8.png", tmp_path / "a.jpg", tmp_path / "s.png"
    Image.new("RGB", (5, 4), (10, 20, 30)).save(p8)
    Image.new("RGB", (5, 4), (10, 20, 30)).save(jpg)
    short.write_bytes(hibit.PNG_SIGNATURE + b"\x00\x00")
    assert hibit.png_bit_depth(p8) == 8
    assert hibit.png_bit_depth(jpg) is None
    assert hibit.png_bit_depth(short) is None


def test_read_png16_refuses_8_bit(tmp_path):
    p = tmp_path / "eight.png"
    Image.new("L", (3, 3)).save(p)
    with pytest.raises(ImageError, match="eight.png.*bit depth 8"):
        hibit.read_png16(p)


def _corruptions(data: bytes) -> dict[str, bytes]:
    idat = data.index(b"IDAT")
    bad_crc = bytearray(data)
    bad_crc[idat + 6] ^= 0xFF  # a byte of IDAT data: the CRC no longer matches
    return {
        "truncated_half": data[: len(data) // 2],
        "truncated_header": data[:20],
        "no_iend": data[:-12],
        "bad_crc": bytes(bad_crc),
        "garbage": b"\x00" * 64,
    }


@pytest.mark.parametrize("kind", ["truncated_half", "truncated_header", "no_iend", "bad_crc",
                                  "garbage"])
def test_png_corrupt_raises_image_error(tmp_path, kind):
    good = tmp_path / "good.png"
    hibit.write_png16(good, full_range(40, 30, 3))
    bad = tmp_path / f"broken_{kind}.png"
    bad.write_bytes(_corruptions(good.read_bytes())[kind])
    with pytest.raises(ImageError) as e:
        hibit.read_png16(bad)
    msg = str(e.value)
    assert bad.name in msg and "\n" not in msg


def _png_from_stream(stream: bytes, w: int = 4, h: int = 4, ctype: int = 2,
                     interlace: int = 0, extra: list[tuple[bytes, bytes]] = ()) -> bytes:
    """A PNG with valid chunks and CRCs around an arbitrary IDAT zlib stream."""
    ihdr = struct.pack(">IIBBBBB", w, h, 16, ctype, 0, 0, interlace)
    chunks = [(b"IHDR", ihdr), *extra, (b"IDAT", stream), (b"IEND", b"")]
    return hibit.PNG_SIGNATURE + b"".join(hibit._png_chunk(k, b) for k, b in chunks)


GOOD_ROWS = b"".join(b"\x00" + bytes(range(24)) for _ in range(4))  # 4x4 RGB, filter 0


@pytest.mark.parametrize("stream", [
    b"\x78\x9c" + b"\xff" * 30,  # not deflate data
    zlib.compress(GOOD_ROWS[:-10]),  # too little image data
    zlib.compress(GOOD_ROWS + b"\x00" * 25),  # too much image data
    zlib.compress(b"\x07" + GOOD_ROWS[1:]),  # filter type 7 does not exist
    zlib.compress(GOOD_ROWS)[:-4],  # stream cut before its checksum
    zlib.compress(GOOD_ROWS)[:-1] + b"\x00",  # wrong Adler-32 checksum
    zlib.compress(GOOD_ROWS) + b"junk",  # data after the end of the stream
    b"",  # empty IDAT
], ids=["garbage", "short", "long", "filter", "no_adler", "bad_adler", "trailing", "empty"])
def test_png_bad_image_data_raises_image_error(tmp_path, stream):
    """libpng errors inside torchvision abort the process, so these must be caught first."""
    p = tmp_path / "zlibjunk.png"
    p.write_bytes(_png_from_stream(stream))
    with pytest.raises(ImageError, match="zlibjunk.png"):
        hibit.read_png16(p)


def test_png_hand_built_stream_and_ignored_chunks(tmp_path):
    """Filter 0 rows, a suggested palette and an unknown ancillary chunk all decode."""
    p = tmp_path / "ok.png"
    extra = [(b"PLTE", bytes(6)), (b"tEXt", b"k\x00v"), (b"zzZz", b"\x01")]
    p.write_bytes(_png_from_stream(zlib.compress(GOOD_ROWS), extra=extra))
    out, info = hibit.read_png16(p)
    expected = np.frombuffer(bytes(range(24)), ">u2").reshape(1, 4, 3)
    np.testing.assert_array_equal(out, np.repeat(expected, 4, axis=0))
    assert info == {}


def test_png_unknown_critical_chunk_refused(tmp_path):
    p = tmp_path / "crit.png"
    p.write_bytes(_png_from_stream(zlib.compress(GOOD_ROWS), extra=[(b"ABCD", b"x")]))
    with pytest.raises(ImageError, match="crit.png.*critical chunk 'ABCD'"):
        hibit.read_png16(p)


@pytest.mark.parametrize("c", [1, 2, 3, 4])
def test_png_reads_interlaced(tmp_path, c):
    """Adam7-interlaced files (built here pass by pass, filter 0) are read too."""
    arr = full_range(11, 13, c)
    raw = bytearray()
    for x0, y0, dx, dy in hibit.ADAM7:
        sub = arr[y0::dy, x0::dx]
        for row in sub if sub.size else ():
            raw += b"\x00" + row.astype(">u2").tobytes()
    assert len(raw) == hibit._png_row_starts(13, 11, c, 1)[-1]
    p = tmp_path / "adam7.png"
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    p.write_bytes(_png_from_stream(zlib.compress(bytes(raw)), 13, 11, ctype, interlace=1))
    np.testing.assert_array_equal(hibit.read_png16(p)[0], arr)
    if c == 1:
        with Image.open(p) as im:
            np.testing.assert_array_equal(np.asarray(im).astype(np.int64), arr)


def test_missing_file_raises_image_error(tmp_path):
    for fn in (hibit.read_png16, hibit.read_tiff16, hibit.png_bit_depth, hibit.tiff_info):
        with pytest.raises(ImageError, match="nope.png"):
            fn(tmp_path / "nope.png")


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 5), np.uint16),
                                 np.zeros((0, 4), np.uint16), np.zeros(4, np.uint16)])
def test_write_rejects_bad_arrays(tmp_path, bad):
    for fn, name in ((hibit.write_png16, "b.png"), (hibit.write_tiff16, "b.tif")):
        with pytest.raises(ValueError):
            fn(tmp_path / name, bad)


# --------------------------------------------------------------------------- TIFF


@pytest.mark.parametrize("c", [1, 2, 3, 4])
@pytest.mark.parametrize("size", [(5, 7), (1, 1), (13, 2)])
def test_tiff_round_trip_exact(tmp_path, c, size):
    arr = full_range(*size, c, seed=10 + c)
    p = tmp_path / "x.tif"
    hibit.write_tiff16(p, arr)
    info = hibit.tiff_info(p)
    assert info == {"bits": 16, "samples": c, "compression": 1,
                    "photometric": 1 if c < 3 else 2, "width": size[1], "height": size[0],
                    "planar": 1}
    out, meta = hibit.read_tiff16(p)
    assert out.dtype == np.uint16 and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)
    assert meta == {}


def test_pillow_opens_gray_tiff(tmp_path):
    arr = full_range(5, 7, 1)
    p = tmp_path / "g.tif"
    hibit.write_tiff16(p, arr, icc_profile=FAKE_ICC)
    with Image.open(p) as im:
        im.load()
        assert im.size == (7, 5)
        assert im.mode in ("I;16", "I")
        np.testing.assert_array_equal(np.asarray(im).astype(np.int64), arr)
        assert im.info.get("icc_profile") == FAKE_ICC


@pytest.mark.parametrize("c", [3, 4])
def test_pillow_opens_colour_tiff(tmp_path, c):
    p = tmp_path / "c.tif"
    hibit.write_tiff16(p, full_range(5, 7, c))
    with Image.open(p) as im:
        im.load()
        assert im.size == (7, 5)


@pytest.mark.parametrize("c", [1, 2, 3, 4])
def test_tiff_icc_round_trip(tmp_path, c):
    arr = full_range(5, 7, c)
    p = tmp_path / "icc.tif"
    hibit.write_tiff16(p, arr, icc_profile=FAKE_ICC + b"x")  # odd length: padding path
    out, info = hibit.read_tiff16(p)
    np.testing.assert_array_equal(out, arr)
    assert info["icc_profile"] == FAKE_ICC + b"x"


def _tiff_bytes(arr: np.ndarray, bo: str, rows_per_strip: int, extra: dict | None = None,
                gap: int = 3) -> bytes:
    """A hand-built uncompressed 16-bit TIFF in either byte order with several strips."""
    h, w = arr.shape[:2]
    c = 1 if arr.ndim == 2 else arr.shape[2]
    row = w * c * 2
    pixels = arr.astype(bo + "u2").tobytes()
    strips = [pixels[i * row:min(i + rows_per_strip, h) * row]
              for i in range(0, h, rows_per_strip)]
    tags = {256: (4, [w]), 257: (3, [h]), 258: (3, [16] * c), 259: (3, [1]),
            262: (3, [1 if c < 3 else 2]), 277: (3, [c]), 278: (4, [rows_per_strip]),
            284: (3, [1])}
    if c in (2, 4):
        tags[338] = (3, [2])
    tags.update(extra or {})
    # Layout: header, strips (each after a small gap), arrays, IFD.
    body, offsets = bytearray(), []
    for s in strips:
        body += b"\xAA" * gap
        offsets.append(8 + len(body))
        body += s
    tags[273] = (4, offsets)
    tags[279] = (4, [len(s) for s in strips])
    fmt = {3: "H", 4: "I", 7: "B"}
    entries = []
    for tag in sorted(tags):
        typ, values = tags[tag]
        raw = struct.pack(f"{bo}{len(values)}{fmt[typ]}", *values)
        if len(raw) > 4:
            body += b"\x00" * (len(body) % 2)
            slot = struct.pack(bo + "I", 8 + len(body))
            body += raw
        else:
            slot = raw.ljust(4, b"\x00")
        entries.append(struct.pack(bo + "HHI", tag, typ, len(values)) + slot)
    body += b"\x00" * (len(body) % 2)
    ifd_offset = 8 + len(body)
    magic = b"II*\x00" if bo == "<" else b"MM\x00*"
    ifd = struct.pack(bo + "H", len(entries)) + b"".join(entries) + struct.pack(bo + "I", 0)
    return magic + struct.pack(bo + "I", ifd_offset) + bytes(body) + ifd


@pytest.mark.parametrize("bo", ["<", ">"])
@pytest.mark.parametrize("c", [1, 2, 3, 4])
@pytest.mark.parametrize("rps", [1, 2, 5, 100])
def test_read_tiff_strips_and_byte_orders(tmp_path, bo, c, rps):
    arr = full_range(5, 7, c, seed=rps)
    p = tmp_path / "hand.tif"
    p.write_bytes(_tiff_bytes(arr, bo, rps))
    assert hibit.tiff_info(p)["samples"] == c
    out, _ = hibit.read_tiff16(p)
    np.testing.assert_array_equal(out, arr)


def test_read_big_endian_tiff_icc_and_orientation(tmp_path):
    arr = full_range(5, 7, 3)
    icc = list(FAKE_ICC)
    p = tmp_path / "mm.tif"
    p.write_bytes(_tiff_bytes(arr, ">", 2, {34675: (7, icc), 274: (3, [6])}))
    out, info = hibit.read_tiff16(p)
    np.testing.assert_array_equal(out, arr)
    assert info["icc_profile"] == FAKE_ICC
    assert info["_orientation"] == 6


def test_read_tiff_white_is_zero_and_premultiplied(tmp_path):
    gray = full_range(3, 4, 1)
    p = tmp_path / "wiz.tif"
    p.write_bytes(_tiff_bytes(gray, "<", 3, {262: (3, [0])}))
    np.testing.assert_array_equal(hibit.read_tiff16(p)[0], 65535 - gray)

    rgba = np.array([[[100, 200, 65535, 65535], [50, 0, 25, 32768], [7, 7, 7, 0]]], np.uint16)
    p2 = tmp_path / "assoc.tif"
    p2.write_bytes(_tiff_bytes(rgba, "<", 1, {338: (3, [1])}))
    out = hibit.read_tiff16(p2)[0]
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])
    np.testing.assert_array_equal(out[0, 0], rgba[0, 0])
    np.testing.assert_array_equal(out[0, 1, :3], [100, 0, 50])
    np.testing.assert_array_equal(out[0, 2, :3], [0, 0, 0])


def test_broken_unrelated_tiff_tag_is_ignored(tmp_path):
    """A tag this module does not use (here Software) may point outside the file."""
    arr = full_range(5, 7, 3)
    p = tmp_path / "sw.tif"
    p.write_bytes(_tiff_bytes(arr, "<", 5))
    data = bytearray(p.read_bytes())
    ifd = struct.unpack("<I", data[4:8])[0]
    n = struct.unpack("<H", data[ifd:ifd + 2])[0]
    entry = struct.pack("<HHII", 305, 2, 1000, 0x7FFFFFF0)  # Software, ASCII, far away
    data[ifd:ifd + 2] = struct.pack("<H", n + 1)
    pos = ifd + 2 + 12 * n  # the tag sorts last; the next-IFD offset (0) follows it
    data[pos:pos] = entry
    p.write_bytes(bytes(data))
    assert hibit.tiff_info(p)["samples"] == 3
    np.testing.assert_array_equal(hibit.read_tiff16(p)[0], arr)


def test_tiff_info_not_a_tiff(tmp_path):
    p = tmp_path / "a.png"
    Image.new("RGB", (3, 3)).save(p)
    assert hibit.tiff_info(p) is None
    with pytest.raises(ImageError, match="a.png.*not a TIFF"):
        hibit.read_tiff16(p)


@pytest.mark.parametrize("kw", [
    {"planarconfig": "separate"}, {"tile": (16, 16)}, {"compression": "zlib"},
    {"bigtiff": True}, {"byteorder": ">", "rowsperstrip": 3},
])  # (tifffile writes PackBits only with imagecodecs; it reads it without)
@pytest.mark.parametrize("c", [2, 3, 4])
def test_tiled_planar_deflate_and_big_tiffs_are_read_exactly(tmp_path, kw, c):
    tifffile = pytest.importorskip("tifffile")
    arr = full_range(20, 35, c, seed=c)
    data = np.moveaxis(arr, -1, 0) if kw.get("planarconfig") == "separate" else arr
    p = tmp_path / "t.tif"
    tifffile.imwrite(p, data, photometric="rgb" if c > 2 else "minisblack",
                     extrasamples=["unassalpha"] if c in (2, 4) else None, **kw)
    out, _ = hibit.read_tiff16(p)
    np.testing.assert_array_equal(out, arr)


def test_lzw_tiff_needs_the_tiff_extra_unless_imagecodecs_is_installed(tmp_path):
    import importlib.util

    p = tmp_path / "lzw.tif"
    Image.fromarray(full_range(5, 7, 1)).save(p, compression="tiff_lzw")
    assert hibit.tiff_info(p)["compression"] == 5
    if importlib.util.find_spec("imagecodecs") is None:
        with pytest.raises(ImageError, match="compression 5") as e:
            hibit.read_tiff16(p)
        assert "lzw.tif" in str(e.value) and "srgan[tiff]" in str(e.value)
    else:
        np.testing.assert_array_equal(hibit.read_tiff16(p)[0], full_range(5, 7, 1))


@pytest.mark.parametrize("extra,needle", [
    ({339: (3, [2, 2, 2])}, "signed or floating-point"),
    ({262: (3, [5])}, "photometric interpretation 5"),
])
def test_unsupported_16bit_tiff_refused(tmp_path, extra, needle):
    p = tmp_path / "odd.tif"
    p.write_bytes(_tiff_bytes(full_range(4, 4, 3), "<", 4, extra))
    with pytest.raises(ImageError, match=f"odd.tif.*{needle}"):
        hibit.read_tiff16(p)


def test_8bit_tiff_refused(tmp_path):
    p = tmp_path / "eight.tif"
    Image.new("RGB", (4, 3)).save(p)
    assert hibit.tiff_info(p)["bits"] == 8
    with pytest.raises(ImageError, match="eight.tif.*not a 16-bit TIFF"):
        hibit.read_tiff16(p)


@pytest.mark.parametrize("cut", [6, 10, 40, -1, -30])
def test_truncated_tiff_raises_image_error(tmp_path, cut):
    good = tmp_path / "good.tif"
    hibit.write_tiff16(good, full_range(6, 5, 3), icc_profile=FAKE_ICC)
    bad = tmp_path / "cut.tif"
    bad.write_bytes(good.read_bytes()[:cut])
    with pytest.raises(ImageError) as e:
        hibit.read_tiff16(bad)
    assert "cut.tif" in str(e.value) and "\n" not in str(e.value)


def test_corrupt_ifd_offset_raises_image_error(tmp_path):
    p = tmp_path / "wild.tif"
    p.write_bytes(b"II*\x00" + struct.pack("<I", 10_000_000) + b"\x00" * 32)
    for fn in (hibit.tiff_info, hibit.read_tiff16):
        with pytest.raises(ImageError, match="wild.tif"):
            fn(p)


def test_tiff_layout_is_word_aligned(tmp_path):
    p = tmp_path / "al.tif"
    hibit.write_tiff16(p, full_range(3, 3, 4), icc_profile=b"abc")
    data = p.read_bytes()
    ifd = struct.unpack("<I", data[4:8])[0]
    n = struct.unpack("<H", data[ifd:ifd + 2])[0]
    tags = []
    for i in range(n):
        tag, typ, count, value = struct.unpack("<HHII", data[ifd + 2 + 12 * i:ifd + 14 + 12 * i])
        tags.append(tag)
        if tag == 273:
            assert value % 2 == 0 and value + 3 * 3 * 4 * 2 == len(data)
    assert tags == sorted(tags) and 338 in tags and 34675 in tags
