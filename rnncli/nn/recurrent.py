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
  the weight gradients are one product each over all T*B columns after the loop. The LSTM
  computes what its gradients need from the forward pass alone a block of steps at a time
  (LSTM._gate_factors), so each step keeps only the recurrence's few operations.

Masks: mask (T, B) holds 1 for real steps and 0 for padding. A padded step keeps the state,
a<t> = m * a_new + (1 - m) * a<t-1>, so padding after a sequence's end never changes its
final state, and the gradient reaching the parameters from a padded step is exactly zero.
"""

from functools import cached_property

import numpy as np

from rnncli.nn.functional import sigmoid
from rnncli.nn.init import glorot_uniform, recurrent_orthogonal, zeros


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
            "b": zeros(rng, (G * H,), self.dtype),
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
        T, B, _ = cache["x"].shape
        H = self.hidden_size
        # one transposing copy for all steps: each step then adds a contiguous (H, B) slab
        d_out = np.zeros((T, H, B), self.dtype) if d_out is None else np.ascontiguousarray(d_out.transpose(0, 2, 1))
        d_final = [np.zeros((H, B), self.dtype) if d is None else d.T for d in (d_final or [None] * self.n_states)]
        dx, d_state0, grads = self._backward_loop(d_out, d_final, cache)
        return dx, tuple(d.T for d in d_state0), grads

    def _input_side(self, dP, x, grads, A=None):
        """The gradients of the input projection W_ax x<t> + b from the pre-activations' dP
        (T, G*H, B): one product each over all T*B columns, after the time loop.
        With the states A (T+1, H, B), W_aa's gradient comes from the same product: dP as columns
        (G*H, T*B) times [x<t>; a<t-1>] side by side (T*B, D + H), one larger product, not two.
        Fills grads["W_ax"], grads["b"] (and grads["W_aa"]); returns dx (T, B, D) and dP as
        columns (G*H, T*B)."""
        T, B, D = x.shape
        dPg = _columns(dP)  # (G*H, T*B): moves whole rows of B, cheap
        if A is None:
            grads["W_ax"] = dPg @ x.reshape(T * B, D)
        else:
            XA = np.empty((T, B, D + self.hidden_size), self.dtype)
            XA[:, :, :D] = x
            XA[:, :, D:] = A[:-1].transpose(0, 2, 1)
            both = dPg @ XA.reshape(T * B, -1)  # (G*H, D + H): sum over t of dP<t> [x<t>; a<t-1>]^T
            grads["W_ax"], grads["W_aa"] = np.ascontiguousarray(both[:, :D]), np.ascontiguousarray(both[:, D:])
        grads["b"] = dPg.sum(axis=1)
        return (dPg.T @ self.params["W_ax"]).reshape(T, B, D), dPg

    def _mask_buffers(self, shape, m):
        """Buffers for splitting a state gradient at padded steps (None without a mask)."""
        return (np.empty(shape, self.dtype), np.empty(shape, self.dtype)) if m is not None else None

    @staticmethod
    def _mask_split(d, m_t, buffers):
        """Split a state gradient into the part reaching the new value and the part carried
        past a padded step: d_new = m * d, d_carry = d - d_new (into `buffers`)."""
        if m_t is None:
            return d, None
        d_new, d_carry = buffers
        np.multiply(d, m_t, out=d_new)
        np.subtract(d, d_new, out=d_carry)
        return d_new, d_carry


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
        W_aaT = np.ascontiguousarray(self.params["W_aa"].T)  # a contiguous W_aa^T: faster products with out=
        dP = np.empty_like(act)
        da = d_final[0].astype(self.dtype, copy=True)
        split = self._mask_buffers((H, B), m)
        positive = np.empty((H, B), bool) if self.activation == "relu" else None
        for t in reversed(range(T)):
            da += d_out[t]
            da_new, da_carry = self._mask_split(da, None if m is None else m[t], split)
            # d pre-activation = da * g'(pre), with g' read from the saved output a<t>
            if self.activation == "tanh":
                np.multiply(act[t], act[t], out=dP[t])
                np.subtract(1.0, dP[t], out=dP[t])
                dP[t] *= da_new
            else:
                np.greater(act[t], 0, out=positive)
                np.multiply(da_new, positive, out=dP[t])
            # a<t> = g(W_aa a<t-1> + ...)  =>  da<t-1> = W_aa^T d pre-activation
            np.matmul(W_aaT, dP[t], out=da)
            if da_carry is not None:
                da += da_carry
        grads = {}
        dx, dPg = self._input_side(dP, cache["x"], grads)
        grads["W_aa"] = dPg @ _columns(A[:-1]).T  # sum over t of dP<t> a<t-1>^T
        return dx, (da,), grads

    def step(self, x_t, state):
        """One step for generation: x_t (B, D), state (a,) -> new state (a,), each (B, H)."""
        p = self.params
        z = x_t @ p["W_ax"].T
        z += p["b"]
        z += state[0] @ p["W_aa"].T
        return (self._g(z),)


class OneTanhGates:
    """The LSTM's gate activation [sigma, sigma, tanh, sigma] over the blocks [i, f, g, o] of
    (4H, B) pre-activations, with one tanh call for all four.

    sigma(x) = 1/2 + 1/2 tanh(x / 2). So the sigmoid blocks' pre-activations are halved first
    (`prescale` halves their rows of W_ax, W_aa and b, exact in binary), then y = scale *
    tanh(z) + shift with (scale, shift) = (1/2, 1/2) on the sigmoid rows and (1, 0) on g's.
    Its derivative with respect to the unscaled pre-activation, read from the output y:
    y (1 - y) on the sigmoid rows, 1 - y^2 on the candidate's.
    """

    def __init__(self, H, dtype):
        self.H = H
        self.scale = np.full((4 * H, 1), 0.5, dtype)
        self.scale[2 * H : 3 * H] = 1.0
        self.shift = np.where(self.scale == 0.5, 0.5, 0.0).astype(dtype)
        self._full = {}

    def prescale(self, rows):
        """W (4H, ...) or b (4H,) -> a copy with the sigmoid gates' rows halved."""
        return rows * (self.scale if rows.ndim == 2 else self.scale[:, 0])

    def activate(self, z):
        """In place: prescaled pre-activations z (4H, B) -> gate outputs [i, f, g, o]."""
        np.tanh(z, out=z)
        # scale and shift as whole (4H, B) arrays: a (4H, 1) column broadcast along rows of B
        # numbers costs NumPy twice as much, once per time step
        B = z.shape[1]
        if B not in self._full:
            self._full[B] = tuple(np.ascontiguousarray(np.broadcast_to(a, (4 * self.H, B)))
                                  for a in (self.scale, self.shift))
        scale, shift = self._full[B]
        z *= scale
        z += shift

    def derivative(self, y, out):
        """out (..., 4H, B) = d gate output / d pre-activation, from the outputs y (..., 4H, B)."""
        H = self.H
        np.subtract(1.0, y, out=out)
        out *= y  # sigma' = s (1 - s)
        g, dg = y[..., 2 * H : 3 * H, :], out[..., 2 * H : 3 * H, :]
        np.multiply(g, g, out=dg)
        np.subtract(1.0, dg, out=dg)  # tanh' = 1 - g^2


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

    @cached_property
    def gates(self):
        return OneTanhGates(self.hidden_size, self.dtype)  # made at first use: a Blueprint allocates nothing

    def _forward_loop(self, x, state, m):
        p, gates = self.params, self.gates
        P = self._project(x, gates.prescale(p["W_ax"]), gates.prescale(p["b"]))  # (T, 4H, B), prescaled
        T, G4, B = P.shape
        H = self.hidden_size
        W_aa = gates.prescale(p["W_aa"])
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
            gates.activate(z)
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

    # the gate factors are computed a block of steps at a time: large enough that NumPy's per-call
    # cost is shared by several steps, small enough (about 1 MB) to still be in cache when the
    # steps read them (measured: 1 MB blocks beat 256 KB ones and all T steps at once, bench/core.py)
    FACTOR_BLOCK_BYTES = 1 << 20

    def _gate_factors(self, Y, C_prev, tanh_c, m, F, K):
        """For a block of n steps, what the gradients need from the forward pass alone:
        F (n, 4H, B) and K (n, H, B) filled, and returns the factor dc<t-1> = dc<t> * it (n, H, B).
        Through c<t> = Gf * c<t-1> + Gi * c~<t> and a<t> = Go * tanh(c<t>):
            dz_i = dc * c~ Gi(1-Gi),  dz_f = dc * c<t-1> Gf(1-Gf),  dz_g = dc * Gi (1-c~^2),
            dz_o = da * tanh(c) Go(1-Go),  and  dc += da * K with K = Go (1 - tanh(c)^2),
        so F holds the four factors after c~, c<t-1>, Gi and tanh(c), times the gates' derivatives."""
        H = self.hidden_size
        i, f, g, o = (Y[:, k * H : (k + 1) * H] for k in range(4))
        self.gates.derivative(Y, F)
        F[:, :H] *= g
        F[:, H : 2 * H] *= C_prev
        F[:, 2 * H : 3 * H] *= i
        F[:, 3 * H :] *= tanh_c
        np.multiply(tanh_c, tanh_c, out=K)
        np.subtract(1.0, K, out=K)
        K *= o
        if m is None:
            return f
        # a padded step (m = 0) gives its gates no gradient and carries da and dc past it unchanged:
        # the factors are masked and dc goes through m Gf + (1 - m) (da's carry is in the loop)
        F *= m
        K *= m
        return f * m + (1.0 - m)

    def _backward_loop(self, d_out, d_final, cache):
        (A, C), Y, tanh_c, m = cache["states"], cache["gates"], cache["tanh_c"], cache["m"]
        T, G4, B = Y.shape
        H = self.hidden_size
        F = np.empty_like(Y)  # the factors, then dP: each step overwrites its factors with its gradients
        block = max(1, self.FACTOR_BLOCK_BYTES // (G4 * B * Y.itemsize))
        K = np.empty((min(block, T), H, B), self.dtype)
        W_aaT = np.ascontiguousarray(self.params["W_aa"].T)  # a contiguous W_aa^T: faster products with out=
        da = d_final[0].astype(self.dtype, copy=True)
        dc = d_final[1].astype(self.dtype, copy=True)
        tmp = np.empty((H, B), self.dtype)
        carry = np.empty((H, B), self.dtype) if m is not None else None
        keep = None if m is None else 1.0 - m  # (T, 1, B): the share of da a padded step carries past itself
        for stop in range(T, 0, -block):  # blocks of steps, last first
            first = max(0, stop - block)
            n = stop - first
            f = self._gate_factors(Y[first:stop], C[first:stop], tanh_c[first:stop],
                                   None if m is None else m[first:stop], F[first:stop], K[:n])
            # per step, only what the recurrence needs: 6 small operations and the product with W_aa^T
            for t in reversed(range(first, stop)):
                dz, j = F[t], t - first
                da += d_out[t]
                np.multiply(da, K[j], out=tmp)
                dc += tmp
                dz3 = dz[: 3 * H].reshape(3, H, B)  # i, f, g: each block times dc
                np.multiply(dz3, dc, out=dz3)
                dz[3 * H :] *= da
                if m is not None:
                    np.multiply(da, keep[t], out=carry)
                dc *= f[j]  # c<t-1> reaches c<t> through Gf
                np.matmul(W_aaT, dz, out=da)  # a<t-1> reaches every gate through W_aa
                if m is not None:
                    da += carry
        grads = {}
        dx, _ = self._input_side(F, cache["x"], grads, A)
        return dx, (da, dc), grads

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
            self.params["b_an"] = zeros(rng, (hidden_size,), self.dtype)

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
        (T, _, B), H, W_aa = gates.shape, self.hidden_size, self.params["W_aa"]
        # contiguous transposes, made once (only those this formulation uses): the per-step
        # products with out= run faster on them
        W_aaT = np.ascontiguousarray(W_aa.T) if self.reset_after else None
        W_ruT, W_nT = (None, None) if self.reset_after else (np.ascontiguousarray(W_aa[: 2 * H].T),
                                                             np.ascontiguousarray(W_aa[2 * H :].T))
        dP = np.empty_like(gates)  # gradients of the input-side pre-activations
        # reset_after: the recurrent product sees the n block scaled by Gr, so it needs its own array
        dR = np.empty_like(gates) if self.reset_after else None
        da = d_final[0].astype(self.dtype, copy=True)
        # every temporary of the loop, allocated once; da and da_prev swap roles each step
        da_prev, tmp, gate_slope, h_tmp = (np.empty((H, B), self.dtype) for _ in range(4))
        split = self._mask_buffers((H, B), m)
        for t in reversed(range(T)):
            z, dz, a_prev = gates[t], dP[t], A[t]
            r, u, n = z[:H], z[H : 2 * H], z[2 * H :]
            da += d_out[t]
            da_new, da_carry = self._mask_split(da, None if m is None else m[t], split)
            # a = a_prev + u * (n - a_prev): du = da (n - a_prev), times sigma' = u (1 - u);
            # 1 - u, computed once, also carries da straight to a_prev below
            np.subtract(1.0, u, out=da_prev)
            np.multiply(da_prev, u, out=gate_slope)
            np.subtract(n, a_prev, out=tmp)
            tmp *= da_new
            np.multiply(tmp, gate_slope, out=dz[H : 2 * H])
            # dn = da u, times tanh' = 1 - n^2
            np.multiply(n, n, out=tmp)
            np.subtract(1.0, tmp, out=tmp)
            tmp *= u
            np.multiply(tmp, da_new, out=dz[2 * H :])
            # the direct path: da_prev = da (1 - u)
            da_prev *= da_new
            np.subtract(1.0, r, out=gate_slope)
            gate_slope *= r  # sigma'(r) = r (1 - r)
            if self.reset_after:
                # c~ = tanh(... + Gr * (W_aa_n a + b_an)): dGr = dn * saved, saved = W_aa_n a + b_an
                np.multiply(dz[2 * H :], saved[t], out=tmp)
                np.multiply(tmp, gate_slope, out=dz[:H])
                dR[t, : 2 * H] = dz[: 2 * H]
                np.multiply(dz[2 * H :], r, out=dR[t, 2 * H :])
                np.matmul(W_aaT, dR[t], out=h_tmp)
                da_prev += h_tmp
            else:
                # c~ = tanh(... + W_aa_n (Gr * a)): the gradient of Gr * a_prev first
                np.matmul(W_nT, dz[2 * H :], out=h_tmp)
                np.multiply(h_tmp, a_prev, out=tmp)
                np.multiply(tmp, gate_slope, out=dz[:H])
                h_tmp *= r
                da_prev += h_tmp
                np.matmul(W_ruT, dz[: 2 * H], out=h_tmp)
                da_prev += h_tmp
            if da_carry is not None:
                da_prev += da_carry
            da, da_prev = da_prev, da
        grads = {}
        dx, dPg = self._input_side(dP, cache["x"], grads)
        grads.update(_gru_recurrent_grads(W_aa, A, dPg, dR, saved))
        return dx, (da,), grads

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


def _gru_recurrent_grads(W_aa, A, dPg, dR, saved):
    """The GRU's recurrent weights' gradients, summed over steps and batch: A (T+1, H, B) the states,
    dPg (3H, T*B) the pre-activations' gradients; reset_after (dR given): dW_aa = dR a_prev^T and
    db_an; else r and u read a_prev and the candidate reads Gr * a_prev (saved)."""
    H = A.shape[1]
    A_prev = _columns(A[:-1]).T  # (T*B, H)
    if dR is not None:
        dRg = _columns(dR)
        return {"W_aa": dRg @ A_prev, "b_an": dRg[2 * H :].sum(axis=1)}
    dW_aa = np.empty_like(W_aa)
    np.matmul(dPg[: 2 * H], A_prev, out=dW_aa[: 2 * H])
    np.matmul(dPg[2 * H :], _columns(saved).T, out=dW_aa[2 * H :])
    return {"W_aa": dW_aa}


N_GATES = {"rnn": RNN.n_gates, "gru": GRU.n_gates, "lstm": LSTM.n_gates}  # G: a layer's W_ax has G·H rows


def make_cell(cell, input_size, hidden_size, rng, dtype=np.float32, activation="tanh", reset_after=True):
    """Build a layer by name; options that do not apply to the cell are ignored."""
    if cell == "rnn":
        return RNN(input_size, hidden_size, rng, dtype, activation=activation)
    if cell == "gru":
        return GRU(input_size, hidden_size, rng, dtype, reset_after=reset_after)
    if cell == "lstm":
        return LSTM(input_size, hidden_size, rng, dtype)
    raise ValueError(f"unknown cell {cell!r} (choose rnn, gru or lstm)")
