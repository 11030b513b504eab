"""Recurrent cells: vanilla RNN, GRU (both formulations) and LSTM, over whole sequences.

Notation follows the lecture: `a` is the hidden state a<t>, `c` the LSTM memory cell c<t>,
`x_t` the input at step t; `W_ax` maps inputs, `W_aa` maps the previous state, `b` is the bias.
Arrays are time-major: x is (T, B, D), outputs are (T, B, H).

Storage follows PyTorch so that exchanging weights is a copy (see docs/checkpoint.md):
  W_ax (G*H, D) ~ weight_ih_l{k},  W_aa (G*H, H) ~ weight_hh_l{k},
  b (G*H,) ~ bias_ih_l{k} + bias_hh_l{k}   (PyTorch keeps two biases; only their sum matters)
with the gate blocks stacked in PyTorch's order:
  LSTM  i, f, g, o   (update/input gate, forget gate, candidate c~, output gate)
  GRU   r, u, n      (reset/relevance gate, update gate, candidate c~)
  RNN   one block.
The GRU trap: the lecture writes  c<t> = Gu * c~<t> + (1 - Gu) * c<t-1>,  PyTorch writes
h' = (1 - z) * n + z * h.  So PyTorch's z is 1 - Gu: we store Gu, and exchanging weights with
PyTorch negates that block of W_ax, W_aa and b (sigmoid(-x) = 1 - sigmoid(x)).
The GRU also comes in two formulations:
  reset_after=False (the lecture):  c~ = tanh(W_ax_n x + W_aa_n (Gr * a) + b_n)
  reset_after=True  (PyTorch/cuDNN/Keras): c~ = tanh(W_ax_n x + b_n + Gr * (W_aa_n a + b_an))
the second needs its own recurrent bias `b_an` for the candidate (PyTorch's bias_hh n-block).

Every layer computes the input projection of all T steps with one matrix product, then loops
over t doing only the fused recurrent product and the gate nonlinearities into buffers
allocated once per call. Backward loops over t in reverse computing only the pre-activation
gradients and da<t-1>; the weight gradients are then one matrix product each over all steps.

Masks: mask (T, B) holds 1 for real steps and 0 for padding. A padded step keeps the state,
a<t> = m * a_new + (1 - m) * a<t-1>, so padding after a sequence's end never changes its
final state, and the gradient of a padded step is exactly zero.
"""

import numpy as np

from rnncli.nn.functional import sigmoid
from rnncli.nn.init import glorot_uniform, recurrent_orthogonal


