"""Naive oracles: one equation per line, per gate, one step at a time, float64.

They read the same parameter dict as the fast layers and slice each gate's block out of
it by the documented storage order, so they also pin down that order.
"""

import numpy as np


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def blocks(W, n):
    return np.split(W, n, axis=0)


def rnn_sequence(p, x, a0, mask=None, activation="tanh"):
    g = np.tanh if activation == "tanh" else (lambda z: np.maximum(z, 0))
    a, outs = a0, []
    for t in range(x.shape[0]):
        a_new = g(p["W_aa"] @ a.T + p["W_ax"] @ x[t].T + p["b"][:, None]).T
        a = a_new if mask is None else mask[t][:, None] * a_new + (1 - mask[t][:, None]) * a
        outs.append(a)
    return np.stack(outs), (a,)


def lstm_sequence(p, x, state0, mask=None):
    Wi, Wf, Wg, Wo = blocks(p["W_ax"], 4)
    Ui, Uf, Ug, Uo = blocks(p["W_aa"], 4)
    bi, bf, bg, bo = np.split(p["b"], 4)
    a, c = state0
    outs = []
    for t in range(x.shape[0]):
        xt = x[t]
        gate_i = sig(xt @ Wi.T + a @ Ui.T + bi)  # update gate
        gate_f = sig(xt @ Wf.T + a @ Uf.T + bf)  # forget gate
        c_tilde = np.tanh(xt @ Wg.T + a @ Ug.T + bg)
        gate_o = sig(xt @ Wo.T + a @ Uo.T + bo)
        c_new = gate_f * c + gate_i * c_tilde
        a_new = gate_o * np.tanh(c_new)
        if mask is not None:
            m = mask[t][:, None]
            a_new, c_new = m * a_new + (1 - m) * a, m * c_new + (1 - m) * c
        a, c = a_new, c_new
        outs.append(a)
    return np.stack(outs), (a, c)


def gru_sequence(p, x, a0, mask=None, reset_after=True):
    Wr, Wu, Wn = blocks(p["W_ax"], 3)
    Ur, Uu, Un = blocks(p["W_aa"], 3)
    br, bu, bn = np.split(p["b"], 3)
    a, outs = a0, []
    for t in range(x.shape[0]):
        xt = x[t]
        gate_r = sig(xt @ Wr.T + a @ Ur.T + br)  # relevance
        gate_u = sig(xt @ Wu.T + a @ Uu.T + bu)  # update
        if reset_after:
            c_tilde = np.tanh(xt @ Wn.T + bn + gate_r * (a @ Un.T + p["b_an"]))
        else:
            c_tilde = np.tanh(xt @ Wn.T + (gate_r * a) @ Un.T + bn)
        a_new = gate_u * c_tilde + (1 - gate_u) * a
        if mask is not None:
            m = mask[t][:, None]
            a_new = m * a_new + (1 - m) * a
        a = a_new
        outs.append(a)
    return np.stack(outs), (a,)
