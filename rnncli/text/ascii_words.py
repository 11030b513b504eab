"""The word splitter of text/vocab.py over the bytes of ASCII text, and words as small numbers.

words_and_newlines(text) runs one regular expression a token at a time:

    <\\w+>   |   '\\w+   |   \\w+(?:['\\-]\\w+)*   |   [^\\w\\s]   |   \\n
    (a tag)    (a clitic)   (a word, inner ' or -)   (a symbol)   (a line's end)

On a large corpus tokenize spends nearly all its time there (about 18 MB/s). For ASCII text (most
corpora; every piece is checked, the others keep the regular expression) the same tokens are found
with whole-array operations. Every token that is not a single byte is built on a *run* of word bytes
(\\w+). Reading the runs left to right, as the expression does:

  - a run right after a ' or - that itself follows another run is *linked* to that run; a linked
    run continues the earlier run's token when that token is a plain word (alternative 3): "don't",
    "well-known", "a'b-c";
  - a run after a ' that it does not continue is a clitic, quote included ("'s" in "'s'd");
  - a run between < and > is a tag, both brackets included;
  - any other run begins a plain word;
  - so along a chain of linked runs, a token is a plain word from the first run that is not a
    clitic on: the chain's first run when it is not one, else the first run linked by a "-";
  - every other byte that is neither a word byte nor a space is a token of its own, unless a token
    above took it (a clitic's quote, a tag's brackets, the ' or - inside a word); each "\\n" too.

tests/text/test_ascii_words.py checks the spans against the regular expression on random texts.

Interner numbers tokens in the order it meets them (0 is the newline), so that counting is a
bincount and encoding an array lookup; a cache indexed by a hash of each token's bytes answers for
nearly all of them without a Python call per token.
"""

import numpy as np

from rnncli.text.vocab import words_and_newlines

_QUOTE, _DASH, _LT, _GT, _NEWLINE = (ord(c) for c in "'-<>\n")
_KEEP_BYTES = np.array([(1 << (8 * n)) - 1 for n in range(8)] + [(1 << 64) - 1], np.uint64)  # by length
CACHE_BITS = 19  # the cache's slots: 10 MB
STEP = 1 << 18  # characters split at once: the arrays of a step's tokens stay near 8 MB
_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 64 - CACHE_BITS], np.uint64)  # odd multipliers, shift


def _classes(b):
    """Bytes (n,) uint8 -> (word, space): where the expression's \\w and \\s match, in uint8
    arithmetic (a comparison of wrapped differences is a range test), several times faster than a
    table lookup."""
    u = np.uint8
    word = ((b | u(32)) - u(97) < 26) | (b - u(48) < 10) | (b == u(95))
    space = (b == u(32)) | (b - u(9) < 5) | (b - u(28) < 4)
    return word, space


def spans(b):
    """The tokens of ASCII bytes b (n,) uint8, as words_and_newlines gives them for b's text ->
    (starts, ends): two (tokens,) int64 arrays of byte positions, in order."""
    n = len(b)
    padded = np.zeros(n + 4, np.uint8)  # two zero bytes each side: position i is padded[i + 2]
    padded[2 : n + 2] = b
    word, space = _classes(padded)
    edges = np.flatnonzero(word[1:] != word[:-1])  # runs of word bytes, as padded positions
    first, end = edges[0::2] - 1, edges[1::2] - 1  # each run is b[first:end]
    before, after = padded[first + 1], padded[end + 2]  # the bytes at first - 1 and at end
    linked = ((before == _QUOTE) | (before == _DASH)) & word[first]  # (word[first] is b[first - 2])
    tag = (before == _LT) & (after == _GT)
    # a plain word from the first run of its chain that is not a clitic, or its first "-" link, on
    starts_plain = np.where(linked, before == _DASH, before != _QUOTE)
    seen = np.cumsum(starts_plain)
    chain_first = np.flatnonzero(~linked)[np.cumsum(~linked) - 1]
    plain = seen - seen[chain_first] + starts_plain[chain_first] > 0
    joined = np.zeros(len(first), bool)
    joined[1:] = linked[1:] & plain[:-1]
    clitic = (before == _QUOTE) & ~joined
    opens = np.flatnonzero(~joined)  # the first run of each token
    closes = np.append(opens[1:], len(first))[: len(opens)] - 1  # the last run of each token
    words_from = first[opens] - (clitic | tag)[opens]
    words_to = end[closes] + tag[opens]
    # bytes of their own: neither word nor space, unless a token above took them; and newlines
    alone = ~(word | space)[2 : n + 2]
    alone[first[joined | clitic | tag] - 1] = False
    alone[end[tag]] = False
    alone |= b == _NEWLINE
    single = np.flatnonzero(alone)
    # the two sorted lists merged: each token's place is its rank in its own list plus the number
    # of the other list's tokens before it
    at = np.arange(len(words_from)) + np.searchsorted(single, words_from)
    starts = np.empty(len(single) + len(words_from), np.int64)
    ends = np.empty_like(starts)
    starts[at], ends[at] = words_from, words_to
    rest = np.ones(len(starts), bool)
    rest[at] = False
    starts[rest], ends[rest] = single, single + 1
    return starts, ends


