"""Vocabulary: tokens <-> ids, with four special tokens at fixed ids.

    <pad> = 0   padding in batches of unequal lengths (never predicted, masked out)
    <unk> = 1   any token outside the vocabulary
    <bos> = 2   an encoder-decoder's first decoder input (its targets are framed <bos> ... <eos>);
                never produced. A language model starts generating from <eos> instead, which every
                training sequence ends with, so the model has learnt what follows it
    <eos> = 3   end of a sentence, line or paragraph; `sample` stops when it is produced

The four special strings, when they occur as words in the input (PTB writes <unk>), are read
as the special tokens themselves. Order after the specials: most frequent first, ties broken
by the token's text, so the same corpus always gives the same ids (never the arbitrary order
of a set).
"""

import re
from collections import Counter

import numpy as np

SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")
PAD, UNK, BOS, EOS = range(4)
NEVER_GENERATED = [PAD, UNK, BOS]  # ids no sampler or decoder may produce (<eos> ends a text)

# A word splitter that keeps punctuation: <tags> such as PTB's <unk> stay whole, then clitics
# like 's and n't, words with inner apostrophes or hyphens, and any other single symbol.
_WORD = re.compile(r"<\w+>|'\w+|\w+(?:['\-]\w+)*|[^\w\s]")


def split_words(line, lower=False):
    """'Hello, world!' -> ['Hello', ',', 'world', '!']."""
    return _WORD.findall(line.lower() if lower else line)


_WORD_OR_NEWLINE = re.compile(_WORD.pattern + r"|\n")


def words_and_newlines(text):
    """The words of every line of a text in one call, each newline kept as "\n": since no word spans a
    newline, the words between two newlines are split_words of that line (text/stream_words.py)."""
    return _WORD_OR_NEWLINE.findall(text)


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
        """ids -> tokens; <pad>, <bos> and <eos> are structure and dropped, <unk> stays visible."""
        toks = self.tokens
        return [toks[i] for i in ids if keep_specials or i >= len(SPECIALS) or i == UNK]


def join_tokens(tokens, level):
    """Generated tokens -> text: characters are joined as they are; words with spaces, except
    before the closing punctuation that split_words cut off (".", ",", ")")."""
    if level == "char":
        return "".join(tokens)
    return re.sub(r" ([.,)])", r"\1", " ".join(tokens))


def code_points(text):
    """text -> its code points (N,) uint32, through UTF-32: one array, no Python loop."""
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def char_counts(text):
    """Counter of characters, vectorised: code points via UTF-32, then one bincount."""
    cps = code_points(text)
    if not len(cps):
        return Counter()
    counts = np.bincount(cps)
    present = np.flatnonzero(counts)
    return Counter({chr(v): int(counts[v]) for v in present})


def encode_chars(vocab, text):
    """text -> int32 ids, one per character, through a code-point lookup table: no Python loop
    over characters and no temporaries wider than the int32 result (memory ~ 8 bytes a character)."""
    cps = code_points(text)
    known = {ord(t): i for t, i in vocab.index.items() if len(t) == 1}
    size = int(max(cps.max(initial=0), max(known, default=0))) + 1
    table = np.full(size, UNK, np.int32)
    if known:
        table[np.fromiter(known.keys(), np.int64)] = np.fromiter(known.values(), np.int32)
    return table[cps]
