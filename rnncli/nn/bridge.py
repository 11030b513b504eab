"""The bridge of an encoder-decoder: each decoder layer's a<0> from an encoder layer's final states.

Decoder layer k starts from encoder layer `below + k` (the top layers feed the decoder, `below`
= encoder layers - decoder layers). When the two agree in width and the encoder reads one way,
the final state is passed on as it is; otherwise a learned projection per decoder layer
(layers.InitialState) reads the layer's [forward; backward] final states:

    a<0>_dec = tanh(W_a [a_fwd; a_bwd] + b_a)        (and an LSTM's c<0> = W_c [c_fwd; c_bwd] + b_c)
"""

import numpy as np

from rnncli.nn.layers import InitialState
from rnncli.nn.names import layer_name, prefixed


class Bridge:
    """Parameters "l{k}.a.W", "l{k}.a.b" (and "l{k}.c.*") per decoder layer k, or none when the
    states pass as they are."""

    def __init__(self, encoder_layers, decoder_layers, directions, hidden, decoder_hidden, n_states, rng,
                 dtype=np.float32, projected=None):
        """projected: always learn the map (True), or only where the widths or directions call for it (None)."""
        self.below, self.directions, self.hidden = encoder_layers - decoder_layers, directions, hidden
        self.encoder_layers = encoder_layers
        if projected is None:
            projected = directions == 2 or decoder_hidden != hidden
        self.layers = [InitialState(directions * hidden, decoder_hidden, n_states, rng, dtype, init="fan_in")
                       for _ in range(decoder_layers)] if projected else []
        self.params = {}
        for k, layer in enumerate(self.layers):
            self.params.update(prefixed(layer_name(k), layer.params))

    def forward(self, finals):
        """Encoder final states (one tuple per layer and direction) -> decoder initial states (one
        tuple per decoder layer), and what backward needs."""
        if not self.layers:
            return [tuple(s) for s in finals[self.below :]], None
        init, cache, dirs = [], [], self.directions
        for k, layer in enumerate(self.layers):
            ways = finals[dirs * (self.below + k) : dirs * (self.below + k + 1)]  # the layer's directions
            joined = [np.concatenate(arrays, axis=-1) for arrays in zip(*ways, strict=True)]  # (B, dirs H) each
            init.append(layer.forward(joined))
            cache.append((joined, init[-1]))
        return init, cache

    def backward(self, d_init, cache):
        """d_init (one tuple per decoder layer) -> d of the encoder finals (None for the layers that
        feed no decoder layer), grads."""
        if cache is None:
            return [None] * self.below + list(d_init), {}
        H, dirs = self.hidden, self.directions
        d_finals, grads = [None] * (dirs * self.encoder_layers), {}
        for k, (layer, (joined, state)) in enumerate(zip(self.layers, cache, strict=True)):
            d_joined, g = layer.backward(d_init[k], joined, state)
            grads.update(prefixed(layer_name(k), g))
            for way in range(dirs):
                d_finals[dirs * (self.below + k) + way] = tuple(d[:, way * H : (way + 1) * H] for d in d_joined)
        return d_finals, grads
