"""One exception type for everything a user can fix, and the exit codes.

    0   success
    1   bad data, bad model file, or a run that failed (RnncliError)
    2   usage: impossible options or arguments (UsageError)
    130 interrupted (Ctrl-C)
"""

import re

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


# user:password@ in a URL (postgresql://user:secret@host/db), and password=... in a driver's DSN text
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*):[^@\s]*@")
_DSN_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)


def mask_credentials(text):
    """Text with the passwords of any URL or connection string in it replaced by ***: for every
    message rnncli prints and every file tune writes."""
    return _DSN_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1:***@", str(text)))


def where(path, line=None):
    """'file:line' as users and editors expect it ('<stdin>' for -)."""
    name = "<stdin>" if str(path) == "-" else str(path)
    return name if line is None else f"{name}:{line}"
