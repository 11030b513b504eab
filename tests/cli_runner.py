"""The command line as users run it: a fresh `python -m rnncli` process per call."""

import subprocess
import sys


def cli(*args, cwd, stdin=None, timeout=300):
    """Run rnncli with `args` in folder `cwd`; returns the CompletedProcess (text stdout/stderr)."""
    return subprocess.run([sys.executable, "-m", "rnncli", *args], cwd=cwd, capture_output=True, text=True,
                          input=stdin, timeout=timeout)
