"""Plain text tokenized by words without the corpus in memory: text/stream.py's passes, for words.

In memory (text/encode.py) a word-level text is its lines that hold words, each split by
vocab.split_words and followed by <eos>; its last share of words is held out (split.stream_cut,
whose cut inside a line falls at a word: no text needs reading again). Here, a chunk at a time
(cut after a newline, or after a space inside a very long line, so that no word is split):

    1. lines: the word count of every line that has words, written to a file (4 bytes a line);
    2. the validation part: stream_cut on that file, read in blocks;
    3. the vocabulary: every word was counted in pass 1, in bounded memory (WordCounts); the held-out
       part's words are counted again and taken away (or, when the counts had to drop rare words,
       the training part's are counted afresh);
    4. the ids: each chunk's words looked up, <eos> after each line, written to the training part's
       file until the cut and to the validation part's after it; the offsets of both from the
       line counts, in blocks.

Words are found and numbered by text/ascii_words.py (whole-array operations on ASCII text, the
regular expression elsewhere), so counting is a bincount and looking up an array index.
Memory holds a chunk and the word counts; everything that grows with the corpus goes to disk.
tests/text/test_stream.py checks that both pipelines write the same data set.
"""

import os
from collections import Counter
from itertools import repeat

import numpy as np

from rnncli.errors import RnncliError, where
from rnncli.text.ascii_words import Interner, newlines
from rnncli.text.split import BLOCK, stream_cut
from rnncli.text.store import id_dtype
from rnncli.text.vocab import EOS, UNK, Vocab

NEWLINE = -1  # the id a "\n" token takes while a chunk is encoded: it becomes <eos> or goes
DISTINCT = 1_000_000  # different words counted exactly; beyond, the rarest are dropped (WordCounts)


def line_lengths(pieces, out, counts=None, numbers_out=None):
    """Pass 1: pieces (path, [(text, first line)]) -> the word count of every line that has words,
    written to `out` as uint32; every word counted into `counts` (a WordCounts, when given) ->
    (lines, words, each piece's words). numbers_out: a file for every token's number (uint32, a
    newline closing each file's last line), written while the counts are exact (their numbers do not
    change), so that pass 4 need not split the text again."""
    units = words = 0
    per_piece = []
    with open(out, "wb") as f, open(numbers_out or os.devnull, "wb") as numbered:
        for chunks in pieces:
            run = 0  # words of the line being read, begun in an earlier piece
            for piece, _ in chunks:
                if counts is not None:
                    numbers = counts.of_text(piece)
                    if numbers_out and not counts.undercount:
                        numbered.write(numbers.astype(np.uint32).tobytes())
                    is_newline = numbers == 0
                else:
                    is_newline = newlines(piece)
                nl = np.flatnonzero(is_newline)
                per_piece.append(len(is_newline) - len(nl))
                if not len(nl):
                    run += len(is_newline)
                    continue
                sizes = np.diff(np.r_[-1, nl]) - 1
                sizes[0] += run
                sizes = sizes[sizes > 0]
                f.write(sizes.astype(np.uint32).tobytes())
                units, words = units + len(sizes), words + int(sizes.sum())
                run = len(is_newline) - int(nl[-1]) - 1
            if run:  # a file's last line, without its newline
                f.write(np.array([run], np.uint32).tobytes())
                numbered.write(np.zeros(1, np.uint32).tobytes())
                units, words = units + 1, words + run
    return units, words, per_piece


