"""Plain text tokenized without the corpus in memory: passes over the files (by words: stream_words.py).

The in-memory pipeline (text/encode.py) reads the whole text, cuts it into paragraphs, holds out
its end (text/split.py), counts the training part's characters and encodes everything: about 17
times the corpus in memory. This module makes the same data set reading the files a chunk at a
time (a megabyte of text, cut after a run of newlines so that no paragraph break is split):

    1. paragraphs: each one's length and first line (text up to and including a run of two or more
       newlines, as encode._paragraphs cuts it);
    2. the validation part: split.split_stream's choice made on those lengths; when the cut falls
       inside a paragraph, that paragraph alone is read again to find split._cut_point's place;
    3. the vocabulary: the training part's characters counted (one bincount of code points a chunk);
    4. the ids: a code-point table maps each chunk, <eos> after every paragraph, written to two
       temporary files, then into tokens.npz as its uncompressed members.

Memory holds a chunk, the paragraphs' lengths (16 bytes a paragraph) and the counts; the ids go to
disk as they are made. tests/text/test_stream.py checks that both pipelines write the same data set.
"""

import codecs
import contextlib
import json
import os
import shutil
import sys
import tempfile
import zipfile
from array import array
from collections import Counter
from typing import NamedTuple

import numpy as np

from rnncli.errors import RnncliError, where
from rnncli.npzfile import in_chunks, write_file
from rnncli.text.dataset import FORMAT_VERSION, Dataset, Split
from rnncli.text.encode import REUSED
from rnncli.text.readers import detect_format, looks_like_jsonl
from rnncli.text.split import stream_cut
from rnncli.text.store import FIELDS, OFFSETS, id_dtype, offsets_dtype
from rnncli.text.stream_conll import conll_passes
from rnncli.text.stream_examples import example_passes
from rnncli.text.stream_words import word_passes, word_valid_file
from rnncli.text.vocab import EOS, UNK, Vocab, code_points

CHUNK = 1 << 20  # bytes read at a time: a chunk's arrays (its code points, their ids) stay near 30 MB


def _last_cut(text):
    """Where a chunk may end: after the last run of newlines that something other than a newline
    follows (so a run of newlines is never split); None when there is no such place."""
    j = text.rfind("\n")
    while j >= 0 and (j + 1 == len(text) or text[j + 1] == "\n"):
        j = text.rfind("\n", 0, j)
    return None if j < 0 else j + 1


def chunks(path, lower=False, size=None, on_read=None, words=False, source=None):
    """The text of a file as read_text gives it (BOM dropped, CRLF as LF; lower-cased with --lower),
    in pieces of about `size` bytes that end after a run of newlines -> yields (piece, its first line).
    A line longer than that ends a piece after a space when it holds one (with --lower or `words`:
    no word is cut in two). NUL bytes and invalid UTF-8 are errors naming the line. on_read(bytes)
    hears of every read. source: the file to read when `path` is only its name (stdin's spool)."""
    size = size or CHUNK
    decoder = codecs.getincrementaldecoder("utf-8")()
    pending, line, first = "", 1, True
    with open(source or path, "rb") as f:
        while True:
            block = f.read(size)
            if on_read is not None:
                on_read(len(block))
            if b"\x00" in block:
                at = line + pending.count("\n") + block[: block.index(b"\x00")].count(b"\n")
                raise RnncliError(f"{where(path, at)}: NUL byte: this looks like a binary file, not text")
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError as e:
                at = line + pending.count("\n") + block[: max(e.start, 0)].count(b"\n")
                bad = block[e.start] if 0 <= e.start < len(block) else 0
                raise RnncliError(f"{where(path, at)}: invalid UTF-8 (byte 0x{bad:02x})") from None
            if first and text:
                text, first = (text[1:] if text.startswith("\ufeff") else text), False
            text = pending + text
            if block and text.endswith("\r"):  # it may be half of a CRLF
                text, held = text[:-1], "\r"
            else:
                held = ""
            text = text.replace("\r\n", "\n")
            cut = len(text) if not block else _last_cut(text)
            if cut is None:  # no run of newlines to end at: a long line, or newlines still coming
                cut = len(text) - (len(text) - len(text.rstrip("\n")))
                # lower() reads a word's end (a final sigma), and words are tokens: cut after a space,
                # unless the word is a huge one
                if (lower or words) and len(text) < max(4 * size, 1 << 20):
                    cut = next((i + 1 for i in range(cut - 1, -1, -1) if text[i].isspace()), 0)
            piece, pending = text[:cut], text[cut:] + held
            if piece:
                yield (piece.lower() if lower else piece), line
                line += piece.count("\n")
            if not block:
                return


