"""The command line as users run it: a fresh `python -m rnncli` process per call (cli), or the same
command in this process (run)."""

import os
import subprocess
import sys


def cli(*args, cwd, stdin=None, timeout=None, process=False):
    """Run rnncli with `args` in folder `cwd`; returns a CompletedProcess (text stdout/stderr).
    By default through main(), the entry point, in this process (main_in_process): the same exit
    codes, lines and files, without an interpreter's start-up per call. process=True, or a
    timeout, starts `python -m rnncli` as users do: for what only a process shows (signals, a hang
    cut by the timeout, the interpreter's own shutdown). Every warning is an error either way
    (PYTHONWARNINGS=error): no NumPy or Python warning may reach a user's terminal, so a new one
    fails the test that meets it."""
    if not process and timeout is None:
        return main_in_process(*args, cwd=cwd, stdin=stdin)
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    return subprocess.run([sys.executable, "-m", "rnncli", *args], cwd=cwd, capture_output=True, text=True,
                          input=stdin, timeout=timeout or 300, env=env)

def run(*args, cwd, stdin=None):
    """rnncli in this process (main_in_process) -> its stdout; fails the calling test on a non-zero
    exit, with the reason. For tests of what a command answers."""
    import pytest

    r = main_in_process(*args, cwd=cwd, stdin=stdin)
    if r.returncode != 0:
        pytest.fail(f"rnncli {' '.join(map(str, args))} -> exit {r.returncode}: {r.stderr[-2000:]}")
    return r.stdout


def main_in_process(*args, cwd, stdin=""):
    """`rnncli args` as its entry point runs it (main(): the one-line errors and exit codes), in this
    process: -> a CompletedProcess with the exit code and the text of stdout and stderr. For the
    bad-input table, whose hundreds of cases check messages, not the process boundary."""
    import contextlib
    import io
    import subprocess
    import warnings

    from rnncli import cli as cli_module
    from rnncli import console
    from rnncli.lock import release_all

    out, err = io.StringIO(), io.StringIO()
    here, argv, stdin_was = os.getcwd(), sys.argv, sys.stdin
    code = 0
    os.chdir(cwd)
    sys.argv = ["rnncli", *map(str, args)]
    sys.stdin = io.TextIOWrapper(io.BytesIO((stdin or "").encode()), encoding="utf-8")  # with its .buffer
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            warnings.simplefilter("error")
            try:
                cli_module.main()
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        os.chdir(here)
        sys.argv, sys.stdin = argv, stdin_was
        console.set_quiet(False)
        cli_module._debug = False
        release_all()  # the locks a command holds until its process ends: this one goes on
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
