"""Encoded data sets: what `tokenize` writes to tokens.npz and what `train` reads.

A split holds all its sequences back to back:
    ids      (N,) int32     token ids; for language models every sequence ends with <eos>
    offsets  (S+1,) int64   sequence s is ids[offsets[s]:offsets[s+1]]
    labels   (S,) int32     classification only
    tags     (N,) int32     tagging only, aligned with ids
    chars    (M,) int32 and char_offsets (N+1,) int64: tagging only, the characters of each token
The JSON meta holds the vocabularies and the options used. Sequences are:
    text, char level: paragraphs (cut after every run of two or more newlines), so that a
                      sample is one paragraph; decode(encode(text)) == text exactly
    text, word level: lines
    tsv:  one example per line;  conll: one sentence per blank-line-separated block
"""

import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from rnncli.errors import RnncliError, UsageError, where
from rnncli.npzfile import load_npz, save_npz
from rnncli.text.readers import check_bio, detect_format, parse_conll, parse_tsv, read_text
from rnncli.text.vocab import EOS, SPECIALS, UNK, Vocab, char_counts, encode_chars, split_words

FORMAT_VERSION = 1
KINDS = {"text": "lm", "tsv": "classify", "conll": "tag"}


@dataclass
class Split:
    ids: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray | None = None
    tags: np.ndarray | None = None
    chars: np.ndarray | None = None
    char_offsets: np.ndarray | None = None

    @property
    def num_sequences(self):
        return len(self.offsets) - 1

    def lengths(self):
        return np.diff(self.offsets)


@dataclass
class Dataset:
    meta: dict
    train: Split
    valid: Split | None

    @property
    def vocab(self):
        return Vocab(self.meta["vocab"])

    @property
    def kind(self):
        return KINDS[self.meta["format"]]


# ---------------------------------------------------------------- reading and encoding


def _read(paths, fmt):
    texts = [(p, read_text(p)) for p in paths]
    if fmt is None:
        found = {detect_format(t) for _, t in texts}
        if len(found) > 1:
            raise UsageError(f"input files look like different formats ({', '.join(sorted(found))}); "
                             "pass --format")
        fmt = found.pop()
    return fmt, texts


def _paragraph_bounds(text):
    """Character positions where paragraphs end (after each run of >= 2 newlines), plus len."""
    ends = [m.end() for m in re.finditer(r"\n{2,}", text)]
    if not ends or ends[-1] != len(text):
        ends.append(len(text))
    return np.array(ends, dtype=np.int64)


def _units(fmt, texts, level, lower):
    """The input as a list of examples ("units") that a split may not cut through:
    paragraphs (char level) or token lists of lines (word level) for text; (label, words)
    pairs for tsv; (words, tags) pairs for conll. Also returns the path each unit came from."""
    units, origin = [], []
    for path, t in texts:
        if fmt == "text" and level == "char":
            t = t.lower() if lower else t
            ends = _paragraph_bounds(t) if t else []
            new = [t[a:b] for a, b in zip(np.r_[0, ends[:-1]], ends, strict=True)] if len(ends) else []
        elif fmt == "text":
            new = [w for line in t.split("\n") if (w := split_words(line, lower))]
        elif fmt == "tsv":
            labels, bodies = parse_tsv(t, path)
            new = [(lab, split_words(b, lower)) for lab, b in zip(labels, bodies, strict=True)]
        else:
            sents, tags = parse_conll(t, path)
            check_bio(tags, path)
            # words keep their case here: the character features read it even when --lower
            # folds the word vocabulary (_build_meta_vocab and _encode_units lowercase for the ids)
            new = list(zip(sents, tags, strict=True))
        units.extend(new)
        origin.extend([path] * len(new))
    return units, origin


def _split_units(units, fmt, frac, seed):
    """Indices of the training and validation units. Text keeps its order and holds out
    the end (a language model reads a stream); tsv/conll hold out a random share (fixed seed)."""
    S = len(units)
    if frac <= 0 or S < 2:
        return np.arange(S), None
    k = min(max(1, int(round(S * frac))), S - 1)
    if fmt == "text":
        sizes = np.array([len(u) for u in units], np.float64)
        cum = np.cumsum(sizes)
        cut = int(np.searchsorted(cum, cum[-1] * (1 - frac)))
        cut = min(max(cut, 1), S - 1)
        return np.arange(cut), np.arange(cut, S)
    order = np.random.default_rng(seed).permutation(S)
    return np.sort(order[k:]), np.sort(order[:k])


