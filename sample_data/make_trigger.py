"""Writes a trigger-word data set, the lectures' many-to-many on audio: clips of background noise
with a few short "words" inserted, and one tag per 10 ms frame: "1" for the frames just after
each trigger word ends, "0" everywhere else. Standard library and NumPy only.

    python sample_data/make_trigger.py OUT [--clips 200] [--seconds 2] [--rate 8000] [--seed 0]

The trigger word is a rising chirp (500 to 1,500 Hz, 0.25 s); the other words are steady tones
or falling chirps of the same length, so the model must hear the pitch's direction. After the
trigger ends, the next 20 frames (0.2 s) are tagged "1". OUT/wav/*.wav (16-bit PCM mono) and
OUT/train.jsonl / OUT/valid.jsonl, {"audio": "wav/0007.wav", "tags": ["0", ...]} a line; every
fifth clip goes to valid. The tags count frames as tokenize's default log-mel features do
(25 ms windows every 10 ms: 1 + ceil((samples - window) / hop) frames). It writes its files with
make_tones.py's helpers (WAV and manifests), beside it in this folder.
"""

import argparse
import math
import os

import numpy as np
from make_tones import write_manifests, write_wav  # the folder of this script is on the path

WORD_S, AFTER = 0.25, 20


def chirp(rng, rate, kind):
    t = np.arange(int(rate * WORD_S)) / rate
    low, high = rng.uniform(450, 550), rng.uniform(1400, 1600)
    if kind == "trigger":
        f = low + (high - low) * t / WORD_S
    elif kind == "falling":
        f = high - (high - low) * t / WORD_S
    else:
        f = np.full_like(t, rng.uniform(low, high))
    phase = 2 * np.pi * np.cumsum(f) / rate
    envelope = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)
    return envelope * np.sin(phase) * rng.uniform(0.3, 0.7)


def clip(rng, rate, seconds):
    n = int(rate * seconds)
    x = rng.normal(0, 0.02, n)
    win, hop = round(rate * 0.025), round(rate * 0.010)
    frames = 1 + math.ceil((n - win) / hop)
    tags = ["0"] * frames
    slots = rng.permutation(int(seconds / 0.5))[: rng.integers(1, 4)]  # words start in different half seconds
    for slot in slots:
        kind = rng.choice(["trigger", "trigger", "falling", "steady"])
        start = int((slot * 0.5 + rng.uniform(0, 0.2)) * rate)
        word = chirp(rng, rate, kind)
        x[start : start + len(word)] += word[: n - start]
        if kind == "trigger":
            end = (start + len(word)) // hop
            for i in range(end, min(end + AFTER, frames)):
                tags[i] = "1"
    return x, tags


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--clips", type=int, default=200)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--rate", type=int, default=8000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    os.makedirs(os.path.join(args.out, "wav"), exist_ok=True)
    splits = {"train": [], "valid": []}
    for k in range(args.clips):
        x, tags = clip(rng, args.rate, args.seconds)
        name = f"wav/{k:04d}.wav"
        write_wav(os.path.join(args.out, name), x, args.rate)
        splits["valid" if k % 5 == 4 else "train"].append({"audio": name, "tags": tags})
    write_manifests(args.out, splits)

if __name__ == "__main__":
    main()
