"""Images in (frames/images.py): rnncli's own PNG, PGM and PPM reader against Pillow, an independent
decoder (every PNG filter type occurs in the noisy images Pillow writes), the column layout of an
image's frames, the digit-scene generator, and each damaged or unsupported file's one-line error."""

import io
import json
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from rnncli.errors import RnncliError
from rnncli.frames.images import image_frames, pixel_rows, read_image

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "sample_data")


def picture(rng, mode, size=(13, 7)):
    """A noisy image with smooth parts, so Pillow's adaptive filtering uses every filter type."""
    w, h = size
    bands = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[mode.replace("P", "L")]
    ramp = (np.add.outer(np.arange(h) * 9, np.arange(w) * 5) % 256)[:, :, None]
    noise = rng.integers(0, 256, (h, w, bands))
    x = np.where(rng.random((h, w, 1)) < 0.5, ramp, noise).astype(np.uint8)
    return Image.fromarray(x[:, :, 0] if bands == 1 else x, {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[bands])


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "P"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_png_pixels_are_pillows(tmp_path, mode, seed):
    image = picture(np.random.default_rng(seed), mode)
    if mode == "P":
        image = image.convert("RGB").quantize(colors=37)
    path = tmp_path / "x.png"
    image.save(path, optimize=seed == 1, compress_level=seed * 4)
    want = np.asarray(Image.open(path).convert("L" if mode in ("L", "LA") else "RGB"), np.float64)
    got = read_image(path) * 255
    assert got.shape == (want.shape[0], want.shape[1], 1 if want.ndim == 2 else 3)
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-9)


@pytest.mark.parametrize("mode,suffix", [("L", ".pgm"), ("RGB", ".ppm")])
def test_binary_pgm_and_ppm_are_pillows(tmp_path, mode, suffix):
    image = picture(np.random.default_rng(5), mode)
    path = tmp_path / f"x{suffix}"
    image.save(path)
    want = np.asarray(Image.open(path), np.float64)
    np.testing.assert_allclose(read_image(path).reshape(want.shape) * 255, want, atol=1e-9)


def test_text_pgm_ppm_with_comments_and_a_small_maxval(tmp_path):
    (tmp_path / "a.pgm").write_text("P2\n# a comment\n3 2\n15\n0 15 7\n1 2 3\n")
    np.testing.assert_allclose(read_image(tmp_path / "a.pgm")[:, :, 0] * 255,
                               np.round(np.array([[0, 15, 7], [1, 2, 3]]) * 255 / 15))
    (tmp_path / "b.ppm").write_text("P3 2 1 255 255 0 0  0 0 255\n")
    np.testing.assert_allclose(read_image(tmp_path / "b.ppm") * 255, [[[255, 0, 0], [0, 0, 255]]])


def test_frames_are_the_columns_top_to_bottom():
    pixels = np.arange(2 * 3 * 3).reshape(2, 3, 3) / 255.0  # H 2, W 3, RGB
    frames = image_frames(pixels)
    assert frames.shape == (3, 6)
    for t in range(3):
        np.testing.assert_array_equal(frames[t], pixels[:, t, :].reshape(-1))


def test_pixel_rows_read_grey_and_rgb():
    np.testing.assert_allclose(pixel_rows([[0, 255], [51, 102]], "r:1")[:, :, 0], [[0, 1], [0.2, 0.4]])
    assert pixel_rows([[[255, 0, 0], [0, 0, 0]]], "r:1").shape == (1, 2, 3)


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width, height, depth=8, colour=0, interlace=0, rows=None):
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)
    raw = rows if rows is not None else b"".join(b"\x00" + bytes(width) for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw))
            + _chunk(b"IEND", b""))


def _flip_in_idat(data):
    at = data.index(b"IDAT") + 6  # a byte of the compressed pixels
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]


def _sixteen_bit():
    buffer = io.BytesIO()
    Image.fromarray(np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000).save(buffer, "PNG")
    return buffer.getvalue()


