"""Losses that return (loss, gradient w.r.t. the logits), computed stably from logits."""

import numpy as np

from rnncli.nn.functional import sigmoid


def softmax_cross_entropy(logits, targets, weights=None, smoothing=0.0):
    """Mean cross-entropy over the real (weighted) positions.

    logits (N, V), targets (N,) int, weights (N,) with 1 for real and 0 for padding, or None.
    L = sum_n w_n * (log sum_j exp(z_nj) - z_n,y_n) / sum_n w_n.
    smoothing ε (label smoothing, Szegedy et al. 2016): the target is the distribution
    q = (1 - ε) onehot(y) + ε / V rather than onehot(y), so per position
    L_n = -sum_k q_k log p_k = (1 - ε) (-log p_y) + ε mean_k (-log p_k), as PyTorch's
    CrossEntropyLoss(label_smoothing=ε) computes it.
    Returns (loss as a Python float, dlogits (N, V)); dL/dz = w (softmax(z) - q) / sum(w).
    """
    N, V = logits.shape
    if weights is None:
        weights = np.ones(N, logits.dtype)
    total = float(weights.sum())
    if total == 0:
        return 0.0, np.zeros_like(logits)
    rows = np.arange(N)
    # one array of N x V, reused: shifted logits z - max, then their exponentials, then the
    # gradient; for a large vocabulary the passes over it cost more than the arithmetic
    d = logits - logits.max(axis=-1, keepdims=True)
    target_z = d[rows, targets].astype(np.float64)
    mean_z = d.mean(axis=-1, dtype=np.float64) if smoothing else 0.0
    np.exp(d, out=d)
    sums = d.sum(axis=-1)
    # -log p_k = log sum_j exp(z_j - max) - (z_k - max)
    log_sums = np.log(sums.astype(np.float64))
    nll = log_sums - (1.0 - smoothing) * target_z - smoothing * mean_z
    loss = float((nll * weights).sum() / total)
    scale = weights / logits.dtype.type(total)
    d *= (scale / sums)[:, None]
    d[rows, targets] -= (1.0 - smoothing) * scale
    if smoothing:
        d -= (smoothing / V) * scale[:, None]
    return loss, d


def sigmoid_binary_cross_entropy(logits, y, weights=None):
    """L = -y log s - (1 - y) log(1 - s), s = sigma(z), averaged.

    Written as max(z, 0) - z y + log(1 + e^-|z|), which never takes the log of 0 nor
    exponentiates a large positive number. logits (N,), y (N,) in {0, 1}.
    Returns (loss, dlogits (N,)); dL/dz = (s - y) / N.
    """
    N = logits.shape[0]
    if weights is None:
        weights = np.ones(N, logits.dtype)
    total = float(weights.sum())
    per = np.maximum(logits, 0) - logits * y + np.log1p(np.exp(-np.abs(logits)))
    loss = float((per * weights).sum(dtype=np.float64) / total)
    d = (sigmoid(logits) - y) * weights / logits.dtype.type(total)
    return loss, d.astype(logits.dtype, copy=False)


def mean_squared_error(y_hat, y):
    """L = 1/(N K) sum_nk (y_hat_nk - y_nk)^2 over N examples of K values each.

    y_hat, y (N, K). Returns (loss as a Python float, dL/dy_hat = 2 (y_hat - y) / (N K))."""
    diff = y_hat - y.astype(y_hat.dtype, copy=False)
    loss = float(np.mean(np.square(diff, dtype=np.float64)))
    return loss, (2.0 / diff.size) * diff