class _Recurrent:
    """Shared plumbing. Subclasses define n_gates, state_size, _forward_loop and _backward_loop."""

    n_gates = 1
    n_states = 1  # how many arrays make the state: (a,) or (a, c)

    def __init__(self, input_size, hidden_size, rng, dtype=np.float32):
        if input_size < 1 or hidden_size < 1:
            raise ValueError("input_size and hidden_size must be positive")
        self.input_size, self.hidden_size, self.dtype = input_size, hidden_size, np.dtype(dtype)
        G, H, D = self.n_gates, hidden_size, input_size
        self.params = {
            "W_ax": glorot_uniform(rng, (G * H, D), self.dtype),
            "W_aa": recurrent_orthogonal(rng, G, H, self.dtype),
            "b": np.zeros(G * H, dtype=self.dtype),
        }

    def initial_state(self, batch):
        """A tuple of n_states zero arrays, each (B, H)."""
        return tuple(np.zeros((batch, self.hidden_size), self.dtype) for _ in range(self.n_states))

    def forward(self, x, state=None, mask=None):
        """Run the layer over a sequence.

        x: (T, B, D); state: tuple of (B, H) arrays or None for zeros; mask: (T, B) or None.
        Returns out (T, B, H) = a<1..T>, the final state tuple, and a cache for backward.
        """
        T, B, D = x.shape
        if D != self.input_size:
            raise ValueError(f"expected input size {self.input_size}, got {D}")
        state = self.initial_state(B) if state is None else state
        # (T*B, D) @ (D, G*H): the input side of every gate for every step in one product
        P = x.reshape(T * B, D) @ self.params["W_ax"].T
        P += self.params["b"]
        P = P.reshape(T, B, -1)  # (T, B, G*H), turned into gate activations in place
        m = None if mask is None else mask.astype(self.dtype, copy=False)[:, :, None]  # (T, B, 1)
        cache = self._forward_loop(P, state, m)
        cache.update(x=x, m=m)
        final = tuple(s[-1] for s in cache["states"])
        return cache["states"][0][1:], final, cache

    def backward(self, d_out, d_final, cache):
        """Back-propagate through time.

        d_out: (T, B, H) gradient of the loss w.r.t. the outputs (None for zeros);
        d_final: tuple of (B, H) gradients w.r.t. the final state (None for zeros).
        Returns dx (T, B, D), d_state0 (tuple of (B, H)), grads {name: array like params}.
        """
        x = cache["x"]
        T, B, D = x.shape
        if d_out is None:
            d_out = np.zeros((T, B, self.hidden_size), self.dtype)
        if d_final is None:
            d_final = self.initial_state(B)
        dP, d_state0, grads = self._backward_loop(d_out, d_final, cache)
        # one product each over all T*B rows, after the loop
        dP2 = dP.reshape(T * B, -1)  # (T*B, G*H)
        X2 = x.reshape(T * B, D)
        grads["W_ax"] = dP2.T @ X2
        grads["b"] = dP2.sum(axis=0)
        dx = (dP2 @ self.params["W_ax"]).reshape(T, B, D)
        return dx, d_state0, grads

    @staticmethod
    def _mask_split(d, m_t):
        """Split a state gradient into the part reaching the new value and the carried part."""
        if m_t is None:
            return d, None
        d_new = d * m_t
        return d_new, d - d_new


class RNN(_Recurrent):
    """Vanilla RNN: a<t> = g(W_aa a<t-1> + W_ax x<t> + b_a), g = tanh or relu."""

    def __init__(self, input_size, hidden_size, rng, dtype=np.float32, activation="tanh"):
        if activation not in ("tanh", "relu"):
            raise ValueError(f"activation must be tanh or relu, not {activation!r}")
        self.activation = activation
        super().__init__(input_size, hidden_size, rng, dtype)

    def _g(self, z):
        return np.tanh(z, out=z) if self.activation == "tanh" else np.maximum(z, 0, out=z)

    def _forward_loop(self, P, state, m):
        T, B, H = P.shape
        W_aaT = self.params["W_aa"].T
        A = np.empty((T + 1, B, H), self.dtype)  # A[t + 1] = a<t>; A[0] = a<0>
        A[0] = state[0]
        tmp = np.empty((B, H), self.dtype)
        for t in range(T):
            np.matmul(A[t], W_aaT, out=tmp)
            # a_new = g(W_ax x<t> + b + W_aa a<t-1>), written over the projection buffer
            P[t] += tmp
            self._g(P[t])
            if m is None:
                A[t + 1] = P[t]
            else:
                np.subtract(P[t], A[t], out=A[t + 1])
                A[t + 1] *= m[t]
                A[t + 1] += A[t]
        return {"states": (A,), "act": P}

    def _backward_loop(self, d_out, d_final, cache):
        A, act, m = cache["states"][0], cache["act"], cache["m"]
        T, B, H = act.shape
        W_aa = self.params["W_aa"]
        dP = np.empty_like(act)
        da = d_final[0].astype(self.dtype, copy=True)
        for t in reversed(range(T)):
            da += d_out[t]
            da_new, da_carry = self._mask_split(da, None if m is None else m[t])
            # d pre-activation = da * g'(pre), g' from the saved output
            if self.activation == "tanh":
                np.multiply(act[t], act[t], out=dP[t])
                np.subtract(1.0, dP[t], out=dP[t])
                dP[t] *= da_new
            else:
                np.multiply(da_new, act[t] > 0, out=dP[t])
            da = dP[t] @ W_aa
            if da_carry is not None:
                da += da_carry
        grads = {"W_aa": dP.reshape(T * B, H).T @ A[:-1].reshape(T * B, H)}
        return dP, (da,), grads

    def step(self, x_t, state):
        """One step for generation: x_t (B, D), state (a,) -> new state (a,)."""
        p = self.params
        z = x_t @ p["W_ax"].T + p["b"] + state[0] @ p["W_aa"].T
        return (self._g(z),)


