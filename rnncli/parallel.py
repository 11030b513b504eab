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
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np

from rnncli.errors import EXIT_INTERRUPTED, RnncliError, UsageError
from rnncli.nn.layers import Embedding
from rnncli.nn.optim import clip_global_norm, global_norm
from rnncli.nn.rows import RowGradient, sum_rows

INSTALL = "pip install 'rnncli[mpi]'"
IN_PLACE_FROM = 65_536  # an array of this many numbers is gathered on its own, into itself
current = None  # the MPI world of this process once it joined one (cli.py ends it on an error)


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
    global current
    current = MpiWorld()
    return current


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
        self._plan = None  # what reduce_step sends how (made at the first step)
        self._shares = None  # which rows of which parameters each worker updates (made at the first step)

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
            self._plan = self._make_plan(grads, params, len(flags))
        runs, counts, sparse, buf, mine = self._plan
        # block by block: n_i * this worker's gradients; each block ends with n_i * loss, n_i, tokens, flags
        scalars = [loss * count, count, tokens, *flags]
        for _, k, lo, hi, at in runs:
            if k is None:  # a block's end: the numbers every worker needs
                buf[at : at + len(scalars)] = scalars
            elif grads is None:
                buf[at : at + (hi - lo) * row_width(params[k])] = 0
            else:
                g = grads[k][lo:hi].reshape(-1)
                np.multiply(g, count, out=buf[at : at + len(g)])
        self._timed(self.comm.Reduce_scatter, buf, mine, counts, self.MPI.SUM)
        tail = len(mine) - len(scalars)
        total = max(float(mine[tail + 1]), 1.0)  # an all-padding batch has no tokens and zero gradients
        mine[: tail + 1] /= mine.dtype.type(total)
        global_loss, global_tokens = float(mine[tail]), int(round(float(mine[tail + 2])))
        global_flags = mine[tail + 3 :].tolist()
        out, at = {}, 0
        for r, k, lo, hi, _ in runs:
            if r == self.rank and k is not None:
                n = (hi - lo) * row_width(params[k])
                out[k] = mine[at : at + n].reshape(hi - lo, *params[k].shape[1:])  # views: reused next step
                at += n
        if sparse:
            out.update(self._gather_rows(sparse, grads, count, total, params))
        return out, global_loss, global_tokens, global_flags

    def _make_plan(self, grads, params, n_flags):
        """Agreed by all workers at the first step: which gradients travel in the flat buffer and which
        as rows (the tables whose gradients come as rows, nn/rows.py); each worker's block of the
        dense updates (blocks_of_rows); and the buffer, laid out block by block."""
        names = sorted(params)
        tables = [k for k in names if k.endswith(".E")]
        # per table: -1 no gradient here, 0 dense, 1 rows updated lazily, 2 rows updated densely
        mine = [-1 if grads is None else 0 if not isinstance(grads[k], RowGradient) else 1 if grads[k].lazy else 2
                for k in tables]
        everyone = np.array(self._timed(self.comm.allgather, mine)).reshape(self.size, len(tables))
        sparse = {k: flag == 1 for k, flag in zip(tables, everyone.max(axis=0), strict=True) if flag >= 1}
        updated = {k: params[k] for k in names if not sparse.get(k)}  # all but the lazy tables
        self._shares, self._params = blocks_of_rows(updated, self.size), params
        dense = [k for k in names if k not in sparse]
        # each block ends with the loss, the count, the tokens and the flags
        runs, counts = self._block_layout(dense, {k: row_width(params[k]) for k in dense}, tail=3 + n_flags)
        dtype = params[names[0]].dtype
        return runs, counts, sparse, np.empty(sum(counts), dtype), np.empty(counts[self.rank], dtype)

    def _block_layout(self, names, width, tail=0):
        """A buffer laid out worker by worker: worker 0's block of rows of each array in `names` (of
        width[name] numbers a row), then `tail` numbers; then worker 1's... -> (runs, counts): runs
        (worker, name, first row, end row, where in the buffer), with (worker, None, 0, 0, where) for
        a tail, and each worker's count of numbers."""
        runs, counts, at = [], [], 0
        for r, share in enumerate(self._shares):
            first = at
            for k in names:
                lo, hi = share[k]
                runs.append((r, k, lo, hi, at))
                at += (hi - lo) * width[k]
            if tail:
                runs.append((r, None, 0, 0, at))
                at += tail
            counts.append(at - first)
        return runs, counts

    def _gather_rows(self, sparse, grads, count, total, params):
        """The tables' gradients as rows: every worker's rows of every table in one Allgather (a row
        is its id, then n_i times its gradient), summed where they meet and divided by the global
        count -> {name: RowGradient over the rows any worker touched}."""
        dtype = params[next(iter(sparse))].dtype
        parts, counts = [], np.zeros((self.size, len(sparse)), np.int64)
        for t, k in enumerate(sparse):
            g = None if grads is None else grads[k]
            n = 0 if g is None else len(g.rows)
            part = np.empty((n, 1 + params[k].shape[1]), dtype)  # ids up to 2^24 are exact in float32
            if n:
                part[:, 0] = g.rows
                np.multiply(g.values, count, out=part[:, 1:])
            parts.append(part.reshape(-1))
            counts[self.rank, t] = n
        self._timed(self.comm.Allreduce, self.MPI.IN_PLACE, counts)  # every worker's row counts
        widths = np.array([1 + params[k].shape[1] for k in sparse])
        sent = np.concatenate(parts) if parts else np.zeros(0, dtype)
        received = np.empty(int((counts * widths).sum()), dtype)
        self._timed(self.comm.Allgatherv, sent, [received, (counts * widths).sum(axis=1)])
        out, at = {}, 0
        pieces = {k: [] for k in sparse}
        for rank in range(self.size):
            for t, k in enumerate(sparse):
                n = int(counts[rank, t]) * widths[t]
                pieces[k].append(received[at : at + n].reshape(-1, widths[t]))
                at += n
        for k, lazy in sparse.items():
            every = np.concatenate(pieces[k])
            rows, summed = sum_rows(every[:, 0].astype(np.int64), every[:, 1:])
            summed /= summed.dtype.type(total)
            out[k] = RowGradient(rows, summed, params[k].shape, lazy=lazy)
        return out

    def clip(self, grads, max_norm):
        # this worker's blocks, summed over the workers, and the tables' rows, which every worker holds whole
        blocks = {k: g for k, g in grads.items() if not isinstance(g, RowGradient)}
        rows = {k: g for k, g in grads.items() if isinstance(g, RowGradient)}
        squares = self.sum([global_norm(blocks) ** 2])[0] + global_norm(rows) ** 2
        return clip_global_norm(grads, max_norm, total=math.sqrt(squares))

    def update(self, opt, params, grads, lr):
        opt.step(params, grads, lr, part=self._shares[self.rank])
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
        width = {k: row_width(arrays[k]) for k in small}
        runs, counts = self._block_layout(small, width)
        buf = np.empty(sum(counts), arrays[small[0]].dtype)
        for r, k, lo, hi, at in runs:
            if r == self.rank:
                buf[at : at + (hi - lo) * width[k]] = arrays[k][lo:hi].reshape(-1)
        displs = np.r_[0, np.cumsum(counts)[:-1]].tolist()
        self._timed(self.comm.Allgatherv, self.MPI.IN_PLACE, [buf, (counts, displs)])
        for r, k, lo, hi, at in runs:
            if r != self.rank:
                arrays[k][lo:hi] = buf[at : at + (hi - lo) * width[k]].reshape(arrays[k][lo:hi].shape)

    def gather_state(self, opt):
        if self._shares is None or opt.t == 0:
            return  # no step taken yet: no state
        for kind in (*opt.moment_slots(), *("avg.",) * bool(opt.average)):
            arrays = {}
            for k in self._shares[0]:
                key = kind + k
                if key not in opt.state:  # a slot only other workers' updates made: theirs fill it
                    opt.state[key] = np.zeros_like(self._params[k])
                arrays[k] = opt.state[key]
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
        everyone = self.comm.allgather((os.uname().nodename, facts))
        host0, lead = everyone[0]
        for rank, (host, theirs) in enumerate(everyone[1:], start=1):
            for name in lead:
                mine, theirs_ = lead.get(name), theirs.get(name)
                if mine == theirs_:
                    continue
                if isinstance(mine, dict) and isinstance(theirs_, dict):  # say which keys differ
                    what = ", ".join(f"{k}: {theirs_.get(k)!r} vs {mine.get(k)!r}"
                                     for k in sorted(set(mine) | set(theirs_)) if mine.get(k) != theirs_.get(k))
                else:
                    what = f"{theirs_!r} vs {mine!r}"
                raise everywhere(RnncliError(f"worker {rank} (on {host}) has a different {name} from worker 0 "
                                             f"(on {host0}) ({what}); every worker needs the same"))

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


