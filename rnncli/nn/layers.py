"""Embedding, Linear and inverted dropout: the non-recurrent pieces of every model.
(Word dropout, which knows the vocabulary's special ids, is in tasks/word_dropout.py.)"""

import numpy as np

from rnncli.nn.init import fan_in_uniform, glorot_uniform, standard_normal, zeros
from rnncli.nn.names import prefixed
from rnncli.nn.rows import RowGradient, sum_rows


class Embedding:
    """Lookup table E (V, D): ids (...,) -> vectors (..., D).

    sparse = True: backward gives only the rows the ids used (nn/rows.py), for large tables;
    frozen (V,) bool, with sparse: rows that get no gradient at all (pretrained vectors kept fixed);
    as_rows = True: backward gives the rows too, but the update stays dense (lazy=False): a compact
    gradient for data-parallel workers to send each other (parallel/)."""

    def __init__(self, vocab_size, dim, rng, dtype=np.float32):
        # N(0, 1) rows, as PyTorch's nn.Embedding; the recurrent input weights rescale them
        self.params = {"E": standard_normal(rng, (vocab_size, dim), dtype)}
        self.width = dim  # what each id becomes: D numbers
        self.sparse = self.as_rows = False
        self.frozen = None

    def forward(self, ids):
        return self.params["E"][ids]

    def backward(self, d_out, ids):
        """Scatter-add d_out (..., D) into the rows that ids used (nn/rows.py's sum_rows); returns
        {"E": (V, D)}, or {"E": RowGradient} for a sparse table or one sent as rows."""
        E = self.params["E"]
        rows, values = sum_rows(ids.reshape(-1), d_out.reshape(-1, E.shape[1]))
        if self.sparse or self.as_rows:
            if self.frozen is not None:
                free = ~self.frozen[rows]
                rows, values = rows[free], values[free]
            return {"E": RowGradient(rows, values, E.shape, lazy=self.sparse)}
        dE = np.zeros_like(E)
        dE[rows] = values
        return {"E": dE}


class Linear:
    """y = x W^T + b with W (out, in), as the lecture's y<t> = W_ya a<t> + b_y."""

    def __init__(self, in_size, out_size, rng, dtype=np.float32, init="glorot"):
        """init "glorot": W ~ Glorot uniform, b = 0; "fan_in": W and b ~ U(+-1/sqrt(in)), as PyTorch's
        nn.Linear starts (nn/init.py: the encoder-decoder learns much faster from it)."""
        if init == "glorot":
            self.params = {"W": glorot_uniform(rng, (out_size, in_size), dtype), "b": zeros(rng, out_size, dtype)}
        else:
            self.params = {"W": fan_in_uniform(rng, (out_size, in_size), in_size, dtype),
                           "b": fan_in_uniform(rng, (out_size,), in_size, dtype)}

    def forward(self, x):
        """x (..., in) -> (..., out), as one matrix product over all leading positions."""
        W = self.params["W"]
        y = x.reshape(-1, W.shape[1]) @ W.T
        y += self.params["b"]
        return y.reshape(*x.shape[:-1], W.shape[0])

    def backward(self, d_out, x):
        """d_out (..., out), x (..., in) -> dx (..., in), grads."""
        W = self.params["W"]
        d2 = d_out.reshape(-1, W.shape[0])
        grads = {"W": d2.T @ x.reshape(-1, W.shape[1]), "b": d2.sum(axis=0)}
        return (d2 @ W).reshape(*d_out.shape[:-1], W.shape[1]), grads


class InitialState:
    """Vectors -> the initial state of one recurrent layer, one Linear per state array:
    a<0> = tanh(W_a x_a + b_a), and for an LSTM c<0> = W_c x_c + b_c (a cell needs no squashing).
    Parameters "a.W", "a.b" (and "c.W", "c.b"). The encoder-decoder's bridge and the conditional
    language model's label projection are both this."""

    def __init__(self, in_size, hidden, n_states, rng, dtype=np.float32, init="glorot"):
        self.parts = [Linear(in_size, hidden, rng, dtype, init) for _ in range(n_states)]
        self.params = {}
        for j, lin in enumerate(self.parts):
            self.params.update(prefixed("ac"[j], lin.params))

    def forward(self, xs):
        """xs: one (B, in) input per state array -> the state tuple of (B, H) arrays."""
        state = []
        for j, (lin, x) in enumerate(zip(self.parts, xs, strict=True)):
            z = lin.forward(x)
            if j == 0:
                np.tanh(z, out=z)
            state.append(z)
        return tuple(state)

    def backward(self, d_state, xs, state):
        """d_state like the state, xs and state from forward -> one dx per state array, grads."""
        dxs, grads = [], {}
        for j, (lin, x, z, d) in enumerate(zip(self.parts, xs, state, d_state, strict=True)):
            dx, g = lin.backward(d * (1.0 - z * z) if j == 0 else d, x)
            dxs.append(dx)
            grads.update(prefixed("ac"[j], g))
        return dxs, grads


def dropout_mask(rng, shape, rate, dtype):
    """Inverted dropout: keep with probability 1 - rate and scale by 1 / (1 - rate),
    so that nothing needs rescaling at evaluation time. Returns None when rate is 0."""
    if rate <= 0.0:
        return None
    keep = rng.random(shape, dtype=np.float32) >= rate
    return keep.astype(dtype) * dtype.type(1.0 / (1.0 - rate))


class FrameInput:
    """Inputs that are numbers, x<t> in R^D (log-mel frames, sensor readings): the frame's counterpart
    of a token's embedding row is a learned projection e<t> = W x<t> + b (D -> E), the lecture's
    W_ax x<t> split in two so that the recurrent stack is the same as for words. With E = 0 the
    frames go in as they are. Parameters "W" (E, D), "b" (E,); none when direct."""

    def __init__(self, dim, out, rng, dtype=np.float32):
        self.linear = Linear(dim, out, rng, dtype) if out else None
        self.params = self.linear.params if out else {}
        self.dtype, self.width = np.dtype(dtype), out or dim

    def forward(self, x):
        """x (T, B, D) -> (T, B, E)."""
        x = x.astype(self.dtype, copy=False)
        return self.linear.forward(x) if self.linear else x

    def backward(self, d_out, x):
        """d_out (T, B, E) -> {"W", "b"} (empty when direct: frames have no parameters to learn)."""
        return self.linear.backward(d_out, x.astype(self.dtype, copy=False))[1] if self.linear else {}


def input_layer(vocab_size, embed, rng, dtype, frame_dim=None, projection=None):
    """The first layer of a classifier, regressor or tagger -> (layer, its parameters by full name):
    an Embedding ("embedding.E") for token ids, or a FrameInput ("input.W", "input.b") for frames of
    frame_dim numbers, projected to `projection` (None: embed; 0: the frames as they are)."""
    if frame_dim is None:
        layer = Embedding(vocab_size, embed, rng, dtype)
        return layer, {"embedding.E": layer.params["E"]}
    layer = FrameInput(frame_dim, embed if projection is None else projection, rng, dtype)
    return layer, prefixed("input", layer.params)


def input_grads(layer, d_out, read):
    """Gradients of input_layer's parameters, by full name, from d of its output and what it read."""
    if isinstance(layer, FrameInput):
        return prefixed("input", layer.backward(d_out, read))
    return {"embedding.E": layer.backward(d_out, read)["E"]}
