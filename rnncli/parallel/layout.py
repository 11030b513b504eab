"""How workers share out a step: pure functions over named tuples, no MPI (parallel/world.py sends).

A worker's *share* of a global batch is a contiguous run of its columns (share_of). A worker's
*block* of the optimizer's update is a run of rows of the parameters laid end to end, cut into
about equal numbers (blocks_of_rows). The flat buffer of a reduce-scatter is laid out block by
block (block_layout): worker 0's rows of every array, then its tail of scalars; then worker 1's...,
so that each worker receives exactly the sums of its own block.

Embedding tables travel as rows instead (pack_rows / unpack_rows): each worker sends the ids of
the rows its share touched and n_i times their gradients; every worker receives all of them.
"""

import math
from typing import NamedTuple

import numpy as np

from rnncli.errors import RnncliError
from rnncli.nn.rows import RowGradient, sum_rows

IN_PLACE_FROM = 65_536  # an array of this many numbers is gathered on its own, into itself


class Run(NamedTuple):
    """Rows [lo, hi) of the array `name`, worker `worker`'s, at `at` in a flat buffer."""

    worker: int
    name: str
    lo: int
    hi: int
    at: int


class Layout(NamedTuple):
    """A flat buffer laid out block by block."""

    runs: list  # [Run]
    tails: list  # where each worker's tail of scalars starts, by worker
    counts: list  # how many numbers each worker's block holds, by worker


class Plan(NamedTuple):
    """What a step sends how, agreed at the first step (world.MpiWorld.reduce_step)."""

    layout: Layout  # the dense gradients, block by block
    tail: int  # the scalars that end each block: loss, count, tokens, flags
    sparse: dict  # the tables whose gradients travel as rows {name: updated lazily}
    buf: np.ndarray  # the flat buffer sent
    mine: np.ndarray  # this worker's block of the sums, received


def share_of(n, size, rank):
    """The columns [start, stop) of a global batch of n that worker `rank` of `size` reads:
    contiguous, sizes differing by at most one (numpy's array_split), the first ones larger."""
    q, r = divmod(n, size)
    start = rank * q + min(rank, r)
    return slice(start, start + q + (rank < r))


def row_width(a):
    """The numbers in one row of an array (a[0].size; 1 for a vector)."""
    return a.size // max(len(a), 1)


def blocks_of_rows(arrays, size):
    """How `size` workers share out an update of the arrays {name: array} -> [{name: (start, stop)}]
    by worker: the arrays laid end to end in the given order and cut into `size` runs of about equal
    numbers, each cut between two rows (so a block of an array is a view, arrays[name][start:stop])."""
    total = sum(a.size for a in arrays.values())
    cuts = [total * r / size for r in range(size + 1)]
    blocks, at = [{} for _ in range(size)], 0
    for name, a in arrays.items():
        if a.ndim == 0 or not a.flags.c_contiguous:
            raise RnncliError(f"cannot share out the update of {name}: a scalar or a non-contiguous array")
        rows, width = len(a), max(row_width(a), 1)
        bounds = [min(max(math.ceil((c - at) / width), 0), rows) for c in cuts]
        bounds[-1] = rows
        for r in range(size):
            blocks[r][name] = (bounds[r], bounds[r + 1])
        at += a.size
    return blocks


def block_layout(shares, names, width, tail=0):
    """A buffer laid out worker by worker: worker 0's block of rows (shares[0][name]) of each array
    in `names` (width[name] numbers a row), then `tail` numbers; then worker 1's... -> Layout."""
    runs, tails, counts, at = [], [], [], 0
    for r, share in enumerate(shares):
        first = at
        for k in names:
            lo, hi = share[k]
            runs.append(Run(r, k, lo, hi, at))
            at += (hi - lo) * width[k]
        tails.append(at)
        at += tail
        counts.append(at - first)
    return Layout(runs, tails, counts)


def pack_step(plan, grads, count, scalars, params):
    """Fill plan.buf block by block: n_i * this worker's gradients of the block's rows (zeros when it
    has none), and at each block's end the scalars (n_i * loss, n_i, tokens, flags)."""
    for run in plan.layout.runs:
        n = (run.hi - run.lo) * row_width(params[run.name])
        if grads is None:
            plan.buf[run.at : run.at + n] = 0
        else:
            np.multiply(grads[run.name][run.lo : run.hi].reshape(-1), count, out=plan.buf[run.at : run.at + n])
    for at in plan.layout.tails:
        plan.buf[at : at + plan.tail] = scalars


def unpack_step(plan, params, worker):
    """plan.mine, the sums of this worker's block, divided by the global count -> ({name: gradient
    rows of the block}, loss, count, tokens, flags). The arrays are views, reused by the next step."""
    mine, tail = plan.mine, len(plan.mine) - plan.tail
    count = max(float(mine[tail + 1]), 1.0)  # an all-padding batch has no tokens and zero gradients
    mine[: tail + 1] /= mine.dtype.type(count)
    out, at = {}, 0
    for run in plan.layout.runs:
        if run.worker == worker:
            n = (run.hi - run.lo) * row_width(params[run.name])
            out[run.name] = mine[at : at + n].reshape(run.hi - run.lo, *params[run.name].shape[1:])
            at += n
    return out, float(mine[tail]), count, int(round(float(mine[tail + 2]))), mine[tail + 3 :].tolist()


