"""Attention over a source sequence (Luong et al. 2015, "global attention"), forward and
backward side by side.

For every decoder output h<t> (the query) and every encoder output m<s> (the memory):

    score     e<t,s> = h<t> . m<s>                        dot      (needs equal sizes)
                     = h<t> . (W_a m<s>)                  general
                     = v . tanh(W_q h<t> + W_k m<s>)      additive (Bahdanau's score)
    weights   alpha<t,s> = exp(e<t,s>) / sum_s' exp(e<t,s'>)    over the real source steps only
    context   c<t> = sum_s alpha<t,s> m<s>
    output    h~<t> = tanh(W_c [c<t>; h<t>] + b_c)

Padding of the source gets a score of -inf, so it never receives weight. The decoder's RNN
runs first and attention reads its outputs (Luong's placement, not Bahdanau's context fed back
into the RNN), so a whole target sequence is attended in a few batched products, not step by step.

Shapes: query (T, B, Hd), memory (S, B, He), source mask (S, B); inside, batch-major
(B, T, ·) and (B, S, ·) so that every product is one batched matmul.
Parameters (plain matrices, PyTorch nn.Linear layout (out, in)):
    general:  W_a (Hd, He)         additive: W_q (Hd, Hd), W_k (Hd, He), v (Hd,)
    all:      W_c (Hd, He + Hd), b_c (Hd,)
"""

import numpy as np

from rnncli.nn.init import fan_in_uniform

KINDS = ("dot", "general", "additive")