def _build_meta_vocab(meta, fmt, level, units, max_size, min_freq):
    counts = Counter()
    if fmt == "text" and level == "char":
        counts = char_counts("".join(units))
    elif fmt == "text":
        for u in units:
            counts.update(u)
    elif fmt == "tsv":
        for _, words in units:
            counts.update(words)
        meta["labels"] = sorted({lab for lab, _ in units})
    else:
        names, chars = set(), Counter()
        for words, tags in units:
            counts.update([w.lower() for w in words] if meta["lower"] else words)
            names.update(tags)
            chars.update(ch for w in words for ch in w)
        meta["tags"] = sorted(names)
        meta["chars"] = Vocab.build(chars, None, 1).tokens
        meta["tag_scheme"] = "iob2" if all(_is_iob2(tags) for _, tags in units) else "other"
    meta["vocab"] = Vocab.build(counts, max_size, min_freq).tokens


def _is_iob2(tags):
    """Every I-X follows B-X or I-X (IOB2); IOB1 and looser files say otherwise."""
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and prev[2:] != tag[2:]:
            return False
        prev = tag
    return True


def _encode_units(meta, fmt, level, units, origin):
    vocab = Vocab(meta["vocab"])
    if fmt == "text" and level == "char":
        text = "".join(units)
        ids = encode_chars(vocab, text)
        ends = np.cumsum([len(u) for u in units]).astype(np.int64)
        # one <eos> after every paragraph
        ids = np.insert(ids, ends, EOS).astype(np.int32)
        return Split(ids, np.r_[0, ends + np.arange(1, len(ends) + 1)].astype(np.int64))
    if fmt == "text":
        flat = [w for words in units for w in (*words, SPECIALS[EOS])]
        lengths = np.array([len(w) + 1 for w in units], np.int64)
        return Split(vocab.encode(flat), np.r_[0, np.cumsum(lengths)].astype(np.int64))
    split = encode_words(meta, [u[1] for u in units] if fmt == "tsv" else [u[0] for u in units])
    if fmt == "tsv":
        split.labels = _encode_names(meta["labels"], [u[0] for u in units], origin, "label")
    else:
        split.tags = _encode_names(meta["tags"], [t for u in units for t in u[1]],
                                   [o for u, o in zip(units, origin, strict=True) for _ in u[1]], "tag")
    return split


def encode_words(meta, sentences):
    """Word lists -> a Split with their ids (lower-cased first when the vocabulary is) and, for
    tagging data, the characters of every word (with their case: the character features read it)."""
    flat = [w for ws in sentences for w in ws]
    offsets = np.r_[0, np.cumsum([len(ws) for ws in sentences])].astype(np.int64)
    split = Split(Vocab(meta["vocab"]).encode([w.lower() for w in flat] if meta["lower"] else flat), offsets)
    if "chars" in meta:
        split.chars = encode_chars(Vocab(meta["chars"]), "".join(flat))
        split.char_offsets = np.r_[0, np.cumsum([len(w) for w in flat])].astype(np.int64)
    return split


def _encode_names(names, values, origin, what):
    index = {n: i for i, n in enumerate(names)}
    out = np.fromiter((index.get(v, -1) for v in values), np.int32, count=len(values))
    bad = np.flatnonzero(out < 0)
    if len(bad):
        v = values[bad[0]]
        raise RnncliError(f"{where(origin[bad[0]])}: {what} {v!r} is not one the model or vocabulary knows "
                          f"(known: {', '.join(names[:12])})")
    return out


def tokenize(paths, fmt=None, level=None, lower=False, max_size=None, min_freq=1,
             valid_frac=0.05, valid_path=None, seed=0, reuse=None):
    """Read, split, build (or reuse) the vocabulary from the training part, encode.

    reuse: a meta dict whose vocabularies are used as they are (--vocab). Returns a Dataset.
    """
    if max_size is not None and max_size < 1:
        raise UsageError("--max-size must be at least 1")
    if min_freq < 1:
        raise UsageError("--min-freq must be at least 1")
    if not 0 <= valid_frac < 1:
        raise UsageError("--valid-frac must be in [0, 1)")
    if reuse is not None:
        fmt = fmt or reuse["format"]
        if fmt != reuse["format"]:
            raise UsageError(f"--vocab was built for {reuse['format']} data, not {fmt}")
        level, lower = reuse["level"], reuse["lower"]
    fmt, texts = _read(paths, fmt)
    if level is None:
        level = "char" if fmt == "text" else "word"
    if fmt != "text" and level == "char":
        raise UsageError(f"--level char applies to text; {fmt} data is tokenized by words")
    meta = {"format_version": FORMAT_VERSION, "format": fmt, "level": level, "lower": bool(lower),
            "options": {"max_size": max_size, "min_freq": min_freq, "valid_frac": valid_frac,
                        "seed": seed, "valid_file": valid_path},
            "sources": [str(p) for p in paths]}
    units, origin = _units(fmt, texts, level, lower)
    if not units:
        raise RnncliError(f"{where(paths[0])}: nothing to tokenize (empty file?)")
    if valid_path is not None:
        v_units, v_origin = _units(fmt, _read([valid_path], fmt)[1], level, lower)
        train_idx, valid_idx = np.arange(len(units)), None
    else:
        train_idx, valid_idx = _split_units(units, fmt, valid_frac, seed)
        v_units = [units[i] for i in valid_idx] if valid_idx is not None else None
        v_origin = [origin[i] for i in valid_idx] if valid_idx is not None else None
    t_units, t_origin = [units[i] for i in train_idx], [origin[i] for i in train_idx]
    if reuse is None:
        _build_meta_vocab(meta, fmt, level, t_units, max_size, min_freq)
    else:
        for key in ("vocab", "labels", "tags", "chars"):
            if key in reuse:
                meta[key] = reuse[key]
    train = _encode_units(meta, fmt, level, t_units, t_origin)
    valid = _encode_units(meta, fmt, level, v_units, v_origin) if v_units else None
    return Dataset(meta, train, valid)


