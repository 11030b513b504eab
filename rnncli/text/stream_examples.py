"""label<TAB>text examples tokenized without the corpus in memory: text/stream.py's passes, for a
classifier's data.

In memory (text/encode.py) every non-empty line is an example, its label stripped and its text
split into words (or characters, --level char); a random share of the examples is held out
(split.split_examples: a permutation of their number, fixed by the seed); the vocabulary is counted
over the training examples and the label set taken from all. Here, a piece of whole lines at a
time:

    1. examples: each one's label (an index into the labels met so far) and its number of tokens,
       as arrays (3 bytes an example, more with over 256 labels or very long examples); the lines
       checked as the full reading checks them, the first problem reported after every file is
       read, as the full reading would order it; every token
       counted (stream_words.WordCounts) and its number written to a file (4 bytes a token);
    2. the validation part: split_examples' permutation of the example count alone;
    3. the vocabulary: the held-out examples' tokens, read back from the numbers, are taken away
       from the counts (or, when the counts had to drop rare tokens and the numbers changed, the
       training examples' are counted afresh from the text);
    4. the ids: the numbers read back again, looked up and written to each example's part's file
       (or from the text, as in 3); the offsets and labels of both parts made from the arrays of
       pass 1.
"""

import os
from array import array
from itertools import repeat

import numpy as np

from rnncli.errors import RnncliError, where
from rnncli.text.readers import MAX_LINE
from rnncli.text.split import held_out_examples
from rnncli.text.store import id_dtype
from rnncli.text.stream_words import WordCounts
from rnncli.text.vocab import UNK, Vocab, split_words


def line_blocks(chunks):
    """A file's pieces (text, first line) -> (number of the first line, [lines]) for each piece's
    whole lines, empty ones included, as str.split("\n") of the whole text gives them (a piece may
    end inside a very long line: it is held until its end)."""
    pending, n = "", 1
    for piece, _ in chunks:
        *whole, pending = (pending + piece).split("\n")
        if whole:
            yield n, whole
            n += len(whole)
        if len(pending) > MAX_LINE:  # a line already too long: no need to hold more of it
            yield n, [pending]
            return
    if pending:
        yield n, [pending]


def widened(numbers, value):
    """An array.array of unsigned numbers, copied to a wider type when `value` does not fit its own."""
    if value <= np.iinfo(np.dtype(numbers.typecode)).max:
        return numbers
    return array(next(c for c in "HIQ" if value <= np.iinfo(np.dtype(c)).max), numbers)


def as_numbers(numbers):
    """An array.array -> a NumPy array over the same memory."""
    return np.frombuffer(numbers, numbers.typecode) if len(numbers) else np.zeros(0, numbers.typecode)


def tokens_of(body, level, lower):
    """An example's text as the full reading splits it (encode.side_tokens), each token lower-cased
    again as encode_words looks it up."""
    tokens = list(body.lower() if lower else body) if level == "char" else split_words(body, lower)
    return [t.lower() for t in tokens] if lower else tokens


def _block_numbers(lines, examples, level, lower, interner):
    """The tokens of the texts of a block of whole lines -> (their numbers, in order; each example's
    number of tokens). lines: [str]; examples: the indexes of those that are examples (checked).

    Words of ASCII lines are found all at once: every other line emptied and every example's label
    and tab blanked out (spaces split no word and make none), the lines' words are their texts'; the
    other lines' tokens are split one example at a time, and both merged in the examples' order."""
    one_by_one = examples if level == "char" else [i for i in examples if not lines[i].isascii()]
    split = [tokens_of(lines[i].split("\t", 1)[1], level, lower) for i in one_by_one]
    sizes = np.zeros(len(lines), np.int64)
    sizes[one_by_one] = [len(t) for t in split]
    slow = interner.of_tokens([t for tokens in split for t in tokens])
    if len(one_by_one) == len(examples):
        return slow, sizes[examples]
    at_once = np.setdiff1d(examples, one_by_one)
    kept = [""] * len(lines)
    for i in at_once.tolist():
        kept[i] = lines[i]
    b = np.frombuffer(("\n".join(kept) + "\n").encode("ascii"), np.uint8).copy()
    starts = np.r_[0, np.flatnonzero(b == 10)[:-1] + 1][at_once]
    tabs = np.flatnonzero(b == 9)
    blank = np.zeros(len(b) + 1, np.int8)
    blank[starts] = 1
    blank[tabs[np.searchsorted(tabs, starts)] + 1] = -1  # after each example's first tab
    b[np.cumsum(blank[:-1]) > 0] = 32
    if lower:  # (ASCII: lower-casing keeps every position)
        b[(b >= 65) & (b <= 90)] += 32
    numbers = interner.of_text(b.tobytes().decode("ascii"))
    per_line = np.diff(np.r_[-1, np.flatnonzero(numbers == 0)]) - 1
    sizes[at_once] = per_line[at_once]
    sizes = sizes[examples]
    merged = np.empty(int(sizes.sum()), np.int64)
    fast = np.repeat(np.isin(examples, at_once), sizes)
    merged[fast], merged[~fast] = numbers[numbers != 0], slow
    return merged, sizes


