"""Label smoothing: the loss against its definition written out class by class, its gradient against
numerical differences in float64 (alone and through the models that use it), and evaluation that
never sees it."""

import numpy as np
import pytest

from rnncli.nn.gradcheck import check_gradients, numerical_gradient
from rnncli.nn.losses import softmax_cross_entropy
from rnncli.tasks.lm import LanguageModel
from rnncli.tasks.seq2seq import Seq2Seq
from rnncli.tasks.tag import Tagger


def naive_smoothed(logits, targets, weights, eps):
    """-sum_k q_k log p_k per position, q = (1 - eps) onehot + eps / V, weighted mean: one line each."""
    total = 0.0
    V = logits.shape[1]
    for z, y, w in zip(logits, targets, weights, strict=True):
        log_p = z - np.log(np.sum(np.exp(z)))
        q = np.full(V, eps / V)
        q[y] += 1.0 - eps
        total += w * -np.sum(q * log_p)
    return total / np.sum(weights)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.45])
def test_smoothed_loss_and_gradient(eps):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(6, 9)) * 3
    y = rng.integers(0, 9, 6)
    w = np.array([1.0, 1, 0, 1, 1, 0])  # two padded positions
    loss, grad = softmax_cross_entropy(z, y, w, eps)
    assert loss == pytest.approx(naive_smoothed(z, y, w, eps), abs=1e-12)
    numeric = numerical_gradient(lambda: softmax_cross_entropy(z, y, w, eps)[0], z)
    np.testing.assert_allclose(grad, numeric, atol=1e-9)
    assert np.all(grad[w == 0] == 0)


def test_smoothing_follows_pytorchs_definition():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    z, y = rng.normal(size=(5, 7)), rng.integers(0, 7, 5)
    theirs = torch.nn.functional.cross_entropy(torch.tensor(z), torch.tensor(y), label_smoothing=0.2).item()
    assert softmax_cross_entropy(z, y, None, 0.2)[0] == pytest.approx(theirs, abs=1e-12)


def _check(model, run):
    _, grads = run()
    errors = check_gradients(lambda: run()[0], dict(model.params), grads, eps=1e-5, entries=25,
                             rng=np.random.default_rng(0))
    assert max(errors.values()) < 1e-6, errors


def test_gradients_through_a_language_model_a_tagger_and_an_encoder_decoder():
    rng = np.random.default_rng(2)
    lm = LanguageModel(9, rng, embed=3, hidden=4, cell="gru", dtype=np.float64)
    lm.label_smoothing = 0.1
    ids, targets = rng.integers(1, 9, (5, 2)), rng.integers(1, 9, (5, 2))
    mask = np.ones((5, 2))
    mask[3:, 1] = 0
    _check(lm, lambda: lm.loss_and_grads(ids, targets, mask=mask)[:2])
    tagger = Tagger(9, 4, rng, embed=3, hidden=4, cell="lstm", dtype=np.float64)
    tagger.label_smoothing = 0.2
    tags = rng.integers(0, 4, (5, 2))
    _check(tagger, lambda: tagger.loss_and_grads(ids, mask, tags))
    s2s = Seq2Seq(9, 7, rng, embed=3, hidden=4, cell="lstm", bidirectional=True, attention="general",
                  dtype=np.float64)
    s2s.label_smoothing = 0.1
    t_in, t_out = rng.integers(2, 7, (4, 2)), rng.integers(3, 7, (4, 2))
    t_mask = np.ones((4, 2))
    t_mask[2:, 0] = 0
    _check(s2s, lambda: s2s.loss_and_grads(ids, mask, t_in, t_out, t_mask))
    # evaluation scores the plain likelihood: the same with and without smoothing
    smoothed_eval = s2s.loss(ids, mask, t_in, t_out, t_mask)
    smoothed_train = s2s.loss_and_grads(ids, mask, t_in, t_out, t_mask)[0]
    s2s.label_smoothing = 0.0
    nll, count = s2s.loss(ids, mask, t_in, t_out, t_mask)
    assert (nll, count) == smoothed_eval
    assert s2s.loss_and_grads(ids, mask, t_in, t_out, t_mask)[0] == pytest.approx(nll / count, abs=1e-12)
    assert abs(smoothed_train - nll / count) > 1e-3