def _paragraphs(texts):
    """Pass 1: (lengths in characters, first lines, the index of each file's first paragraph) of every
    paragraph of the files, in order. texts: each file's chunks (no run of newlines is split between
    two). A piece at a time, as arrays: a paragraph ends after every run of two or more newlines."""
    lengths, lines, starts = array("q"), array("q"), []
    for pieces in texts:
        starts.append(len(lengths))
        size, first = 0, None  # the paragraph begun in an earlier piece: its characters so far, first line
        for piece, line in pieces:
            newline = code_points(piece) == 10
            edges = np.flatnonzero(np.diff(np.r_[0, newline.view(np.int8), 0]))  # each run's start, end
            run_starts, run_ends = edges[0::2], edges[1::2]
            ends = run_ends[run_ends - run_starts >= 2]  # where this piece's paragraphs end
            before = np.r_[0, np.cumsum(newline, dtype=np.int64)]  # newlines before each position
            at = 0  # where the paragraph being read starts in this piece
            if len(ends):
                sizes = np.diff(np.r_[0, ends])
                sizes[0] += size
                firsts = line + before[np.r_[0, ends[:-1]]]
                if first is not None:
                    firsts[0] = first
                lengths.frombytes(sizes.astype(np.int64).tobytes())
                lines.frombytes(firsts.astype(np.int64).tobytes())
                size, first, at = 0, None, int(ends[-1])
            if at < len(newline):
                if first is None:
                    first = line + int(before[at])
                size += len(newline) - at
        if size:
            lengths.append(size)
            lines.append(first)
    return np.frombuffer(lengths, np.int64), np.frombuffer(lines, np.int64), starts


def _text_between(texts, start, stop):
    """Yield the pieces of the files' text from character start to stop. texts: each file's chunks."""
    at = 0
    for pieces in texts:
        for piece, _ in pieces:
            end = at + len(piece)
            if end > start and at < stop:
                yield piece[max(start - at, 0) : stop - at]
            at = end
            if at >= stop:
                return


def _hold_out(paths, texts, lengths, lines, starts, frac):
    """split_stream's choice (split.stream_cut) on the paragraphs' lengths -> (unit ends in characters:
    train's, valid's; the description; the characters of the training part). When the cut falls inside
    a paragraph, that one paragraph is read again, in pieces, to find its place."""
    units, total, ends = len(lengths), int(lengths.sum()), np.cumsum(lengths)
    c = stream_cut(lengths, frac)
    if c is None:
        return ends, ends[:0], "none", total
    k = c.k
    if c.inside is None:
        said = (f"the last {units - k:,} of {units:,} paragraphs ({100 * c.share:.1f} % of the tokens)"
                if c.share is not None else f"the last {units - k:,} paragraphs")
        return ends[:k], ends[k:], said, int(ends[k - 1])
    begin = int(ends[k] - lengths[k])
    cut = _streamed_cut_point(_text_between(texts(None), begin, int(ends[k])), int(lengths[k]), c.inside)
    path_index = int(np.searchsorted(starts, k, side="right")) - 1
    line_b = int(lines[k]) + sum(p.count("\n") for p in _text_between(texts(None), begin, begin + cut))
    share = (total - begin - cut) / total
    return (np.r_[ends[:k], begin + cut], ends[k:], f"the last {100 * share:.1f} % of the tokens, from "
            f"{where(paths[path_index], line_b)} on", begin + cut)


