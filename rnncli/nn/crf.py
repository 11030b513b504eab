"""Linear-chain conditional random field over per-token tag scores.

A softmax tagger picks each token's tag on its own; a CRF scores whole tag sequences,

    score(y) = start[y_1] + sum_t E<t>[y_t] + sum_{t>1} trans[y_{t-1}, y_t] + end[y_T]

with E (T, B, K) the emission scores the recurrent stack writes for each token and
`trans[i, j]` the learned score of tag j following tag i. The model's probability is
p(y | x) = exp(score(y)) / Z, Z = the sum over all K^T sequences, computed in O(T K^2) by the
forward recursion

    alpha<1>[j] = start[j] + E<1>[j]
    alpha<t>[j] = log sum_i exp(alpha<t-1>[i] + trans[i, j]) + E<t>[j]
    log Z       = log sum_j exp(alpha<T>[j] + end[j])

and the loss is -log p(gold) = log Z - score(gold). Its gradient is "expected counts minus
gold counts": d log Z / d E<t>[j] is the marginal p(y_t = j), d log Z / d trans[i, j] the summed
pair marginals p(y_{t-1} = i, y_t = j), both from forward (alpha) and backward (beta) scores.

Padding: masks are prefixes (real tokens first), and a padded step carries alpha and beta
unchanged, so a sentence's scores never depend on the batch it sits in. Forbidden moves (I-PER
after O in IOB2 data) are given as -inf scores in `start` and `trans`: they drop out of Z and of
decoding, so the model spends no probability on sequences that cannot be read as entities (their
gradients are 0: no sequence that uses them has any probability).
All sums run in float64 (T K^2 numbers per sentence, cheap) and gradients come back in the
parameters' dtype.
"""

import numpy as np


def _logsumexp(x, axis):
    top = x.max(axis=axis, keepdims=True)
    # rows that are -inf everywhere would give nan from (-inf) - (-inf); they stay -inf
    top = np.where(np.isfinite(top), top, 0.0)
    return np.log(np.exp(x - top).sum(axis=axis)) + np.squeeze(top, axis=axis)


def _forward_backward(E, A, s, e, real):
    """alpha, beta (T, B, K) and log Z (B,) in float64 for emissions E (T, B, K), transitions
    A (K, K), start s and end e (K,) and real (T, B) booleans."""
    T, B, K = E.shape
    alpha = np.empty((T, B, K))
    alpha[0] = s + E[0]
    for t in range(1, T):
        # alpha<t>[j] = logsumexp_i(alpha<t-1>[i] + trans[i, j]) + E<t>[j]
        step = _logsumexp(alpha[t - 1][:, :, None] + A[None], axis=1) + E[t]  # (B, K)
        alpha[t] = np.where(real[t][:, None], step, alpha[t - 1])
    log_z = _logsumexp(alpha[-1] + e, axis=1)  # (B,)

    beta = np.empty((T, B, K))
    beta[-1] = e
    for t in range(T - 2, -1, -1):
        # beta<t>[i] = logsumexp_j(trans[i, j] + E<t+1>[j] + beta<t+1>[j]); end after the last real token
        step = _logsumexp(A[None] + (E[t + 1] + beta[t + 1])[:, None, :], axis=2)  # (B, K)
        beta[t] = np.where(real[t + 1][:, None], step, beta[t + 1])
    return alpha, beta, log_z


def crf_marginals(emissions, mask, start, trans, end):
    """p(y_t = k | x) under the chain's scores: emissions (T, B, K), mask (T, B), start (K,),
    trans (K, K), end (K,) -> (T, B, K) float64, each real token's row summing to 1, padded rows 0."""
    real = mask > 0
    alpha, beta, log_z = _forward_backward(emissions.astype(np.float64), trans.astype(np.float64),
                                           start.astype(np.float64), end.astype(np.float64), real)
    return np.exp(np.where(real[:, :, None], alpha + beta - log_z[None, :, None], -np.inf))


