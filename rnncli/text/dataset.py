"""Encoded data sets: what `tokenize` writes to tokens.npz and what `train` reads.

A split holds all its sequences back to back:
    ids      (N,) uint     token ids; for plain text every sequence ends with <eos>
    offsets  (S+1,) offs   sequence s is ids[offsets[s]:offsets[s+1]]
    labels   (S,) uint     classification only
    tags     (N,) uint     tagging only, aligned with ids
    chars    (M,) uint and char_offsets (N+1,) offs: tagging only, the characters of each token
    targets  (N',) uint and target_offsets (S+1,) offs: pairs only, each example's target side
             (ids in the target vocabulary, without <bos>/<eos>: batching frames them)
    scores   (S, K) float64: scores only, each sequence's K measured values, in their own units
    frames   (N, D) float32: frame input only, the normalised vectors x<t> (ids then only keep lengths)
"uint": ids are stored in the smallest unsigned type that holds what they index (uint8 up to 256
names, uint16 up to 65,536, else uint32; files written before are int32, and load as they are).
"offs": offsets are stored as uint32 while the split has fewer than 2^32 tokens, else int64 (files
written before are int64, and load as they are).
The JSON meta (text/meta.py) holds the vocabularies, the options used and how the validation part
was made. text/encode.py builds these from files, text/store.py saves them uncompressed and maps
them back (a data set larger than memory is read page by page).
"""

from dataclasses import dataclass, field

import numpy as np

from rnncli.npzfile import in_chunks, release
from rnncli.text.meta import DataMeta
from rnncli.text.vocab import EOS, SPECIALS, UNK, Vocab

FORMAT_VERSION = 1
FORMATS = ("text", "tsv", "conll", "pairs", "scores")  # what the records of a data set are


@dataclass
class Split:
    ids: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray | None = None
    tags: np.ndarray | None = None
    chars: np.ndarray | None = None
    char_offsets: np.ndarray | None = None
    targets: np.ndarray | None = None
    target_offsets: np.ndarray | None = None
    target_texts: list | None = None  # pairs read from a file: the raw target lines (not saved)
    scores: np.ndarray | None = None
    frames: np.ndarray | None = None  # (N, D) float32, normalised: inputs that are numbers (frames/records.py)

    @property
    def num_sequences(self):
        return len(self.offsets) - 1

    def lengths(self, dtype=np.int64):
        """Each sequence's length, made a block at a time in `dtype` (uint32 for the millions of a
        large corpus: no int64 difference of all the offsets on the way, and the offsets' pages let go)."""
        out = np.empty(max(len(self.offsets) - 1, 0), dtype)
        for s in range(0, len(out), 1 << 20):
            e = min(s + (1 << 20), len(out))
            np.subtract(self.offsets[s + 1 : e + 1], self.offsets[s:e], out=out[s:e], casting="unsafe")
            release(self.offsets, s, e)  # a mapped file's pages: read again when training reaches them
        return out

    def longest(self):
        """The longest sequence's length, read a block at a time as lengths() reads."""
        longest = 0
        for s in range(0, self.num_sequences, 1 << 20):
            e = min(s + (1 << 20), self.num_sequences)
            longest = max(longest, int(np.max(np.diff(self.offsets[s : e + 1]))))
            release(self.offsets, s, e)
        return longest

    def take(self, index):
        """The sequences `index` (in that order) as a Split of their own, every field carried."""
        index = np.asarray(index, np.int64)

        def pieces(flat, offsets, which=index):
            parts = [flat[offsets[i] : offsets[i + 1]] for i in which]
            new = np.r_[0, np.cumsum([len(p) for p in parts])].astype(np.int64)
            return (np.concatenate(parts) if parts else flat[:0]), new

        ids, offsets = pieces(self.ids, self.offsets)
        out = Split(ids, offsets)
        if self.frames is not None:
            out.frames = pieces(self.frames, self.offsets)[0]
        if self.tags is not None:  # a tag per token, aligned with ids
            out.tags = pieces(self.tags, self.offsets)[0]
        if self.chars is not None:  # the characters of each token of the sequences taken
            tokens = np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in index]) \
                if len(index) else np.zeros(0, np.int64)
            out.chars, out.char_offsets = pieces(self.chars, self.char_offsets, tokens)
        if self.targets is not None:
            out.targets, out.target_offsets = pieces(self.targets, self.target_offsets)
        for name in ("labels", "scores"):
            if getattr(self, name) is not None:
                setattr(out, name, getattr(self, name)[index])
        if self.target_texts is not None:
            out.target_texts = [self.target_texts[i] for i in index]
        return out


