"""label<TAB>text examples tokenized without the corpus in memory: text/stream.py's passes, for a
classifier's data.

In memory (text/encode.py) every non-empty line is an example, its label stripped and its text
split into words (or characters, --level char); a random share of the examples is held out
(split.split_examples: a permutation of their number, fixed by the seed); the vocabulary is counted
over the training examples and the label set taken from all. Here, a line at a time:

    1. examples: each one's label (an index into the labels met so far) and its number of tokens,
       as arrays (8 bytes an example); the lines checked as the full reading checks them, the first
       problem reported after every file is read, as the full reading would order it;
    2. the validation part: split_examples' permutation of the example count alone;
    3. the vocabulary: every example's tokens were counted in pass 1 (stream_words.WordCounts); the
       held-out examples' are counted again and taken away (or, when the counts had to drop rare
       tokens, the training examples' are counted afresh);
    4. the ids: each example's tokens looked up and written to its part's file; the offsets and
       labels of both parts made from the arrays of pass 1.
"""

import os
from array import array
from collections import Counter
from itertools import repeat

import numpy as np

from rnncli.errors import RnncliError, where
from rnncli.text.readers import MAX_LINE
from rnncli.text.split import held_out_examples
from rnncli.text.store import id_dtype
from rnncli.text.stream_words import WordCounts
from rnncli.text.vocab import UNK, Vocab, split_words


def _lines(chunks):
    """A file's pieces (text, first line) -> (line number, line) for every line, empty ones included,
    as str.split("\n") of the whole text gives them (a piece may end inside a very long line)."""
    pending, n = "", 1
    for piece, _ in chunks:
        *whole, pending = (pending + piece).split("\n")
        for line in whole:
            yield n, line
            n += 1
        if len(pending) > MAX_LINE:  # a line already too long: no need to hold more of it
            yield n, pending
            return
    if pending:
        yield n, pending


def tokens_of(body, level, lower):
    """An example's text as the full reading splits it (encode.side_tokens), each token lower-cased
    again as encode_words looks it up."""
    tokens = list(body.lower() if lower else body) if level == "char" else split_words(body, lower)
    return [t.lower() for t in tokens] if lower else tokens


def _examples(pieces, level, lower, counts):
    """Pass 1 -> (labels in the order first met, each example's label index and token count); every
    example's tokens counted into `counts`. Problems
    (a line over MAX_LINE, no tab, an empty label or text, a file without examples) are raised once
    every file has been read, in the full reading's order: a file's over-long line before its other
    problems, the files in order; the files' decoding errors (NUL, invalid UTF-8) come first, as
    they are met."""
    labels, label_of, label_ids, sizes, problems = [], {}, array("I"), array("I"), []  # 8 bytes an example
    for path, chunks in pieces:
        too_long = problem = None
        count = 0
        for n, line in _lines(chunks):
            if len(line) > MAX_LINE:
                too_long = too_long or f"{where(path, n)}: line of {len(line):,} characters (limit {MAX_LINE:,})"
            if problem or too_long or not line.strip():
                continue
            if "\t" not in line:
                problem = f"{where(path, n)}: expected 'label<TAB>text', found no tab"
                continue
            label, body = line.split("\t", 1)
            empty = "label" if not label.strip() else "text" if not body.strip() else None
            if empty:
                problem = f"{where(path, n)}: empty {empty}"
                continue
            label = label.strip()
            if label not in label_of:
                label_of[label] = len(labels)
                labels.append(label)
            label_ids.append(label_of[label])
            tokens = tokens_of(body, level, lower)
            counts.update(tokens)
            sizes.append(len(tokens))
            count += 1
        problems.append(too_long or problem or (None if count else f"{where(path)}: no examples (empty file?)"))
    for p in problems:
        if p:
            raise RnncliError(p)
    return labels, np.frombuffer(label_ids, np.uint32) if label_ids else np.zeros(0, np.uint32), \
        np.frombuffer(sizes, np.uint32) if sizes else np.zeros(0, np.uint32)


