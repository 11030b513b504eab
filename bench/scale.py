"""Corpora larger than memory: tokenize and train as the corpus grows (issue 44).

    python bench/scale.py [--sizes 10,100,1000] [--levels char,word,tsv] [--keep DIR]

For each size (MB) and level it makes a corpus from ../shared/data text: tinyshakespeare (char),
PTB's training text (word) or SST-2's labelled sentences (tsv: label<TAB>text, a classifier's data),
repeated until it is that size, each copy perturbed with a fixed seed (4 % of its letters, or of its
words, replaced by others drawn from the same text: the copies differ, so the corpus does not
compress to one copy, and its vocabulary stays the text's). Then, each in a process of its own:

- the floor: read the file in 16 MB chunks and np.bincount its bytes (touching every byte once);
- `rnncli tokenize`: wall time and peak RSS; the data set's size on disk in bytes per character;
- `rnncli train --max-steps 1`: time to the first step (the run's wall time, less its one step) and
  peak RSS, with 1 and 2 workers (`--workers 2`: the highest RSS of a worker);
- `rnncli train --max-steps 2*E --eval-every E`: one in-training evaluation's time (the median of the
  metrics log's valid_seconds) against the time between two evaluations (the summary's step time).

Peak RSS counts the pages of a mapped data set a process touched; they are the file's (the page
cache's), not memory it allocated. Results go to stdout as a table; the corpora to --keep or a
temporary folder, removed at the end.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DATA = os.path.join(ROOT, "..", "shared", "data")
SOURCES = {"char": os.path.join(DATA, "tinyshakespeare", "input.txt"), "word": os.path.join(DATA, "ptb", "train.txt"),
           "tsv": os.path.join(DATA, "sst2", "train.tsv")}
MODEL = ["--hidden", "64", "--layers", "1", "--embed", "16", "--batch-size", "32", "--seq-len", "64"]


def make_corpus(path, level, mb, seed=0):
    """The level's source text repeated to `mb` MB, each copy with 4 % of its letters (char) or
    words (word) replaced by ones drawn from the same text. A corpus kept from an earlier run (--keep)
    is used again."""
    if os.path.exists(path):
        return
    text = open(SOURCES[level], encoding="utf-8").read()
    rng = np.random.default_rng(seed)
    target = mb * 2**20
    with open(path, "w", encoding="utf-8") as f:
        written = 0
        if level == "char":
            chars = np.frombuffer(text.encode("utf-32-le"), np.uint32)
            letters = np.unique(chars[np.char.isalpha(np.array(list(text)))])
            while written < target:
                copy = chars.copy()
                where = rng.random(len(copy)) < 0.04
                where &= np.isin(copy, letters)
                copy[where] = rng.choice(letters, int(where.sum()))
                piece = copy.tobytes().decode("utf-32-le")
                f.write(piece)
                written += len(piece.encode("utf-8"))
        else:  # word, or tsv: label<TAB>words, the label kept
            rows = [line.split("\t", 1) if level == "tsv" else ["", line] for line in text.splitlines()]
            lines = [(label, body.split()) for label, body in rows]
            words = np.array([w for _, line in lines for w in line])
            while written < target:
                out = []
                for label, line in lines:
                    swap = rng.random(len(line)) < 0.04
                    body = " ".join(rng.choice(words) if s else w for w, s in zip(line, swap, strict=True))
                    out.append(f"{label}\t{body}" if level == "tsv" else body)
                piece = "\n".join(out) + "\n"
                f.write(piece)
                written += len(piece.encode("utf-8"))


def timed(args, cwd):
    """Run a command in its own process -> (wall seconds, the peak RSS in MB of the largest process it
    waited for (GNU time's %M: with --workers, a worker), stdout)."""
    start = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-f", "%M", *args], cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {r.stderr[-500:]}")
    return wall, int(r.stderr.strip().splitlines()[-1]) / 1024, r.stdout


FLOOR = """
import sys, numpy as np
counts = np.zeros(256, np.int64)
with open(sys.argv[1], 'rb') as f:
    while chunk := f.read(16 << 20):
        counts += np.bincount(np.frombuffer(chunk, np.uint8), minlength=256)
print(int(counts.sum()))
"""


def rnncli(*args):
    return [sys.executable, "-m", "rnncli", *args]


def measure(folder, level, mb):
    corpus = os.path.join(folder, f"{level}{mb}.{'tsv' if level == 'tsv' else 'txt'}")
    make_corpus(corpus, level, mb)
    size = os.path.getsize(corpus)
    row = {"level": level, "MB": round(size / 2**20, 1)}
    row["floor_s"], _, _ = timed([sys.executable, "-c", FLOOR, corpus], folder)
    data = os.path.join(folder, f"{level}{mb}.npz")
    tok = (["--level", level] if level != "tsv" else []) + (["--max-size", "10000"] if level != "char" else [])
    at = MODEL.index("--seq-len")
    model = MODEL[:at] + MODEL[at + 2 :] if level == "tsv" else MODEL  # (a classifier has no BPTT length)
    row["tokenize_s"], row["tokenize_rss_MB"], _ = timed(rnncli("tokenize", corpus, "-o", data, "-q", "--force", *tok),
                                                         folder)
    text = open(corpus, encoding="utf-8").read() if size < 2**30 else None
    row["disk_bytes_per_char"] = os.path.getsize(data) / len(text) if text is not None else float("nan")
    del text
    for workers in (1, 2):
        wall, rss, out = timed(rnncli("train", "-d", data, "-o", os.path.join(folder, "m.npz"), *model,
                                      "--max-steps", "1", "--eval-every", "1000", "--eval-tokens", "1", "--workers",
                                      str(workers), "--force", "-q", "--json"), folder)
        summary = json.loads(out)
        row[f"first_step_s_{workers}w"] = wall - summary["step_seconds"]
        row[f"train_rss_MB_{workers}w"] = rss
    every = 100
    _, _, out = timed(rnncli("train", "-d", data, "-o", os.path.join(folder, "e.npz"), *model, "--max-steps",
                             str(2 * every), "--eval-every", str(every), "--force", "-q", "--json"), folder)
    summary = json.loads(out)
    records = [json.loads(line) for line in open(os.path.join(folder, "e.metrics.jsonl"), encoding="utf-8")]
    timed_evals = [r["valid_seconds"] for r in records if r.get("valid")]  # each validation's own time
    per_eval = float(np.median(timed_evals))
    row["eval_s"] = per_eval
    row["between_evals_s"] = summary["step_seconds"] / (2 * every) * every
    row["eval_share"] = per_eval / row["between_evals_s"]
    row["eval_read_tokens"] = (summary.get("validation_read") or {}).get("tokens")
    row["tokenize_vs_floor"] = row["tokenize_s"] / row["floor_s"]
    row["tokenize_MB_per_s"] = row["MB"] / row["tokenize_s"]
    return row


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10,100")
    parser.add_argument("--levels", default="char,word,tsv")
    parser.add_argument("--keep")
    args = parser.parse_args()
    if not all(os.path.exists(p) for p in SOURCES.values()):
        raise SystemExit(f"needs {DATA} (tinyshakespeare and ptb)")
    folder = args.keep or tempfile.mkdtemp(prefix="rnncli-scale-")
    os.makedirs(folder, exist_ok=True)
    rows = []
    try:
        for level in args.levels.split(","):
            for mb in map(int, args.sizes.split(",")):
                rows.append(measure(folder, level, mb))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values()) + " |")


if __name__ == "__main__":
    main()
