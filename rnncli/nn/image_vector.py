"""The source of a captioner that reads the whole image at once: the lectures' one-to-many RNN,
whose first state comes from the picture.

The image arrives as frames (S, B, D) (its columns: frames/images.py), normalised. Flattened, it is
one vector per image, v = [x<1>; x<2>; ...; x<S>] in R^(S*D), and it plays the part an encoder's
final state plays in an encoder-decoder: handed to the bridge (nn/bridge.py) as the final state of
each of `layers` encoder layers, it gives every decoder layer its own start,

    a<0>_k = tanh(W_a,k v + b_a,k)        (and an LSTM's c<0>_k = W_c,k v + b_c,k)

This piece has no parameters of its own (the projections are the bridge's); its backward sums what
the bridge sends back to the copies of v. Nothing attends to it: its memory is v itself, one step.
"""

import numpy as np


class ImageVector:
    """frames (S, B, D) -> one vector (B, S*D), as `layers` final states of `n_states` arrays each."""

    params = {}
    reduction = 1  # one source step is one column
    stack = None  # no recurrent stack reads the image

    def __init__(self, steps, dim, layers, n_states):
        self.steps, self.dim, self.layers, self.n_states = steps, dim, layers, n_states

    @property
    def size(self):
        return self.steps * self.dim

    def forward(self, source, source_mask, train=False, rng=None):
        """-> memory (1, B, S*D), finals (one tuple of n_states (B, S*D) arrays per layer), cache."""
        S, B, D = source.shape
        if (S, D) != (self.steps, self.dim):
            raise ValueError(f"an image of {S} x {D} frames; this model reads {self.steps} x {self.dim}")
        v = np.ascontiguousarray(source.transpose(1, 0, 2)).reshape(B, S * D)  # v = [x<1>; ...; x<S>]
        finals = [tuple(v for _ in range(self.n_states)) for _ in range(self.layers)]
        return v[None], finals, (S, B, D)

    def memory_mask(self, source_mask):
        """The memory is one step, there for every image."""
        return np.ones((1, source_mask.shape[1]), source_mask.dtype)

    def backward(self, d_memory, d_finals, cache):
        """-> grads (none: the pixels are data, and this piece has no parameters)."""
        return {}

