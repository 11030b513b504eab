"""`--workers N` on this machine: start N ranks under mpiexec, relay their output, pass them signals.

Nothing here touches MPI itself: it is process supervision (mpiexec, /proc, MPICH's output).
"""

import os
import re
import shutil
import signal
import subprocess
import sys

from rnncli.errors import EXIT_INTERRUPTED, UsageError

INSTALL = "pip install 'rnncli[mpi]'"

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
