"""Vocabulary: tokens <-> ids, with four special tokens at fixed ids.

    <pad> = 0   padding in batches of unequal lengths (never predicted, masked out)
    <unk> = 1   any token outside the vocabulary
    <bos> = 2   start of a sequence (primes generation when no prime text is given)
    <eos> = 3   end of a sentence, line or paragraph; `sample` stops when it is produced

Order after the specials: most frequent first, ties broken by the token's text, so the same
corpus always gives the same ids (never the arbitrary order of a set).
"""

import re
from collections import Counter

import numpy as np

SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")
PAD, UNK, BOS, EOS = range(4)

# A word splitter that keeps punctuation: <tags> such as PTB's <unk> stay whole, then clitics
# like 's and n't, words with inner apostrophes or hyphens, and any other single symbol.
_WORD = re.compile(r"<\w+>|'\w+|\w+(?:['\-]\w+)*|[^\w\s]")


def split_words(line, lower=False):
    """'Hello, world!' -> ['Hello', ',', 'world', '!']."""
    return _WORD.findall(line.lower() if lower else line)


class Vocab:
    def __init__(self, tokens):
        tokens = list(tokens)
        if tuple(tokens[:4]) != SPECIALS:
            raise ValueError("a vocabulary starts with the four special tokens")
        if len(set(tokens)) != len(tokens):
            raise ValueError("duplicate tokens in vocabulary")
        self.tokens = tokens
        self.index = {t: i for i, t in enumerate(tokens)}

    def __len__(self):
        return len(self.tokens)

    @classmethod
    def build(cls, counts, max_size=None, min_freq=1):
        """counts: Counter of tokens. Keeps the max_size most frequent with count >= min_freq."""
        ranked = sorted(((t, c) for t, c in counts.items() if c >= min_freq and t not in SPECIALS),
                        key=lambda tc: (-tc[1], tc[0]))
        if max_size is not None:
            ranked = ranked[:max_size]
        return cls(list(SPECIALS) + [t for t, _ in ranked])

    def encode(self, tokens):
        get = self.index.get
        return np.fromiter((get(t, UNK) for t in tokens), dtype=np.int32, count=len(tokens))

    def decode(self, ids, keep_specials=False):
        toks = self.tokens
        return [toks[i] for i in ids if keep_specials or i >= len(SPECIALS)]


def char_counts(text):
    """Counter of characters, vectorised: code points via UTF-32, then np.unique."""
    cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    values, counts = np.unique(cps, return_counts=True)
    return Counter({chr(v): int(c) for v, c in zip(values, counts, strict=True)})


def encode_chars(vocab, text):
    """text -> int32 ids, one per character, without a Python loop over characters."""
    cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    known = [(ord(t), i) for t, i in vocab.index.items() if len(t) == 1]
    if not known:
        return np.full(len(cps), UNK, np.int32)
    keys = np.array(sorted(known), dtype=np.int64)
    pos = np.searchsorted(keys[:, 0], cps)
    pos = np.minimum(pos, len(keys) - 1)
    hit = keys[pos, 0] == cps
    return np.where(hit, keys[pos, 1], UNK).astype(np.int32)
