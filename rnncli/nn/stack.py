"""Deep, bidirectional and pyramidal RNNs: layers stacked, each optionally paired with a reverse twin.

Layer k reads the (concatenated) outputs of layer k-1. A pyramid of P levels (Listen, Attend
and Spell) joins each pair of neighbouring outputs of layers 0 .. P-1 into one step before the
next layer reads them (nn/reduce.py), so the top layer runs at 1 / 2^P of the input's rate.
Inverted dropout sits between layers (never on the first layer's input, never at evaluation), as
in PyTorch's `dropout=` argument.

The reverse direction reads each sequence backwards from *its own* last real token: the
input is permuted per sequence, x_rev[t, b] = x[L_b - 1 - t, b] for t < L_b (padding stays at
the end), the ordinary forward pass runs with the ordinary mask, and the outputs are permuted
back with the same index (the permutation is its own inverse). So padding never reaches the
reverse state, and the reverse final state is the one after reading token 0.

Parameter names: "l{k}.W_ax" for layer k, "l{k}_reverse.W_ax" for its reverse direction.
"""

import numpy as np

from rnncli.nn.layers import dropout_mask
from rnncli.nn.names import layer_name
from rnncli.nn.recurrent import make_cell
from rnncli.nn.reduce import join_steps, join_steps_backward, reduced_mask


def reverse_index(mask):
    """mask (T, B) -> time index (T, B) that reverses each sequence within its length."""
    T, B = mask.shape
    lengths = mask.sum(axis=0).astype(np.int64)  # (B,)
    t = np.arange(T)[:, None]
    return np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)


class RecurrentStack:
    """num_layers recurrent layers, each one- or two-directional.

    States are a list with one tuple per (layer, direction), in the order
    l0, l0_reverse, l1, l1_reverse, ...; each tuple holds (B, H) arrays ((a,) or (a, c)).
    """

    def __init__(self, cell, input_size, hidden_size, rng, num_layers=1, bidirectional=False,
                 dropout=0.0, dtype=np.float32, activation="tanh", reset_after=True, pyramid=0):
        if num_layers < 1:
            raise ValueError("num_layers must be at least 1")
        if not 0 <= pyramid < num_layers:
            raise ValueError("a pyramid joins steps between layers: at most num_layers - 1 levels")
        self.pyramid = pyramid
        if not 0.0 <= dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")
        self.cell, self.hidden_size, self.num_layers = cell, hidden_size, num_layers
        self.bidirectional, self.dropout, self.dtype = bidirectional, dropout, np.dtype(dtype)
        self.directions = 2 if bidirectional else 1
        self.output_size = hidden_size * self.directions
        self.layers = []  # layers[k] = [forward cell] or [forward cell, reverse cell]
        self.params = {}  # dotted name -> the cell's own array (shared, not copied)
        size = input_size
        for k in range(num_layers):
            cells = []
            for d in range(self.directions):
                c = make_cell(cell, size, hidden_size, rng, dtype, activation, reset_after)
                for name, arr in c.params.items():
                    self.params[f"{layer_name(k, d)}.{name}"] = arr
                cells.append(c)
            self.layers.append(cells)
            size = self.output_size * (2 if k < pyramid else 1)  # a joined pair of steps is twice as wide

    @property
    def cells(self):
        return [c for cells in self.layers for c in cells]

    def output_mask(self, mask):
        """The input's mask (T, B) -> the top layer's (T / 2^pyramid, B)."""
        return reduced_mask(mask, 2**self.pyramid) if self.pyramid else mask

    def initial_state(self, batch):
        return [c.initial_state(batch) for c in self.cells]

    def forward(self, x, states=None, mask=None, train=False, rng=None):
        """x (T, B, D), mask (T, B) or None -> out (T', B, directions * H) with T' = T / 2^pyramid,
        final states, cache."""
        T, B, _ = x.shape
        if (self.bidirectional or self.pyramid) and mask is None:
            mask = np.ones((T, B), self.dtype)
        cols = np.arange(B)[None, :]
        h, finals, caches = x, [], []
        for k, cells in enumerate(self.layers):
            below = mask
            if 0 < k <= self.pyramid:  # the pyramid: neighbouring steps of the layer below side by side
                h, mask = join_steps(h, mask, 2)
            rev = reverse_index(mask) if self.bidirectional else None
            drop = dropout_mask(rng, h.shape, self.dropout, self.dtype) if (train and k > 0) else None
            inp = h * drop if drop is not None else h
            outs, layer_caches = [], []
            for d, c in enumerate(cells):
                s0 = None if states is None else states[k * self.directions + d]
                if d == 0:
                    out, final, cache = c.forward(inp, s0, mask)
                else:
                    out, final, cache = c.forward(inp[rev, cols], s0, mask)
                    out = out[rev, cols]
                outs.append(out)
                finals.append(final)
                layer_caches.append(cache)
            h = outs[0] if len(outs) == 1 else np.concatenate(outs, axis=-1)
            caches.append((drop, layer_caches, rev, below))
        return h, finals, {"layers": caches, "cols": cols}

    def backward(self, d_out, d_finals, cache):
        """d_out (T, B, directions * H) or None, d_finals list like the states (or None).
        Returns dx (T, B, D), the initial states' gradients, and grads by dotted name."""
        cols, H = cache["cols"], self.hidden_size
        grads, d_states = {}, [None] * len(self.cells)
        dh = d_out
        for k in reversed(range(self.num_layers)):
            drop, layer_caches, rev, below = cache["layers"][k]
            d_inp = None
            for d, c in enumerate(self.layers[k]):
                idx = k * self.directions + d
                d_final = None if d_finals is None else d_finals[idx]
                # dh is None when only the final states matter (many-to-one, pool=last)
                dh_d = None if dh is None else dh[:, :, d * H : (d + 1) * H]
                if d == 0:
                    dx, ds0, g = c.backward(dh_d, d_final, layer_caches[d])
                else:
                    dh_d = None if dh_d is None else dh_d[rev, cols]
                    dx, ds0, g = c.backward(dh_d, d_final, layer_caches[d])
                    dx = dx[rev, cols]
                d_inp = dx if d_inp is None else d_inp + dx
                d_states[idx] = ds0
                for name, arr in g.items():
                    grads[f"{layer_name(k, d)}.{name}"] = arr
            if drop is not None:
                d_inp *= drop
            if 0 < k <= self.pyramid:
                d_inp = join_steps_backward(d_inp, below, 2)
            dh = d_inp
        return dh, d_states, grads

    def step(self, x_t, states):
        """One step of a unidirectional stack (generation): x_t (B, D) -> top output (B, H), states."""
        if self.bidirectional:
            raise ValueError("a bidirectional stack cannot generate step by step")
        new_states, h = [], x_t
        for cells, s in zip(self.layers, states, strict=True):
            s = cells[0].step(h, s)
            new_states.append(s)
            h = s[0]
        return h, new_states
