"""Tagged sentences (CoNLL: token<TAB>tag per line, a blank line between sentences) tokenized
without the corpus in memory: text/stream.py's passes, for a tagger's data.

In memory (readers.conll_records, encode.py) every sentence is its tokens and tags, checked line by
line and then tag by tag (encode._check_bio); a random share of the sentences is held out
(split.held_out_examples); the word vocabulary is counted over the training sentences (lower-cased
with --lower), the characters over their words as written, the tag set and its scheme over all.
Here, a piece of whole lines at a time:

    1. sentences: each one's number of tokens (4 bytes a sentence); every word as written and
       every tag numbered (ascii_words.Interner) and the numbers written to two files (4 bytes a
       token each), the words counted (stream_words.WordCounts) and the tags too; the lines checked
       as the full reading checks them, the first problem of each file reported in its order;
    2. the validation part: held_out_examples on the sentence count alone;
    3. the vocabularies: the held-out sentences' words, read back from the numbers, taken away from
       the counts, which are then folded to lower case (--lower) and spelt out into characters, a
       different word at a time; when the counts had to drop rare words (more than a million
       different ones), the training sentences are counted afresh from the text instead;
    4. the ids: the numbers read back again and looked up (or the text read again, as in 3): each
       word's id, its tag's and its characters', to its part's files.
"""

import os
from array import array
from collections import Counter
from itertools import repeat
from typing import NamedTuple

import numpy as np

from rnncli.errors import RnncliError, where
from rnncli.text.encode import bio_problem, is_iob2
from rnncli.text.readers import MAX_LINE, LineProblem, conll_sentences
from rnncli.text.split import held_out_examples
from rnncli.text.store import id_dtype
from rnncli.text.stream_examples import as_numbers, line_blocks, numbered_blocks, widened
from rnncli.text.stream_words import WordCounts
from rnncli.text.vocab import UNK, Vocab

FIELDS = ("ids", "offsets", "tags", "chars", "char_offsets")


def _numbered(chunks, path, seen):
    """A file's lines, numbered from 1; the first that is over-long noted in seen["too_long"]."""
    for n0, lines in line_blocks(chunks):
        for n, line in enumerate(lines, start=n0):
            if len(line) > MAX_LINE and "too_long" not in seen:
                seen["too_long"] = f"{where(path, n)}: line of {len(line):,} characters (limit {MAX_LINE:,})"
            yield n, line


def sentences(pieces):
    """Every sentence of the files, in order -> (its words, its tags), read as the full reading
    reads them (readers.conll_sentences); the problems are raised once every file has been read, in
    the full reading's order: a file's over-long line before its other problems, then its first
    problem reading the lines, then its first tag that is not BIO; the files in order."""
    problems = []
    for path, chunks in pieces:
        seen, problem, bio, count = {}, None, None, 0
        lines = _numbered(chunks, path, seen)
        try:
            for start, words, tags in conll_sentences(lines):
                if "too_long" not in seen:
                    bio = bio or bio_problem(tags, path, start)
                    yield words, tags
                    count += 1
        except LineProblem as e:
            problem = f"{where(path, e.line)}: {e.what}"
            for _ in lines:  # the rest is read for an over-long line, which the full reading names first
                pass
        problems.append(seen.get("too_long") or problem
                        or (None if count else f"{where(path)}: no sentences (empty file?)") or bio)
    for p in problems:
        if p:
            raise RnncliError(p)


def _write(f, numbers):
    f.write(np.asarray(numbers, np.uint32).tobytes())


