"""The linear-chain CRF: exact against enumeration of every tag sequence, gradient-checked,
and indifferent to padding."""

import itertools

import numpy as np
import pytest

from rnncli.nn.crf import crf_marginals, crf_nll, viterbi
from rnncli.nn.gradcheck import check_gradients
from rnncli.tasks.tag import bio_transitions

TAGS = ["B-LOC", "B-PER", "I-LOC", "I-PER", "O"]


def _penalty(allowed):
    start, trans = allowed
    return np.where(start, 0.0, -np.inf), np.where(trans, 0.0, -np.inf)


def _problem(seed, lengths, K=len(TAGS)):
    rng = np.random.default_rng(seed)
    T, B = max(lengths), len(lengths)
    mask = (np.arange(T)[:, None] < np.array(lengths)[None]).astype(np.float64)
    E = rng.normal(size=(T, B, K))
    params = {"start": rng.normal(size=K), "trans": rng.normal(size=(K, K)), "end": rng.normal(size=K)}
    return E, mask, params


def _valid_tags(rng, T, B):
    """Random IOB2-valid tag sequences over TAGS, (T, B)."""
    out = np.zeros((T, B), np.int64)
    for b in range(B):
        prev = "O"
        for t in range(T):
            choices = [i for i, name in enumerate(TAGS)
                       if not name.startswith("I-") or prev[2:] == name[2:]]
            out[t, b] = rng.choice(choices)
            prev = TAGS[out[t, b]]
    return out


def _path_score(E, b, path, s, A, e):
    return s[path[0]] + e[path[-1]] + sum(E[t, b, y] for t, y in enumerate(path)) + \
        sum(A[path[t - 1], path[t]] for t in range(1, len(path)))


@pytest.mark.parametrize("constrained", [False, True])
def test_loss_and_decoding_equal_enumeration_of_all_sequences(constrained):
    lengths = [4, 2, 3, 1]
    E, mask, p = _problem(1, lengths)
    K = E.shape[2]
    s_pen, penalty = _penalty(bio_transitions(TAGS)) if constrained else (np.zeros(K), None)
    s = p["start"] + s_pen
    A = p["trans"] + (0.0 if penalty is None else penalty)
    tags = _valid_tags(np.random.default_rng(2), E.shape[0], E.shape[1])
    loss, _, _ = crf_nll(E, tags, mask, s, A, p["end"])
    best = viterbi(E, mask, s, A, p["end"])
    total = 0.0
    for b, n in enumerate(lengths):
        scores = {path: _path_score(E, b, path, s, A, p["end"]) for path in itertools.product(range(K), repeat=n)}
        finite = np.array([v for v in scores.values() if np.isfinite(v)])
        log_z = finite.max() + np.log(np.exp(finite - finite.max()).sum())
        total += log_z - scores[tuple(tags[:n, b])]
        assert tuple(best[:n, b]) == max(scores, key=scores.get)
        assert (best[n:, b] == 0).all()
    assert loss == pytest.approx(total / sum(lengths), rel=1e-12)


@pytest.mark.parametrize("constrained", [False, True])
def test_marginals_equal_enumeration_of_all_sequences(constrained):
    lengths = [4, 2, 1]
    E, mask, p = _problem(8, lengths)
    K = E.shape[2]
    s_pen, penalty = _penalty(bio_transitions(TAGS)) if constrained else (np.zeros(K), 0.0)
    s, A = p["start"] + s_pen, p["trans"] + penalty
    marg = crf_marginals(E, mask, s, A, p["end"])
    for b, n in enumerate(lengths):
        want = np.zeros((n, K))
        for path in itertools.product(range(K), repeat=n):
            weight = np.exp(_path_score(E, b, path, s, A, p["end"]))
            want[np.arange(n), path] += weight
        np.testing.assert_allclose(marg[:n, b], want / want[0].sum(), rtol=1e-12, atol=1e-300)
        assert not marg[n:, b].any()  # padded steps
    if constrained:  # no probability on a sentence opening with I-
        assert not marg[0][:, [TAGS.index("I-LOC"), TAGS.index("I-PER")]].any()


@pytest.mark.parametrize("constrained", [False, True])
@pytest.mark.parametrize("lengths", [[5, 5, 5], [5, 3, 1, 4]])
def test_gradients_match_central_differences(constrained, lengths):
    E, mask, p = _problem(3, lengths)
    start_pen, penalty = _penalty(bio_transitions(TAGS)) if constrained else (0.0, 0.0)
    tags = _valid_tags(np.random.default_rng(4), E.shape[0], E.shape[1])

    def loss():
        return crf_nll(E, tags, mask, p["start"] + start_pen, p["trans"] + penalty, p["end"])[0]

    _, d_E, grads = crf_nll(E, tags, mask, p["start"] + start_pen, p["trans"] + penalty, p["end"])
    errors = check_gradients(loss, {"E": E, **p}, {"E": d_E, **grads})
    assert max(errors.values()) < 1e-7, errors
    # padded positions get no gradient at all
    assert not d_E[mask == 0].any()


def test_padding_changes_nothing():
    E, mask, p = _problem(5, [4, 2])
    tags = _valid_tags(np.random.default_rng(6), 4, 2)
    loss, d_E, grads = crf_nll(E, tags, mask, **p)
    # the same two sentences, padded further with wild scores in the padding
    T2 = 9
    E2 = np.random.default_rng(7).normal(scale=1e3, size=(T2, 2, E.shape[2]))
    E2[:4] = np.where(mask[:, :, None] > 0, E, E2[:4])
    mask2 = np.zeros((T2, 2))
    mask2[:4] = mask
    tags2 = np.zeros((T2, 2), np.int64)
    tags2[:4] = tags * (mask > 0)
    loss2, d_E2, grads2 = crf_nll(E2, tags2, mask2, **p)
    assert loss2 == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(d_E2[:4], d_E, atol=1e-15)
    assert not d_E2[4:].any()
    for k in grads:
        np.testing.assert_allclose(grads2[k], grads[k], rtol=1e-12, atol=1e-15)
    A = p["trans"]
    np.testing.assert_array_equal(viterbi(E2, mask2, p["start"], A, p["end"])[:4] * (mask > 0),
                                  viterbi(E, mask, p["start"], A, p["end"]) * (mask > 0))


def test_float32_emissions_give_float32_gradients():
    E, mask, p = _problem(8, [3, 2])
    p32 = {k: v.astype(np.float32) for k, v in p.items()}
    tags = _valid_tags(np.random.default_rng(9), 3, 2)
    loss, d_E, grads = crf_nll(E.astype(np.float32), tags, mask.astype(np.float32), **p32)
    assert d_E.dtype == np.float32 and all(g.dtype == np.float32 for g in grads.values())
    assert loss == pytest.approx(crf_nll(E, tags, mask, **p)[0], rel=1e-5)