class WordCounts:
    """Word counts in bounded memory (lossy counting): exact while the corpus has at most `limit`
    different words, the usual case. Beyond that, whenever the table is full its rarest words are
    dropped, and a word seen again starts from zero; `undercount` is the most any word's count can
    be short by, so every word kept with a count over it is in the vocabulary as exact counts would
    put it, give or take that many.

    The words are numbered by an Interner (text/ascii_words.py), shared when given: tally[k] is the
    count of word number k (number 0, the newline, is counted too and never reported)."""

    def __init__(self, limit=None, interner=None):
        self.limit, self.undercount = limit or DISTINCT, 0
        self.interner = interner or Interner()
        self.tally = np.zeros(len(self.interner), np.int64)

    def _grow(self):
        if len(self.tally) < len(self.interner):
            self.tally = np.r_[self.tally, np.zeros(len(self.interner) - len(self.tally), np.int64)]

    def add(self, numbers):
        """Count words by their numbers (n,) int64 (the interner's)."""
        self._grow()
        self.tally += np.bincount(numbers, minlength=len(self.tally))
        if len(self.interner) - 1 > self.limit:
            self._prune()

    def update(self, words):
        """Count a list of words."""
        self.add(self.interner.of_tokens(words))

    def of_text(self, text):
        """Count the words and newlines of a text -> their numbers (words_and_newlines(text)'s)."""
        numbers = self.interner.of_text(text)
        self.add(numbers)
        return numbers

    @property
    def counts(self):
        """The counts as a Counter of words."""
        tokens, tally = self.interner.tokens, self.tally.tolist()
        return Counter({tokens[k]: c for k, c in enumerate(tally) if c > 0 and k > 0})

    def take_away(self, held):
        """Exact counts less those of a held-out part (WordCounts on the same interner, or a Counter);
        the words seen only there go."""
        if isinstance(held, WordCounts):
            self.tally[: len(held.tally)] -= held.tally
        else:
            numbers = self.interner.of_tokens(list(held))
            self._grow()
            self.tally[numbers] -= np.fromiter(held.values(), np.int64, len(held))

    def warning(self, what):
        """The report's line when the counts are approximate, else None."""
        if self.undercount:
            return (f"more than {self.limit:,} different {what}: the rarest were counted approximately (a count "
                    f"may be short by up to {self.undercount:,})")

    def _prune(self):
        values = self.tally[1:]
        # the smallest count that, with every count at or under it dropped, leaves half the table
        floor = int(np.partition(values, len(values) - self.limit // 2)[len(values) - self.limit // 2 - 1])
        renumber = self.interner.keep(self.tally > floor)
        self.tally = self.tally[renumber >= 0]
        self.undercount += floor


def count_words(pieces, start, stop, begin, per_piece, interner=None):
    """The words numbered start to stop counted -> (WordCounts, on `interner` when given; (path, line)
    where the word numbered `begin` is). pieces: (path, its [(text, first line)]), as pass 1 read
    them: per_piece, their word counts, lets the pieces outside those words go untokenized."""
    counts, seen, found = WordCounts(interner=interner), 0, None
    for n, (path, (piece, line)) in zip(per_piece, ((path, p) for path, chunks in pieces for p in chunks),
                                        strict=False):
        holds_begin = found is None and seen <= begin < seen + n
        if not holds_begin and (seen + n <= start or seen >= stop):  # nothing to count or find here
            seen += n
            if seen >= stop and found is not None:
                break
            continue
        numbers = counts.interner.of_text(piece)
        nl = numbers == 0
        where_words = np.flatnonzero(~nl)  # each word's place among the tokens
        if holds_begin:
            at = int(where_words[begin - seen])
            found = (path, line + int(nl[:at].sum()))
        first = int(where_words[start - seen]) if seen < start < seen + n else 0 if seen >= start else len(nl)
        last = int(where_words[stop - seen]) if seen < stop < seen + n else len(nl) if stop >= seen + n else 0
        counts.add(numbers[first:last][~nl[first:last]])
        seen += n
        if seen >= stop and found is not None:
            break
    return counts, found


class _SplitWriter:
    """Ids in stream order to the training part's file until `cut` ids are written, then to the
    validation part's (with an <eos> closing the training part first when the cut splits a line)."""

    def __init__(self, files, cut, close_line, dtype):
        self.outs = [open(f, "wb") for f in files]
        self.cut, self.close_line, self.dtype, self.written = cut, close_line, dtype, 0

    def write(self, ids):
        k = min(max(self.cut - self.written, 0), len(ids))
        if k:
            self.outs[0].write(ids[:k].astype(self.dtype).tobytes())
        if k < len(ids):
            if self.written + k == self.cut and self.close_line:
                self.outs[0].write(np.array([EOS], self.dtype).tobytes())
            self.outs[1].write(ids[k:].astype(self.dtype).tobytes())
        self.written += len(ids)

    def close(self):
        for f in self.outs:
            f.close()


def encode_words(pieces, vocab, writer, interner=None):
    """Pass 4: every word's id, <eos> after every line that has words, to writer. interner: the
    counting's, when there is one (its numbers are then known already)."""
    interner = interner or Interner()
    id_of = np.zeros(0, np.int64)  # a word's number -> its id
    for chunks in pieces:
        open_line = False  # the line being read has words (begun in an earlier piece)
        for piece, _ in chunks:
            numbers = interner.of_text(piece)
            if not len(numbers):
                continue
            if len(id_of) < len(interner):
                new = interner.tokens[len(id_of) :]
                id_of = np.r_[id_of, np.fromiter(map(vocab.index.get, new, repeat(UNK)), np.int64, len(new))]
                id_of[0] = NEWLINE
            open_line = _write_lines(id_of[numbers], open_line, writer)
            if len(interner) - 1 > DISTINCT:  # the words outside the vocabulary are forgotten
                id_of = id_of[interner.keep(id_of != UNK) >= 0]
        if open_line:
            writer.write(np.array([EOS], np.int64))


def _write_lines(ids, open_line, writer):
    """ids (n,) int64, with NEWLINE where a line ends, to writer -> whether the last line is open
    (has words and no end yet). open_line: the same, before these ids."""
    nl = ids == NEWLINE
    # a newline ends a line: an <eos> after a line of words, nothing after an empty one
    after_word = np.r_[open_line, ~nl[:-1]]
    ids[nl] = EOS
    writer.write(ids[~nl | after_word])
    return not nl[-1]


def encode_numbers(path, interner, vocab, writer):
    """Pass 4 from pass 1's numbers (a file of uint32, see line_lengths), a block at a time (read,
    not mapped: the pages of a map read once would count in the process's memory)."""
    id_of = np.fromiter(map(vocab.index.get, interner.tokens, repeat(UNK)), np.int64, len(interner))
    id_of[0] = NEWLINE
    open_line = False
    with open(path, "rb") as f:
        while len(numbers := np.fromfile(f, np.uint32, BLOCK)):
            open_line = _write_lines(id_of[numbers], open_line, writer)


def offsets_file(lengths, parts, out):
    """A split's offsets, each line and its <eos>, written to `out` as int64. parts: its lines as
    ranges of the lengths array (start, stop) and single sizes (a line cut in two) -> how many."""
    total, count = 0, 0
    with open(out, "wb") as f:
        f.write(np.zeros(1, np.int64).tobytes())
        for part in parts:
            blocks = ([np.array([part])] if isinstance(part, int) else
                      (lengths[s : min(s + BLOCK, part[1])] for s in range(part[0], part[1], BLOCK)))
            for sizes in blocks:
                ends = np.cumsum(sizes.astype(np.int64) + 1) + total
                f.write(ends.tobytes())
                total, count = int(ends[-1]) if len(ends) else total, count + len(sizes)
    return count


def word_passes(paths, pieces, options, folder):
    """The four passes -> ({"vocab": its tokens}, the validation part's description, warnings, the
    parts: {"train": {"ids": (file, dtype), "offsets": (file, dtype)}, "valid": the same or None when
    nothing is held out}). pieces(pass name) -> a fresh iterator of (path, that file's [(text, first
    line)]) for each file; options: stream.Options."""
    valid_frac, max_size, min_freq = options.valid_frac, options.max_size, options.min_freq
    lengths_file, numbers_file = os.path.join(folder, "lines.u32"), os.path.join(folder, "numbers.u32")
    counts = WordCounts()
    units, total, per_piece = line_lengths((chunks for _, chunks in pieces("lines")), lengths_file, counts,
                                           numbers_file)
    numbered, interner = not counts.undercount, counts.interner  # (numbers change when rare words go)
    if not units:
        raise RnncliError(f"{where(paths[0])}: nothing to tokenize (empty file?)")
    lengths = np.memmap(lengths_file, np.uint32, mode="r")
    c = stream_cut(lengths, valid_frac)
    if c is None:
        k, inside, begin = units, None, total
    else:
        k = c.k
        begin = int(np.sum(lengths[:k], dtype=np.int64))  # where line k starts (its number is said)
        inside = None if c.inside is None else min(max(c.inside, 1), int(lengths[k]) - 1)  # split._cut_point
    split_at = begin + (inside or 0)
    if options.vocab is not None:  # a model's vocabulary: only the line the cut falls in is looked for
        found = count_words(pieces("counting"), total, total, begin, per_piece)[1] if inside is not None else None
        counts = WordCounts()
    elif counts.undercount:  # counted approximately: count the training part alone, afresh
        counts, found = count_words(pieces("counting"), 0, split_at, begin, per_piece)
    else:  # every word was counted exactly: take away the validation part's
        held, found = count_words(pieces("counting"), split_at, total, begin, per_piece, counts.interner)
        counts.take_away(held)
    warnings = [w for w in (counts.warning("words"),) if w]
    if c is None:
        how = "none"
    elif inside is None:
        how = (f"the last {units - k:,} of {units:,} lines ({100 * c.share:.1f} % of the tokens)"
               if c.share is not None else f"the last {units - k:,} lines")
    else:
        how = f"the last {100 * (total - split_at) / total:.1f} % of the tokens, from {where(*found)} on"
    vocab = options.vocab or Vocab.build(counts.counts, max_size, min_freq)
    dtype = id_dtype(len(vocab))
    files = [os.path.join(folder, n) for n in ("train.ids", "valid.ids", "train.offsets", "valid.offsets")]
    writer = _SplitWriter(files[:2], split_at + k, inside is not None, dtype)
    try:
        if numbered:
            encode_numbers(numbers_file, interner, vocab, writer)
        else:
            encode_words((chunks for _, chunks in pieces("encoding")), vocab, writer)
        os.remove(numbers_file)
    finally:
        writer.close()
    if inside is None:
        offsets_file(lengths, [(0, k)], files[2])
        valid = offsets_file(lengths, [(k, units)], files[3])
    else:
        offsets_file(lengths, [(0, k), inside], files[2])
        valid = offsets_file(lengths, [int(lengths[k]) - inside, (k + 1, units)], files[3])
    del lengths
    parts = {"train": {"ids": (files[0], dtype), "offsets": (files[2], np.int64)},
             "valid": {"ids": (files[1], dtype), "offsets": (files[3], np.int64)} if valid else None}
    return {"vocab": vocab.tokens}, how, warnings, parts


def word_valid_file(pieces, vocab, folder):
    """A validation file by words, every line encoded with the training vocabulary -> its part (as
    word_passes'), or None when it holds no words. pieces() reads the file afresh."""
    own = os.path.join(folder, "valid-file")
    os.makedirs(own)
    lengths_file = os.path.join(own, "lines.u32")
    units, _, _ = line_lengths((chunks for _, chunks in pieces()), lengths_file)
    if not units:
        return None
    ids_file, offsets = os.path.join(own, "valid.ids"), os.path.join(own, "valid.offsets")
    dtype = id_dtype(len(vocab))
    writer = _SplitWriter([os.devnull, ids_file], 0, False, dtype)
    try:
        encode_words((chunks for _, chunks in pieces()), vocab, writer)
    finally:
        writer.close()
    offsets_file(np.memmap(lengths_file, np.uint32, mode="r"), [(0, units)], offsets)
    return {"ids": (ids_file, dtype), "offsets": (offsets, np.int64)}
