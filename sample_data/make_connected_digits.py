"""Writes connected spoken digits for speech recognition: each utterance is one speaker saying 1 to 7
random digits, made by joining that speaker's recordings of single digits with short random pauses,
at a random gain, over a faint noise floor at a random level, as a microphone would record them.
Standard library and NumPy only.

    python sample_data/make_connected_digits.py FSDD_DIR -o OUT [--train 3000] [--valid 300] [--test 300]
        [--min-digits 1] [--max-digits 7] [--pause-ms 50 300] [--ends-ms 0 0] [--gain-db -10 6]
        [--noise-db -75 -45 | --noise-db -50] [--noise-kind white|pauses] [--clean] [--seed 0]

Every utterance is scaled by a gain drawn from --gain-db and gets white noise (RMS, dB under full
scale) drawn from --noise-db (two numbers: a range; one: that level); --clean writes digital silence
in the pauses and no gain, as versions before did. --ends-ms adds that much pause (or noise) before
the first digit and after the last.

FSDD_DIR is laid out as ../shared/data/fsdd (or sample_data/make_tones.py's output): manifests
train.jsonl and valid.jsonl, one {"audio": "recordings/7_theo_12.wav", "label": "7"} a line (a
"speaker" field, or else the file name's middle part {digit}_{speaker}_{take}, names the speaker;
files named otherwise count as one speaker). Writes OUT/wav/*.wav (16-bit PCM mono) and the
manifests OUT/train.jsonl, OUT/valid.jsonl and OUT/test.jsonl, one
{"audio": "wav/train_00012.wav", "text": "three nine one", "speaker": "theo"} a line.

The utterances of a split are made only from that split's recordings: train from train.jsonl,
valid from valid.jsonl, test from FSDD_DIR/test.jsonl when there is one, else from valid.jsonl's
recordings in other combinations (then test is no independent check of a model selected on valid).
The same arguments always write the same files.
"""

import argparse
import json
import os
import sys
import wave

import numpy as np

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def read_wav(path):
    """(samples float64 in [-1, 1], rate) of a 16-bit PCM WAV file (channels averaged)."""
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2:
            sys.exit(f"{path}: {8 * w.getsampwidth()}-bit samples; this script reads 16-bit PCM")
        rate, channels = w.getframerate(), w.getnchannels()
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64) / 32768.0
    return x.reshape(-1, channels).mean(axis=1), rate


def write_wav(path, x, rate):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 32767 / 32768) * 32768).astype("<i2").tobytes())


def speaker_of(record, path):
    """The record's speaker field, or the middle of a {digit}_{speaker}_{take} file name."""
    if isinstance(record.get("speaker"), str) and record["speaker"]:
        return record["speaker"]
    parts = os.path.splitext(os.path.basename(path))[0].split("_")
    return parts[1] if len(parts) == 3 else "one"