# ---------------------------------------------------------------- --workers N on this machine

# what MPICH and its launcher print when a rank dies or aborts (a banner, error stacks): the
# launcher says it in one line instead
_MPICH_NOISE = re.compile(r"^(=+|=\s.*|YOUR APPLICATION TERMINATED.*|This typically refers to a problem.*|"
                          r"Please see the FAQ page.*|Abort\(\d+\) on node .*|\w+\(\d+\)\.*:.*|.*error stack:.*)$")


def require_mpi(workers):
    """-> the mpiexec that starts `workers` ranks; a one-line error naming the extra when MPI is missing."""
    try:
        import mpi4py  # noqa: F401  (the ranks need it; say so here, before starting them)
    except ImportError as e:
        raise UsageError(f"--workers {workers} needs MPI: {INSTALL}") from e
    mpiexec = find_mpiexec()
    if mpiexec is None:
        raise UsageError(f"--workers {workers} needs an mpiexec: {INSTALL} (the mpich wheel brings one)")
    return mpiexec


def find_mpiexec():
    """MPICH's mpiexec beside this Python (the `mpich` wheel's), else the first on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return here if os.access(here, os.X_OK) else shutil.which("mpiexec")


def launch(argv, workers, out=None):
    """Run `rnncli ARGV` as `workers` MPI ranks on this machine and wait; -> its exit code.

    Each rank gets cores / workers BLAS threads (rnncli/__init__.py, unless the environment sets
    them). The launcher's own report of a dead rank becomes one line. Ctrl-C here reaches the workers (only
    them): they stop together at the same step and save a resumable checkpoint."""
    mpiexec = require_mpi(workers)
    env = dict(os.environ)
    if sys.stderr.isatty():
        env["RNNCLI_TERMINAL"] = "1"  # the lead's stderr is a pipe to us; keep its progress bar and colour
    command = [mpiexec, "-n", str(workers), sys.executable, "-m", "rnncli", *argv]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    old = signal.signal(signal.SIGINT, lambda signum, _: _signal_workers(proc, signum))
    old_term = signal.signal(signal.SIGTERM, lambda signum, _: _signal_workers(proc, signum))
    try:
        died, errors = _relay({proc.stdout.fileno(): sys.stdout, proc.stderr.fileno(): sys.stderr})
        code = proc.wait()
    finally:
        signal.signal(signal.SIGINT, old)
        signal.signal(signal.SIGTERM, old_term)
        proc.stdout.close()
        proc.stderr.close()
    # the workers' own one-line errors, each said once; a worker's death explains "lost contact"
    # (MPICH does not always report the dead rank before a survivor's own report of losing it, or at all)
    errors = list(dict.fromkeys(errors))
    own = [e for e in errors if "lost contact with another worker" not in e]
    lost = len(own) < len(errors)
    clean = code in (0, 1, 2, EXIT_INTERRUPTED)
    abnormal = died or lost or not clean
    if own or not abnormal:
        for line in own:
            print(line, file=sys.stderr, flush=True)
        return code if clean else 1
    died = died or ("another worker lost contact with it" if lost else f"exit code {code}")
    where = f"; {out} keeps its last checkpoint" if out else ""
    print(f"rnncli: error: a worker ended abnormally ({died}); the run stopped on every worker{where}",
          file=sys.stderr, flush=True)
    return 1


def _signal_workers(proc, signum):
    """Pass Ctrl-C (or SIGTERM) to the ranks themselves, not to mpiexec, which would kill them:
    they stop together at the next step and save; a second Ctrl-C stops them at once."""
    for pid in _descendants(proc.pid):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def _descendants(pid):
    """The python processes started below `pid` (the ranks), read from /proc."""
    children, found = {}, []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry))
            except (OSError, IndexError):
                continue
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            todo.append(child)
            try:
                with open(f"/proc/{child}/cmdline", "rb") as f:
                    if b"rnncli" in f.read():
                        found.append(child)
            except OSError:
                pass
    return found


def _relay(streams):
    """Copy the ranks' output {fd: our stream} as it comes (progress bars redraw with \r). The
    workers' error lines are held back for the launcher to say once, and MPICH's own banner
    and stacks left out; -> (how a rank ended, "" if none died; the error lines)."""
    import selectors

    died, errors, pending = "", [], dict.fromkeys(streams, b"")
    selector = selectors.DefaultSelector()
    for fd in streams:
        selector.register(fd, selectors.EVENT_READ)
    while selector.get_map():
        for key, _ in selector.select():
            fd, to = key.fd, streams[key.fd]
            chunk = os.read(fd, 65536)
            if not chunk:
                selector.unregister(fd)
                pending[fd], chunk = b"", pending[fd] + b"\n" if pending[fd] else b""
                if not chunk:
                    continue
            *lines, pending[fd] = (pending[fd] + chunk).split(b"\n")
            for line in lines:
                text = line.decode("utf-8", "replace")
                found = re.search(r"EXIT STRING:\s*(.*)|EXIT CODE:\s*(\d+)", text)
                if "BAD TERMINATION" in text or found:
                    died = (found and (found.group(1) or f"exit code {found.group(2)}").strip()) or died or "died"
                elif text.startswith("rnncli: error:"):
                    errors.append(text)
                elif not _MPICH_NOISE.match(text) and not (died and not text.strip()):
                    to.write(text + "\n")
            if b"\r" in pending[fd]:  # a progress bar's redraw: pass it on now
                to.write(pending[fd].decode("utf-8", "replace"))
                pending[fd] = b""
            to.flush()
    return died, errors
