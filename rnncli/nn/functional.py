"""Elementwise nonlinearities and a stable softmax.

Backward passes never recompute an activation that forward already produced: they write
each derivative through the saved output, s (1 - s) for the sigmoid and 1 - t^2 for tanh.
"""

import numpy as np


def sigmoid(x, out=None):
    """sigma(x) = 1 / (1 + e^-x), computed as 0.5 * tanh(x / 2) + 0.5.

    The tanh form never overflows (no warnings for large |x|) and is exact to rounding.
    Works in place when `out is x`.
    """
    out = np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def log_softmax(logits):
    """Stable log-softmax over the last axis.

    Subtracting the row maximum before exponentiating keeps exp() in [0, 1]:
    log softmax(z) = z - max(z) - log sum exp(z - max(z)).
    """
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    e /= e.sum(axis=-1, keepdims=True)
    return e
