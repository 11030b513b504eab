"""A gradient that touches only some rows of a table: what an embedding's backward gives when
the table is large (pretrained vectors: 100,000 rows, of which a batch reads a few hundred).

    rows (n,) unique, ascending; values (n, D): the gradient of those rows, zero elsewhere

The optimizer then updates only those rows (nn/optim.py, "lazy" as PyTorch's SparseAdam), and
global-norm clipping reads only them, so a step costs what the batch touched, not the table's size.

lazy = False keeps the dense update (every row's moments move, as for any other array): the rows are
then only a compact way to carry the gradient, which is what data-parallel workers send each other
for a table that is not sparse (parallel/), so that N workers take one process's steps.
"""

import numpy as np


class RowGradient:
    def __init__(self, rows, values, shape, lazy=True):
        self.rows, self.values, self.shape, self.lazy = rows, values, shape, lazy

    def dense(self, start=0, stop=None):
        """The gradient as an array: rows [start, stop) of the table (all of them by default)."""
        stop = self.shape[0] if stop is None else stop
        out = np.zeros((stop - start, *self.shape[1:]), self.values.dtype)
        inside = (self.rows >= start) & (self.rows < stop)
        out[self.rows[inside] - start] = self.values[inside]
        return out

    def __imul__(self, scale):
        self.values *= scale
        return self


def sum_rows(ids, values):
    """Add up the values (n, D) of equal ids (n,) -> (rows (m,) unique, ascending; sums (m, D)).

    np.add.at is unbuffered and slow; sorting the ids and summing each run with np.add.reduceat
    does the same scatter-add with vectorised loops (bench/core.py times both)."""
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    if not len(ids):
        return sorted_ids, values[:0]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    return sorted_ids[starts], np.add.reduceat(values[order], starts, axis=0)


def values_of(g):
    """The array whose entries are a gradient's non-zeros (for norms and finiteness)."""
    return g.values if isinstance(g, RowGradient) else g
