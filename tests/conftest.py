import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # reference_cells and other test helpers

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


@pytest.fixture
def shared_data():
    if not os.path.isdir(SHARED_DATA):
        pytest.skip("../shared/data is not present")
    return SHARED_DATA