class _Parts:
    """The training and validation parts' five files, written a block of sentences at a time."""

    def __init__(self, folder, dtypes):
        self.files = {part: {field: os.path.join(folder, f"{part}.{field}") for field in FIELDS}
                      for part in ("train", "valid")}
        self.outs = {part: {field: open(path, "wb") for field, path in files.items()}
                     for part, files in self.files.items()}
        self.dtypes, self.ends = dtypes, {"train": [0, 0], "valid": [0, 0]}  # (tokens, characters) so far
        for outs in self.outs.values():
            outs["offsets"].write(np.zeros(1, np.int64).tobytes())
            outs["char_offsets"].write(np.zeros(1, np.int64).tobytes())

    def write(self, part, sizes, ids, tags, chars, char_sizes):
        """Sentences of `sizes` tokens: ids, tags (tokens,), chars (characters,) and each token's
        number of characters."""
        outs, ends = self.outs[part], self.ends[part]
        for field, values in (("ids", ids), ("tags", tags), ("chars", chars)):
            outs[field].write(values.astype(self.dtypes[field]).tobytes())
        outs["offsets"].write((np.cumsum(sizes, dtype=np.int64) + ends[0]).tobytes())
        outs["char_offsets"].write((np.cumsum(char_sizes, dtype=np.int64) + ends[1]).tobytes())
        ends[0] += int(np.sum(sizes, dtype=np.int64))
        ends[1] += int(np.sum(char_sizes, dtype=np.int64))

    def close(self):
        for outs in self.outs.values():
            for f in outs.values():
                f.close()

    def described(self, held):
        offsets = np.dtype(np.int64)
        return {part: (None if part == "valid" and held is None else
                       {field: (path, offsets if field.endswith("offsets") else self.dtypes[field])
                        for field, path in self.files[part].items()})
                for part in ("train", "valid")}


def _spelt(words, chars):
    """Words -> their characters' ids, back to back, and each word's number of characters."""
    index = chars.index
    flat = [index.get(ch, UNK) for w in words for ch in w]
    return np.array(flat, np.int64), np.array([len(w) for w in words], np.int64)


class _Numbered(NamedTuple):
    """What pass 1 keeps of the sentences: their sizes (S,), the word counts (over an Interner whose
    numbers are in files["words"] when the counts stayed exact), each tag's number (the tags'
    numbers are in files["tags"]), and whether every sentence's tags are IOB2."""

    sizes: np.ndarray
    counts: WordCounts
    tag_numbers: dict
    iob2: bool


def _number(sentences_, files):
    """Pass 1: every word and tag numbered, written to files["words"] and files["tags"]."""
    counts, tag_numbers = WordCounts(), {}
    sizes, iob2 = array("H"), True  # (2 bytes a sentence, widened for a longer one)
    with open(files["words"], "wb") as words_out, open(files["tags"], "wb") as tags_out:
        for words, tags in sentences_:
            numbers = counts.interner.of_tokens(words)
            counts.add(numbers)
            if not counts.undercount:
                _write(words_out, numbers)
            _write(tags_out, [tag_numbers.setdefault(t, len(tag_numbers)) for t in tags])
            sizes = widened(sizes, len(words))
            sizes.append(len(words))
            iob2 = iob2 and is_iob2(tags)
    return _Numbered(as_numbers(sizes), counts, tag_numbers, iob2)


def _training_counts(pass1, files, held, train, counting):
    """Pass 3: the training sentences' word counts, a Counter (the held-out ones read back and taken
    away; or, when the counts dropped rare words, counted afresh from counting(), the sentences'
    text) -> (that Counter, the WordCounts it came from)."""
    counts, sizes = pass1.counts, pass1.sizes
    if counts.undercount:
        counts = WordCounts()
        for (words, _), in_train in zip(counting(), train, strict=True):
            if in_train:
                counts.update(words)
    elif held is not None:
        for part, numbers in numbered_blocks(files["words"], sizes):
            counts.tally -= np.bincount(numbers[np.repeat(held[part], sizes[part])], minlength=len(counts.tally))
    return counts.counts, counts


def _vocabularies(by_word, options):
    """The word vocabulary (folded to lower case with --lower) and the characters' (as written), from
    the training counts of each word as written."""
    words, chars = Counter(), Counter()
    for w, c in by_word.items():
        words[w.lower() if options.lower else w] += c
        for ch in w:
            chars[ch] += c
    return Vocab.build(words, options.max_size, options.min_freq), Vocab.build(chars, None, 1)