def _streamed_cut_point(pieces, length, offset):
    """split._cut_point(unit, offset, "char") for a unit read in pieces (a paragraph may be the whole
    corpus, one line of a gigabyte): after the newline nearest `offset`, else after the nearest
    space, else at `offset`; the first of two equally near."""
    best = {"\n": None, " ": None}
    at = 0
    for piece in pieces:
        cps = code_points(piece)
        for sep in best:
            spots = np.flatnonzero(cps == ord(sep)) + at + 1  # where a cut after each one falls
            spots = spots[(spots > 0) & (spots < length)]
            if len(spots):
                spot = int(spots[np.argmin(np.abs(spots - offset))])  # the first of equals: the earliest
                if best[sep] is None or abs(spot - offset) < abs(best[sep] - offset):
                    best[sep] = spot
        at += len(cps)
    for sep in ("\n", " "):
        if best[sep] is not None:
            return best[sep]
    return min(max(offset, 1), length - 1)


def _count(texts, stop):
    """Pass 3: the characters of the text's first `stop` characters -> Counter (as vocab.char_counts)."""
    counts = np.zeros(0, np.int64)
    for piece in _text_between(texts, 0, stop):
        cps = code_points(piece)
        found = np.bincount(cps)
        if len(found) > len(counts):
            counts = np.r_[counts, np.zeros(len(found) - len(counts), np.int64)]
        counts[: len(found)] += found
    return Counter({chr(v): int(counts[v]) for v in np.flatnonzero(counts)})


def _encode(texts, vocab, train_ends, valid_ends, split_at, folder):
    """Pass 4: every character's id and <eos> after every unit -> (train ids file, valid ids file,
    their dtype), written as raw bytes."""
    known = {ord(t): i for t, i in vocab.index.items() if len(t) == 1}
    dtype = id_dtype(len(vocab))
    table = np.full(0x110000, UNK, dtype)  # every code point: what the vocabulary lacks is <unk>
    table[np.fromiter(known.keys(), np.int64)] = np.fromiter(known.values(), np.int64)
    files = [os.path.join(folder, "train.ids"), os.path.join(folder, "valid.ids")]
    outs = [open(p, "wb") for p in files]
    last = int(valid_ends[-1]) if len(valid_ends) else int(train_ends[-1]) if len(train_ends) else 0
    try:
        at = 0
        for piece in _text_between(texts, 0, last):
            cps = code_points(piece)
            ids = table[cps]
            stop = at + len(piece)
            # the units that end in this piece (each part's ends are sorted: binary searches, not a scan)
            inside = np.concatenate([e[np.searchsorted(e, at, "right") : np.searchsorted(e, stop, "right")]
                                     for e in (train_ends, valid_ends)]) - at
            if at < split_at < stop and split_at not in inside + at:
                raise RnncliError("internal: the validation cut is not a unit's end")
            # the training part: the characters before split_at and the <eos> of its units
            cut = min(max(split_at - at, 0), len(piece))
            before = inside[inside <= cut]
            outs[0].write(np.insert(ids[:cut], before, EOS).astype(dtype).tobytes())
            after = inside[inside > cut] - cut
            outs[1].write(np.insert(ids[cut:], after, EOS).astype(dtype).tobytes())
            at = stop
    finally:
        for f in outs:
            f.close()
    return files, dtype


def _state(path):
    """A file's size and modification time: what tells that it changed between two passes."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def _offsets(unit_ends, start):
    """Unit ends in characters (from `start`) -> a split's offsets: each unit and its <eos>, that is
    the k-th unit's end plus the k <eos> before it (one array, filled in place)."""
    offsets = np.arange(len(unit_ends) + 1, dtype=np.int64)
    offsets[1:] += unit_ends
    offsets[1:] -= start
    return offsets


