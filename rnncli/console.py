"""Where output goes: results to stdout, everything for people (tables, progress, logs) to stderr.

Rich turns colour off by itself when stderr is not a terminal; --quiet silences the chatter.
Under `train --workers N` the lead worker's stderr is a pipe to the launcher, which sets
RNNCLI_TERMINAL=1 when its own stderr is a terminal: colour and a redrawn bar stay on.
"""

import json
import os
import sys

from rich.console import Console
from rich.table import Table

_TERMINAL = sys.stderr.isatty() or os.environ.get("RNNCLI_TERMINAL") == "1"
err = Console(stderr=True, highlight=False, force_terminal=True if _TERMINAL else None)
_quiet = False


def set_quiet(quiet):
    global _quiet
    _quiet = bool(quiet)


def is_terminal():
    """Does stderr go to a terminal (where bars redraw in place)?"""
    return _TERMINAL


def is_quiet():
    return _quiet


def log(message):
    """A line for people, on stderr: one line however long (the terminal wraps it, a log keeps it whole)."""
    if not _quiet:
        err.print(message, soft_wrap=True)


def show(renderable):
    """A table or panel for people, on stderr."""
    if not _quiet:
        err.print(renderable)


def write_json(obj):
    """A result for scripts, on stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def write_json_line(obj):
    """One record of a stream for scripts (JSON lines), on stdout, flushed at once."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def table(title, columns, rows):
    """A Rich table; columns are names, a trailing ':' right-aligns the column."""
    t = Table(title=title, title_justify="left", header_style="bold")
    for c in columns:
        right = c.endswith(":")
        t.add_column(c.rstrip(":"), justify="right" if right else "left")
    for r in rows:
        t.add_row(*(str(v) for v in r))
    return t


def progress(total, desc, unit="step", disable=None):
    """A tqdm bar on stderr; plain (no bar redraws) when stderr is not a terminal."""
    from tqdm import tqdm

    if disable is None:
        disable = _quiet
    tty = _TERMINAL
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, file=sys.stderr,
                dynamic_ncols=True, mininterval=0.2 if tty else 30.0, ascii=not tty)
