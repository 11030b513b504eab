"""Images in: PNG and PGM/PPM files read by rnncli itself (the standard library's zlib, no extra),
or rows of pixels given in a JSON record, as numbers in [0, 1].

An image is read as frames, its columns left to right: x<t> is column t's pixels from top to bottom
(each pixel's channels together), so an image of H x W pixels and C channels is W frames of H * C
numbers. That is the sequence an encoder with attention reads ("show, attend and tell": each word
of a caption attends over the columns); a model of the whole image flattens the frames into one
vector (tasks/caption.py).

    PNG   8-bit grey, grey + alpha, RGB, RGBA or palette; not interlaced. Alpha is ignored.
    PGM   P2 (text) or P5 (binary) grey, PPM P3 or P6 RGB, with a maxval of at most 255.
    pixels  H lists of W numbers 0-255 (grey), or of W lists of 3 numbers (RGB).

Everything else is a one-line error naming the file and what it holds: 16-bit or 1-4 bit PNGs,
interlaced PNGs, a truncated or damaged file (a chunk's CRC is checked), a size over MAX_PIXELS.
"""

import struct
import zlib

import numpy as np

from rnncli.errors import RnncliError

MAX_PIXELS = 4096 * 4096  # an image larger than this is refused before its pixels are decompressed
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}  # colour type -> samples a pixel (palette: after lookup)


def read_image(path):
    """(H, W, C) float64 pixels in [0, 1] of a PNG, PGM or PPM file; C is 1 (grey) or 3 (RGB)."""
    try:
        with open(path, "rb") as f:
            data = f.read(64 * 1024 * 1024 + 1)
    except FileNotFoundError:
        raise RnncliError(f"{path}: no such image") from None
    except IsADirectoryError:
        raise RnncliError(f"{path}: is a directory") from None
    except OSError as e:
        raise RnncliError(f"{path}: cannot read: {e.strerror}") from None
    if len(data) > 64 * 1024 * 1024:
        raise RnncliError(f"{path}: an image file of more than 64 MiB")
    if data.startswith(PNG_SIGNATURE):
        pixels = _png(data, path)
    elif data[:2] in (b"P2", b"P3", b"P5", b"P6"):
        pixels = _pnm(data, path)
    else:
        raise RnncliError(f"{path}: not a PNG, PGM or PPM image")
    return pixels.astype(np.float64) / 255.0


def pixel_rows(value, at):
    """A record's "pixels": H rows of W numbers 0-255 (or W [r, g, b] triples) -> (H, W, C) in [0, 1]."""
    if not isinstance(value, list) or not value or not all(isinstance(row, list) and row for row in value):
        raise RnncliError(f"{at}: field 'pixels' must be a non-empty list of rows of numbers 0-255")
    try:
        x = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise RnncliError(f"{at}: field 'pixels' must be rows of equal length, of numbers (or [r, g, b] triples) "
                          "0-255") from None
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3 or x.shape[2] not in (1, 3):
        raise RnncliError(f"{at}: field 'pixels' must be H rows of W numbers, or of W [r, g, b] triples")
    if not np.all(np.isfinite(x)):
        raise RnncliError(f"{at}: field 'pixels' holds NaN or infinite values")
    if x.min() < 0 or x.max() > 255:
        raise RnncliError(f"{at}: field 'pixels' holds numbers outside 0-255 ({x.min():g} to {x.max():g})")
    if x.shape[0] * x.shape[1] > MAX_PIXELS:
        raise RnncliError(f"{at}: an image of {x.shape[0]:,} x {x.shape[1]:,} pixels; at most {MAX_PIXELS:,}")
    return x / 255.0


def image_frames(pixels):
    """(H, W, C) pixels -> (W, H * C) frames: column t, top to bottom, channels together."""
    H, W, C = pixels.shape
    return np.ascontiguousarray(pixels.transpose(1, 0, 2).reshape(W, H * C))


def describe(shape):
    """'16 x 16 grey' / '32 x 24 RGB' (height x width)."""
    H, W, C = shape
    return f"{H} x {W} {'grey' if C == 1 else 'RGB'}"


# ---------------------------------------------------------------- PNG


def _png(data, path):
    chunks, at, header, palette, idat = [], len(PNG_SIGNATURE), None, None, []
    while True:
        if at + 8 > len(data):
            raise RnncliError(f"{path}: a truncated PNG (it ends before its IEND chunk)")
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + length]
        if len(body) < length or at + 12 + length > len(data):
            raise RnncliError(f"{path}: a truncated PNG (its {kind.decode('latin-1')!r} chunk is cut)")
        crc = struct.unpack(">I", data[at + 8 + length:at + 12 + length])[0]
        if zlib.crc32(kind + body) != crc:
            raise RnncliError(f"{path}: a damaged PNG (the CRC of its {kind.decode('latin-1')!r} chunk is wrong)")
        at += 12 + length
        if kind == b"IHDR":
            header = _png_header(body, path)
        elif kind == b"PLTE":
            palette = np.frombuffer(body, np.uint8).reshape(-1, 3) if len(body) % 3 == 0 else None
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        chunks.append(kind)
    if header is None or not idat:
        raise RnncliError(f"{path}: a PNG without {'IHDR' if header is None else 'IDAT'}")
    width, height, colour = header
    channels = PNG_CHANNELS[colour] if colour != 3 else 1
    stride = width * channels
    expected = height * (stride + 1)
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(b"".join(idat), expected + 1)
    except zlib.error:
        raise RnncliError(f"{path}: a damaged PNG (its pixel data does not decompress)") from None
    if len(raw) != expected:
        raise RnncliError(f"{path}: a PNG whose pixel data holds {len(raw):,} bytes for {height} rows of "
                          f"{stride:,} (truncated or damaged)")
    pixels = _unfilter(np.frombuffer(raw, np.uint8).reshape(height, stride + 1), channels, path)
    pixels = pixels.reshape(height, width, channels)
    if colour == 3:
        if palette is None:
            raise RnncliError(f"{path}: a palette PNG without a valid PLTE chunk")
        if pixels.max() >= len(palette):
            raise RnncliError(f"{path}: a palette PNG with an index beyond its {len(palette)} colours")
        return palette[pixels[:, :, 0]]
    if colour in (4, 6):  # grey + alpha, RGBA: the alpha is ignored
        return pixels[:, :, :channels - 1]
    return pixels