def _examples(pieces, level, lower, counts, numbers_out):
    """Pass 1 -> (labels in the order first met, each example's label index and token count); every
    example's tokens counted into `counts` and their numbers written to `numbers_out` (uint32, while
    the counts are exact). Problems
    (a line over MAX_LINE, no tab, an empty label or text, a file without examples) are raised once
    every file has been read, in the full reading's order: a file's over-long line before its other
    problems, the files in order; the files' decoding errors (NUL, invalid UTF-8) come first, as
    they are met."""
    # a byte an example for its label and two for its size, widened when a label or a size needs it
    labels, label_of, label_ids, sizes, problems = [], {}, array("B"), array("H"), []
    with open(numbers_out, "wb") as numbered:
        for path, chunks in pieces:
            too_long = problem = None
            count = 0
            for n0, lines in line_blocks(chunks):
                examples = []  # (their tokens are split once the block's lines are checked)
                for i, line in enumerate(lines):
                    n = n0 + i
                    if len(line) > MAX_LINE:
                        too_long = too_long or (f"{where(path, n)}: line of {len(line):,} characters "
                                                f"(limit {MAX_LINE:,})")
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
                        label_ids = widened(label_ids, len(labels) - 1)
                    label_ids.append(label_of[label])
                    count += 1
                    examples.append(i)
                if examples and not (problem or too_long):
                    numbers, sized = _block_numbers(lines, examples, level, lower, counts.interner)
                    counts.add(numbers)
                    sizes = widened(sizes, int(sized.max()))
                    sizes.extend(sized.tolist())
                    if not counts.undercount:
                        numbered.write(numbers.astype(np.uint32).tobytes())
            problems.append(too_long or problem or (None if count else f"{where(path)}: no examples (empty file?)"))
    for p in problems:
        if p:
            raise RnncliError(p)
    return labels, as_numbers(label_ids), as_numbers(sizes)


def _bodies(pieces, level, lower, wanted=None):
    """Passes 3 and 4 when the counts were approximate: every example's tokens, in order (the lines
    were checked in pass 1); None for an example that `wanted` (a mask) leaves out, which is not split
    at all."""
    k = 0
    for _, chunks in pieces:
        for _, lines in line_blocks(chunks):
            for line in lines:
                if line.strip():
                    yield tokens_of(line.split("\t", 1)[1], level, lower) if wanted is None or wanted[k] else None
                    k += 1


def numbered_blocks(path, sizes, tokens=1 << 20, window=1 << 16):
    """Pass 1's numbers read back, about `tokens` at a time -> (a slice of the examples, their tokens'
    numbers (n,) int64); a mask of examples is one of tokens by np.repeat(mask[part], sizes[part])."""
    with open(path, "rb") as f:
        for w in range(0, len(sizes), window):
            ends = np.cumsum(sizes[w : w + window], dtype=np.int64)
            cuts = np.unique(np.r_[0, np.searchsorted(ends, np.arange(tokens, ends[-1], tokens)) + 1, len(ends)])
            for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True):
                part = slice(w + a, w + b)
                count = int(ends[b - 1] - (ends[a - 1] if a else 0))
                yield part, np.fromfile(f, np.uint32, count).astype(np.int64)


def _write_offsets(path, sizes, mask, block=1 << 20):
    """The offsets of the examples `mask` picks, of these sizes, written as int64 a block at a time."""
    with open(path, "wb") as f:
        f.write(np.zeros(1, np.int64).tobytes())
        total = 0
        for s in range(0, len(sizes), block):
            ends = np.cumsum(sizes[s : s + block][mask[s : s + block]], dtype=np.int64) + total
            f.write(ends.tobytes())
            total = int(ends[-1]) if len(ends) else total


def _encode_bodies(bodies, train, vocab, outs, dtype):
    """Pass 4 from the text: each example's tokens looked up and written to its part's file (outs:
    the training part's, the validation part's)."""
    get = vocab.index.get
    batch = ([], [])  # each part's ids, written a few thousand examples at a time
    for tokens, in_train in zip(bodies, train, strict=True):
        part = batch[0 if in_train else 1]
        part.extend(map(get, tokens, repeat(UNK)))
        if len(part) > 1 << 16:
            outs[0 if in_train else 1].write(np.array(part, dtype).tobytes())
            part.clear()
    for f, part in zip(outs, batch, strict=True):
        f.write(np.array(part, dtype).tobytes())


def _write(path, values, dtype):
    with open(path, "wb") as f:
        f.write(np.asarray(values).astype(dtype).tobytes())


def example_passes(paths, pieces, options, folder):
    """The four passes -> as stream_words.word_passes, with "labels" and "label_counts" beside the
    vocabulary and each part's labels."""
    level, lower = options.level or "word", options.lower
    counts, numbers_file = WordCounts(), os.path.join(folder, "numbers.u32")
    labels, label_ids, sizes = _examples(pieces("examples"), level, lower, counts, numbers_file)
    numbered, interner = not counts.undercount, counts.interner  # (numbers change when rare tokens go)
    held, how = held_out_examples(len(sizes), options.valid_frac, options.seed)
    train = ~held if held is not None else np.ones(len(sizes), bool)
    if held is not None and numbered:  # exact counts of all: take the held-out examples' away
        for part, numbers in numbered_blocks(numbers_file, sizes):
            counts.tally -= np.bincount(numbers[np.repeat(held[part], sizes[part])], minlength=len(counts.tally))
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
    outs = [open(files["train"]["ids"], "wb"), open(files["valid"]["ids"], "wb")]
    try:
        if numbered:
            id_of = np.fromiter(map(vocab.index.get, interner.tokens, repeat(UNK)), np.int64, len(interner))
            for part, numbers in numbered_blocks(numbers_file, sizes):
                ids = id_of[numbers].astype(dtype)
                in_train = np.repeat(train[part], sizes[part])
                outs[0].write(ids[in_train].tobytes())
                outs[1].write(ids[~in_train].tobytes())
        else:
            _encode_bodies(_bodies(pieces("encoding"), level, lower), train, vocab, outs, dtype)
    finally:
        for f in outs:
            f.close()
    os.remove(numbers_file)
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