class LSTM(_Recurrent):
    """LSTM with update (input) gate Gi, forget gate Gf, candidate c~, output gate Go.

    c<t> = Gf * c<t-1> + Gi * c~<t>,  a<t> = Go * tanh(c<t>).
    State is the pair (a, c). The forget-gate bias starts at 1 so that, early in training,
    the cell remembers by default and gradients flow through c across many steps.
    """

    n_gates = 4
    n_states = 2

    def __init__(self, input_size, hidden_size, rng, dtype=np.float32):
        super().__init__(input_size, hidden_size, rng, dtype)
        H = hidden_size
        self.params["b"][H : 2 * H] = 1.0

    def _forward_loop(self, P, state, m):
        T, B, G4 = P.shape
        H = self.hidden_size
        W_aaT = self.params["W_aa"].T
        A = np.empty((T + 1, B, H), self.dtype)
        C = np.empty((T + 1, B, H), self.dtype)
        A[0], C[0] = state
        # without a mask the new cell value is the carried one: share the buffer
        C_new = C[1:] if m is None else np.empty((T, B, H), self.dtype)
        tanh_c = np.empty((T, B, H), self.dtype)
        tmp = np.empty((B, G4), self.dtype)
        for t in range(T):
            z = P[t]
            np.matmul(A[t], W_aaT, out=tmp)
            z += tmp
            sigmoid(z[:, : 2 * H], out=z[:, : 2 * H])  # i, f
            np.tanh(z[:, 2 * H : 3 * H], out=z[:, 2 * H : 3 * H])  # g = c~
            sigmoid(z[:, 3 * H :], out=z[:, 3 * H :])  # o
            i, f, g, o = z[:, :H], z[:, H : 2 * H], z[:, 2 * H : 3 * H], z[:, 3 * H :]
            # c<t> = Gf * c<t-1> + Gi * c~<t>
            np.multiply(f, C[t], out=C_new[t])
            C_new[t] += i * g
            # a<t> = Go * tanh(c<t>)
            np.tanh(C_new[t], out=tanh_c[t])
            np.multiply(o, tanh_c[t], out=A[t + 1])
            if m is not None:
                A[t + 1] -= A[t]
                A[t + 1] *= m[t]
                A[t + 1] += A[t]
                np.subtract(C_new[t], C[t], out=C[t + 1])
                C[t + 1] *= m[t]
                C[t + 1] += C[t]
        return {"states": (A, C), "gates": P, "tanh_c": tanh_c}

    def _backward_loop(self, d_out, d_final, cache):
        (A, C), gates, tanh_c, m = cache["states"], cache["gates"], cache["tanh_c"], cache["m"]
        T, B, G4 = gates.shape
        H = self.hidden_size
        W_aa = self.params["W_aa"]
        dP = np.empty_like(gates)
        da = d_final[0].astype(self.dtype, copy=True)
        dc = d_final[1].astype(self.dtype, copy=True)
        for t in reversed(range(T)):
            z, dz = gates[t], dP[t]
            i, f, g, o = z[:, :H], z[:, H : 2 * H], z[:, 2 * H : 3 * H], z[:, 3 * H :]
            da += d_out[t]
            m_t = None if m is None else m[t]
            da_new, da_carry = self._mask_split(da, m_t)
            dc_new, dc_carry = self._mask_split(dc, m_t)
            tc = tanh_c[t]
            # a = o * tanh(c): dc += da * o * (1 - tanh(c)^2)
            dc_new = dc_new + da_new * o * (1.0 - tc * tc)
            # each gate's pre-activation: chain rule through its nonlinearity (saved outputs)
            np.multiply(dc_new * g, i * (1.0 - i), out=dz[:, :H])  # di
            np.multiply(dc_new * C[t], f * (1.0 - f), out=dz[:, H : 2 * H])  # df
            np.multiply(dc_new * i, 1.0 - g * g, out=dz[:, 2 * H : 3 * H])  # dg
            np.multiply(da_new * tc, o * (1.0 - o), out=dz[:, 3 * H :])  # do
            dc = dc_new * f  # c<t> = f * c<t-1> + ...
            da = dz @ W_aa
            if m is not None:
                da += da_carry
                dc += dc_carry
        grads = {"W_aa": dP.reshape(T * B, G4).T @ A[:-1].reshape(T * B, H)}
        return dP, (da, dc), grads

    def step(self, x_t, state):
        """One step: x_t (B, D), state (a, c) -> (a, c)."""
        p, H = self.params, self.hidden_size
        a, c = state
        z = x_t @ p["W_ax"].T
        z += p["b"]
        z += a @ p["W_aa"].T
        sigmoid(z[:, : 2 * H], out=z[:, : 2 * H])
        np.tanh(z[:, 2 * H : 3 * H], out=z[:, 2 * H : 3 * H])
        sigmoid(z[:, 3 * H :], out=z[:, 3 * H :])
        c = z[:, H : 2 * H] * c + z[:, :H] * z[:, 2 * H : 3 * H]
        a = z[:, 3 * H :] * np.tanh(c)
        return (a, c)


