"""Set-ups the command-line tests share across files."""

import os

import pytest
from cli_runner import cli


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """A tiny classifier (cls.npz, on rev.npz) and encoder-decoder (s2s.npz, on pairs.npz) in one
    folder, for the tests that craft files from them or run commands beside them (each writes files
    of its own names). A file's own `models` fixture takes its place there."""
    d = tmp_path_factory.mktemp("crafted")
    samples = os.path.join(os.path.dirname(__file__), "..", "..", "sample_data")
    assert cli("tokenize", f"{samples}/reviews.tsv", "-o", "rev.npz", cwd=d).returncode == 0
    assert cli("train", "-d", "rev.npz", "-o", "cls.npz", "--max-steps", "2", "--hidden", "8", "--embed", "4",
               "--eval-every", "1", cwd=d).returncode == 0
    (d / "pairs.tsv").write_text("".join(f"sentence number {i}\tphrase {i}\n" for i in range(60)))
    assert cli("tokenize", "pairs.tsv", "-o", "pairs.npz", cwd=d).returncode == 0
    assert cli("train", "-d", "pairs.npz", "-o", "s2s.npz", "--max-steps", "2", "--hidden", "8", "--embed", "4",
               "--attention", "general", cwd=d).returncode == 0
    return d
