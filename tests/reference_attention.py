"""The naive twin of nn/attention.py: one query and one source step at a time, float64, every
equation as the module docstring writes it."""

import numpy as np


def score(kind, p, h, m):
    if kind == "dot":
        return float(h @ m)
    if kind == "general":
        return float(h @ (p["W_a"] @ m))
    return float(p["v"] @ np.tanh(p["W_q"] @ h + p["W_k"] @ m))


def attention(kind, p, query, memory, source_mask):
    """query (T, B, Hd), memory (S, B, He), source_mask (S, B) -> h~ (T, B, Hd), alpha (B, T, S)."""
    T, B, Hd = query.shape
    S = memory.shape[0]
    out, alphas = np.zeros((T, B, Hd)), np.zeros((B, T, S))
    for b in range(B):
        real = [s for s in range(S) if source_mask[s, b] > 0]
        for t in range(T):
            h = query[t, b]
            e = {s: score(kind, p, h, memory[s, b]) for s in real}
            top = max(e.values())
            z = sum(np.exp(v - top) for v in e.values())
            alpha = {s: np.exp(v - top) / z for s, v in e.items()}
            context = sum(alpha[s] * memory[s, b] for s in real)
            out[t, b] = np.tanh(p["W_c"] @ np.concatenate([context, h]) + p["b_c"])
            for s, a in alpha.items():
                alphas[b, t, s] = a
    return out, alphas
