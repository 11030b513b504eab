"""rnncli gradcheck: the tests' checker as a command. It passes on every task and cell, and a
backward pass broken on purpose makes it fail, naming the parameter, with exit code 1."""

import json

import numpy as np
import pytest
from cli_runner import cli
from typer.testing import CliRunner

from rnncli.cli import app
from rnncli.commands.gradcheck import run_gradcheck

CASES = [dict(task="lm", cell="rnn", activation="relu", layers=2), dict(task="lm", cell="gru", reset_after=False),
         dict(task="clm", cell="lstm", layers=2), dict(task="classify", cell="gru", pool="max"),
         dict(task="classify", cell="rnn", bidirectional=False),
         dict(task="tag", cell="lstm", char_features=True, crf=True, char_encoder="cnn"),
         dict(task="tag", cell="gru", char_features=True, char_encoder="rnn"),
         dict(task="seq2seq", cell="lstm", layers=2, attention="general"),
         dict(task="seq2seq", cell="gru", bidirectional=False, attention="dot")]


@pytest.mark.parametrize("options", CASES, ids=lambda o: "-".join(str(v) for v in o.values()))
def test_every_task_and_cell_passes(options):
    what, rows = run_gradcheck(overrides=options, entries=12)
    assert rows and max(err for _, _, err in rows) < 1e-5, (what, rows)  # the command's tolerance


def test_a_broken_backward_fails_and_names_the_parameter(monkeypatch):
    from rnncli.nn import layers

    real = layers.Linear.backward

    def off_by_one_percent(self, d_out, x):
        dx, grads = real(self, d_out, x)
        return dx, {**grads, "W": grads["W"] * 1.01}

    monkeypatch.setattr(layers.Linear, "backward", off_by_one_percent)
    result = CliRunner().invoke(app, ["gradcheck", "--task", "classify", "--cell", "gru", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    failed = sorted(k for k, v in report["errors"].items() if v > report["tolerance"])
    assert failed == ["head.W"] and not report["passed"]


def test_a_trained_model_on_its_own_examples(tmp_path):
    assert cli("tokenize", "-", "-o", "t.npz", cwd=tmp_path, stdin="a small text to learn from.\n" * 40).returncode == 0
    assert cli("train", "-d", "t.npz", "-o", "m.npz", "--max-steps", "5", "--hidden", "6", "--embed", "4",
               cwd=tmp_path).returncode == 0
    r = cli("gradcheck", "-m", "m.npz", "-d", "t.npz", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["passed"] and "first examples of t.npz" in report["what"]
    assert np.isfinite(list(report["errors"].values())).all()
    r = cli("gradcheck", "-m", "m.npz", "--cell", "gru", cwd=tmp_path)
    assert r.returncode == 2 and "leave out the architecture options" in r.stderr


def test_rounding_is_agreement_and_a_wrong_gradient_still_fails():
    """A loss that does not depend on an array (a tagger of one tag) has analytic gradients of zero
    and numerical ones of rounding: that is agreement. A wrong gradient fails however small."""
    from rnncli.nn.gradcheck import check_gradients

    rng = np.random.default_rng(0)
    x, w = rng.normal(size=6), rng.normal(size=6)
    constant = {"x": x}
    assert check_gradients(lambda: 0.1 + 1e-17 * float(x @ w), constant, {"x": np.zeros(6)}) == {"x": 0.0}
    small = 1e-6  # a loss of tiny slope: its gradient is still compared, not passed as rounding
    assert check_gradients(lambda: small * float(x @ w), {"x": x}, {"x": small * w})["x"] < 1e-6
    assert check_gradients(lambda: small * float(x @ w), {"x": x}, {"x": small * w * 1.01})["x"] > 1e-3
    assert check_gradients(lambda: small * float(x @ w), {"x": x}, {"x": np.zeros(6)})["x"] == 1.0