def _member(z, name, dtype, shape, source=None, array_value=None):
    """One .npy member of an uncompressed archive, its data copied from a file or an array."""
    with z.open(name + ".npy", "w", force_zip64=True) as m:
        if array_value is not None:
            np.lib.format.write_array(m, array_value, allow_pickle=False)
            return
        np.lib.format.write_array_header_1_0(m, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                                 "fortran_order": False, "shape": shape})
        with open(source, "rb") as f:
            shutil.copyfileobj(f, m, 16 << 20)


@contextlib.contextmanager
def stream_tokenize(paths, out, lower=False, max_size=None, min_freq=1, valid_frac=0.05, seed=0, progress=None,
                    level="char", sources=None, fmt="text", valid_path=None, reuse=None):
    """Plain text by characters or words (text/stream_words.py), or label<TAB>text examples
    (text/stream_examples.py), into `out` (tokens.npz), as encode.tokenize and store.save_dataset make
    it, with memory that does not grow with the corpus. A context: inside it, the Dataset just written,
    its arrays mapped from the temporary files they were made in (`out` may be a pipe or a device that
    cannot be read back), for the report; the files go when it ends. sources: {path: the file that
    holds it} ("-": stdin's spool, spooled_stdin). valid_path: plain text to validate on, encoded with
    the training part's vocabulary (nothing is held out then). reuse: a model's data meta (--vocab),
    whose vocabulary encodes plain text instead of one counted from it."""
    sources = sources or {}
    whole_text = fmt == "text"  # (a label keeps its case: examples lower-case their texts themselves)

    def pieces(name, of=None):  # progress(pass, bytes) hears of each pass's reads: "paragraphs", "encoding", ...
        on_read = None if progress is None or name is None else (lambda n: progress(name, n))
        return ((p, chunks(p, lower and whole_text, on_read=on_read, words=level == "word",
                           source=sources.get(p))) for p in (of or paths))

    paths = [str(p) for p in paths]
    read = paths + ([str(valid_path)] if valid_path is not None else [])
    seen = [_state(sources.get(p, p)) for p in read]  # read several times: they must not change meanwhile
    meta = {"format_version": FORMAT_VERSION, "format": fmt, "level": level, "lower": bool(lower),
            "options": {"max_size": max_size, "min_freq": min_freq, "valid_frac": valid_frac, "seed": seed,
                        "valid_file": valid_path},
            "sources": [str(p) for p in paths]}
    folder = _work_folder(out)
    try:
        options = Options(0.0 if valid_path is not None else valid_frac, max_size, min_freq, seed, lower, level,
                          None if reuse is None else Vocab(reuse["vocab"]))
        passes = {"tsv": example_passes, "conll": conll_passes}.get(fmt) or (_char_passes if level == "char"
                                                                             else word_passes)
        try:
            names, meta["validation"], warnings, parts = passes(paths, pieces, options, folder)
            if valid_path is not None:  # (plain text only: streams() sends nothing else here)
                encode = _char_valid_file if level == "char" else word_valid_file
                parts["valid"] = encode(lambda: pieces("validation", [str(valid_path)]), Vocab(names["vocab"]), folder)
                meta["validation"] = f"the file {valid_path}"
            _compact_offsets(parts)
        except OSError as e:  # the disk filled while the ids were written: the user's files are untouched
            raise RnncliError(f"{out}: cannot write the ids as they are made, in {folder}: {e.strerror or e}; "
                              "nothing was written") from None
        if valid_path is None and valid_frac > 0 and parts["valid"] is None:
            warnings.insert(0, "too little data to hold any out for validation; training will select on its own "
                               "loss")
        meta.update(names)
        if reuse is not None:
            meta.update({key: reuse[key] for key in REUSED if key in reuse})
        for path, before in zip(read, seen, strict=True):
            if _state(sources.get(path, path)) != before:
                raise RnncliError(f"{path}: changed while it was read; nothing was written (tokenize it again "
                                  "once it is complete)")
        _write_archive(out, meta, parts)
        splits = [None if parts[name] is None else Split(**{field: _mapped(*member)
                                                             for field, member in parts[name].items()})
                  for name in ("train", "valid")]
        yield Dataset(meta, *splits, warnings)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class Options(NamedTuple):
    """What the passes read of tokenize's options."""

    valid_frac: float
    max_size: int | None
    min_freq: int
    seed: int
    lower: bool
    level: str
    vocab: Vocab | None = None  # a model's (--vocab): nothing is counted


