"""Data-parallel training over MPI: the one module that knows MPI.

Synchronous data parallelism, as PyTorch's DDP and Horovod do it. Every worker (an MPI rank)
holds the same parameters and reads its share of each *global* batch; after the backward pass
the workers add up their gradients, so that every worker then clips by the same global norm and
takes the same optimizer step. There is no parameter server and no asynchrony.

Why the sum gives the single-process step: a worker's loss is a mean over its share (n_i
tokens, or n_i sequences for a classifier), and the batch's mean is

    L = sum_i n_i L_i / sum_i n_i,     so     dL/dW = sum_i n_i dL_i/dW / sum_i n_i.

Each worker sends n_i * dL_i/dW and n_i in one flat buffer; everyone divides the sums by sum_i n_i.
The loss, the token count and the stop flags ride in the same buffer, so all workers stop at the
same step.

Embedding tables travel as rows: a batch reads a few hundred of a table's thousands of rows, so
each worker sends the rows it touched and their gradients (one Allgather for all tables), not the
dense table. Where the update is lazy (pretrained vectors, nn/rows.py) it stays lazy; elsewhere the
rows are only the way the gradient travels, and the update is the dense one a single process makes.

The optimizer step is shared out too (ZeRO's first stage): Adam's update and the weight average are
elementwise, so each worker updates its own block of rows of the parameters (a 1/N share of the
numbers) and an Allgather gives everyone the rest. So a worker needs only its block's gradient sums:
the flat buffer is laid out block by block and summed with a reduce-scatter (each worker receives
its block's sums), which sends half of what an Allreduce sends; the global norm for clipping is the
sum of the workers' blocks' squares. Each worker keeps the moments of its own block current; they
are gathered before an evaluation or a checkpoint reads them.

`Solo` is one process without MPI: the same methods, doing nothing, so that train.py reads as
a single-process loop. `launch` runs a command again as N ranks on this machine (`--workers N`).
"""

import math
import os
import time

import numpy as np

from rnncli.errors import RnncliError, UsageError
from rnncli.nn.layers import Embedding
from rnncli.nn.optim import clip_global_norm, global_norm
from rnncli.nn.rows import RowGradient
from rnncli.parallel.launch import INSTALL
from rnncli.parallel.layout import (
    IN_PLACE_FROM,
    Plan,
    block_layout,
    block_of_step,
    blocks_of_rows,
    blocks_of_state,
    disagreement,
    pack_blocks,
    pack_rows,
    pack_step,
    row_width,
    share_of,
    table_kind,
    unpack_blocks,
    unpack_rows,
    unpack_step,
    whole_state,
)

_joined = None  # the MPI world of this process once it joined one (cli.py ends it on an error)


def joined():
    """The MPI world this process joined (training on several workers), else None."""
    return _joined


def launched_size():
    """The world size an MPI launcher gave this process (1 when not started by one)."""
    for key in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):  # MPICH's hydra, Open MPI
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    return 1


def get_world(workers=None):
    """The world this process trains in: Solo, or the MPI world when an MPI launcher started it.
    workers: what the user asked for (--workers), checked against what the launcher gave."""
    size = launched_size()
    if workers is not None and size > 1 and workers != size:
        raise UsageError(f"--workers {workers}, but mpiexec started {size} processes; give one or the other")
    if size == 1:
        return Solo()
    global _joined
    _joined = MpiWorld()
    return _joined


def everywhere(error):
    """Mark an error that every worker raises at the same step: each ends on its own, the lead
    alone says it, and no worker needs to stop the others (cli.py)."""
    error.everywhere = True
    return error


def check_batch(batch_size, workers):
    """Every worker needs a share of every batch."""
    if batch_size < workers:
        raise UsageError(f"--batch-size {batch_size} is smaller than the {workers} workers: "
                         "each needs a share of every batch")








