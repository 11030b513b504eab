"""One exception type for everything a user can fix, and the exit codes.

    0   success
    1   bad data, bad model file, or a run that failed (RnncliError)
    2   usage: impossible options or arguments (UsageError)
    130 interrupted (Ctrl-C)
"""

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class RnncliError(Exception):
    """A one-line message for the user, e.g. `corpus.tsv:12: expected 'label<TAB>text'`."""

    exit_code = EXIT_ERROR

    def __init__(self, message, exit_code=None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(RnncliError):
    exit_code = EXIT_USAGE


def where(path, line=None):
    """'file:line' as users and editors expect it ('<stdin>' for -)."""
    name = "<stdin>" if str(path) == "-" else str(path)
    return name if line is None else f"{name}:{line}"