def _char_passes(paths, pieces, options, folder):
    """The passes by characters -> as stream_words.word_passes."""
    valid_frac, max_size, min_freq = options.valid_frac, options.max_size, options.min_freq

    def texts(name):
        return (chunks for _, chunks in pieces(name))

    lengths, lines, starts = _paragraphs(texts("paragraphs"))
    if not len(lengths):
        raise RnncliError(f"{where(paths[0])}: nothing to tokenize (empty file?)")
    train_ends, valid_ends, how, split_at = _hold_out(paths, texts, lengths, lines, starts, valid_frac)
    del lengths, lines  # 16 bytes a paragraph: let them go before the next passes
    vocab = options.vocab or Vocab.build(_count(texts("counting"), split_at), max_size, min_freq)
    (train_file, valid_file), dtype = _encode(texts("encoding"), vocab, train_ends, valid_ends, split_at, folder)
    files = [os.path.join(folder, f"{name}.offsets") for name in ("train", "valid")]
    _offsets(train_ends, 0).tofile(files[0])
    _offsets(valid_ends, split_at).tofile(files[1])
    parts = {"train": {"ids": (train_file, dtype), "offsets": (files[0], np.int64)},
             "valid": {"ids": (valid_file, dtype), "offsets": (files[1], np.int64)} if len(valid_ends) else None}
    return {"vocab": vocab.tokens}, how, [], parts


def _char_valid_file(pieces, vocab, folder):
    """A validation file by characters, every paragraph encoded with the training vocabulary -> its
    part (as _char_passes'), or None when it holds nothing. pieces() reads the file afresh."""
    lengths, _, _ = _paragraphs(chunks for _, chunks in pieces())
    if not len(lengths):
        return None
    ends = np.cumsum(lengths)
    own = os.path.join(folder, "valid-file")
    os.makedirs(own)
    (_, ids_file), dtype = _encode((chunks for _, chunks in pieces()), vocab, ends[:0], ends, 0, own)
    offsets_file = os.path.join(own, "valid.offsets")
    _offsets(ends, 0).tofile(offsets_file)
    return {"ids": (ids_file, dtype), "offsets": (offsets_file, np.int64)}


def _work_folder(out):
    """A temporary folder for the ids: beside the output (its file system has room for it), or where
    the system keeps temporary files when that folder takes none (-o /dev/null)."""
    try:
        return tempfile.mkdtemp(prefix=".rnncli-tokenize-", dir=os.path.dirname(os.path.abspath(out)))
    except OSError:
        return tempfile.mkdtemp(prefix="rnncli-tokenize-")


def _compact_offsets(parts):
    """Each part's offsets (written as int64 while their total was unknown) rewritten in the type
    save_dataset stores them in (store.offsets_dtype), a block at a time."""
    for part in parts.values():
        for field, (path, dtype) in list((part or {}).items()):
            if field not in OFFSETS:
                continue
            values = np.memmap(path, dtype, mode="r")
            want = offsets_dtype(int(values[-1]))
            if want != values.dtype:
                with open(path + ".compact", "wb") as f:
                    for block in in_chunks(values, 1 << 20):
                        f.write(block.astype(want).tobytes())
                del values
                os.replace(path + ".compact", path)
                part[field] = (path, want)


