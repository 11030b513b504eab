"""A/B timing of two rnncli checkouts in one process: the other checkout's modules are imported
beside this one's, and the two sides' steps alternate, so that the machine's noise falls on both."""

import contextlib
import os
import statistics
import sys
import time


@contextlib.contextmanager
def other_tree(path):
    """Inside: `import rnncli...` (also the lazy imports inside its functions, when called here)
    reads the rnncli checkout at `path`; outside again this tree's modules."""
    ours = {k: v for k, v in sys.modules.items() if k == "rnncli" or k.startswith("rnncli.")}
    for k in ours:
        del sys.modules[k]
    sys.path.insert(0, os.path.abspath(path))
    try:
        yield
    finally:
        sys.path.pop(0)
        for k in [k for k in sys.modules if k == "rnncli" or k.startswith("rnncli.")]:
            del sys.modules[k]
        sys.modules.update(ours)


def alternate(steps, rounds, warmup=2):
    """steps: zero-argument functions (this tree's first); each round runs each once, in turn
    reversed every other round. -> the median seconds of each, warm-up rounds left out."""
    times = [[] for _ in steps]
    for r in range(rounds + warmup):
        order = range(len(steps)) if r % 2 == 0 else reversed(range(len(steps)))
        for k in order:
            t = time.perf_counter()
            steps[k]()
            if r >= warmup:
                times[k].append(time.perf_counter() - t)
    return [statistics.median(t) for t in times]