def conll_passes(paths, pieces, options, folder):
    """The four passes -> as stream_words.word_passes, with "tags", "chars" and "tag_scheme"
    beside the vocabulary, and each part's tags and characters."""
    files = {name: os.path.join(folder, f"{name}.u32") for name in ("words", "tags")}
    pass1 = _number(sentences(pieces("sentences")), files)
    sizes, tag_numbers = pass1.sizes, pass1.tag_numbers
    numbered = not pass1.counts.undercount  # (numbers change when rare words go)
    held, how = held_out_examples(len(sizes), options.valid_frac, options.seed)
    train = ~held if held is not None else np.ones(len(sizes), bool)
    tag_seen = np.zeros(len(tag_numbers), bool)
    for part, numbers in numbered_blocks(files["tags"], sizes):
        tag_seen[numbers[np.repeat(train[part], sizes[part])]] = True
    by_word, counts = _training_counts(pass1, files, held, train, lambda: sentences(pieces("counting")))
    vocab, char_vocab = _vocabularies(by_word, options)
    names = sorted(tag_numbers)
    warnings = [w for w in (counts.warning("words"),) if w]
    warnings += [f"tag {n!r} has no training example" for n in names if not tag_seen[tag_numbers[n]]]
    tag_id = np.zeros(len(tag_numbers), np.int64)
    tag_id[[tag_numbers[n] for n in names]] = np.arange(len(names))
    out = _Parts(folder, {"ids": id_dtype(len(vocab)), "tags": id_dtype(len(names)),
                          "chars": id_dtype(len(char_vocab))})
    try:
        if numbered:
            _encode_numbers(out, files, sizes, train, pass1.counts.interner, vocab, char_vocab, tag_id,
                            options.lower)
        else:
            _encode_text(out, sentences(pieces("encoding")), train, vocab, char_vocab, tag_numbers, tag_id,
                         options.lower)
    finally:
        out.close()
    for path in files.values():
        os.remove(path)
    meta = {"vocab": vocab.tokens, "tags": names, "chars": char_vocab.tokens,
            "tag_scheme": "iob2" if pass1.iob2 else "other"}
    return meta, how, warnings, out.described(held)


def _encode_numbers(out, files, sizes, train, interner, vocab, char_vocab, tag_id, lower):
    """Pass 4 from pass 1's numbers: every word's id and characters, looked up once per different
    word and gathered for all its occurrences."""
    words = interner.tokens
    id_of = np.fromiter(map(vocab.index.get, (w.lower() for w in words) if lower else words, repeat(UNK)),
                        np.int64, len(words))
    spelt, lengths = _spelt(words, char_vocab)  # every different word's characters, back to back
    starts = np.cumsum(lengths) - lengths
    blocks = zip(numbered_blocks(files["words"], sizes), numbered_blocks(files["tags"], sizes), strict=True)
    for (part, numbers), (_, tag_numbers) in blocks:
        in_train = np.repeat(train[part], sizes[part])
        for name, mask, keep in (("train", in_train, train[part]), ("valid", ~in_train, ~train[part])):
            n = numbers[mask]
            char_sizes = lengths[n]
            # each occurrence's characters: its word's run of `spelt`, gathered for all at once
            before = np.cumsum(char_sizes) - char_sizes
            at = np.arange(int(char_sizes.sum())) - np.repeat(before - starts[n], char_sizes)
            out.write(name, sizes[part][keep], id_of[n], tag_id[tag_numbers[mask]], spelt[at], char_sizes)


def _encode_text(out, sentences_, train, vocab, char_vocab, tag_numbers, tag_id, lower):
    """Pass 4 from the text (when the counts were approximate), a sentence at a time."""
    for (words, tags), in_train in zip(sentences_, train, strict=True):
        ids = np.array([vocab.index.get(w.lower() if lower else w, UNK) for w in words], np.int64)
        spelt, lengths = _spelt(words, char_vocab)
        out.write("train" if in_train else "valid", np.array([len(words)]), ids,
                  tag_id[[tag_numbers[t] for t in tags]], spelt, lengths)