def crf_nll(emissions, tags, mask, start, trans, end):
    """Negative log-likelihood of the gold tag sequences, per real token.

    emissions (T, B, K), tags (T, B) int, mask (T, B) 1/0 with real tokens first,
    start (K,), trans (K, K), end (K,) scores (-inf where forbidden).
    Returns (loss float, d_emissions (T, B, K), {"start", "trans", "end"} gradients).
    """
    T, B, K = emissions.shape
    E = emissions.astype(np.float64)
    A = trans.astype(np.float64)  # (K, K)
    s, e = start.astype(np.float64), end.astype(np.float64)
    real = mask > 0  # (T, B)
    lengths = real.sum(axis=0)  # (B,)
    n = max(int(lengths.sum()), 1)
    rows = np.arange(B)
    alpha, beta, log_z = _forward_backward(E, A, s, e, real)

    # score of the gold path, and the counts it uses
    last = tags[np.maximum(lengths - 1, 0), rows]  # (B,)
    gold = s[tags[0]] + e[last] + (E[np.arange(T)[:, None], rows[None], tags] * real).sum(axis=0)
    pairs = A[tags[:-1], tags[1:]]  # (T-1, B)
    gold += np.where(real[1:], pairs, 0.0).sum(axis=0)
    loss = float((log_z - gold).sum() / n)

    # d log Z: marginals; minus the gold path's one-hot counts
    marg = np.exp(np.where(real[:, :, None], alpha + beta - log_z[None, :, None], -np.inf))  # (T, B, K)
    d_E = marg.copy()
    np.subtract.at(d_E, (np.arange(T)[:, None], rows[None], tags), real.astype(np.float64))
    # padded steps may hold any emission score: select them away rather than multiply by 0 (inf * 0 = nan)
    pair_log = alpha[:-1, :, :, None] + A[None, None] + (E[1:] + beta[1:])[:, :, None, :] - log_z[None, :, None, None]
    pair_marg = np.exp(np.where(real[1:, :, None, None], pair_log, -np.inf))  # (T-1, B, K, K)
    d_A = pair_marg.sum(axis=(0, 1))
    np.subtract.at(d_A, (tags[:-1], tags[1:]), real[1:].astype(np.float64))
    d_s = marg[0].sum(axis=0)
    np.subtract.at(d_s, tags[0], (lengths > 0).astype(np.float64))
    d_e = np.exp(alpha[-1] + e - log_z[:, None]).sum(axis=0)
    np.subtract.at(d_e, last, (lengths > 0).astype(np.float64))
    dt = trans.dtype
    grads = {"start": (d_s / n).astype(dt), "trans": (d_A / n).astype(dt), "end": (d_e / n).astype(dt)}
    return loss, (d_E / n).astype(emissions.dtype), grads


def viterbi(emissions, mask, start, trans, end):
    """The highest-scoring tag sequence of each sentence.

    emissions (T, B, K), mask (T, B) with real tokens first, start (K,), trans (K, K),
    end (K,) scores (-inf where forbidden) -> (T, B) tag ids; padded steps get tag 0."""
    T, B, K = emissions.shape
    score = start + emissions[0]  # (B, K)
    back = np.zeros((T, B, K), np.int64)
    keep = np.arange(K)[None, :]
    for t in range(1, T):
        cand = score[:, :, None] + trans[None]  # (B, K prev, K cur)
        real = mask[t][:, None] > 0
        back[t] = np.where(real, cand.argmax(axis=1), keep)
        score = np.where(real, cand.max(axis=1) + emissions[t], score)
    best = np.zeros((T, B), np.int64)
    best[-1] = (score + end).argmax(axis=1)
    for t in range(T - 1, 0, -1):
        best[t - 1] = back[t][np.arange(B), best[t]]
    return np.where(mask > 0, best, 0)
