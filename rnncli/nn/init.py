"""Initialisers. Every one takes an explicit np.random.Generator: no hidden global RNG."""

import numpy as np


def glorot_uniform(rng, shape, dtype=np.float32):
    """U(-l, l) with l = sqrt(6 / (fan_in + fan_out)); shape is (fan_out, fan_in)."""
    fan_out, fan_in = shape
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def fan_in_uniform(rng, shape, fan_in, dtype=np.float32):
    """U(-l, l) with l = 1 / sqrt(fan_in): PyTorch's nn.Linear default (weights and biases).

    Glorot's limit shrinks with fan_out, which suits square layers but not a softmax over 15,000
    words: its weights start 3x smaller than these. The encoder-decoder's output layer, bridge and
    attention start from this one: on eng-fra, with these alone taken from a PyTorch twin's start,
    rnncli's validation loss after 1,000 steps fell from 2.52 to 2.09 (bench/HISTORY.md).
    """
    limit = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def orthogonal(rng, shape, dtype=np.float32):
    """A (rows, cols) matrix with orthonormal rows or columns (QR of a Gaussian).

    Orthogonal recurrent weights keep ||W a|| = ||a|| at the start of training, so the
    signal through time neither explodes nor vanishes before learning begins.
    """
    rows, cols = shape
    g = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(g)
    q *= np.sign(np.diag(r))  # makes the decomposition unique, hence the distribution uniform
    if rows < cols:
        q = q.T
    return q[:rows, :cols].astype(dtype)


def recurrent_orthogonal(rng, n_gates, hidden, dtype=np.float32):
    """(n_gates * H, H): one orthogonal H x H block per gate, stacked."""
    return np.concatenate([orthogonal(rng, (hidden, hidden), dtype) for _ in range(n_gates)], axis=0)