def _plain_ascii(text):
    return text.isascii() and "\0" not in text  # (a NUL byte would read as no byte in a key)


def _steps(text):
    """A text in parts of about STEP characters, each cut after a space or a newline (which no
    token holds)."""
    at = 0
    while len(text) - at > STEP:
        cut = max(text.rfind(" ", at, at + STEP), text.rfind("\n", at, at + STEP))
        if cut < 0:  # no space in a whole step: on to the next one
            cut = min((k for k in (text.find(" ", at + STEP), text.find("\n", at + STEP)) if k >= 0),
                      default=len(text) - 1)
        yield text[at : cut + 1]
        at = cut + 1
    yield text[at:]


def _joined(parts):
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _newlines_step(text):
    if _plain_ascii(text):
        b = np.frombuffer(text.encode("ascii"), np.uint8)
        return b[spans(b)[0]] == _NEWLINE
    tokens = words_and_newlines(text)
    return np.fromiter(map("\n".__eq__, tokens), bool, len(tokens))


def newlines(text):
    """A text -> (tokens,) bool: which of words_and_newlines(text) are newlines."""
    return _joined([_newlines_step(step) for step in _steps(text)])


class Interner:
    """Tokens <-> numbers 0, 1, 2, ... in the order first met; 0 is "\\n".

    tokens: list, number -> token; index: dict, token -> number. In front of the dict, a cache of
    2**CACHE_BITS slots for tokens of at most 16 bytes, each slot one token's two halves (its bytes as
    two little-endian uint64, the key) and its number: a whole text's tokens are looked up with a few
    array operations, and only the ones missing from the cache go through the dict."""

    def __init__(self):
        self.tokens, self.index = ["\n"], {"\n": 0}
        size = 1 << CACHE_BITS
        self.low, self.high = np.zeros(size, np.uint64), np.zeros(size, np.uint64)  # 0: an empty slot
        self.cached = np.full(size, -1, np.int32)

    def __len__(self):
        return len(self.tokens)

    def of_tokens(self, tokens):
        """A list of tokens -> their numbers (n,) int64, new tokens numbered as met."""
        index, known = self.index, []
        for t in tokens:
            n = index.get(t)
            if n is None:
                n = index[t] = len(self.tokens)
                self.tokens.append(t)
            known.append(n)
        return np.array(known, np.int64)

    def of_text(self, text):
        """A text -> the numbers of words_and_newlines(text), (n,) int64 (a long text a STEP at a
        time)."""
        return _joined([self._of_step(step) for step in _steps(text)])

    def _of_step(self, text):
        if not _plain_ascii(text):
            return self.of_tokens(words_and_newlines(text))
        b = np.frombuffer(text.encode("ascii"), np.uint8)
        starts, ends = spans(b)
        lengths = ends - starts
        padded = np.zeros(len(b) + 16, np.uint8)
        padded[: len(b)] = b
        # the 8 bytes from every position at once, as little-endian uint64 (an overlapping view)
        windows = np.ndarray((len(b) + 8,), "<u8", padded, strides=(1,))
        low = windows[starts] & _KEEP_BYTES[np.minimum(lengths, 8)]
        high = windows[starts + 8] & _KEEP_BYTES[np.clip(lengths - 8, 0, 8)]
        slot = (low * _MIX[0] ^ high * _MIX[1]) >> _MIX[2]  # (uint64 products wrap: a hash)
        numbers = self.cached[slot].astype(np.int64)
        missed = np.flatnonzero((self.low[slot] != low) | (self.high[slot] != high) | (lengths > 16))
        if len(missed):
            at = starts[missed].tolist()
            numbers[missed] = self.of_tokens([text[s:e] for s, e in zip(at, ends[missed].tolist(), strict=True)])
            fits = missed[lengths[missed] <= 16]
            self.low[slot[fits]], self.high[slot[fits]] = low[fits], high[fits]
            self.cached[slot[fits]] = numbers[fits]
        return numbers

    def keep(self, mask):
        """Forget the tokens whose mask (len(self),) bool is False (never the newline) -> the old
        numbers' new ones, -1 for the forgotten."""
        mask = np.asarray(mask, bool).copy()
        mask[0] = True
        renumber = np.where(mask, np.cumsum(mask) - 1, -1)
        self.tokens = [t for t, k in zip(self.tokens, mask.tolist(), strict=True) if k]
        self.index = {t: n for n, t in enumerate(self.tokens)}
        full = self.cached >= 0
        self.cached[full] = renumber[self.cached[full]]
        self.low[self.cached < 0] = 0
        return renumber
