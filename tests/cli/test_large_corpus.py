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
    # the full reading (text/encode.py, which CoNLL, JSON lines and pairs still take) cannot either
    r = capped("-c", "from rnncli.text.encode import tokenize; tokenize(['corpus.txt'])", cwd=large)
    assert r.returncode != 0 and "MemoryError" in r.stderr


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


@pytest.mark.parametrize("level", ["char", "word"])
def test_a_corpus_that_is_one_long_line_streams_under_the_cap(tmp_path, level):
    """No newline in 24 MB: the chunks end after a space, format detection reads its first megabyte,
    and the validation cut, which falls inside the one paragraph, is found reading it in pieces
    (detection over the whole line, as before, ran out of memory under this cap)."""
    rng = np.random.default_rng(1)
    words = ["the", "king", "queen", "of", "and", "to", "my", "lord", "thou", "art"]
    block = (" ".join(rng.choice(words, 200_000)) + " ").encode("utf-8")
    with open(tmp_path / "line.txt", "wb") as f:
        for _ in range(-(-24 * 2**20 // len(block))):
            f.write(block)
    r = capped("-m", "rnncli", "tokenize", "line.txt", "--level", level, "--json", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["valid"]["tokens"] > 0.04 * (report["train"]["tokens"] + report["valid"]["tokens"])
    assert report["train"]["sequences"] == report["valid"]["sequences"] == 1  # the one line, cut in two


@pytest.mark.parametrize("limit_kb", [200, 1500])
def test_a_disk_that_fills_while_tokens_are_written_leaves_nothing_half_written(tmp_path, limit_kb):
    """A cap on the size of any file written (RLIMIT_FSIZE: a write past it fails, as on a full disk),
    low enough to stop the ids' temporary files (200 KB) or only the archive (1.5 MB): one line of
    error, the user's tokens.npz as it was, no temporary file left."""
    rng = np.random.default_rng(2)
    (tmp_path / "c.txt").write_text("".join(" ".join(rng.choice(["a", "bb", "ccc"], 10)) + "\n" for _ in range(60_000)))
    (tmp_path / "tokens.npz").write_bytes(b"the user's data set")

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_kb * 1024, limit_kb * 1024))

    r = subprocess.run([sys.executable, "-m", "rnncli", "tokenize", "c.txt", "--force"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120, preexec_fn=small_files)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "File too large" in r.stderr, r.stderr
    assert "nothing was written" in r.stderr or "cannot write" in r.stderr
    assert (tmp_path / "tokens.npz").read_bytes() == b"the user's data set"
    assert sorted(os.listdir(tmp_path)) == ["c.txt", "tokens.npz"]