def _bodies(pieces, level, lower, wanted=None):
    """Passes 3 and 4: every example's tokens, in order (the lines were checked in pass 1); None for
    an example that `wanted` (a mask) leaves out, which is not split at all."""
    k = 0
    for _, chunks in pieces:
        for _, line in _lines(chunks):
            if line.strip():
                yield tokens_of(line.split("\t", 1)[1], level, lower) if wanted is None or wanted[k] else None
                k += 1


def _write_offsets(path, sizes, mask, block=1 << 20):
    """The offsets of the examples `mask` picks, of these sizes, written as int64 a block at a time."""
    with open(path, "wb") as f:
        f.write(np.zeros(1, np.int64).tobytes())
        total = 0
        for s in range(0, len(sizes), block):
            ends = np.cumsum(sizes[s : s + block][mask[s : s + block]], dtype=np.int64) + total
            f.write(ends.tobytes())
            total = int(ends[-1]) if len(ends) else total


def _write(path, values, dtype):
    with open(path, "wb") as f:
        f.write(np.asarray(values).astype(dtype).tobytes())


def example_passes(paths, pieces, options, folder):
    """The four passes -> as stream_words.word_passes, with "labels" and "label_counts" beside the
    vocabulary and each part's labels."""
    level, lower = options.level or "word", options.lower
    counts = WordCounts()
    labels, label_ids, sizes = _examples(pieces("examples"), level, lower, counts)
    held, how = held_out_examples(len(sizes), options.valid_frac, options.seed)
    train = ~held if held is not None else np.ones(len(sizes), bool)
    if held is not None and not counts.undercount:  # exact counts of all: take the held-out examples' away
        counts.take_away(Counter(t for tokens in _bodies(pieces("counting"), level, lower, held) if tokens
                                 for t in tokens))
    elif held is not None:  # counted approximately: the training examples afresh
        counts = WordCounts()
        for tokens in _bodies(pieces("counting"), level, lower, train):
            if tokens is not None:
                counts.update(tokens)
    warnings = [w for w in (counts.warning("tokens"),) if w]
    vocab = Vocab.build(counts.counts, options.max_size, options.min_freq)
    names = sorted(labels)
    label_dtype = id_dtype(len(names))
    rank = np.array([names.index(label) for label in labels], label_dtype)  # order met -> sorted order
    label_ids = rank[label_ids]  # (a byte an example for fewer than 257 labels)
    seen = np.bincount(label_ids[train], minlength=len(names))
    warnings += [f"label {n!r} has no training example" for n, c in zip(names, seen, strict=True) if not c]
    dtype = id_dtype(len(vocab))
    files = {part: {field: os.path.join(folder, f"{part}.{field}") for field in ("ids", "offsets", "labels")}
             for part in ("train", "valid")}
    get = vocab.index.get
    outs = [open(files["train"]["ids"], "wb"), open(files["valid"]["ids"], "wb")]
    batch = ([], [])  # each part's ids, written a few thousand examples at a time
    try:
        for tokens, in_train in zip(_bodies(pieces("encoding"), level, lower), train, strict=True):
            part = batch[0 if in_train else 1]
            part.extend(map(get, tokens, repeat(UNK)))
            if len(part) > 1 << 16:
                outs[0 if in_train else 1].write(np.array(part, dtype).tobytes())
                part.clear()
        for f, part in zip(outs, batch, strict=True):
            f.write(np.array(part, dtype).tobytes())
    finally:
        for f in outs:
            f.close()
    parts = {}
    for part, mask in (("train", train), ("valid", None if held is None else held)):
        if mask is None:
            parts[part] = None
            continue
        _write_offsets(files[part]["offsets"], sizes, mask)
        _write(files[part]["labels"], label_ids[mask], label_dtype)
        parts[part] = {"ids": (files[part]["ids"], dtype), "offsets": (files[part]["offsets"], np.int64),
                       "labels": (files[part]["labels"], label_dtype)}
    meta = {"vocab": vocab.tokens, "labels": names,
            "label_counts": {n: int(c) for n, c in zip(names, seen, strict=True)}}
    return meta, how, warnings, parts
