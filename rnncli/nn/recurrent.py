"""Recurrent cells: vanilla RNN, GRU (both formulations) and LSTM, over whole sequences.

Notation follows the lecture: `a` is the hidden state a<t>, `c` the LSTM memory cell c<t>,
`x_t` the input at step t; `W_ax` maps inputs, `W_aa` maps the previous state, `b` is the bias.
The public arrays are time-major: x is (T, B, D), outputs are (T, B, H), states (B, H).

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

How the work is laid out (this is where the time goes):
- The input side of every gate for every step is one batched product before the loop.
- Inside the time loop the arrays are feature-major, one (features, B) slab per step, as the
  lecture writes a<t> = g(W_aa a<t-1> + ...) with column vectors. OpenBLAS runs the per-step
  product W_aa @ a (4H x H times H x B) 1.3-1.8x faster than the row-major a @ W_aa^T at these
  sizes (bench/core.py), and each gate is then a contiguous block of rows.
- Backward loops over t in reverse computing only the pre-activation gradients and da<t-1>;
  the weight gradients are one product each over all T*B columns after the loop.

Masks: mask (T, B) holds 1 for real steps and 0 for padding. A padded step keeps the state,
a<t> = m * a_new + (1 - m) * a<t-1>, so padding after a sequence's end never changes its
final state, and the gradient reaching the parameters from a padded step is exactly zero.
"""

import numpy as np

from rnncli.nn.functional import sigmoid
from rnncli.nn.init import glorot_uniform, recurrent_orthogonal


class _Recurrent:
    """Shared plumbing; subclasses define the gates and the two time loops.

    Inside the loops: P (T, G*H, B) gate buffers, A (T+1, H, B) states with A[0] = a<0>.
    """

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

    def _project(self, x, W_ax, b):
        """W_ax x<t> + b for all t at once: x (T, B, D) -> (T, G*H, B)."""
        P = np.matmul(W_ax, x.transpose(0, 2, 1))
        P += b[:, None]
        return P

    def forward(self, x, state=None, mask=None):
        """Run the layer over a sequence.

        x: (T, B, D); state: tuple of (B, H) arrays or None for zeros; mask: (T, B) or None.
        Returns out (T, B, H) = a<1..T>, the final state tuple of (B, H), and a cache for backward.
        """
        T, B, D = x.shape
        if D != self.input_size:
            raise ValueError(f"expected input size {self.input_size}, got {D}")
        state = self.initial_state(B) if state is None else state
        m = None if mask is None else mask.astype(self.dtype, copy=False)[:, None, :]  # (T, 1, B)
        cache = self._forward_loop(x, [s.T for s in state], m)
        cache.update(x=x, m=m)
        states = cache["states"]  # each (T+1, H, B)
        final = tuple(s[-1].T for s in states)
        return states[0][1:].transpose(0, 2, 1), final, cache

    def backward(self, d_out, d_final, cache):
        """Back-propagate through time.

        d_out: (T, B, H) gradient of the loss w.r.t. the outputs (None for zeros);
        d_final: tuple of (B, H) gradients w.r.t. the final state (None for zeros).
        Returns dx (T, B, D), d_state0 (tuple of (B, H)), grads {name: array like params}.
        """
        x = cache["x"]
        T, B, D = x.shape
        H = self.hidden_size
        d_out = np.zeros((T, H, B), self.dtype) if d_out is None else d_out.transpose(0, 2, 1)
        d_final = [np.zeros((H, B), self.dtype) if d_final is None else d.T for d in
                   (d_final or [None] * self.n_states)]
        dP, d_state0, grads, recurrent = self._backward_loop(d_out, d_final, cache)
        # (T, G*H, B) -> (G*H, T*B): moves whole rows of B, cheap; then one product per gradient
        dPg = _columns(dP)
        X2 = x.reshape(T * B, D)
        grads["W_ax"] = dPg @ X2
        grads["b"] = dPg.sum(axis=1)
        dx = (dPg.T @ self.params["W_ax"]).reshape(T, B, D)
        # dW_aa = sum over t of d(recurrent pre-activation)<t> @ a_prev<t>^T, block by block;
        # a block given as a slice reuses the rows of dPg instead of rearranging dP again
        blocks = [(dPg[src] if isinstance(src, slice) else _columns(src)) @ _columns(prev).T
                  for src, prev in recurrent]
        grads["W_aa"] = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=0)
        return dx, tuple(d.T for d in d_state0), grads

    @staticmethod
    def _mask_split(d, m_t):
        """Split a state gradient into the part reaching the new value and the carried part."""
        if m_t is None:
            return d, None
        d_new = d * m_t
        return d_new, d - d_new


