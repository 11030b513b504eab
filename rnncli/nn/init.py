"""Initialisers. Every one takes an explicit np.random.Generator: no hidden global RNG."""

import numpy as np


def glorot_uniform(rng, shape, dtype=np.float32):
    """U(-l, l) with l = sqrt(6 / (fan_in + fan_out)); shape is (fan_out, fan_in)."""
    fan_out, fan_in = shape
    limit = np.sqrt(6.0 / (fan_in + fan_out))
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