BAD = [
    ("not an image", b"hello, world", "not a PNG, PGM or PPM image"),
    ("truncated", _png(4, 4)[:40], "a truncated PNG"),
    ("bad CRC", _flip_in_idat(_png(4, 4)), "the CRC of its 'IDAT' chunk is wrong"),
    ("interlaced", _png(4, 4, interlace=1), "an interlaced PNG"),
    ("16-bit", _sixteen_bit(), "a 16-bit PNG; rnncli reads 8-bit PNGs"),
    ("1-bit", _png(8, 2, depth=1), "a 1-bit PNG"),
    ("short pixel data", _png(4, 4, rows=b"\x00" * 10), "truncated or damaged"),
    ("unknown filter", _png(2, 1, rows=b"\x07\x00\x00"), "row 0 has filter type 7"),
    ("palette without PLTE", _png(2, 2, colour=3), "a palette PNG without a valid PLTE chunk"),
    ("huge", _png(70000, 70000, rows=b""), "an image of 70,000 x 70,000 pixels"),
    ("PGM 16-bit", b"P5 2 2 65535\n" + bytes(8), "maxval 65535; rnncli reads 8-bit"),
    ("PGM truncated", b"P5 4 4 255\n" + bytes(5), "a truncated P5 image (5 of 16 bytes)"),
    ("PGM text short", b"P2 2 2 255\n1 2 3\n", "a P2 image of 3 numbers; its header says 4"),
]


@pytest.mark.parametrize("case,data,message", BAD, ids=[c[0] for c in BAD])
def test_a_bad_image_is_one_line_naming_the_file(tmp_path, case, data, message):
    path = tmp_path / "bad.png"
    path.write_bytes(data)
    with pytest.raises(RnncliError) as e:
        read_image(path)
    assert message in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("value,message", [
    ([[0, float("nan")]], "holds NaN"), ([[0, 300]], "outside 0-255"), ([[1, 2], [3]], "rows of equal length"),
    ([], "non-empty list of rows"), ([["a", "b"]], "rows of equal length, of numbers"),
    ([[[1, 2]]], "of W [r, g, b] triples")])
def test_bad_pixels_are_one_line(value, message):
    with pytest.raises(RnncliError, match=message.replace("[", r"\[").replace("]", r"\]")):
        pixel_rows(value, "scenes.jsonl:3")


@pytest.fixture(scope="module")
def optdigits(tmp_path_factory):
    """A stand-in for ../shared/data/optdigits: 200 digits, each image a block of its own digit's value."""
    d = tmp_path_factory.mktemp("optdigits")
    rng = np.random.default_rng(0)
    rows = []
    for k in range(200):
        digit = int(rng.integers(10))
        rows.append(",".join(map(str, list(np.full(64, min(16, digit + k % 7))) + [digit])))
    (d / "train.csv").write_text("\n".join(rows) + "\n")
    return d


def test_digit_scenes_are_the_same_bytes_each_run_and_their_captions_tell_the_pictures(tmp_path, optdigits):
    script = os.path.join(SAMPLES, "make_digit_scenes.py")
    for out in ("a", "b"):
        subprocess.run([sys.executable, script, str(optdigits), "-o", str(tmp_path / out), "--train", "50",
                        "--valid", "10", "--test", "10"], check=True, capture_output=True)
    for name in ("train.jsonl", "valid.jsonl", "images/train_00042.png", "images/test_00003.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    rows = np.loadtxt(optdigits / "train.csv", delimiter=",", dtype=int)
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    cells = {"top left": (0, 0), "top right": (0, 8), "bottom left": (8, 0), "bottom right": (8, 8)}
    for split in ("train", "valid", "test"):
        for line in (tmp_path / "a" / f"{split}.jsonl").read_text().splitlines():
            record = json.loads(line)
            pixels = np.round(read_image(tmp_path / "a" / record["image"])[:, :, 0] * 16).astype(int)
            assert pixels.shape == (16, 16)
            said = dict((" ".join(p.split()[1:]), p.split()[0]) for p in record["text"].split(" and "))
            assert list(said) == [c for c in cells if c in said]  # reading order
            for cell, (r, c) in cells.items():
                block = pixels[r:r + 8, c:c + 8]
                if cell not in said:
                    assert not block.any()
                    continue
                # the block is one of the digit images of its caption's digit
                matches = [k for k in range(200) if rows[k, 64] == words.index(said[cell])
                           and (rows[k, :64].reshape(8, 8) == block).all()]
                assert matches, (record, cell)
    assert b"valid: 10 scenes of rows 140-169" in subprocess.run(
        [sys.executable, script, str(optdigits), "-o", str(tmp_path / "c"), "--train", "1", "--valid", "10",
         "--test", "1"], check=True, capture_output=True).stdout