class Solo:
    """One process: every exchange is the identity, and the optimizer takes the whole step."""

    size, rank = 1, 0
    mpi_seconds = 0.0  # time spent in MPI calls (waiting for the others included)

    @property
    def lead(self):
        """The worker that writes checkpoints and logs, and prints."""
        return self.rank == 0

    def share(self, n):
        """This worker's streams (or texts with carried states) of n: a contiguous block, so that
        the workers' blocks joined in order are the batch's (a checkpoint saves them so)."""
        return share_of(n, self.size, self.rank)

    def deal(self, n):
        """This worker's sequences of a batch of n, dealt like cards: a bucketed batch is sorted by
        length, so every worker gets short and long ones alike and none waits for the others."""
        return slice(self.rank, n, self.size)

    def mine(self, items):
        """The items (say, evaluation batches) this worker handles: every size-th one."""
        return items[self.rank :: self.size]

    def prepare(self, model):
        """Ready a model for training on these workers (its tables send rows)."""

    def reduce_step(self, grads, loss, count, tokens, flags, params):
        """-> (grads, loss, tokens, flags) of the whole global batch (see the module's docstring)."""
        return grads, loss, tokens, flags

    def clip(self, grads, max_norm):
        """Clip reduce_step's gradients to a global norm of max_norm; -> the norm before clipping."""
        return clip_global_norm(grads, max_norm)

    def update(self, opt, params, grads, lr):
        """The optimizer step, shared out between the workers."""
        opt.step(params, grads, lr)

    def gather_state(self, opt):
        """Make every worker's copy of the optimizer's state whole (before it is read or saved)."""

    def sum(self, array):
        return array

    def fill(self, items):
        """A list each worker filled in part (None elsewhere) -> the list filled from all of them."""
        return items

    def gather(self, obj):
        """-> [every worker's obj] on the lead, None elsewhere."""
        return [obj]

    def agree(self, facts):
        """Refuse to start when the workers disagree on facts (name -> value)."""

    def abort(self, code):
        """End every worker at once (after an error only this worker saw)."""


