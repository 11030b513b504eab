"""Fewer time steps: k neighbouring steps side by side in one.

Audio comes at 100 frames a second, long for a recurrent encoder and for attention over it.
Two of the lectures' remedies join neighbouring steps:

    frame stacking   x'<t> = [x<kt>; x<kt+1>; ...; x<kt+k-1>]        (T, B, D)  -> (T/k, B, k D)
    pyramid          h'<t> = [h<2t>; h<2t+1>] between encoder layers  (T, B, F)  -> (T/2, B, 2 F)
                     (Listen, Attend and Spell's pyramidal BiLSTM: each layer reads half as many steps)

A sequence of L steps becomes ceil(L / k) steps; the missing members of its last group are
zeros. Steps past a sequence's end are zeroed before joining, so what a sequence's joined steps
hold never depends on how long the other sequences of its batch are: padding changes nothing.
Joining is a reshape: its backward is the reverse reshape, with the padded steps' gradients
zeroed as their values were.
"""

import numpy as np


def reduced_lengths(lengths, k):
    """How many steps sequences of `lengths` have after joining k at a time: ceil(L / k)."""
    return -(-np.asarray(lengths, np.int64) // k)


def reduced_mask(mask, k):
    """mask (T, B) -> (ceil(T / k), B): step t of sequence b is real after joining."""
    lengths = reduced_lengths(mask.sum(axis=0).astype(np.int64), k)
    steps = -(-mask.shape[0] // k)
    return (np.arange(steps)[:, None] < lengths[None, :]).astype(mask.dtype)


def join_steps(h, mask, k):
    """h (T, B, F), mask (T, B) -> (ceil(T / k), B, k F): step t holds steps kt .. kt+k-1, earliest
    first; and the joined mask."""
    T, B, F = h.shape
    steps = -(-T // k)
    padded = np.zeros((steps * k, B, F), h.dtype)
    padded[:T] = h * mask[:, :, None].astype(h.dtype, copy=False)
    # (steps, k, B, F) -> (steps, B, k, F): the k members of a group side by side in one row
    joined = padded.reshape(steps, k, B, F).transpose(0, 2, 1, 3).reshape(steps, B, k * F)
    return joined, reduced_mask(mask, k)


def join_steps_backward(d_joined, mask, k):
    """d of join_steps' output (T', B, k F) -> d of its input h (T, B, F)."""
    steps, B, kF = d_joined.shape
    T, F = mask.shape[0], kF // k
    d = d_joined.reshape(steps, B, k, F).transpose(0, 2, 1, 3).reshape(steps * k, B, F)[:T]
    return d * mask[:, :, None].astype(d.dtype, copy=False)