def _png_header(body, path):
    if len(body) != 13:
        raise RnncliError(f"{path}: a damaged PNG (its IHDR chunk has {len(body)} bytes, not 13)")
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", body)
    if colour not in PNG_CHANNELS:
        raise RnncliError(f"{path}: a PNG of colour type {colour}, which PNG does not define")
    if depth != 8:
        raise RnncliError(f"{path}: a {depth}-bit PNG; rnncli reads 8-bit PNGs (save it with 8 bits a channel)")
    if interlace:
        raise RnncliError(f"{path}: an interlaced PNG; rnncli reads PNGs saved without interlacing")
    if compression or filtering:
        raise RnncliError(f"{path}: a PNG of an unknown compression or filter method")
    if not 1 <= width * height <= MAX_PIXELS:
        raise RnncliError(f"{path}: an image of {height:,} x {width:,} pixels; at most {MAX_PIXELS:,}")
    return width, height, colour


def _unfilter(rows, bpp, path):
    """Undo PNG's per-row filters: rows (H, 1 + stride) uint8 whose first byte is the filter type ->
    (H, stride) uint8. bpp: bytes a pixel (the distance to the byte on the left)."""
    H, stride = rows.shape[0], rows.shape[1] - 1
    out = np.zeros((H, stride), np.int64)
    above = np.zeros(stride, np.int64)
    for r in range(H):
        kind, x = rows[r, 0], rows[r, 1:].astype(np.int64)
        if kind == 0:  # None
            line = x
        elif kind == 2:  # Up
            line = (x + above) & 255
        elif kind in (1, 3, 4):  # Sub, Average, Paeth: each byte needs the one decoded to its left
            line = np.zeros(stride, np.int64)
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                if kind == 1:
                    predicted = left
                elif kind == 3:
                    predicted = (left + above[i]) >> 1
                else:
                    up_left = above[i - bpp] if i >= bpp else 0
                    p = left + above[i] - up_left
                    pa, pb, pc = abs(p - left), abs(p - above[i]), abs(p - up_left)
                    predicted = left if pa <= pb and pa <= pc else above[i] if pb <= pc else up_left
                line[i] = (x[i] + predicted) & 255
        else:
            raise RnncliError(f"{path}: a damaged PNG (row {r} has filter type {kind}, not 0-4)")
        out[r] = above = line
    return out.astype(np.uint8)


# ---------------------------------------------------------------- PGM / PPM


def _pnm(data, path):
    magic = data[:2]
    fields, at = [], 2
    while len(fields) < 3:  # width, height, maxval: whitespace-separated, # comments to the line's end
        while at < len(data) and data[at:at + 1].isspace():
            at += 1
        if data[at:at + 1] == b"#":
            at = data.find(b"\n", at) + 1 or len(data)
            continue
        start = at
        while at < len(data) and data[at:at + 1].isdigit():
            at += 1
        if start == at:
            raise RnncliError(f"{path}: a damaged {magic.decode()} header (expected width, height and maxval)")
        fields.append(int(data[start:at]))
    width, height, maxval = fields
    channels = 3 if magic in (b"P3", b"P6") else 1
    if not 1 <= maxval <= 255:
        raise RnncliError(f"{path}: a {magic.decode()} image with maxval {maxval}; rnncli reads 8-bit (maxval <= 255)")
    if not 1 <= width * height <= MAX_PIXELS:
        raise RnncliError(f"{path}: an image of {height:,} x {width:,} pixels; at most {MAX_PIXELS:,}")
    count = width * height * channels
    if magic in (b"P5", b"P6"):
        body = data[at + 1:at + 1 + count]  # one whitespace byte ends the header
        if len(body) < count:
            raise RnncliError(f"{path}: a truncated {magic.decode()} image ({len(body):,} of {count:,} bytes)")
        values = np.frombuffer(body, np.uint8).astype(np.int64)
    else:
        try:
            values = np.array(data[at:].split(), dtype=np.int64)
        except ValueError:
            raise RnncliError(f"{path}: a {magic.decode()} image whose pixels are not all numbers") from None
        if len(values) != count:
            raise RnncliError(f"{path}: a {magic.decode()} image of {len(values):,} numbers; its header says {count:,}")
    if values.max() > maxval:
        raise RnncliError(f"{path}: a pixel of {values.max()} above the image's maxval {maxval}")
    return np.round(values.reshape(height, width, channels) * (255 / maxval)).astype(np.uint8)
