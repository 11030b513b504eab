"""rnncli gradients: the vanishing-gradient report. Its numbers are exact (finite differences of
the loss in the starting state agree), and they show the lecture's claim: a fresh tanh RNN's
gradient 40 steps back is orders of magnitude smaller, relative to one step back, than an LSTM's."""

import html.parser
import json
import os

import numpy as np
from cli_runner import cli

from rnncli.gradflow import state_gradients, states_along
from rnncli.nn.functional import log_softmax
from rnncli.tasks.lm import LanguageModel

SAMPLES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "sample_data"))


def test_the_norms_are_the_finite_difference_gradients():
    rng = np.random.default_rng(0)
    for cell in ("rnn", "gru", "lstm"):
        model = LanguageModel(9, rng, embed=3, hidden=4, cell=cell, layers=2, dtype=np.float64)
        ids, nxt = rng.integers(0, 9, (6, 2)), rng.integers(0, 9, 2)
        d = 4
        start = states_along(model, ids)[6 - d]

        def loss(model=model, ids=ids, nxt=nxt, start=start, d=d):
            logits, _, _ = model.forward(ids[6 - d :], start)
            return -log_softmax(logits[-1])[np.arange(2), nxt].sum()

        numeric = []  # d loss / d state, per sequence: its norm over the layers' a
        for b in range(2):
            total = 0.0
            for layer in start:
                a = layer[0]
                for i in range(a.shape[1]):
                    old = a[b, i]
                    a[b, i] = old + 1e-6
                    plus = loss()
                    a[b, i] = old - 1e-6
                    minus = loss()
                    a[b, i] = old
                    total += ((plus - minus) / 2e-6) ** 2
            numeric.append(np.sqrt(total))
        measured = state_gradients(model, ids, nxt, distances=[d])["a"][0]
        assert abs(measured - np.mean(numeric)) < 1e-7 * max(1.0, measured), cell


def test_a_fresh_rnns_gradient_vanishes_and_an_lstms_does_not(tmp_path):
    assert cli("tokenize", f"{SAMPLES}/corpus.txt", "-o", "t.npz", cwd=tmp_path).returncode == 0
    r = cli("gradients", "-d", "t.npz", "--cell", "rnn", "--cell", "lstm", "--steps", "60", "--batch", "8",
            "--json", "-o", "g.html", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    models = json.loads(r.stdout)["models"]
    rnn, lstm = models["rnn, fresh"]["a"], models["lstm, fresh"]["a"]
    rnn_ratio, lstm_ratio = rnn[39] / rnn[0], lstm[39] / lstm[0]
    assert rnn_ratio < lstm_ratio / 100, (rnn_ratio, lstm_ratio)  # measured: about 1e-6 against 1e-2
    assert models["lstm, fresh"]["c"] is not None and models["rnn, fresh"]["c"] is None
    page = (tmp_path / "g.html").read_text()
    html.parser.HTMLParser().feed(page)
    assert "<svg" in page and "http" not in page.replace("http://www.w3.org/2000/svg", "")


def test_a_trained_model_needs_its_own_vocabulary(tmp_path):
    assert cli("tokenize", f"{SAMPLES}/corpus.txt", "-o", "t.npz", cwd=tmp_path).returncode == 0
    assert cli("tokenize", f"{SAMPLES}/reviews.tsv", "-o", "r.npz", cwd=tmp_path).returncode == 0
    assert cli("train", "-d", "t.npz", "-o", "m.npz", "--max-steps", "3", "--hidden", "8", "--embed", "4",
               cwd=tmp_path).returncode == 0
    r = cli("gradients", "-d", "t.npz", "-m", "m.npz", "--steps", "20", "--batch", "4", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["models"]["m.npz (lstm)"]["a"]) == 20
    r = cli("gradients", "-d", "r.npz", "-m", "m.npz", cwd=tmp_path)
    assert r.returncode == 1 and "another vocabulary than m.npz's" in r.stderr
