"""Character convolution with max-over-time pooling: a word's features from its characters.

For each word (a column n) and each character position l, a width-w filter bank reads the
window of character embeddings around l,

    z<l> = W_f [x<l-1>; x<l>; x<l+1>] + b_f          (w = 3: one character either side)
    feature = tanh(max over the word's real positions l of z<l>)

so each of the F filters fires on a character n-gram (a capital after a space, "-ville", a
digit run) wherever it occurs in the word. The max comes before the tanh: tanh is monotone,
so tanh(max z) = max tanh(z), and the nonlinearity runs on (N, F) numbers instead of (L, N, F).
Characters past a word's end read as zeros, exactly as if the word were alone in the batch,
which keeps features independent of padding. Unlike a character RNN there is no loop over
positions: the whole batch is one matrix product, which is why it is the faster choice.
"""

import numpy as np

from rnncli.nn.init import glorot_uniform, zeros


class CharConv:
    def __init__(self, input_size, filters, rng, width=3, dtype=np.float32):
        if width % 2 != 1:
            raise ValueError("the window width must be odd, so that it centres on a character")
        self.width, self.filters, self.dtype = width, filters, np.dtype(dtype)
        self.params = {"W": glorot_uniform(rng, (filters, width * input_size), dtype),
                       "b": zeros(rng, (filters,), dtype)}

    def _windows(self, x):
        """x (L, N, C) -> (L, N, w*C): the w embeddings centred on each position, side by side."""
        L, N, C = x.shape
        half = self.width // 2
        padded = np.zeros((L + 2 * half, N, C), x.dtype)
        padded[half : half + L] = x
        return np.concatenate([padded[k : k + L] for k in range(self.width)], axis=-1)

    def forward(self, x, mask):
        """x (L, N, C) character embeddings, mask (L, N) 1 for real characters ->
        features (N, F) (zeros for a word without characters, i.e. a padded position) and a cache."""
        L, N, _ = x.shape
        real = mask > 0
        X = self._windows(np.where(real[:, :, None], x, 0)).reshape(L * N, -1)  # (L N, wC)
        Z = (X @ self.params["W"].T + self.params["b"]).reshape(L, N, -1)  # (L, N, F)
        Z += np.where(real, 0, -np.inf).astype(self.dtype)[:, :, None]  # past a word's end never wins
        top = Z.max(axis=0)  # (N, F) each filter's strongest response
        has_chars = real.any(axis=0)[:, None]  # (N, 1)
        out = np.where(has_chars, np.tanh(top), 0).astype(self.dtype)
        return out, (X, real, Z, top, has_chars, out)

    def backward(self, d_out, cache):
        """d_out (N, F) -> dx (L, N, C), {"W", "b"}."""
        X, real, Z, top, has_chars, out = cache
        L, N, F = Z.shape
        # through tanh, then only the winning position of each filter receives gradient; when a
        # word repeats an n-gram (the "iss" of "Mississippi") the tied positions share it equally
        d_max = np.where(has_chars, d_out * (1 - out * out), 0)  # (N, F)
        wins = Z == top  # (L, N, F)
        share = (d_max / np.maximum(wins.sum(axis=0), 1)).astype(self.dtype)  # (N, F)
        dZ = (wins * share).reshape(L * N, F)
        grads = {"W": dZ.T @ X, "b": dZ.sum(axis=0)}
        dX = (dZ @ self.params["W"]).reshape(L, N, self.width, -1)  # (L, N, w, C)
        # each window slot k read x<l + k - half>: add its gradient back at that position
        half = self.width // 2
        d_padded = np.zeros((L + 2 * half, N, dX.shape[-1]), self.dtype)
        for k in range(self.width):
            d_padded[k : k + L] += dX[:, :, k]
        dx = np.where(real[:, :, None], d_padded[half : half + L], 0)
        return dx, grads