class Attention:
    def __init__(self, kind, query_size, memory_size, rng, dtype=np.float32):
        if kind not in KINDS:
            raise ValueError(f"attention must be one of {', '.join(KINDS)}, not {kind!r}")
        if kind == "dot" and query_size != memory_size:
            raise ValueError(f"dot attention needs equal sizes; the decoder has {query_size}, the encoder "
                             f"outputs {memory_size} (use general or additive)")
        self.kind, self.dtype = kind, np.dtype(dtype)
        Hd, He = query_size, memory_size
        self.params = {}
        # every matrix ~ U(+-1/sqrt(its input size)), as the nn.Linear layers of a PyTorch twin
        if kind == "general":
            self.params["W_a"] = fan_in_uniform(rng, (Hd, He), He, self.dtype)
        elif kind == "additive":
            self.params["W_q"] = fan_in_uniform(rng, (Hd, Hd), Hd, self.dtype)
            self.params["W_k"] = fan_in_uniform(rng, (Hd, He), He, self.dtype)
            self.params["v"] = fan_in_uniform(rng, (Hd,), Hd, self.dtype)
        self.params["W_c"] = fan_in_uniform(rng, (Hd, He + Hd), He + Hd, self.dtype)
        self.params["b_c"] = fan_in_uniform(rng, (Hd,), He + Hd, self.dtype)

    def prepare(self, memory):
        """memory (S, B, He) -> what every query reads of it, computed once: the memory batch-major
        M (B, S, He) and its keys (B, S, Hd or He): M itself (dot), W_a m<s> (general), W_k m<s> (additive)."""
        p = self.params
        M = np.ascontiguousarray(memory.transpose(1, 0, 2))  # (B, S, He)
        keys = {"dot": lambda: M, "general": lambda: M @ p["W_a"].T, "additive": lambda: M @ p["W_k"].T}[self.kind]()
        return M, keys

    def forward(self, query, memory, source_mask, prepared=None):
        """query (T, B, Hd), memory (S, B, He), source_mask (S, B) -> h~ (T, B, Hd), weights
        alpha (B, T, S), cache. prepared: prepare(memory), when many queries read one memory
        (decoding step by step)."""
        p = self.params
        Q = np.ascontiguousarray(query.transpose(1, 0, 2))  # (B, T, Hd)
        M, keys = prepared if prepared is not None else self.prepare(memory)
        if self.kind in ("dot", "general"):
            e = Q @ keys.transpose(0, 2, 1)  # (B, T, S)
        else:
            U = np.tanh((Q @ p["W_q"].T)[:, :, None, :] + keys[:, None, :, :])  # (B, T, S, Hd)
            e = U @ p["v"]  # (B, T, S)
        real = source_mask.T.astype(bool)[:, None, :]  # (B, 1, S)
        e = np.where(real, e, -np.inf)
        alpha = np.exp(e - e.max(axis=-1, keepdims=True))  # softmax over the source, max-shifted
        alpha /= alpha.sum(axis=-1, keepdims=True)
        context = alpha @ M  # (B, T, He)
        joined = np.concatenate([context, Q], axis=-1)  # [c<t>; h<t>]: (B, T, He + Hd)
        out = np.tanh(joined @ p["W_c"].T + p["b_c"])  # (B, T, Hd)
        cache = (Q, M, keys, alpha, joined, out, U if self.kind == "additive" else None)
        return out.transpose(1, 0, 2), alpha, cache

    def backward(self, d_out, cache, keys_later=False):
        """d_out (T, B, Hd) -> d_query (T, B, Hd), d_memory (S, B, He), grads.

        keys_later: leave out what flows through the keys (W_a or W_k m<s>) and return its
        gradient d_keys (B, S, .) too, so that a caller running one query step at a time can sum
        it over the steps and pay for keys_backward once (input feeding)."""
        p = self.params
        Q, M, keys, alpha, joined, out, U = cache
        He = M.shape[2]
        grads = {}
        # h~ = tanh(W_c [c; h] + b_c)
        dz = d_out.transpose(1, 0, 2) * (1.0 - out * out)  # (B, T, Hd)
        grads["W_c"] = _flat(dz).T @ _flat(joined)  # sum over (b, t) of dz<t> [c<t>; h<t>]^T
        grads["b_c"] = dz.sum(axis=(0, 1))
        d_joined = dz @ p["W_c"]
        d_context, dQ = d_joined[..., :He], d_joined[..., He:].copy()
        # c = alpha M
        d_alpha = d_context @ M.transpose(0, 2, 1)  # (B, T, S)
        dM = alpha.transpose(0, 2, 1) @ d_context  # (B, S, He)
        # softmax: de = alpha * (d_alpha - sum_s alpha d_alpha); padded steps have alpha = 0
        de = alpha * (d_alpha - (alpha * d_alpha).sum(axis=-1, keepdims=True))
        d_keys = None
        if self.kind == "dot":
            dQ += de @ M
            dM += de.transpose(0, 2, 1) @ Q
        elif self.kind == "general":
            dQ += de @ keys
            d_keys = de.transpose(0, 2, 1) @ Q  # (B, S, Hd)
        else:
            # e = v . tanh(pre), pre = W_q h<t> + W_k m<s>
            grads["v"] = de.reshape(-1) @ U.reshape(-1, U.shape[-1])
            d_pre = de[..., None] * p["v"] * (1.0 - U * U)  # (B, T, S, Hd)
            dQp, d_keys = d_pre.sum(axis=2), d_pre.sum(axis=1)  # (B, T, Hd), (B, S, Hd)
            grads["W_q"] = _flat(dQp).T @ _flat(Q)
            dQ += dQp @ p["W_q"]
        if keys_later:
            return dQ.transpose(1, 0, 2), dM.transpose(1, 0, 2), grads, d_keys
        if d_keys is not None:
            key_grads, dM_keys = self.keys_backward(d_keys, M)
            grads.update(key_grads)
            dM += dM_keys
        return dQ.transpose(1, 0, 2), dM.transpose(1, 0, 2), grads

    def keys_backward(self, d_keys, M):
        """keys = M W^T (W = W_a or W_k): d_keys (B, S, Hd), M (B, S, He) -> ({W: dW}, d M (B, S, He))."""
        name = "W_a" if self.kind == "general" else "W_k"
        return {name: _flat(d_keys).T @ _flat(M)}, d_keys @ self.params[name]


def _flat(a):
    """(B, T, K) -> (B*T, K): one row per position, so a sum over positions is one matmul."""
    return a.reshape(-1, a.shape[-1])
