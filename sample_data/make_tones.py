"""Writes a spoken-digit stand-in made of tones: for each digit 0-9 a recording is two notes whose
pitches name the digit (a low note 300 + 60·d Hz, then a high note 1,700 - 80·d Hz), of random
lengths, loudness and speaker pitch, with a little noise. Standard library and NumPy only.

    python sample_data/make_tones.py OUT [--per-digit 20] [--rate 8000] [--seed 0]

OUT/wav/*.wav (16-bit PCM mono) and the manifests OUT/train.jsonl and OUT/valid.jsonl, one
{"audio": "wav/3_0007.wav", "label": "3"} a line (paths relative to the manifest), as
../shared/data/fsdd lays out its recordings. Every fifth recording of a digit goes to valid.
"""

import argparse
import json
import os
import wave

import numpy as np


def tone(rng, digit, rate):
    shift = rng.uniform(0.9, 1.1)  # the "speaker"
    notes = [(300 + 60 * digit) * shift, (1700 - 80 * digit) * shift]
    parts = []
    for f in notes:
        n = int(rate * rng.uniform(0.12, 0.2))
        t = np.arange(n) / rate
        envelope = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)  # 20 ms fade in and out
        parts.append(envelope * np.sin(2 * np.pi * f * t))
    gap = np.zeros(int(rate * rng.uniform(0.01, 0.05)))
    x = np.concatenate([gap, parts[0], gap, parts[1], gap]) * rng.uniform(0.3, 0.8)
    return x + rng.normal(0, 0.01, len(x))


def write_wav(path, x, rate):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--per-digit", type=int, default=20)
    p.add_argument("--rate", type=int, default=8000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    os.makedirs(os.path.join(args.out, "wav"), exist_ok=True)
    splits = {"train": [], "valid": []}
    for digit in range(10):
        for k in range(args.per_digit):
            name = f"wav/{digit}_{k:04d}.wav"
            write_wav(os.path.join(args.out, name), tone(rng, digit, args.rate), args.rate)
            splits["valid" if k % 5 == 4 else "train"].append({"audio": name, "label": str(digit)})
    write_manifests(args.out, splits)


def write_manifests(out, splits):
    """OUT/train.jsonl and OUT/valid.jsonl from {"train": [record, ...], "valid": [...]}."""
    for split, records in splits.items():
        with open(os.path.join(out, f"{split}.jsonl"), "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)


if __name__ == "__main__":
    main()