# ---------------------------------------------------------------- tokens.npz


def save_dataset(path, ds):
    arrays = {}
    for name, split in (("train", ds.train), ("valid", ds.valid)):
        if split is None:
            continue
        for field in ("ids", "offsets", "labels", "tags", "chars", "char_offsets"):
            value = getattr(split, field)
            if value is not None:
                arrays[f"{name}_{field}"] = value
    save_npz(path, arrays, ds.meta)


def load_dataset(path):
    arrays, meta = load_npz(path, "data set")
    if meta.get("format") not in KINDS or "vocab" not in meta:
        raise RnncliError(f"{path}: not an rnncli data set (no vocabulary); is it a model?")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise RnncliError(f"{path}: data set format {meta['format_version']} is newer than this rnncli "
                          f"reads ({FORMAT_VERSION}); upgrade rnncli")
    splits = {}
    for name in ("train", "valid"):
        if f"{name}_ids" not in arrays:
            splits[name] = None
            continue
        fields = {f: arrays.get(f"{name}_{f}") for f in ("ids", "offsets", "labels", "tags", "chars",
                                                          "char_offsets")}
        split = Split(**fields)
        V = len(meta["vocab"])
        if split.offsets is None or split.offsets[-1] != len(split.ids) or (
                len(split.ids) and (split.ids.min() < 0 or split.ids.max() >= V)):
            raise RnncliError(f"{path}: damaged data set ({name} ids do not fit the vocabulary)")
        splits[name] = split
    if splits["train"] is None:
        raise RnncliError(f"{path}: damaged data set (no training split)")
    return Dataset(meta, splits["train"], splits["valid"])


def load_vocab_source(path):
    """--vocab FILE: a tokens.npz, a model.npz or a vocab.json; returns a meta dict."""
    import json

    if str(path).endswith(".json"):
        try:
            with open(path, encoding="utf-8") as f:
                meta = json.load(f)
        except FileNotFoundError:
            raise RnncliError(f"{path}: no such file") from None
        except (OSError, ValueError) as e:
            raise RnncliError(f"{path}: not a vocabulary file ({e})") from None
    else:
        arrays, meta = load_npz(path, "data set or model")
        meta = meta.get("data", meta)  # a model keeps its data set's meta under "data"
    if not isinstance(meta, dict) or "vocab" not in meta or "format" not in meta:
        raise RnncliError(f"{path}: holds no rnncli vocabulary")
    return meta


def vocab_json(meta):
    keep = ("format", "level", "lower", "vocab", "labels", "tags", "chars", "tag_scheme")
    return {k: meta[k] for k in keep if k in meta}


# ---------------------------------------------------------------- report


def _unk_rate(split):
    n = len(split.ids)
    return float((split.ids == UNK).sum()) / n if n else 0.0


def dataset_stats(ds, top=10):
    """The figures `tokenize` reports, as plain data."""
    vocab = ds.vocab
    tr = ds.train
    real = tr.ids[tr.ids != EOS] if ds.meta["format"] == "text" else tr.ids
    counts = np.bincount(real, minlength=len(vocab))
    order = np.argsort(-counts[len(SPECIALS):], kind="stable")[:top] + len(SPECIALS)
    stats = {
        "format": ds.meta["format"], "level": ds.meta["level"],
        "train": {"sequences": tr.num_sequences, "tokens": int(len(real))},
        "vocab_size": len(vocab),
        "coverage": 1.0 - (float((real == UNK).sum()) / len(real) if len(real) else 0.0),
        "unk_rate": {"train": _unk_rate(tr)},
        "top_tokens": [[vocab.tokens[i], int(counts[i])] for i in order if counts[i] > 0],
    }
    if ds.valid is not None:
        stats["valid"] = {"sequences": ds.valid.num_sequences, "tokens": int(len(ds.valid.ids))}
        stats["unk_rate"]["valid"] = _unk_rate(ds.valid)
    for key, field in (("labels", "labels"), ("tags", "tags")):
        if key in ds.meta:
            names = ds.meta[key]
            c = np.bincount(getattr(tr, field), minlength=len(names))
            stats[key] = {n: int(v) for n, v in zip(names, c, strict=True)}
    return stats
