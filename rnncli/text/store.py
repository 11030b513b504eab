"""tokens.npz on disk: save and load an encoded data set, and read a vocabulary to reuse.

Arrays are named <split>_<field> (train_ids, valid_offsets, ...), the meta is JSON (npzfile.py).
Loading checks every id against the vocabulary it indexes, so a damaged or hand-made file
is refused with one line instead of failing deep inside training.
"""

import json

import numpy as np

from rnncli.errors import RnncliError
from rnncli.npzfile import in_chunks, load_npz, save_npz
from rnncli.text.dataset import FORMAT_VERSION, FORMATS, Dataset, Split

FIELDS = ("ids", "offsets", "labels", "tags", "chars", "char_offsets", "targets", "target_offsets", "scores",
          "frames")


# the fields of ids and what they index: stored in the smallest unsigned type that holds the names
INDEXES = {"ids": "vocab", "targets": "target_vocab", "chars": "chars", "tags": "tags", "labels": "labels"}


def id_dtype(size):
    """uint8, uint16 or uint32: the smallest type that holds ids into `size` names (a character
    vocabulary takes a byte a token on disk, and in memory where it is mapped)."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    raise RnncliError(f"{size:,} names are more than 2^32: too many to store")


OFFSETS = ("offsets", "char_offsets", "target_offsets")


def offsets_dtype(total):
    """uint32 while every offset fits (fewer than 2^32 tokens), else int64: the offsets of a corpus
    of short lines take 4 bytes a line, not 8."""
    return np.dtype(np.uint32) if total <= np.iinfo(np.uint32).max else np.dtype(np.int64)


def compact(ids, size):
    """ids into `size` names -> in id_dtype(size)."""
    return ids.astype(id_dtype(size), copy=False)


def save_dataset(path, ds):
    arrays = {}
    for name, split in (("train", ds.train), ("valid", ds.valid)):
        if split is None:
            continue
        for field in FIELDS:
            value = getattr(split, field)
            if value is not None and field in INDEXES and ds.meta.get(INDEXES[field]) is not None:
                value = compact(value, len(ds.meta[INDEXES[field]]))
            elif value is not None and field in OFFSETS and len(value):
                value = value.astype(offsets_dtype(int(value[-1])), copy=False)
            if value is not None:
                arrays[f"{name}_{field}"] = value
    save_npz(path, arrays, ds.meta)


CHUNK = 1 << 24  # bytes of an array checked at a time (their pages let go after each)


def _in_range(arr, size):
    """Every id of arr indexes `size` names. A mapped array is read a chunk at a time and each chunk's
    pages let go of again (npzfile.in_chunks), so checking a data set larger than memory does not fill it."""
    if arr is None or len(arr) == 0:
        return True
    if arr.dtype.kind not in "iu":
        return False
    if arr.dtype.kind == "u" and np.iinfo(arr.dtype).max < size:
        return True  # the type cannot hold an id past the names
    return all(part.min() >= 0 and part.max() < size for part in in_chunks(arr, CHUNK // arr.itemsize))


def _offsets_fit(offsets, total):
    """Offsets start at 0, end at the ids' length and never go back: read a chunk at a time, as the
    ids are (a word-level corpus has an offset a line: tens of megabytes at a gigabyte)."""
    if not (offsets is not None and offsets.dtype.kind in "iu" and len(offsets) >= 1 and offsets[0] == 0
            and offsets[-1] == total):
        return False
    last = 0
    for part in in_chunks(offsets, CHUNK // offsets.itemsize):
        if part[0] < last or not np.all(part[1:] >= part[:-1]):
            return False
        last = part[-1]
    return True


def _check_split(path, name, split, meta):
    """Every id indexes its vocabulary, every offset array fits, labels/tags have the right length."""
    problem = None
    if split.ids is None or not _offsets_fit(split.offsets, len(split.ids)):
        problem = "offsets do not fit the ids"
    elif not _in_range(split.ids, len(meta["vocab"])):
        problem = "ids do not fit the vocabulary"
    elif meta["format"] == "tsv" and (split.labels is None or len(split.labels) != split.num_sequences
                                      or not _in_range(split.labels, len(meta.get("labels", [])))):
        problem = "labels do not fit the label set"
    elif meta["format"] == "conll" and (split.tags is None or len(split.tags) != len(split.ids)
                                        or not _in_range(split.tags, len(meta.get("tags", [])))):
        problem = "tags do not fit the tag set"
    elif split.chars is not None and (not _offsets_fit(split.char_offsets, len(split.chars))
                                      or len(split.char_offsets) != len(split.ids) + 1
                                      or not _in_range(split.chars, len(meta.get("chars", [])))):
        problem = "characters do not fit the character set"
    elif meta["format"] == "pairs" and (split.targets is None or not _offsets_fit(split.target_offsets,
                                                                                  len(split.targets))
                                        or len(split.target_offsets) != len(split.offsets)
                                        or not _in_range(split.targets, len(meta.get("target_vocab", [])))):
        problem = "targets do not fit the target vocabulary"
    elif meta["format"] == "scores" and (split.scores is None or split.scores.dtype.kind != "f"
                                         or split.scores.shape != (split.num_sequences,
                                                                   len(meta.get("score_names", [])))
                                         or not np.all(np.isfinite(split.scores))):
        problem = "scores are not one finite row of numbers per sequence"
    elif meta.get("input") == "frames" and (split.frames is None or split.frames.dtype.kind != "f"
                                            or split.frames.shape != (len(split.ids), meta.get("frame_dim"))
                                            or not np.all(np.isfinite(split.frames))):
        problem = "frames are not one finite row of frame_dim numbers per step"
    if problem:
        raise RnncliError(f"{path}: damaged data set ({name} {problem})")


def load_dataset(path):
    """A tokens.npz, its arrays mapped from the file (npzfile.load_npz): a data set larger than
    memory is read page by page as training reaches it, and workers on one machine share it."""
    arrays, meta = load_npz(path, "data set", mapped=True)
    if meta.get("format") not in FORMATS or not isinstance(meta.get("vocab"), list):
        raise RnncliError(f"{path}: not an rnncli data set (no vocabulary); is it a model?")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise RnncliError(f"{path}: data set format {meta['format_version']} is newer than this rnncli "
                          f"reads ({FORMAT_VERSION}); upgrade rnncli")
    splits = {}
    for name in ("train", "valid"):
        if f"{name}_ids" not in arrays:
            splits[name] = None
            continue
        split = Split(**{f: arrays.get(f"{name}_{f}") for f in FIELDS})  # target_texts stay unsaved
        _check_split(path, name, split, meta)
        splits[name] = split
    if splits["train"] is None:
        raise RnncliError(f"{path}: damaged data set (no training split)")
    return Dataset(meta, splits["train"], splits["valid"])


def load_vocab_source(path):
    """--vocab FILE: a tokens.npz, a model.npz or a vocab.json; returns a meta dict."""
    if str(path).endswith(".json"):
        try:
            with open(path, encoding="utf-8") as f:
                meta = json.load(f)
        except FileNotFoundError:
            raise RnncliError(f"{path}: no such file") from None
        except (OSError, ValueError) as e:
            raise RnncliError(f"{path}: not a vocabulary file ({e})") from None
    else:
        _, meta = load_npz(path, "data set or model")
        meta = meta.get("data", meta)  # a model keeps its data set's meta under "data"
    if not isinstance(meta, dict) or not isinstance(meta.get("vocab"), list) or meta.get("format") not in FORMATS:
        raise RnncliError(f"{path}: holds no rnncli vocabulary")
    return meta


def vocab_json(meta):
    """The part of a data set's meta that `--vocab vocab.json` needs, as JSON text."""
    keep = ("format", "level", "lower", "vocab", "labels", "tags", "chars", "tag_scheme", "target_level",
            "target_vocab", "max_target_ratio", "source_unk_trained")
    return json.dumps({k: meta[k] for k in keep if k in meta}, ensure_ascii=False, indent=1) + "\n"
