"""A corpus larger than the memory a run may use: `tokenize` streams plain text (text/stream.py) and
`train` maps tokens.npz instead of reading it, so both run under a cap on their memory
(RLIMIT_DATA: heap and private mappings) that reading the corpus whole cannot pass."""

import json
import os
import resource
import subprocess
import sys

import numpy as np
import pytest

CAP = 140 * 2**20  # bytes of heap and private mappings each child may use
CORPUS = 200 * 2**20  # bytes of text: well past the cap


def capped(*args, cwd):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_DATA, (CAP, CAP)))


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    """200 MB of text: sentences of a small vocabulary, a paragraph every eight lines."""
    d = tmp_path_factory.mktemp("large")
    rng = np.random.default_rng(0)
    words = ["the", "king", "queen", "of", "and", "to", "my", "lord", "thou", "art", "Speak", "again."]
    block = "".join(" ".join(rng.choice(words, 12)) + ("\n\n" if i % 8 == 7 else "\n") for i in range(20_000))
    block = block.encode("utf-8")
    with open(d / "corpus.txt", "wb") as f:
        for _ in range(-(-CORPUS // len(block))):
            f.write(block)
    return d


def test_reading_the_corpus_whole_does_not_fit_under_the_cap(large):
    r = capped("-c", "print(len(open('corpus.txt', 'rb').read().decode()))", cwd=large)
    assert r.returncode != 0 and "MemoryError" in r.stderr
    # the in-memory pipeline (which a --valid file still takes) cannot tokenize it either
    r = capped("-m", "rnncli", "tokenize", "corpus.txt", "--valid", "corpus.txt", "-o", "whole.npz", cwd=large)
    assert r.returncode == 1 and "out of memory" in r.stderr and not (large / "whole.npz").exists()


def test_tokenize_streams_and_train_maps_the_data_under_the_cap(large):
    r = capped("-m", "rnncli", "tokenize", "corpus.txt", "--json", "-q", cwd=large)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["train"]["tokens"] + report["valid"]["tokens"] > CORPUS
    # a byte a character, and the offsets of its paragraphs (8 bytes each, one every 600 characters here)
    assert os.path.getsize(large / "tokens.npz") < 1.03 * os.path.getsize(large / "corpus.txt")
    r = capped("-m", "rnncli", "train", "--hidden", "32", "--layers", "1", "--embed", "8", "--max-steps", "20",
               "--eval-every", "10", "--json", "-q", cwd=large)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["steps"] == 20 and summary["validation_read"]["sample"]
