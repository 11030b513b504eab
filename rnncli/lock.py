"""One writer per output: a lock file next to it (model.npz -> model.npz.lock), held until the
command ends.

Two `train -o same.npz` started together would otherwise both write it, in turns: the file would
hold whichever run saved last, beside a metrics log that mixes both. The second run now refuses at
once, naming the first. The lock is an flock on the file, so the system releases it when its
process dies, however it dies: a killed run never leaves an output locked forever (a stale lock
file is simply taken over). The lock file is removed when the command ends.
"""

import atexit
import fcntl
import os

from rnncli.errors import RnncliError

_held = {}  # real path of the output -> (lock file path, open file)


def lock_path(path):
    return os.path.abspath(str(path)).rstrip("/") + ".lock"


def hold(path):
    """Lock `path` for this process (again is a no-op); RnncliError if another process holds it."""
    target = lock_path(path)
    if target in _held:
        return
    while True:
        try:
            f = open(target, "a+")  # noqa: SIM115 - held open until the process ends
        except OSError as e:
            raise RnncliError(f"{path}: cannot create the lock file {target} ({e.strerror})") from None
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            owner = f.read().strip() or "another process"
            f.close()
            raise RnncliError(f"{path}: another rnncli run is writing it ({owner}; lock file {target}); "
                              "wait for it to finish or choose another output") from None
        # the holder before us may have removed the file after we opened it: lock the file that is there
        try:
            same = os.stat(target).st_ino == os.fstat(f.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        f.close()
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()}")
    f.flush()
    _held[target] = f


def release_all():
    """Remove and unlock every lock this process holds (at exit)."""
    for target, f in list(_held.items()):
        try:
            os.unlink(target)
        except OSError:
            pass
        f.close()
        del _held[target]


atexit.register(release_all)