class GRU(_Recurrent):
    """GRU with reset (relevance) gate Gr, update gate Gu and candidate c~.

    Gr = sigma(W_ax_r x + W_aa_r a + b_r),  Gu = sigma(W_ax_u x + W_aa_u a + b_u)
    a<t> = Gu * c~<t> + (1 - Gu) * a<t-1>    (the lecture's c<t>; for a GRU c = a)
    c~ as in the module docstring, by `reset_after`.
    """

    n_gates = 3

    def __init__(self, input_size, hidden_size, rng, dtype=np.float32, reset_after=True):
        super().__init__(input_size, hidden_size, rng, dtype)
        self.reset_after = bool(reset_after)
        if self.reset_after:
            self.params["b_an"] = np.zeros(hidden_size, self.dtype)

    def _forward_loop(self, P, state, m):
        T, B, G3 = P.shape
        H = self.hidden_size
        W_aa = self.params["W_aa"]
        A = np.empty((T + 1, B, H), self.dtype)
        A[0] = state[0]
        # reset_after keeps W_aa_n a + b_an (needed for dGr); reset_before keeps Gr * a (for dW_aa_n)
        saved = np.empty((T, B, H), self.dtype)
        if self.reset_after:
            W_aaT, b_an = W_aa.T, self.params["b_an"]
            tmp = np.empty((B, G3), self.dtype)
        else:
            W_ruT, W_nT = W_aa[: 2 * H].T, W_aa[2 * H :].T
            tmp = np.empty((B, 2 * H), self.dtype)
            tmp_n = np.empty((B, H), self.dtype)
        for t in range(T):
            z, a_prev = P[t], A[t]
            if self.reset_after:
                np.matmul(a_prev, W_aaT, out=tmp)
                z[:, : 2 * H] += tmp[:, : 2 * H]
                sigmoid(z[:, : 2 * H], out=z[:, : 2 * H])  # r, u
                np.add(tmp[:, 2 * H :], b_an, out=saved[t])
                # c~ = tanh(W_ax_n x + b_n + Gr * (W_aa_n a + b_an))
                z[:, 2 * H :] += z[:, :H] * saved[t]
            else:
                np.matmul(a_prev, W_ruT, out=tmp)
                z[:, : 2 * H] += tmp
                sigmoid(z[:, : 2 * H], out=z[:, : 2 * H])
                np.multiply(z[:, :H], a_prev, out=saved[t])
                # c~ = tanh(W_ax_n x + W_aa_n (Gr * a) + b_n)
                np.matmul(saved[t], W_nT, out=tmp_n)
                z[:, 2 * H :] += tmp_n
            np.tanh(z[:, 2 * H :], out=z[:, 2 * H :])
            u, n = z[:, H : 2 * H], z[:, 2 * H :]
            # a<t> = Gu * c~ + (1 - Gu) * a<t-1> = a<t-1> + Gu * (c~ - a<t-1>)
            np.subtract(n, a_prev, out=A[t + 1])
            A[t + 1] *= u
            if m is not None:
                A[t + 1] *= m[t]
            A[t + 1] += a_prev
        return {"states": (A,), "gates": P, "saved": saved}

    def _backward_loop(self, d_out, d_final, cache):
        (A,), gates, saved, m = cache["states"], cache["gates"], cache["saved"], cache["m"]
        T, B, G3 = gates.shape
        H = self.hidden_size
        W_aa = self.params["W_aa"]
        dP = np.empty_like(gates)  # gradients of the input-side pre-activations
        # reset_after: the recurrent product sees the n block scaled by Gr, so it needs its own array
        dR = np.empty_like(gates) if self.reset_after else None
        W_ru, W_n = W_aa[: 2 * H], W_aa[2 * H :]
        da = d_final[0].astype(self.dtype, copy=True)
        for t in reversed(range(T)):
            z, dz, a_prev = gates[t], dP[t], A[t]
            r, u, n = z[:, :H], z[:, H : 2 * H], z[:, 2 * H :]
            da += d_out[t]
            da_new, da_carry = self._mask_split(da, None if m is None else m[t])
            # a = a_prev + u * (n - a_prev)
            dn = da_new * u
            np.multiply(da_new * (n - a_prev), u * (1.0 - u), out=dz[:, H : 2 * H])  # du pre
            np.multiply(dn, 1.0 - n * n, out=dz[:, 2 * H :])  # dn pre
            da_prev = da_new * (1.0 - u)
            if self.reset_after:
                dr = dz[:, 2 * H :] * saved[t]
                np.multiply(dr, r * (1.0 - r), out=dz[:, :H])
                dR[t, :, : 2 * H] = dz[:, : 2 * H]
                np.multiply(dz[:, 2 * H :], r, out=dR[t, :, 2 * H :])
                da_prev += dR[t] @ W_aa
            else:
                d_ra = dz[:, 2 * H :] @ W_n  # gradient of Gr * a_prev
                np.multiply(d_ra * a_prev, r * (1.0 - r), out=dz[:, :H])
                da_prev += d_ra * r
                da_prev += dz[:, : 2 * H] @ W_ru
            if da_carry is not None:
                da_prev += da_carry
            da = da_prev
        A_prev = A[:-1].reshape(T * B, H)
        if self.reset_after:
            dR2 = dR.reshape(T * B, G3)
            grads = {"W_aa": dR2.T @ A_prev, "b_an": dR2[:, 2 * H :].sum(axis=0)}
        else:
            dP2 = dP.reshape(T * B, G3)
            grads = {
                "W_aa": np.concatenate(
                    [dP2[:, : 2 * H].T @ A_prev, dP2[:, 2 * H :].T @ saved.reshape(T * B, H)], axis=0
                )
            }
        return dP, (da,), grads

    def step(self, x_t, state):
        """One step: x_t (B, D), state (a,) -> (a,)."""
        p, H = self.params, self.hidden_size
        a = state[0]
        z = x_t @ p["W_ax"].T
        z += p["b"]
        if self.reset_after:
            h = a @ p["W_aa"].T
            z[:, : 2 * H] += h[:, : 2 * H]
            sigmoid(z[:, : 2 * H], out=z[:, : 2 * H])
            z[:, 2 * H :] += z[:, :H] * (h[:, 2 * H :] + p["b_an"])
        else:
            z[:, : 2 * H] += a @ p["W_aa"][: 2 * H].T
            sigmoid(z[:, : 2 * H], out=z[:, : 2 * H])
            z[:, 2 * H :] += (z[:, :H] * a) @ p["W_aa"][2 * H :].T
        n = np.tanh(z[:, 2 * H :])
        return (a + z[:, H : 2 * H] * (n - a),)


def make_cell(cell, input_size, hidden_size, rng, dtype=np.float32, activation="tanh", reset_after=True):
    """Build a layer by name; options that do not apply to the cell are ignored."""
    if cell == "rnn":
        return RNN(input_size, hidden_size, rng, dtype, activation=activation)
    if cell == "gru":
        return GRU(input_size, hidden_size, rng, dtype, reset_after=reset_after)
    if cell == "lstm":
        return LSTM(input_size, hidden_size, rng, dtype)
    raise ValueError(f"unknown cell {cell!r} (choose rnn, gru or lstm)")