class MpiWorld(Solo):
    """The workers of an MPI job (mpi4py's COMM_WORLD)."""

    def __init__(self):
        try:
            from mpi4py import MPI
        except ImportError as e:
            raise UsageError(f"training on several workers needs MPI: {INSTALL} ({e})") from e
        self.MPI, self.comm = MPI, MPI.COMM_WORLD
        self.size, self.rank = self.comm.Get_size(), self.comm.Get_rank()
        self._plan = None  # what reduce_step sends how (layout.Plan, made at the first step)
        self._shares = None  # [{name: (start, stop)}] by worker: the rows each updates (made then too)

    def _timed(self, call, *args):
        started = time.perf_counter()
        try:
            return call(*args)
        except self.MPI.Exception as e:  # a worker died or a link broke: one line, not MPICH's stack
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise RnncliError(f"lost contact with another worker ({first})") from e
        finally:
            self.mpi_seconds += time.perf_counter() - started

    def prepare(self, model):
        for name in model.params:
            layer = getattr(model, name[: -len(".E")], None) if name.endswith(".E") else None
            if isinstance(layer, Embedding):
                layer.as_rows = True

    def reduce_step(self, grads, loss, count, tokens, flags, params):
        """-> (this worker's block of the summed gradients {name: rows [start, stop) of it} and
        every table's rows, loss, tokens, flags): what update() needs."""
        if self._plan is None:
            self._plan = self._make_plan(grads, params, tail=3 + len(flags))
        plan = self._plan
        pack_step(plan, grads, count, [loss * count, count, tokens, *flags], params)
        self._timed(self.comm.Reduce_scatter, plan.buf, plan.mine, plan.layout.counts, self.MPI.SUM)
        out, loss, total, tokens, flags = unpack_step(plan, params, self.rank)
        if plan.sparse:
            out.update(self._gather_rows(plan.sparse, grads, count, total, params))
        return out, loss, tokens, flags

    def _make_plan(self, grads, params, tail):
        """Agreed by all workers at the first step: which gradients travel in the flat buffer and which
        as rows (the tables whose gradients come as rows, nn/rows.py); each worker's block of the
        dense updates (blocks_of_rows); and the buffer, laid out block by block."""
        names = sorted(params)
        tables = [k for k in names if k.endswith(".E")]
        kinds = [table_kind(None if grads is None else grads[k]) for k in tables]
        everyone = np.array(self._timed(self.comm.allgather, kinds)).reshape(self.size, len(tables))
        sparse = {k: kind == 1 for k, kind in zip(tables, everyone.max(axis=0), strict=True) if kind >= 1}
        updated = {k: params[k] for k in names if not sparse.get(k)}  # all but the lazy tables
        self._shares, self._params = blocks_of_rows(updated, self.size), params
        dense = [k for k in names if k not in sparse]
        layout = block_layout(self._shares, dense, {k: row_width(params[k]) for k in dense}, tail)
        dtype = params[names[0]].dtype
        buf, mine = np.empty(sum(layout.counts), dtype), np.empty(layout.counts[self.rank], dtype)
        return Plan(layout, tail, sparse, buf, mine)

    def _gather_rows(self, sparse, grads, count, total, params):
        """The tables' gradients as rows: every worker's rows of every table in one Allgather
        (layout.pack_rows), summed where they meet -> {name: RowGradient}."""
        sent, rows = pack_rows(sparse, grads, count, params)
        counts = np.zeros((self.size, len(sparse)), np.int64)
        counts[self.rank] = rows
        self._timed(self.comm.Allreduce, self.MPI.IN_PLACE, counts)  # every worker's row counts
        numbers = counts * np.array([1 + params[k].shape[1] for k in sparse])
        received = np.empty(int(numbers.sum()), sent.dtype)
        self._timed(self.comm.Allgatherv, sent, [received, numbers.sum(axis=1)])
        return unpack_rows(received, counts, sparse, params, total)

    def clip(self, grads, max_norm):
        # this worker's blocks, summed over the workers, and the tables' rows, which every worker holds whole
        blocks = {k: g for k, g in grads.items() if not isinstance(g, RowGradient)}
        rows = {k: g for k, g in grads.items() if isinstance(g, RowGradient)}
        squares = self.sum([global_norm(blocks) ** 2])[0] + global_norm(rows) ** 2
        return clip_global_norm(grads, max_norm, total=math.sqrt(squares))

    def update(self, opt, params, grads, lr):
        """The optimizer steps this worker's block of rows (layout.block_of_step), keeping moments of
        the block's shape; an Allgather then gives every worker the others' rows."""
        share = self._shares[self.rank]
        opt.state.update(blocks_of_state(opt.state, share))  # made whole by gather_state: back to the block
        opt.step(*block_of_step(params, grads, share), lr)
        self._allgather_rows(params)

    def _allgather_rows(self, arrays):
        """Every worker's block of rows of the arrays {name: array} (its shares) to every worker.
        A large array gathers into itself (no copies); the small ones travel together through one
        buffer, so that a step makes a few exchanges, not one per array (each costs a link's latency)."""
        names = [k for k in self._shares[self.rank] if k in arrays]
        small = [k for k in names if arrays[k].size < IN_PLACE_FROM]
        for k in names:
            if k not in small:
                a = arrays[k]
                w = row_width(a)
                blocks = [share[k] for share in self._shares]
                counts, displs = [(hi - lo) * w for lo, hi in blocks], [lo * w for lo, _ in blocks]
                self._timed(self.comm.Allgatherv, self.MPI.IN_PLACE, [a.reshape(-1), (counts, displs)])
        if not small:
            return
        # worker 0's rows of the small arrays, in order, then worker 1's...: each worker fills its own run
        layout = block_layout(self._shares, small, {k: row_width(arrays[k]) for k in small})
        buf = np.empty(sum(layout.counts), arrays[small[0]].dtype)
        pack_blocks(buf, layout, arrays, self.rank)
        displs = np.r_[0, np.cumsum(layout.counts)[:-1]].tolist()
        self._timed(self.comm.Allgatherv, self.MPI.IN_PLACE, [buf, (layout.counts, displs)])
        unpack_blocks(buf, layout, arrays, self.rank)

    def gather_state(self, opt):
        """The optimizer's moments and average, each worker's block of rows, made whole on every worker."""
        if self._shares is None or opt.t == 0:
            return  # no step taken yet: no state
        slots = (*opt.moment_slots(), *("avg.",) * bool(opt.average))
        for slot, arrays in whole_state(opt.state, slots, self._params, self._shares[self.rank]).items():
            opt.state.update({slot + k: a for k, a in arrays.items()})
            self._allgather_rows(arrays)

    def sum(self, array):
        out = np.array(array, np.float64)
        self._timed(self.comm.Allreduce, self.MPI.IN_PLACE, out)
        return out

    def fill(self, items):
        parts = self._timed(self.comm.allgather, items)
        return [next((p[i] for p in parts if p[i] is not None), None) for i in range(len(items))]

    def gather(self, obj):
        return self._timed(self.comm.gather, obj, 0)

    def agree(self, facts):
        problem = disagreement(self.comm.allgather((os.uname().nodename, facts)))
        if problem:
            raise everywhere(RnncliError(problem))

    def agree_on_error(self, error):
        """Every worker learns of the first error any of them met before training (so none waits
        for the others in a collective); returns that error, or None."""
        errors = self.comm.allgather(None if error is None else (type(error).__name__, str(error), error.exit_code))
        first = next((e for e in errors if e is not None), None)
        if first is None:
            return None
        kind, message, code = first
        return everywhere((UsageError if kind == "UsageError" else RnncliError)(message, code))

    def abort(self, code):
        self.comm.Abort(code)
