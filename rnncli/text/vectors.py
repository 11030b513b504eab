"""Pretrained word vectors (GloVe, word2vec or fastText `.vec` text files): read them, match them
to a training vocabulary, and look up words the training data never had.

    file    `word v1 ... vd` per line; optionally a first line `count dim` (word2vec, fastText .vec);
            plain or .gz, read line by line; blank lines are skipped
    match   a training word starts from the vector of the same word ("exact"), else from the vector
            of its lower-case form ("lower": GloVe 6B is uncased, NER data is not); the model keeps
            the case it reads elsewhere (characters)
    reach   the vector words that are not training words are appended to the model's table after the
            training vocabulary ("pretrained_vocab" in the data meta). A word the training set never
            saw is then looked up as: exact training word, exact pretrained word, its lower-case form
            in either, else <unk>. The training data never holds those ids, so the rows keep their
            vectors: test data shapes nothing, the vector file alone decides what is reachable.
"""

import gzip

import numpy as np

from rnncli.errors import RnncliError, where
from rnncli.text.readers import require_file
from rnncli.text.vocab import SPECIALS, UNK


class Vectors:
    """words (N,) and their vectors (N, D) float32, in the file's order (first of duplicates kept)."""

    def __init__(self, path, words, matrix):
        self.path, self.words, self.matrix = str(path), words, matrix
        self.index = {}
        for i, w in enumerate(words):
            self.index.setdefault(w, i)

    @property
    def dim(self):
        return self.matrix.shape[1]


def _open(path):
    try:
        if str(path).endswith(".gz"):
            return gzip.open(path, "rt", encoding="utf-8", newline="\n")
        return open(path, encoding="utf-8", newline="\n")  # noqa: SIM115 - the caller closes it
    except OSError as e:
        raise RnncliError(f"{path}: cannot read: {e.strerror}") from None


def read_vectors(path):
    """-> Vectors. A malformed line, a number that is not one (or not finite), or a row of another
    length than the first (or than the header's dim) is a one-line error naming file:line."""
    require_file(path)
    words, numbers, lines, dim = [], [], [], None
    with _open(path) as f:
        n = 0
        try:
            for n, line in enumerate(f, start=1):
                parts = line.rstrip("\r\n ").split(" ")
                if parts == [""]:
                    continue
                if n == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                    dim = int(parts[1])  # word2vec's "count dim" header
                    if dim < 1:
                        raise RnncliError(f"{where(path, n)}: the header says {dim} dimensions")
                    continue
                if dim is None:
                    dim = len(parts) - 1
                    if dim < 1:
                        raise RnncliError(f"{where(path, n)}: expected a word and its numbers, found {line[:40]!r}")
                if len(parts) != dim + 1:
                    raise RnncliError(f"{where(path, n)}: {len(parts) - 1} numbers where every vector has {dim} "
                                      "(a word with a space in it, or a cut line?)")
                words.append(parts[0])
                numbers.append(parts[1:])
                lines.append(n)
        except UnicodeDecodeError:
            raise RnncliError(f"{where(path, n + 1)}: invalid UTF-8") from None
        except (OSError, EOFError) as e:  # a damaged .gz
            raise RnncliError(f"{path}: cannot read: {e}") from None
    if not words:
        raise RnncliError(f"{path}: no vectors (empty file?)")
    try:
        matrix = np.array(numbers, dtype=np.float32)
    except ValueError:
        k, bad = next((k, x) for k, row in enumerate(numbers) for x in row if not _is_number(x))
        raise RnncliError(f"{where(path, lines[k])}: {bad[:20]!r} is not a number") from None
    bad = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if len(bad):
        raise RnncliError(f"{where(path, lines[bad[0]])}: the vector of {words[bad[0]]!r} is not finite")
    return Vectors(path, words, matrix)


def _is_number(x):
    try:
        float(x)
    except ValueError:
        return False
    return True


def match(vocab, vectors):
    """Training vocabulary -> (rows (V,) int64: the vector row of each word or -1, rules (V,):
    "exact", "lower" or "" for none). The special tokens match nothing."""
    rows, rules = np.full(len(vocab), -1, np.int64), [""] * len(vocab)
    for i, word in enumerate(vocab):
        if i < len(SPECIALS):
            continue
        for rule, key in (("exact", word), ("lower", word.lower())):
            j = vectors.index.get(key)
            if j is not None:
                rows[i], rules[i] = j, rule
                break
    return rows, rules


def coverage(rules, token_counts):
    """The share of training tokens (token_counts (V,)) and of word types found, by rule."""
    counts = np.asarray(token_counts, np.float64)
    words = np.arange(len(rules)) >= len(SPECIALS)
    total_tokens = counts[words].sum() + counts[UNK]  # <unk> tokens are words no vector matched
    report = {"types": int(words.sum()), "tokens": int(total_tokens)}
    for rule in ("exact", "lower"):
        hit = np.array([r == rule for r in rules])
        report[f"types_{rule}"] = int(hit.sum())
        report[f"tokens_{rule}"] = int(counts[hit].sum())
    return report


def pretrained_vocab(vocab, vectors):
    """The vector words that are not training words, in the file's order: the rows appended after
    the training vocabulary."""
    known = set(vocab)
    return [w for w in vectors.index if w not in known]


class WordLookup:
    """Encode words for a model whose table holds pretrained rows after its training vocabulary:
    exact training word, exact pretrained word, the lower-case form in either, else <unk>."""

    def __init__(self, vocab, extra):
        self.index = {w: i for i, w in enumerate(vocab)}
        base = len(vocab)
        for j, w in enumerate(extra):
            self.index.setdefault(w, base + j)

    def encode(self, words):
        get = self.index.get
        return np.fromiter((get(w, get(w.lower(), UNK)) for w in words), dtype=np.int32, count=len(words))
