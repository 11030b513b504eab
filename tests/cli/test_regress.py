"""Regression (issue 31, numbers out): the head's gradients in float64, padded and not; the loss
against a naive loop; padding never changes a prediction; the metrics against SciPy; the commands
end to end on sample_data/scores.jsonl."""

import json
import os

import numpy as np
import pytest
from cli_runner import cli

from rnncli.nn.gradcheck import check_gradients
from rnncli.tasks.regress import Regressor

SAMPLES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "sample_data"))


def batch(rng, T=5, B=3, V=9, padded=True):
    ids = rng.integers(4, V, (T, B))
    mask = np.ones((T, B))
    if padded:
        mask[3:, 1] = 0
        mask[2:, 2] = 0
    ids[mask == 0] = 0
    return ids, mask


@pytest.mark.parametrize("cell,pool,K,padded", [("lstm", "last", 1, True), ("lstm", "last", 1, False),
                                                ("gru", "mean", 3, True), ("gru", "mean", 3, False),
                                                ("rnn", "max", 2, True), ("lstm", "max", 1, False)])
def test_regression_gradients(cell, pool, K, padded):
    rng = np.random.default_rng(0)
    model = Regressor(9, K, rng, score_mean=rng.normal(size=K), score_std=rng.uniform(0.5, 2, K), embed=3,
                      hidden=4, cell=cell, layers=2, bidirectional=True, dropout=0.2, pool=pool, dtype=np.float64,
                      word_dropout=0.1)
    ids, mask = batch(rng, padded=padded)
    scores = rng.normal(size=(3, K))

    def run():
        return model.loss_and_grads(ids, mask, scores, rng=np.random.default_rng(4))

    _, grads = run()
    errors = check_gradients(lambda: run()[0], dict(model.params), grads)
    assert max(errors.values()) < 1e-6, errors


def test_loss_is_the_mean_squared_error_of_standardised_scores():
    """A naive twin: the head's outputs, standardised targets and the mean of squares by loops."""
    rng = np.random.default_rng(1)
    mean, sd = np.array([2.0, -1.0]), np.array([0.5, 3.0])
    model = Regressor(9, 2, rng, score_mean=mean, score_std=sd, embed=3, hidden=4, dtype=np.float64)
    ids, mask = batch(rng)
    y = rng.normal(size=(3, 2)) * sd + mean
    z_hat, _ = model.forward(ids, mask)
    total = 0.0
    for b in range(3):
        for k in range(2):
            total += (z_hat[b, k] - (y[b, k] - mean[k]) / sd[k]) ** 2
    loss, _ = model.loss_and_grads(ids, mask, y, train=False)
    assert loss == pytest.approx(total / 6, rel=1e-12)
    assert np.allclose(model.predict(ids, mask), z_hat * sd + mean)


def test_padding_never_changes_a_prediction():
    rng = np.random.default_rng(2)
    model = Regressor(9, 1, rng, embed=3, hidden=4, pool="mean", dtype=np.float64)
    ids, mask = batch(rng)
    alone = [model.predict(ids[: int(mask[:, b].sum()), b : b + 1], mask[: int(mask[:, b].sum()), b : b + 1])
             for b in range(3)]
    assert np.allclose(model.predict(ids, mask), np.concatenate(alone), atol=1e-12)


