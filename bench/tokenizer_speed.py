"""Tokenizer speed and memory on the shared data sets (../shared/data).

    python bench/tokenizer_speed.py [--repeats 5]

Prints the median wall time of `tokenize` (read, split, vocabulary, encode) per corpus, its
throughput, and the peak Python heap during one run relative to the corpus size (tracemalloc).
"""

import argparse
import os
import statistics
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from rnncli.text.encode import tokenize  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
CORPORA = [("tinyshakespeare/input.txt", "char"), ("sst2/train.tsv", "word"), ("wikiann-en/train.conll", "word"),
           ("ptb/train.txt", "word")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    if not os.path.isdir(DATA):
        sys.exit(f"no data at {DATA}")
    print(f"{'corpus':28} {'level':5} {'MB':>6} {'median s':>9} {'MB/s':>6} {'peak heap / size':>17}")
    for rel, level in CORPORA:
        path = os.path.join(DATA, rel)
        size = os.path.getsize(path)
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            tokenize([path], level=level)
            times.append(time.perf_counter() - t)
        tracemalloc.start()
        tokenize([path], level=level)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        med = statistics.median(times)
        print(f"{rel:28} {level:5} {size / 1e6:6.2f} {med:9.3f} {size / 1e6 / med:6.1f} {peak / size:16.1f}x")


if __name__ == "__main__":
    main()
