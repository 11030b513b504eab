"""Batches of variable-length sequences: bucketing, padding, masks. Time-major (T, B)."""

import numpy as np

from rnncli.text.vocab import PAD


def bucketed_batches(lengths, batch_size, rng=None):
    """Lists of sequence indices whose lengths are close, so little time goes to padding.

    With rng: sequences are shuffled, sorted by length within windows of 50 batches, and the
    batches themselves shuffled; without: sorted by length (evaluation).
    """
    n = len(lengths)
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        return [order[i : i + batch_size] for i in range(0, n, batch_size)]
    order = rng.permutation(n)
    window = batch_size * 50
    parts = [order[i : i + window] for i in range(0, n, window)]
    order = np.concatenate([p[np.argsort(lengths[p], kind="stable")] for p in parts])
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def pad_batch(split, index, max_len=None):
    """Sequences `index` of a Split -> ids (T, B), mask (T, B) float32, tags (T, B) or None, lengths (B,)."""
    starts, ends = split.offsets[index], split.offsets[index + 1]
    lengths = ends - starts
    if max_len is not None:
        lengths = np.minimum(lengths, max_len)
    T = max(int(lengths.max()), 1)
    t = np.arange(T)[:, None]
    mask = t < lengths[None, :]
    pos = np.where(mask, starts[None, :] + t, 0)
    ids = np.where(mask, split.ids[pos], PAD).astype(np.int32)
    tags = None if split.tags is None else np.where(mask, split.tags[pos], 0).astype(np.int32)
    return ids, mask.astype(np.float32), tags, lengths, pos


def char_batch(split, pos, mask, max_chars=20):
    """Characters of each token position of a padded batch: chars (Lc, T*B), char mask (Lc, T*B).
    Words are cut to max_chars (long tokens are rare and their prefix carries the signal)."""
    flat_pos = pos.reshape(-1)
    real = mask.reshape(-1) > 0
    c_start = split.char_offsets[flat_pos]
    c_len = np.where(real, np.minimum(split.char_offsets[flat_pos + 1] - c_start, max_chars), 0)
    Lc = max(int(c_len.max()), 1)
    t = np.arange(Lc)[:, None]
    cmask = t < c_len[None, :]
    chars = np.where(cmask, split.chars[np.where(cmask, c_start[None, :] + t, 0)], PAD).astype(np.int32)
    return chars, cmask.astype(np.float32)
