"""memory.py: after keep_freed_memory, a training step's large arrays reuse their pages instead
of faulting fresh ones in from the kernel every step (the cause of a third of an LSTM step's time)."""

import subprocess
import sys

import pytest

PROBE = """
import resource, sys
import numpy as np
from rnncli.memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def step():  # what a step does: several large arrays alive at once, then all freed
    arrays = [np.ones((64, 512, 32), np.float32) for _ in range(4)]
    return sum(float(a[0, 0, 0]) for a in arrays)
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_kept_memory_is_reused_without_page_faults():
    # each mode in a fresh process: malloc's settings are per process and cannot be undone
    faults = {mode: float(subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                                         check=True).stdout) for mode in ("keep", "default")}
    # 16 MB of arrays per step: 4,096 pages if each is faulted in afresh. The default run shows
    # the probe sees the faults at all; kept memory takes almost none
    assert faults["default"] > 1000, faults
    assert faults["keep"] < 50, faults
