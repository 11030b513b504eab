"""Writes scenes of real handwritten digits and their captions, for image -> text (issue 47).
Standard library and NumPy only; seeded: the same bytes on every run.

    python sample_data/make_digit_scenes.py OPTDIGITS_DIR -o OUT [--train 12000] [--valid 1000]
                                            [--test 1000] [--seed 0]

OPTDIGITS_DIR holds train.csv (../shared/data/optdigits: 3,823 digits of 8x8 pixels counting 0-16,
then the digit). A scene is a 16x16 image, a 2x2 grid of 8x8 cells, each cell one digit image or
empty, at least one digit. Its caption names the digits in reading order (top left, top right,
bottom left, bottom right), each as its English word followed by its cell, joined by " and ":

    seven top left and three bottom right
    zero top right

OUT/images/*.png (8-bit grey, pixels = count x 255 / 16, rounded) and the manifests OUT/train.jsonl,
OUT/valid.jsonl and OUT/test.jsonl, one {"image": "images/train_00000.png", "text": caption} a
line (paths relative to the manifest).

The splits never share a digit image: train scenes use rows 0-2,675 of train.csv (70 %), valid
scenes rows 2,676-3,249 (15 %) and test scenes rows 3,250-3,822 (15 %). The file holds no writer
ids; its rows come in the order UCI's forms were processed, so the later rows are mostly digits of
other writers than the earlier ones, but that is not guaranteed.
"""

import argparse
import json
import os
import struct
import zlib

import numpy as np

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
CELLS = ["top left", "top right", "bottom left", "bottom right"]  # reading order
SPLITS = {"train": (0.0, 0.70), "valid": (0.70, 0.85), "test": (0.85, 1.0)}  # shares of train.csv's rows


def read_digits(folder):
    """-> images (N, 8, 8) uint8 counts 0-16, digits (N,)."""
    rows = np.loadtxt(os.path.join(folder, "train.csv"), delimiter=",", dtype=np.int64, ndmin=2)
    if rows.shape[1] != 65 or rows[:, :64].min() < 0 or rows[:, :64].max() > 16:
        raise SystemExit(f"{folder}/train.csv: expected 65 integers a line, pixels 0-16")
    return rows[:, :64].reshape(-1, 8, 8).astype(np.uint8), rows[:, 64]


def scene(rng, images, digits):
    """One scene from these digits -> (image (16, 16) uint8 counts, caption)."""
    count = int(rng.integers(1, 5))
    cells = sorted(rng.choice(4, size=count, replace=False).tolist())
    picture = np.zeros((16, 16), np.uint8)
    words = []
    for cell in cells:
        k = int(rng.integers(len(digits)))
        row, col = divmod(cell, 2)
        picture[8 * row:8 * row + 8, 8 * col:8 * col + 8] = images[k]
        words.append(f"{WORDS[digits[k]]} {CELLS[cell]}")
    return picture, " and ".join(words)


def png(grey):
    """An 8-bit grey PNG of (H, W) uint8 pixels: no interlace, every row filtered with None (0)."""
    height, width = grey.shape

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + grey[r].tobytes() for r in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("optdigits", help="the folder of train.csv")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--train", type=int, default=12000, help="train scenes")
    ap.add_argument("--valid", type=int, default=1000, help="valid scenes")
    ap.add_argument("--test", type=int, default=1000, help="test scenes")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    images, digits = read_digits(args.optdigits)
    os.makedirs(os.path.join(args.out, "images"), exist_ok=True)
    rng = np.random.default_rng(args.seed)
    for split, (start, end) in SPLITS.items():
        rows = slice(round(start * len(digits)), round(end * len(digits)))
        pool_images, pool_digits = images[rows], digits[rows]
        with open(os.path.join(args.out, f"{split}.jsonl"), "w", encoding="utf-8") as manifest:
            for n in range(getattr(args, split)):
                picture, caption = scene(rng, pool_images, pool_digits)
                name = f"images/{split}_{n:05d}.png"
                pixels = np.round(picture.astype(np.float64) * 255 / 16).astype(np.uint8)
                with open(os.path.join(args.out, name), "wb") as f:
                    f.write(png(pixels))
                manifest.write(json.dumps({"image": name, "text": caption}) + "\n")
        print(f"{split}: {getattr(args, split):,} scenes of rows {rows.start:,}-{rows.stop - 1:,}")


if __name__ == "__main__":
    main()