def _write_archive(out, meta, parts):
    """tokens.npz as save_dataset writes it: its members uncompressed, in the same order. parts:
    {"train": {field: (the raw file of its values, their dtype)}, "valid": the same, or None}."""
    def write(f):
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
            for name in ("train", "valid"):
                for field in FIELDS:
                    if parts[name] is not None and field in parts[name]:
                        source, dtype = parts[name][field]
                        count = os.path.getsize(source) // np.dtype(dtype).itemsize
                        _member(z, f"{name}_{field}", dtype, (count,), source)
            _member(z, "meta", None, None, array_value=np.array(json.dumps(meta, ensure_ascii=False)))

    write_file(out, write)


def _mapped(path, dtype):
    """The ids in a raw file, mapped (an empty file maps to nothing: an empty array)."""
    return np.memmap(path, dtype=dtype, mode="r") if os.path.getsize(path) else np.zeros(0, dtype)


def streams(paths, fmt, level, reuse, valid_path, pair_options=(), sources=None):
    """Does this tokenize take the streaming path? -> the format it streams ("text" or "tsv"), or None.
    Plain text read by characters or words, or label<TAB>text examples, a new vocabulary, the
    validation part held out of the data itself (pair_options: options only pairs take, which the
    full reading refuses by name). sources: {"-": stdin's spool}; without one, stdin does not stream."""
    sources = sources or {}
    if not could_stream(fmt, level, reuse, valid_path, pair_options):
        return None
    if any(str(p) == "-" and "-" not in sources for p in paths):
        return None
    found = set()
    for path in paths:
        head = _head(sources.get(str(path), path))
        if looks_like_jsonl(head, path):
            return None
        found.add(fmt or detect_format(head))
    streamed = found.pop() if len(found) == 1 else None  # (files of two formats: the full reading says so)
    if (valid_path is not None or reuse is not None) and (streamed != "text" or str(valid_path) == "-"):
        return None  # a validation file, or a model's vocabulary, streams with plain text only
    if streamed == "conll" and level == "char":
        return None  # (the full reading says why not)
    return streamed if streamed in ("text", "tsv", "conll") else None


def could_stream(fmt, level, reuse, valid_path, pair_options=()):
    """What the options alone say: plain text or label<TAB>text (or not yet known) by characters or
    words, a new vocabulary or a plain-text model's, no option of pairs."""
    reusable = reuse is None or (reuse.get("format") == "text" and reuse.get("level") in ("char", "word"))
    return (reusable and all(v is None for v in pair_options)
            and level in (None, "char", "word") and fmt in (None, "text", "tsv", "conll"))


@contextlib.contextmanager
def spooled_stdin(out):
    """stdin copied to a temporary file a megabyte at a time (beside `out`, or the system's temporary
    folder): the passes read a corpus several times, and a pipe can be read once. -> its path; the
    file goes when the context ends."""
    folder = _work_folder(out)
    path = os.path.join(folder, "stdin.txt")
    try:
        with open(path, "wb") as f:
            try:
                shutil.copyfileobj(sys.stdin.buffer, f, CHUNK)
            except OSError as e:
                raise RnncliError(f"<stdin>: cannot keep the corpus to read it again, in {folder}: "
                                  f"{e.strerror or e}") from None
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _head(path, lines=2001, most=1 << 20):
    """The text's first `lines` lines (what format detection reads), at most `most` bytes of them (a
    corpus may be one line of a gigabyte), decoded leniently (an error is the full reading's to report)."""
    out, count, size = [], 0, 0
    with open(path, "rb") as f:
        while count < lines and size < most:
            block = f.read(1 << 20)
            if not block:
                break
            out.append(block)
            count, size = count + block.count(b"\n"), size + len(block)
    text = b"".join(out).decode("utf-8", "replace")
    if size >= most and "\n" in text:  # whole lines only, as detection reads them
        text = text[: text.rfind("\n") + 1]
    return (text[1:] if text.startswith("\ufeff") else text).replace("\r\n", "\n")

