"""A data set larger than the memory a run may use: `train` maps tokens.npz instead of reading it,
so it trains under a cap on its memory (RLIMIT_DATA: its heap and private mappings) that reading the
data set whole cannot pass. (tokenize under the same cap is still to come: it reads its corpus whole.)"""

import json
import os
import resource
import subprocess
import sys

import numpy as np
import pytest

from rnncli.text.dataset import FORMAT_VERSION, Dataset, Split
from rnncli.text.store import save_dataset

CAP = 160 * 2**20  # bytes of heap and private mappings the child may use
TOKENS = 256 * 2**20  # a byte each: the data set is well past the cap


def capped(*args, cwd):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_DATA, (CAP, CAP)))


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    d = tmp_path_factory.mktemp("large")
    rng = np.random.default_rng(0)
    vocab = ["<pad>", "<unk>", "<bos>", "<eos>"] + [chr(ord("a") + k) for k in range(26)]
    ids = rng.integers(4, len(vocab), TOKENS, dtype=np.uint8)
    ids[999::1000] = 3  # a paragraph every 1,000 characters
    offsets = np.r_[0:TOKENS:1000, TOKENS].astype(np.int64)
    valid = rng.integers(4, len(vocab), 100_000, dtype=np.uint8)
    meta = {"format_version": FORMAT_VERSION, "format": "text", "level": "char", "lower": False, "options": {},
            "sources": ["generated"], "validation": "generated", "vocab": vocab}
    save_dataset(str(d / "big.npz"), Dataset(meta, Split(ids, offsets), Split(valid, np.array([0, 100_000]))))
    del ids
    assert os.path.getsize(d / "big.npz") > 1.5 * CAP
    return d


def test_reading_the_data_set_whole_does_not_fit_under_the_cap(large):
    r = capped("-c", "import numpy as np; print(np.fromfile('big.npz', np.uint8).sum())", cwd=large)
    assert r.returncode != 0 and "MemoryError" in r.stderr


def test_training_maps_the_data_set_and_fits_under_the_cap(large):
    r = capped("-m", "rnncli", "train", "-d", "big.npz", "-o", "m.npz", "--hidden", "32", "--layers", "1", "--embed",
               "8", "--max-steps", "20", "--eval-every", "10", "--eval-tokens", "20000", "--json", "-q", cwd=large)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["steps"] == 20 and summary["validation_read"]["tokens"] == 20_000