@dataclass
class Dataset:
    meta: DataMeta  # text/meta.py: every field, typed
    train: Split
    valid: Split | None
    warnings: list = field(default_factory=list)  # for the report; not saved

    @property
    def vocab(self):
        return Vocab(self.meta["vocab"])


def token_counts(ids, size, chunk=1 << 20):
    """How often each of `size` ids occurs, counted a chunk at a time (a mapped split of a large
    corpus is not copied whole, nor widened to 8 bytes an id)."""
    counts = np.zeros(size, np.int64)
    for part in in_chunks(ids, chunk):
        counts += np.bincount(part, minlength=size)[:size]
    return counts


def _unk_rate(split):
    n = len(split.ids)
    return float(token_counts(split.ids, UNK + 1)[UNK]) / n if n else 0.0


def dataset_stats(ds, top=10):
    """The figures `tokenize` reports, as plain data."""
    vocab = ds.vocab
    tr = ds.train
    counts = token_counts(tr.ids, len(vocab))
    if ds.meta["format"] == "text":
        counts[EOS] = 0  # the <eos> that ends each paragraph or line is not the text's
    real = int(counts.sum())
    order = np.argsort(-counts[len(SPECIALS):], kind="stable")[:top] + len(SPECIALS)
    stats = {
        "format": ds.meta["format"], "level": ds.meta["level"],
        "train": {"sequences": tr.num_sequences, "tokens": real},
        "vocab_size": len(vocab),
        "coverage": 1.0 - (float(counts[UNK]) / real if real else 0.0),
        "unk_rate": {"train": _unk_rate(tr)},
        "top_tokens": [[vocab.tokens[i], int(counts[i])] for i in order if counts[i] > 0],
        "validation": ds.meta.get("validation", "none"),
        "warnings": list(ds.warnings),
    }
    if ds.meta.get("input") in ("jsonl", "frames"):
        from rnncli.text.readers import JSONL_KINDS

        stats["input"] = "jsonl"
        frames = ds.meta["input"] == "frames"
        fields = {"scores": ("text", "target")}.get(ds.meta["format"])
        if frames:
            fields = (("audio" if ds.meta.get("audio") else "frames/features"),
                      {"tsv": "label", "conll": "tags", "scores": "target", "pairs": "text"}[ds.meta["format"]])
        stats["fields"] = " + ".join(fields or next(keys for keys, kind in JSONL_KINDS if kind == ds.meta["format"]))
    if "target_vocab" in ds.meta:
        stats["target_level"] = ds.meta["target_level"]
        stats["target_vocab_size"] = len(ds.meta["target_vocab"])
        stats["train"]["target_tokens"] = int(len(tr.targets))
    if ds.valid is not None:
        stats["valid"] = {"sequences": ds.valid.num_sequences, "tokens": int(len(ds.valid.ids))}
        stats["unk_rate"]["valid"] = _unk_rate(ds.valid)
    if ds.train.frames is not None:
        from rnncli.frames.records import frame_stats

        stats["frames"] = frame_stats(ds.meta, tr.lengths())
        stats["top_tokens"], stats["coverage"] = [], 1.0
    if ds.train.scores is not None:
        s = ds.train.scores
        stats["scores"] = {name: [float(s[:, k].min()), float(s[:, k].mean()), float(s[:, k].max())]
                           for k, name in enumerate(ds.meta["score_names"])}
    for key in ("labels", "tags"):
        if key in ds.meta:
            names = ds.meta[key]
            c = np.bincount(getattr(tr, key), minlength=len(names))
            stats[key] = {n: int(v) for n, v in zip(names, c, strict=True)}
    return stats
