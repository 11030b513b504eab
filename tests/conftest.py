import os
import sys

import pytest

"""The tests sit by the unit they test: nn/, text/, tasks/, parallel/ (units of the package), cli/ (the
commands end to end, and the bad-input table, cli/test_hardening.py), project/ (layering, docs, old
models). Helpers shared by all (cli_runner, reference_cells, gradient_asserts...) sit here."""

HERE = os.path.dirname(__file__)
# the helpers here, and each folder's tests, import by their module names (the names are unique)
sys.path[:0] = [HERE] + sorted(os.path.join(HERE, d) for d in os.listdir(HERE)
                               if os.path.isdir(os.path.join(HERE, d)) and d not in ("compat", "__pycache__"))

SHARED_DATA = os.path.join(HERE, "..", "..", "shared", "data")


@pytest.fixture
def shared_data():
    if not os.path.isdir(SHARED_DATA):
        pytest.skip("../shared/data is not present")
    return SHARED_DATA