def test_metrics_agree_with_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    from rnncli.metrics import regression_scores

    rng = np.random.default_rng(3)
    y = rng.normal(size=(200, 2))
    y[:50, 1] = np.round(y[:50, 1])  # ties, which Spearman's rho ranks by their mean
    y_hat = y + rng.normal(scale=0.5, size=y.shape)
    y_hat[10:30, 0] = 0.25
    got = regression_scores(y, y_hat, ["a", "b"])
    for k, name in enumerate("ab"):
        s = got["scores"][name]
        assert s["pearson"] == pytest.approx(scipy_stats.pearsonr(y[:, k], y_hat[:, k])[0], abs=1e-12)
        assert s["spearman"] == pytest.approx(scipy_stats.spearmanr(y[:, k], y_hat[:, k])[0], abs=1e-12)
        residual = ((y[:, k] - y_hat[:, k]) ** 2).sum()
        assert s["r2"] == pytest.approx(1 - residual / ((y[:, k] - y[:, k].mean()) ** 2).sum(), abs=1e-12)
        assert s["rmse"] == pytest.approx(np.sqrt(residual / 200), abs=1e-12)
        assert s["mae"] == pytest.approx(np.abs(y[:, k] - y_hat[:, k]).mean(), abs=1e-12)
    assert got["pearson"] == pytest.approx((got["scores"]["a"]["pearson"] + got["scores"]["b"]["pearson"]) / 2)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """docs/regression.md's Training block, line by line, in a copy of sample_data: the data set and
    the model the other tests read, and each command's output."""
    import shutil
    import subprocess
    import sys

    d = tmp_path_factory.mktemp("regress")
    guide = open(os.path.join(SAMPLES, "..", "docs", "regression.md"), encoding="utf-8").read()
    block = guide.split("## Training\n", 1)[1].split("```\n", 2)[1]
    shutil.copytree(SAMPLES, d / "sample_data")
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    outputs = []
    for line in block.strip().splitlines():
        command = line.split("  #")[0].replace("python ", f"{sys.executable} ", 1)
        r = subprocess.run(["bash", "-c", f"set -o pipefail; {command}"], cwd=d, env=env, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, (line, r.stderr[-500:])
        outputs.append(r)
    return d, outputs


def test_the_guide_runs_as_written(trained):
    d, outputs = trained
    from rnncli.text.store import load_dataset

    meta = load_dataset(str(d / "scores.npz")).meta
    assert meta["format"] == "scores" and meta["level"] == "char" and meta["score_names"] == ["target"]
    assert "Pearson r" in outputs[3].stderr
    assert len(outputs[4].stdout.split()) == 150 and all(float(v) == float(v) for v in outputs[4].stdout.split())


def test_regression_end_to_end(trained):
    d = trained[0]
    r = cli("eval", "-m", "scores_model.npz", f"{SAMPLES}/scores_valid.jsonl", "--json", cwd=d)
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["task"] == "regress" and m["r2"] > 0.5 and m["pearson"] > 0.75, m  # a mean predictor scores r2 0
    records = [json.loads(line) for line in open(f"{SAMPLES}/scores_valid.jsonl")]
    lines = "".join(rec["text"] + "\n" for rec in records[:20]) + "\n"  # and an empty line: an empty answer
    r = cli("predict", "-m", "scores_model.npz", cwd=d, stdin=lines)
    assert r.returncode == 0, r.stderr
    out = r.stdout.split("\n")
    assert len(out) == 22 and out[20] == ""
    predicted = np.array([float(v) for v in out[:20]])
    from rnncli.models import load_model
    from rnncli.text.encode import encode_words

    model, meta, _ = load_model(str(d / "scores_model.npz"))  # the same numbers, straight from the model
    for k in (0, 7):
        split = encode_words(meta["data"], [list(records[k]["text"])])
        mask = np.ones((len(split.ids), 1), np.float32)
        assert predicted[k] == pytest.approx(float(model.predict(split.ids[:, None], mask)[0, 0]), abs=1e-4)
    r = cli("predict", "-m", "scores_model.npz", "--json", f"{SAMPLES}/scores_valid.jsonl", cwd=d)
    first = json.loads(r.stdout.split("\n")[0])
    assert r.returncode == 0 and set(first["scores"]) == {"target"}
    r = cli("inspect", "scores_model.npz", cwd=d)
    assert r.returncode == 0 and "target (" in r.stderr


BAD = [
    ('{"text": "ACGT", "target": "high"}\n', "field 'target' must be a finite number"),
    ('{"text": "ACGT", "target": NaN}\n', "field 'target' must be a finite number"),
    ('{"text": "ACGT", "target": []}\n', "field 'target' must be a finite number or a list of 1"),
    ('{"text": "ACGT", "target": [1, true]}\n', "field 'target' must be a finite number"),
    ('{"text": "ACGT", "target": 1}\n{"text": "AC", "target": [1, 2]}\n', ":2: 2 numbers in 'target', where the"),
    ('{"text": "  ", "target": 1}\n', "field 'text' is empty"),
    ('{"text": 5, "target": 1}\n', "field 'text' must be a string"),
]


@pytest.mark.parametrize("content,message", BAD)
def test_bad_scores_are_one_line_errors(tmp_path, content, message):
    (tmp_path / "bad.jsonl").write_text(content)
    r = cli("tokenize", "bad.jsonl", "-o", "bad.npz", cwd=tmp_path)
    assert r.returncode == 1 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert not (tmp_path / "bad.npz").exists()


def test_a_regression_model_given_labels_or_other_scores(trained):
    d = trained[0]
    (d / "labels.tsv").write_text("positive\tACGT\n")
    r = cli("eval", "-m", "scores_model.npz", "labels.tsv", cwd=d)
    assert r.returncode == 2 and "labels.tsv: scores are read from JSON lines records" in r.stderr, r.stderr
    (d / "two.jsonl").write_text('{"text": "ACGT", "target": [1, 2]}\n')
    r = cli("eval", "-m", "scores_model.npz", "two.jsonl", cwd=d)
    assert r.returncode == 1 and "two.jsonl:1: 2 numbers in 'target'; the model has 1" in r.stderr, r.stderr



def test_an_ensemble_of_regressions_averages_their_scores(trained):
    d = trained[0]
    r = cli("train", "-d", "scores.npz", "-o", "seed1.npz", "--hidden", "16", "--embed", "8", "--layers", "1",
            "--max-steps", "50", "--seed", "1", "--pool", "max", cwd=d)
    assert r.returncode == 0, r.stderr
    lines = "".join(json.loads(line)["text"] + "\n" for line in open(f"{SAMPLES}/scores_valid.jsonl"))
    alone = [np.array(cli("predict", "-m", m, cwd=d, stdin=lines).stdout.split(), float)
             for m in ("scores_model.npz", "seed1.npz")]
    both = np.array(cli("predict", "-m", "scores_model.npz", "-m", "seed1.npz", cwd=d, stdin=lines).stdout.split(),
                    float)
    np.testing.assert_allclose(both, (alone[0] + alone[1]) / 2, atol=2e-5)  # printed with 6 digits
    r = cli("eval", "-m", "scores_model.npz", "-m", "seed1.npz", f"{SAMPLES}/scores_valid.jsonl", "--json", cwd=d)
    assert r.returncode == 0 and "pearson" in json.loads(r.stdout)



@pytest.mark.parametrize("pool", ["last", "mean"])
def test_show_reads_each_tokens_share_as_gradient_times_input(pool):
    """read_regression's contributions against their definition: the numerical derivative of the
    first score (in its own units) with respect to each token's embedding vector, times that vector."""
    from rnncli.readout import read_regression
    from rnncli.text.vocab import SPECIALS

    rng = np.random.default_rng(3)
    vocab = list(SPECIALS) + ["a", "b", "c", "d", "e"]
    model = Regressor(len(vocab), 2, rng, score_mean=[1.0, -2.0], score_std=[3.0, 0.5], embed=3, hidden=4,
                      cell="gru", bidirectional=True, pool=pool, dtype=np.float64)
    meta = {"data": {"vocab": vocab, "level": "word", "lower": False, "score_names": ["x", "y"]}}
    read = read_regression(model, meta, "a c b c")
    ids = np.array([[4], [6], [5], [6]])
    mask = np.ones(ids.shape)
    vectors = model.embedding.forward(ids)  # (T, 1, E)
    assert read["scores"]["x"] == pytest.approx(model.predict(ids, mask)[0, 0], rel=1e-12)

    def first_score(x):
        model.embedding.forward = lambda _ids, *a, **k: x
        try:
            return model.predict(ids, mask)[0, 0]
        finally:
            del model.embedding.forward

    eps, expected = 1e-6, []
    for t in range(len(ids)):
        grad = np.zeros(3)
        for e in range(3):
            up, down = vectors.copy(), vectors.copy()
            up[t, 0, e] += eps
            down[t, 0, e] -= eps
            grad[e] = (first_score(up) - first_score(down)) / (2 * eps)
        expected.append(float(grad @ vectors[t, 0]))
    np.testing.assert_allclose(read["contributions"], expected, rtol=1e-6, atol=1e-9)
