"""Classifier and tagger: gradient checks through every piece, and padding invariance."""

import math

import numpy as np
import pytest

from rnncli.nn.gradcheck import check_gradients
from rnncli.tasks.classify import Classifier
from rnncli.tasks.tag import Tagger


def batch(rng, T=5, B=3, V=9):
    ids = rng.integers(4, V, (T, B))
    mask = np.ones((T, B))
    mask[3:, 1] = 0
    mask[2:, 2] = 0
    ids[mask == 0] = 0
    return ids, mask


# every cell, every pooling and both losses (2 classes: sigmoid BCE, 3: softmax), without the full product
@pytest.mark.parametrize("cell,pool,classes", [("rnn", "last", 2), ("gru", "mean", 3), ("lstm", "max", 2),
                                               ("lstm", "last", 3), ("gru", "last", 2), ("rnn", "max", 3),
                                               ("lstm", "mean", 2)])
def test_classifier_gradients(cell, pool, classes):
    rng = np.random.default_rng(0)
    model = Classifier(9, classes, rng, embed=3, hidden=4, cell=cell, layers=2, bidirectional=True,
                       dropout=0.2, pool=pool, dtype=np.float64)
    ids, mask = batch(rng)
    labels = rng.integers(0, classes, 3)

    def run():
        return model.loss_and_grads(ids, mask, labels, rng=np.random.default_rng(4))

    _, grads = run()
    errors = check_gradients(lambda: run()[0], dict(model.params), grads)
    assert max(errors.values()) < 1e-6, errors


TAG_NAMES = ["B-A", "B-B", "I-A", "O"]


def valid_tags(rng, shape):
    """Random IOB2 tags over TAG_NAMES: an I-A that follows neither B-A nor I-A becomes B-A."""
    tags = rng.integers(0, 4, shape)
    for t in range(shape[0]):
        stray = (tags[t] == 2) & ((tags[t - 1] if t else np.full(shape[1], 3)) % 2 == 1)  # after B-B or O
        tags[t][stray] = 0
    return tags


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("char_features,crf", [(False, False), ("rnn", False), (False, True), ("rnn", True),
                                               ("cnn", False), ("cnn", True)])
def test_tagger_gradients(cell, char_features, crf):
    from rnncli.tasks.tag import bio_transitions

    rng = np.random.default_rng(1)
    model = Tagger(9, 4, rng, embed=3, hidden=4, cell=cell, layers=1, dropout=0.1,
                   char_vocab_size=7 if char_features else None, dtype=np.float64, char_embed=3, char_hidden=2,
                   crf=crf, allowed=bio_transitions(TAG_NAMES) if crf and char_features else None,
                   char_encoder=char_features or "rnn")
    if crf:  # nonzero transition scores, so their gradients flow through every path
        for k in ("crf.start", "crf.trans", "crf.end"):
            model.params[k][...] = rng.normal(size=model.params[k].shape)
    ids, mask = batch(rng)
    tags = valid_tags(rng, ids.shape)
    chars = cmask = None
    if char_features:
        chars = rng.integers(4, 7, (4, ids.size))
        cmask = (np.arange(4)[:, None] < rng.integers(1, 5, ids.size)[None, :]).astype(float)
        cmask[:, mask.reshape(-1) == 0] = 0

    def run():
        return model.loss_and_grads(ids, mask, tags, chars, cmask, rng=np.random.default_rng(2))

    _, grads = run()
    # eps 1e-5: the char RNN's recurrent gradient is ~1e-4 in norm, so the rounding part of the
    # central difference (machine eps / eps) would dominate its relative error at 1e-6
    errors = check_gradients(lambda: run()[0], dict(model.params), grads, eps=1e-5)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("crf", [False, True])
def test_tagger_padding_invariance(crf):
    from rnncli.tasks.tag import bio_transitions

    rng = np.random.default_rng(5)
    model = Tagger(9, 4, rng, embed=3, hidden=4, cell="lstm", dtype=np.float64, crf=crf,
                   allowed=bio_transitions(TAG_NAMES))
    if crf:
        model.params["crf.trans"][...] = rng.normal(size=(4, 4))
    ids, mask = batch(rng)
    tags = valid_tags(rng, ids.shape)
    pred = model.predict(ids, mask)
    loss, _ = model.loss_and_grads(ids, mask, tags, train=False)
    losses, tokens = 0.0, 0
    for b in range(3):
        L = int(mask[:, b].sum())
        one = (ids[:L, b : b + 1], np.ones((L, 1)))
        np.testing.assert_array_equal(model.predict(*one)[:, 0], pred[:L, b])
        losses += L * model.loss_and_grads(*one, tags[:L, b : b + 1], train=False)[0]
        tokens += L
    assert loss == pytest.approx(losses / tokens, rel=1e-12)


