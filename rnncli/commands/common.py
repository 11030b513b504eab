"""Checks the commands share: outputs that may be written, inputs that exist."""

import os

from rnncli.errors import RnncliError, UsageError
from rnncli.npzfile import check_writable


def refuse_overwrite(path, force):
    """An existing output needs --force; either way it must be writable before any work starts,
    and no other rnncli run may be writing it (lock.py: the lock is held until this command ends)."""
    if os.path.exists(path) and not force:
        raise UsageError(f"{path}: exists; pass --force to overwrite it")
    check_writable(path)
    lock_output(path)
    if os.path.exists(path) and not force:  # made by another run between the first look and the lock
        raise UsageError(f"{path}: exists; pass --force to overwrite it")


def lock_output(path):
    """Hold the output's lock (a regular file or a folder; a device such as /dev/null needs none)."""
    from rnncli.lock import hold
    from rnncli.npzfile import _target

    if os.path.isdir(path) or _target(str(path))[1]:
        hold(path)


def require_data(data):
    if data != "-" and not os.path.exists(data):
        hint = " (run `rnncli tokenize CORPUS` first)" if data == "tokens.npz" else ""
        raise RnncliError(f"{data}: no such data set{hint}")
