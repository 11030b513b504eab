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


def input_fed_lstm_decoder(kind, cell, att, y, state0, memory, source_mask):
    """Luong's input feeding, one step and one equation at a time: x<t> = [y<t>; h~<t-1>] (h~<0> = 0)
    into a one-layer LSTM (reference_cells.lstm_sequence, one step), then attention (above) gives h~<t>.
    y (T, B, E), state0 (a, c) each (B, H) -> h~ (T, B, H)."""
    from reference_cells import lstm_sequence

    T, B, _ = y.shape
    state, h_tilde, outs = state0, np.zeros((B, state0[0].shape[1])), []
    for t in range(T):
        x_t = np.concatenate([y[t], h_tilde], axis=-1)[None]
        a, state = lstm_sequence(cell, x_t, state)
        out, _ = attention(kind, att, a, memory, source_mask)
        h_tilde = out[0]
        outs.append(h_tilde)
    return np.stack(outs)
