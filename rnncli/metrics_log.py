"""model.metrics.jsonl: one JSON line per evaluation, for people who tail it and scripts.

It always matches the checkpoint beside it: a fresh run starts it empty, and a resumed run
keeps only the lines up to the checkpoint's step (a kill between a log line and the next
checkpoint would otherwise repeat lines), then appends.
"""

import json
import os

from rnncli.errors import RnncliError
from rnncli.npzfile import write_text


class MetricsLog:
    def __init__(self, path, resume_step=None):
        """path None: no log. resume_step: keep the existing lines up to this step."""
        self.path, self.resume_step, self.file = path, resume_step, None

    def __enter__(self):
        if self.path is None:
            return self
        kept = []
        if self.resume_step is not None and os.path.exists(self.path):
            kept = [line for line in _read_lines(self.path)
                    if (step := _step(line)) is not None and step <= self.resume_step]
        write_text(self.path, "".join(line + "\n" for line in kept))
        try:
            self.file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in __exit__
        except OSError as e:
            raise RnncliError(f"{self.path}: cannot write: {e.strerror}") from None
        return self

    def write(self, record):
        if self.file is not None:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()

    def __exit__(self, *exc):
        if self.file is not None:
            self.file.close()


def _read_lines(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except OSError:
        return []


def _step(line):
    """The step of a log line; None for a line a kill cut short or anything else unreadable."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    step = record.get("step") if isinstance(record, dict) else None
    return step if isinstance(step, int) else None