def read_manifest(folder, name):
    """{speaker: {digit: [(samples, rate), ...]}} of a manifest's recordings."""
    recordings = {}
    manifest = os.path.join(folder, name)
    with open(manifest, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            record = json.loads(line)
            label = str(record.get("label", "")).strip()
            if label not in {str(d) for d in range(10)}:
                sys.exit(f"{manifest}:{n}: label {label!r} is not a digit 0-9")
            path = os.path.join(folder, record["audio"])
            recordings.setdefault(speaker_of(record, path), {}).setdefault(int(label), []).append(read_wav(path))
    return recordings


def utterance(rng, recordings, min_digits, max_digits, pause_ms, noise_db, gain_db=None, ends_ms=(0.0, 0.0),
              sound=None):
    """-> (samples, rate, digits, speaker): one speaker's digits joined by pauses; scaled by a gain
    drawn from gain_db (dB, a (low, high) range, None for none); white noise at noise_db dB under full
    scale (a number, a (low, high) range to draw from, or None for digital silence). rng draws what is
    said (speaker, digits, takes, pauses), `sound` (rng when None) the gain and the noise: with a
    generator of its own, the same utterances are said whatever the sound asked."""
    sound = sound or rng
    speaker = sorted(recordings)[rng.integers(len(recordings))]
    mine = recordings[speaker]
    digits = [sorted(mine)[rng.integers(len(mine))] for _ in range(rng.integers(min_digits, max_digits + 1))]
    takes = [mine[d][rng.integers(len(mine[d]))] for d in digits]
    rate = takes[0][1]
    low, high = pause_ms

    def silence(lo, hi):
        return np.zeros(int(rate * rng.uniform(lo, hi) / 1000.0))

    parts = [np.zeros(int(rate * ends_ms[0] / 1000.0)), silence(0, low)]
    for k, (x, r) in enumerate(takes):
        if r != rate:
            sys.exit(f"the recordings have different sample rates ({rate} and {r} Hz)")
        parts += [x, silence(low, high) if k + 1 < len(takes) else silence(0, low)]
    parts.append(np.zeros(int(rate * ends_ms[1] / 1000.0)))
    x = np.concatenate(parts)
    if gain_db is not None:
        x = x * 10 ** (sound.uniform(*gain_db) / 20.0)
    if noise_db is not None:  # white noise at noise_db dB below full scale (RMS)
        level = sound.uniform(*noise_db) if isinstance(noise_db, tuple) else noise_db
        x = x + sound.normal(0.0, 10 ** (level / 20.0), len(x))
    return x, rate, digits, speaker


def write_split(out, split, count, recordings, rng, args, seed=()):
    """count utterances of a split; rng draws what they say, and each one's sound its own generator
    from (seed, k): the same words and takes whatever --noise-db, --gain-db or --clean ask."""
    records = []
    for k in range(count):
        x, rate, digits, speaker = utterance(rng, recordings, args.min_digits, args.max_digits, args.pause_ms,
                                             args.noise, args.gain, args.ends_ms,
                                             np.random.default_rng([*seed, k, 1]))
        name = f"wav/{split}_{k:05d}.wav"
        write_wav(os.path.join(out, name), x, rate)
        records.append({"audio": name, "text": " ".join(WORDS[d] for d in digits), "speaker": speaker})
    with open(os.path.join(out, f"{split}.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("fsdd", help="folder with train.jsonl and valid.jsonl of single-digit recordings")
    p.add_argument("-o", "--out", required=True)
    p.add_argument("--train", type=int, default=3000, help="training utterances")
    p.add_argument("--valid", type=int, default=300, help="validation utterances")
    p.add_argument("--test", type=int, default=300, help="test utterances")
    p.add_argument("--min-digits", type=int, default=1)
    p.add_argument("--max-digits", type=int, default=7)
    p.add_argument("--pause-ms", type=float, nargs=2, default=(50.0, 300.0), metavar=("MIN", "MAX"),
                   help="pause between digits (before and after: up to MIN)")
    p.add_argument("--ends-ms", type=float, nargs=2, default=(0.0, 0.0), metavar=("BEFORE", "AFTER"),
                   help="pause (or noise) added before the first digit and after the last")
    p.add_argument("--gain-db", type=float, nargs=2, default=(-10.0, 6.0), metavar=("LOW", "HIGH"),
                   help="each utterance's gain, drawn from this range (dB)")
    p.add_argument("--noise-db", type=float, nargs="+", default=[-75.0, -45.0], metavar="DB",
                   help="white noise under full scale (RMS, dB): one level, or a range to draw each utterance's from")
    p.add_argument("--clean", action="store_true", help="digital silence in the pauses and no gain (as before)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if len(args.noise_db) > 2 or any(not -200 < v < 0 for v in args.noise_db) or sorted(args.noise_db) != args.noise_db:
        p.error("--noise-db takes one level or a range LOW HIGH of levels under 0 dB")
    if args.gain_db[0] > args.gain_db[1] or min(args.ends_ms) < 0:
        p.error("need LOW <= HIGH for --gain-db and --ends-ms of 0 or more")
    args.noise = None if args.clean else tuple(args.noise_db) if len(args.noise_db) == 2 else args.noise_db[0]
    args.gain = None if args.clean else tuple(args.gain_db)
    if not 1 <= args.min_digits <= args.max_digits:
        p.error("need 1 <= --min-digits <= --max-digits")
    if not 0 <= args.pause_ms[0] <= args.pause_ms[1]:
        p.error("need 0 <= MIN <= MAX for --pause-ms")
    os.makedirs(os.path.join(args.out, "wav"), exist_ok=True)
    sources = {"train": "train.jsonl", "valid": "valid.jsonl",
               "test": "test.jsonl" if os.path.exists(os.path.join(args.fsdd, "test.jsonl")) else "valid.jsonl"}
    if sources["test"] == "valid.jsonl" and args.test:
        print(f"{args.fsdd} has no test.jsonl: test utterances join valid.jsonl's recordings in new combinations",
              file=sys.stderr)
    read = {}
    for k, (split, count) in enumerate((("train", args.train), ("valid", args.valid), ("test", args.test))):
        if count:
            if sources[split] not in read:
                read[sources[split]] = read_manifest(args.fsdd, sources[split])
            # each split its own random stream: more training utterances leave valid and test as they were
            write_split(args.out, split, count, read[sources[split]], np.random.default_rng([args.seed, k]), args,
                        (args.seed, k))
    print(f"wrote {args.train} + {args.valid} + {args.test} utterances under {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