def table_kind(g):
    """How a table's gradient travels: -1 none here, 0 dense, 1 rows updated lazily, 2 rows updated densely."""
    return -1 if g is None else 0 if not isinstance(g, RowGradient) else 1 if g.lazy else 2


def pack_rows(sparse, grads, count, params):
    """This worker's rows of each table in `sparse`, as one flat array (a row is its id, then
    count times its gradient; ids up to 2^24 are exact in float32) -> (flat, rows per table)."""
    dtype = params[next(iter(sparse))].dtype
    parts, rows = [], []
    for k in sparse:
        g = None if grads is None else grads[k]
        n = 0 if g is None else len(g.rows)
        part = np.empty((n, 1 + params[k].shape[1]), dtype)
        if n:
            part[:, 0] = g.rows
            np.multiply(g.values, count, out=part[:, 1:])
        parts.append(part.reshape(-1))
        rows.append(n)
    return np.concatenate(parts) if parts else np.zeros(0, dtype), rows


def unpack_rows(received, counts, sparse, params, total):
    """Every worker's packed rows, worker after worker (counts[worker, table] rows each), summed
    where they meet and divided by the global count -> {name: RowGradient}."""
    widths = [1 + params[k].shape[1] for k in sparse]
    pieces, at = {k: [] for k in sparse}, 0
    for row_counts in counts:
        for k, n, w in zip(sparse, row_counts, widths, strict=True):
            pieces[k].append(received[at : at + int(n) * w].reshape(-1, w))
            at += int(n) * w
    out = {}
    for k, lazy in sparse.items():
        every = np.concatenate(pieces[k])
        rows, summed = sum_rows(every[:, 0].astype(np.int64), every[:, 1:])
        summed /= summed.dtype.type(total)
        out[k] = RowGradient(rows, summed, params[k].shape, lazy=lazy)
    return out


def disagreement(everyone):
    """[(host, {fact: value})] by worker -> the first way a worker differs from worker 0, as a
    sentence, or None when they all agree."""
    host0, lead = everyone[0]
    for rank, (host, theirs) in enumerate(everyone[1:], start=1):
        for name in lead:
            mine, other = lead.get(name), theirs.get(name)
            if mine == other:
                continue
            if isinstance(mine, dict) and isinstance(other, dict):  # say which keys differ
                what = ", ".join(f"{k}: {other.get(k)!r} vs {mine.get(k)!r}"
                                 for k in sorted(set(mine) | set(other)) if mine.get(k) != other.get(k))
            else:
                what = f"{other!r} vs {mine!r}"
            return (f"worker {rank} (on {host}) has a different {name} from worker 0 (on {host0}) ({what}); "
                    "every worker needs the same")
    return None


def block_of_step(params, grads, share):
    """What a worker's optimizer steps: views of its block of rows of each parameter (so the update
    lands in params) and those rows of the gradients -> (views, grads). A table updated lazily is
    in no share: every worker holds all its rows and steps them all."""
    views, blocks = {}, {}
    for k, g in grads.items():
        lo, hi = share.get(k, (0, len(params[k])))
        if lo < hi:
            views[k] = params[k][lo:hi]
            blocks[k] = g.dense(lo, hi) if isinstance(g, RowGradient) and not g.lazy else g
    return views, blocks


def blocks_of_state(state, share):
    """The optimizer's per-parameter state ("m.<name>", "avg.<name>"...) made whole for a checkpoint
    or an evaluation, cut back to this worker's block of rows -> {key: block} to put back."""
    out = {}
    for key, a in state.items():
        lo, hi = share.get(key.split(".", 1)[1], (0, 0))
        if lo < hi and len(a) != hi - lo:
            out[key] = a[lo:hi].copy()
    return out


def whole_state(state, slots, params, share):
    """This worker's blocks of the state slots (block-shaped, or whole already) as whole arrays,
    zero where other workers' rows go -> {name: array} by slot, to be filled by an Allgather."""
    wholes = {}
    for slot in slots:
        wholes[slot] = {}
        for k, (lo, hi) in share.items():
            have = state.get(slot + k)
            if have is not None and len(have) == len(params[k]):  # whole already (gathered, or every row mine)
                whole = have
            else:
                whole = np.zeros_like(params[k])
                if have is not None:
                    whole[lo:hi] = have
            wholes[slot][k] = whole
    return wholes


def pack_blocks(buf, layout, arrays, worker):
    """Copy `worker`'s rows of the arrays into their runs of a buffer laid out by block_layout."""
    for run in layout.runs:
        if run.worker == worker:
            rows = arrays[run.name][run.lo : run.hi]
            buf[run.at : run.at + rows.size] = rows.reshape(-1)


def unpack_blocks(buf, layout, arrays, worker):
    """Copy every other worker's runs of the buffer back into their rows of the arrays."""
    for run in layout.runs:
        if run.worker != worker:
            rows = arrays[run.name][run.lo : run.hi]
            rows[...] = buf[run.at : run.at + rows.size].reshape(rows.shape)
