"""Checks the commands share: outputs that may be written, inputs that exist."""

import os

from rnncli.errors import RnncliError, UsageError
from rnncli.npzfile import check_writable


def refuse_overwrite(path, force):
    """An existing output needs --force; either way it must be writable before any work starts."""
    if os.path.exists(path) and not force:
        raise UsageError(f"{path}: exists; pass --force to overwrite it")
    check_writable(path)


def require_data(data):
    if data != "-" and not os.path.exists(data):
        hint = " (run `rnncli tokenize CORPUS` first)" if data == "tokens.npz" else ""
        raise RnncliError(f"{data}: no such data set{hint}")
