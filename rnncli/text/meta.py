"""The data set's meta: every field tokens.npz's JSON holds, typed, in one place.

A model's checkpoint keeps the same fields as meta["data"] (pretrained.model_data_meta adds the
word vectors' fields), and every command reads its data from there. It travels as JSON, so it stays
a dict: DataMeta says which keys exist, what they hold and when.
"""

from typing import Literal, TypedDict


class AudioMeta(TypedDict, total=False):
    """Log-mel settings of recordings (frames/audio.py); a model's are fixed once its data is made."""

    window_ms: float
    hop_ms: float
    bands: int
    deltas: bool
    sample_rate: int
    top_db: float  # the floor under the loudest value; absent in data sets made before it (no floor)


class DataMeta(TypedDict, total=False):
    # ---- always
    format_version: int  # text/dataset.FORMAT_VERSION
    format: Literal["text", "tsv", "conll", "pairs", "scores"]  # what the records are
    level: Literal["char", "word", "frame"]  # what a token is
    lower: bool  # text was lower-cased before it was read
    options: dict  # tokenize's max_size, min_freq, valid_frac, seed, valid_file
    sources: list  # the files read
    validation: str  # how the validation split was made, in words
    vocab: list  # the input tokens by id, the specials first (text/vocab.py)
    input: Literal["jsonl", "frames"]  # read from JSON lines records, or records of frames
    # ---- by format
    labels: list  # tsv: the label names by id (also a conditional language model's)
    label_counts: dict  # tsv: how often each label was seen (sample --label '*')
    tags: list  # conll: the tag names by id
    tag_scheme: Literal["iob2", "other"]  # conll: whether the tags are B-X/I-X/O (the CRF's transitions)
    chars: list  # conll: the characters of words by id (--char-features)
    target_level: Literal["char", "word"]  # pairs: what a target token is
    target_vocab: list  # pairs: the target tokens by id
    max_target_ratio: float  # pairs: targets may be at most ratio * source + 10 tokens
    longest_source: int  # pairs: the longest source, what a model reads unasked (text/targets.py)
    source_unk_trained: bool  # pairs, characters: some training source characters became <unk>
    score_names: list  # scores: the names of the K numbers
    score_mean: list  # scores: the training split's mean of each, which training standardises by
    score_std: list
    # ---- frames
    frame_dim: int  # D, the numbers per frame
    frame_mean: list  # the training split's mean of each of the D numbers (frames/records.normaliser)
    frame_std: list
    audio: AudioMeta  # recordings only
    # ---- a model's only (pretrained.model_data_meta)
    pretrained_vocab: list  # the words the vectors added after the training vocabulary
    pretrained: dict  # the vectors' coverage report
    pretrained_found: str  # hex of the bits: which rows the vectors filled