def _columns(arr):
    """(T, K, B) -> (K, T*B): the per-step slabs side by side, one column per (t, b)."""
    T, K, B = arr.shape
    return arr.transpose(1, 0, 2).reshape(K, T * B)


def _keep_padded(new, prev, m_t):
    """In place: new = prev + m * (new - prev), the state a padded step carries over."""
    new -= prev
    new *= m_t
    new += prev


class RNN(_Recurrent):
    """Vanilla RNN: a<t> = g(W_aa a<t-1> + W_ax x<t> + b_a), g = tanh or relu."""

    def __init__(self, input_size, hidden_size, rng, dtype=np.float32, activation="tanh"):
        if activation not in ("tanh", "relu"):
            raise ValueError(f"activation must be tanh or relu, not {activation!r}")
        self.activation = activation
        super().__init__(input_size, hidden_size, rng, dtype)

    def _g(self, z):
        return np.tanh(z, out=z) if self.activation == "tanh" else np.maximum(z, 0, out=z)

    def _forward_loop(self, x, state, m):
        p = self.params
        P = self._project(x, p["W_ax"], p["b"])  # (T, H, B)
        T, H, B = P.shape
        W_aa = p["W_aa"]
        A = np.empty((T + 1, H, B), self.dtype)
        A[0] = state[0]
        tmp = np.empty((H, B), self.dtype)
        for t in range(T):
            # a<t> = g(W_aa a<t-1> + W_ax x<t> + b), written over the projection buffer
            np.matmul(W_aa, A[t], out=tmp)
            P[t] += tmp
            self._g(P[t])
            A[t + 1] = P[t]
            if m is not None:
                _keep_padded(A[t + 1], A[t], m[t])
        return {"states": (A,), "act": P}

    def _backward_loop(self, d_out, d_final, cache):
        A, act, m = cache["states"][0], cache["act"], cache["m"]
        T, H, B = act.shape
        W_aaT = self.params["W_aa"].T
        dP = np.empty_like(act)
        da = d_final[0].astype(self.dtype, copy=True)
        for t in reversed(range(T)):
            da += d_out[t]
            da_new, da_carry = self._mask_split(da, None if m is None else m[t])
            # d pre-activation = da * g'(pre), with g' read from the saved output
            if self.activation == "tanh":
                np.multiply(act[t], act[t], out=dP[t])
                np.subtract(1.0, dP[t], out=dP[t])
                dP[t] *= da_new
            else:
                np.multiply(da_new, act[t] > 0, out=dP[t])
            da = W_aaT @ dP[t]
            if da_carry is not None:
                da += da_carry
        return dP, (da,), {}, [(slice(None), A[:-1])]

    def step(self, x_t, state):
        """One step for generation: x_t (B, D), state (a,) -> new state (a,), each (B, H)."""
        p = self.params
        z = x_t @ p["W_ax"].T
        z += p["b"]
        z += state[0] @ p["W_aa"].T
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
        # sigma(x) = 1/2 + 1/2 tanh(x / 2): with the sigmoid gates' rows of the weights halved
        # (exact in binary), one tanh call followed by one multiply-add activates all four gates.
        self._scale = np.full((4 * H, 1), 0.5, self.dtype)
        self._scale[2 * H : 3 * H] = 1.0
        self._shift = np.where(self._scale == 0.5, 0.5, 0.0).astype(self.dtype)

    def _activate_gates(self, z):
        """z (4H, B) holds pre-activations already multiplied by _scale -> [i, f, g, o] in place."""
        np.tanh(z, out=z)
        z *= self._scale
        z += self._shift

    def _forward_loop(self, x, state, m):
        p, s = self.params, self._scale
        P = self._project(x, p["W_ax"] * s, p["b"] * s[:, 0])  # (T, 4H, B), pre-scaled
        T, G4, B = P.shape
        H = self.hidden_size
        W_aa = p["W_aa"] * s
        A = np.empty((T + 1, H, B), self.dtype)
        C = np.empty((T + 1, H, B), self.dtype)
        A[0], C[0] = state
        # without a mask the new cell value is the carried one: share the buffer
        C_new = C[1:] if m is None else np.empty((T, H, B), self.dtype)
        tanh_c = np.empty((T, H, B), self.dtype)
        tmp, ig = np.empty((G4, B), self.dtype), np.empty((H, B), self.dtype)
        for t in range(T):
            z = P[t]
            np.matmul(W_aa, A[t], out=tmp)
            z += tmp
            self._activate_gates(z)
            i, f, g, o = z[:H], z[H : 2 * H], z[2 * H : 3 * H], z[3 * H :]
            # c<t> = Gf * c<t-1> + Gi * c~<t>
            np.multiply(f, C[t], out=C_new[t])
            np.multiply(i, g, out=ig)
            C_new[t] += ig
            # a<t> = Go * tanh(c<t>)
            np.tanh(C_new[t], out=tanh_c[t])
            np.multiply(o, tanh_c[t], out=A[t + 1])
            if m is not None:
                _keep_padded(A[t + 1], A[t], m[t])
                C[t + 1] = C_new[t]
                _keep_padded(C[t + 1], C[t], m[t])
        return {"states": (A, C), "gates": P, "tanh_c": tanh_c}

    def _backward_loop(self, d_out, d_final, cache):
        (A, C), gates, tanh_c, m = cache["states"], cache["gates"], cache["tanh_c"], cache["m"]
        T, G4, B = gates.shape
        H = self.hidden_size
        W_aaT = self.params["W_aa"].T
        dP = np.empty_like(gates)
        da = d_final[0].astype(self.dtype, copy=True)
        dc = d_final[1].astype(self.dtype, copy=True)
        tmp = np.empty((H, B), self.dtype)
        for t in reversed(range(T)):
            z, dz, tc = gates[t], dP[t], tanh_c[t]
            i, f, g, o = z[:H], z[H : 2 * H], z[2 * H : 3 * H], z[3 * H :]
            da += d_out[t]
            m_t = None if m is None else m[t]
            da_new, da_carry = self._mask_split(da, m_t)
            dc_new, dc_carry = self._mask_split(dc, m_t)
            # a = o * tanh(c)  =>  dc += da * o * (1 - tanh(c)^2)
            np.multiply(tc, tc, out=tmp)
            np.subtract(1.0, tmp, out=tmp)
            tmp *= o
            tmp *= da_new
            dc_new = dc_new + tmp
            # d(gate output), block by block: c = f * c_prev + i * g, a = o * tanh(c)
            np.multiply(dc_new, g, out=dz[:H])
            np.multiply(dc_new, C[t], out=dz[H : 2 * H])
            np.multiply(dc_new, i, out=dz[2 * H : 3 * H])
            np.multiply(da_new, tc, out=dz[3 * H :])
            # through the nonlinearities, from the saved outputs: s (1 - s) for i, f, o; 1 - g^2 for g
            deriv = 1.0 - z
            deriv *= z
            np.multiply(g, g, out=deriv[2 * H : 3 * H])
            np.subtract(1.0, deriv[2 * H : 3 * H], out=deriv[2 * H : 3 * H])
            dz *= deriv
            dc = dc_new * f
            da = W_aaT @ dz
            if m is not None:
                da += da_carry
                dc += dc_carry
        return dP, (da, dc), {}, [(slice(None), A[:-1])]

    def step(self, x_t, state):
        """One step: x_t (B, D), state (a, c) -> (a, c), each (B, H)."""
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

    def _forward_loop(self, x, state, m):
        p = self.params
        P = self._project(x, p["W_ax"], p["b"])  # (T, 3H, B)
        T, G3, B = P.shape
        H = self.hidden_size
        W_aa = p["W_aa"]
        A = np.empty((T + 1, H, B), self.dtype)
        A[0] = state[0]
        # reset_after keeps W_aa_n a + b_an (for dGr); reset_before keeps Gr * a (for dW_aa_n)
        saved = np.empty((T, H, B), self.dtype)
        if self.reset_after:
            b_an = p["b_an"][:, None]
            tmp = np.empty((G3, B), self.dtype)
        else:
            W_ru, W_n = W_aa[: 2 * H], W_aa[2 * H :]
            tmp, tmp_n = np.empty((2 * H, B), self.dtype), np.empty((H, B), self.dtype)
        for t in range(T):
            z, a_prev = P[t], A[t]
            if self.reset_after:
                np.matmul(W_aa, a_prev, out=tmp)
                z[: 2 * H] += tmp[: 2 * H]
                sigmoid(z[: 2 * H], out=z[: 2 * H])  # r, u
                np.add(tmp[2 * H :], b_an, out=saved[t])
                # c~ = tanh(W_ax_n x + b_n + Gr * (W_aa_n a + b_an))
                tmp[2 * H :] = saved[t]
                tmp[2 * H :] *= z[:H]
                z[2 * H :] += tmp[2 * H :]
            else:
                np.matmul(W_ru, a_prev, out=tmp)
                z[: 2 * H] += tmp
                sigmoid(z[: 2 * H], out=z[: 2 * H])
                np.multiply(z[:H], a_prev, out=saved[t])
                # c~ = tanh(W_ax_n x + W_aa_n (Gr * a) + b_n)
                np.matmul(W_n, saved[t], out=tmp_n)
                z[2 * H :] += tmp_n
            np.tanh(z[2 * H :], out=z[2 * H :])
            u, n = z[H : 2 * H], z[2 * H :]
            # a<t> = Gu * c~ + (1 - Gu) * a<t-1> = a<t-1> + Gu * (c~ - a<t-1>)
            np.subtract(n, a_prev, out=A[t + 1])
            A[t + 1] *= u
            if m is not None:
                A[t + 1] *= m[t]
            A[t + 1] += a_prev
        return {"states": (A,), "gates": P, "saved": saved}

    def _backward_loop(self, d_out, d_final, cache):
        (A,), gates, saved, m = cache["states"], cache["gates"], cache["saved"], cache["m"]
        T, G3, B = gates.shape
        H = self.hidden_size
        W_aa = self.params["W_aa"]
        dP = np.empty_like(gates)  # gradients of the input-side pre-activations
        # reset_after: the recurrent product sees the n block scaled by Gr, so it needs its own array
        dR = np.empty_like(gates) if self.reset_after else None
        W_aaT, W_ruT, W_nT = W_aa.T, W_aa[: 2 * H].T, W_aa[2 * H :].T
        da = d_final[0].astype(self.dtype, copy=True)
        for t in reversed(range(T)):
            z, dz, a_prev = gates[t], dP[t], A[t]
            r, u, n = z[:H], z[H : 2 * H], z[2 * H :]
            da += d_out[t]
            da_new, da_carry = self._mask_split(da, None if m is None else m[t])
            # a = a_prev + u * (n - a_prev)
            np.multiply(da_new * (n - a_prev), u * (1.0 - u), out=dz[H : 2 * H])  # du, pre-activation
            np.multiply(da_new * u, 1.0 - n * n, out=dz[2 * H :])  # dn, pre-activation
            da_prev = da_new * (1.0 - u)
            if self.reset_after:
                dr = dz[2 * H :] * saved[t]
                np.multiply(dr, r * (1.0 - r), out=dz[:H])
                dR[t, : 2 * H] = dz[: 2 * H]
                np.multiply(dz[2 * H :], r, out=dR[t, 2 * H :])
                da_prev += W_aaT @ dR[t]
            else:
                d_ra = W_nT @ dz[2 * H :]  # gradient of Gr * a_prev
                np.multiply(d_ra * a_prev, r * (1.0 - r), out=dz[:H])
                da_prev += d_ra * r
                da_prev += W_ruT @ dz[: 2 * H]
            if da_carry is not None:
                da_prev += da_carry
            da = da_prev
        if self.reset_after:
            return dP, (da,), {"b_an": dR[:, 2 * H :].sum(axis=(0, 2))}, [(dR, A[:-1])]
        return dP, (da,), {}, [(slice(0, 2 * H), A[:-1]), (slice(2 * H, 3 * H), saved)]

    def step(self, x_t, state):
        """One step: x_t (B, D), state (a,) -> (a,), each (B, H)."""
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