@pytest.mark.parametrize("pool", ["last", "mean", "max"])
def test_classifier_padding_invariance(pool):
    rng = np.random.default_rng(3)
    model = Classifier(9, 2, rng, embed=3, hidden=4, cell="lstm", bidirectional=True, pool=pool, dtype=np.float64)
    ids, mask = batch(rng)
    p = model.predict_proba(ids, mask)
    for b in range(3):
        L = int(mask[:, b].sum())
        alone = model.predict_proba(ids[:L, b : b + 1], np.ones((L, 1)))
        np.testing.assert_allclose(p[b], alone[0], atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predictions_pool_the_same_numbers_as_training_does(dtype):
    """predict_proba's max pooling takes the maxima (no positions, which only backward needs): the
    same numbers, bit for bit, as the pooling that training differentiates, padded or not."""
    rng = np.random.default_rng(5)
    model = Classifier(9, 3, rng, embed=3, hidden=4, cell="gru", bidirectional=True, pool="max", dtype=dtype)
    ids, mask = batch(rng)
    trained_path, _ = model.forward(ids, mask)
    predicted_path, _ = model.forward(ids, mask, for_backward=False)
    assert predicted_path.dtype == trained_path.dtype
    np.testing.assert_array_equal(predicted_path, trained_path)


def test_constrained_decode_finds_the_best_valid_sequence_by_brute_force():
    import itertools

    from rnncli.nn.crf import viterbi
    from rnncli.tasks.tag import bio_transitions

    tags = ["B-LOC", "B-PER", "I-LOC", "I-PER", "O"]
    start, trans = bio_transitions(tags)
    rng = np.random.default_rng(0)
    T, B = 4, 6
    logp = np.log(rng.dirichlet(np.ones(5), size=(T, B)))
    mask = np.ones((T, B))
    mask[2:, 1] = 0
    best = viterbi(logp, mask, np.where(start, 0.0, -np.inf), np.where(trans, 0.0, -np.inf), np.zeros(5))
    for b in range(B):
        L = int(mask[:, b].sum())
        valid = [seq for seq in itertools.product(range(5), repeat=L)
                 if start[seq[0]] and all(trans[a, c] for a, c in zip(seq, seq[1:], strict=False))]
        want = max(valid, key=lambda seq: sum(logp[t, b, k] for t, k in enumerate(seq)))
        assert tuple(best[:L, b]) == want
    assert not trans[tags.index("O"), tags.index("I-PER")] and trans[tags.index("B-PER"), tags.index("I-PER")]


def test_mean_pooling_never_divides_by_a_zero_length():
    from rnncli.tasks.classify import Classifier

    model = Classifier(9, 2, np.random.default_rng(0), embed=3, hidden=4, pool="mean", dtype=np.float64)
    ids, mask = np.full((3, 2), 5), np.ones((3, 2))
    mask[:, 1], ids[:, 1] = 0, 0  # the second sequence has no real step
    loss, grads = model.loss_and_grads(ids, mask, np.array([1, 0]))
    assert math.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grads.values())


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_lm_evaluation_is_one_continuous_pass_over_every_token(cell):
    from rnncli.evaluate import evaluate_lm
    from rnncli.nn.functional import log_softmax
    from rnncli.tasks.lm import LanguageModel
    from rnncli.text.vocab import EOS

    rng = np.random.default_rng(0)
    model = LanguageModel(11, rng, embed=5, hidden=6, cell=cell, layers=2, dtype=np.float64)
    ids = rng.integers(3, 11, 700).astype(np.int32)
    # the oracle: one token at a time through step(), the state carried from <eos> to the end
    states, nll, prev = model.initial_state(1), 0.0, EOS
    for token in ids:
        logits, states = model.step(np.array([prev]), states)
        nll -= log_softmax(logits[0])[token]
        prev = token
    for chunk in (1, 64, 1000):
        result = evaluate_lm(model, ids, chunk=chunk)
        assert result["tokens"] == 700
        assert abs(result["loss"] - nll / 700) < 1e-12
