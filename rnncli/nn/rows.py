"""A gradient that touches only some rows of a table: what an embedding's backward gives when
the table is large (pretrained vectors: 100,000 rows, of which a batch reads a few hundred).

    rows (n,) unique, ascending; values (n, D): the gradient of those rows, zero elsewhere

The optimizer then updates only those rows (nn/optim.py, "lazy" as PyTorch's SparseAdam), and
global-norm clipping reads only them, so a step costs what the batch touched, not the table's size.
"""

import numpy as np


class RowGradient:
    def __init__(self, rows, values, shape):
        self.rows, self.values, self.shape = rows, values, shape

    def dense(self):
        out = np.zeros(self.shape, self.values.dtype)
        out[self.rows] = self.values
        return out

    def __imul__(self, scale):
        self.values *= scale
        return self


def values_of(g):
    """The array whose entries are a gradient's non-zeros (for norms and finiteness)."""
    return g.values if isinstance(g, RowGradient) else g
