"""Stacked and bidirectional layers, embedding, linear, losses: gradient checks in float64."""

import numpy as np
import pytest

from rnncli.nn.gradcheck import check_gradients, numerical_gradient, relative_error
from rnncli.nn.layers import Embedding, Linear
from rnncli.nn.losses import sigmoid_binary_cross_entropy, softmax_cross_entropy
from rnncli.nn.stack import RecurrentStack, reverse_index
from rnncli.tasks.word_dropout import word_dropout

T, B, D, H = 5, 3, 4, 3
CELLS = [("rnn", True), ("gru", True), ("gru", False), ("lstm", True)]


def ragged_mask():
    mask = np.ones((T, B))
    mask[3:, 1] = 0
    mask[2:, 2] = 0
    return mask


def make_stack(cell, reset_after, layers, bidirectional, dropout=0.0, seed=0):
    rng = np.random.default_rng(seed)
    s = RecurrentStack(cell, D, H, rng, num_layers=layers, bidirectional=bidirectional,
                       dropout=dropout, dtype=np.float64, reset_after=reset_after)
    for arr in s.params.values():
        arr[...] = rng.standard_normal(arr.shape) * 0.5
    return s, rng


@pytest.mark.parametrize("cell,reset_after", CELLS, ids=["rnn", "gru", "gru-before", "lstm"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("masked", [False, True], ids=["full", "padded"])
def test_stack_gradients(cell, reset_after, layers, bidirectional, masked):
    dropout = 0.3 if layers == 2 else 0.0
    s, rng = make_stack(cell, reset_after, layers, bidirectional, dropout)
    x = rng.standard_normal((T, B, D))
    mask = ragged_mask() if masked else None
    states = [tuple(rng.standard_normal((B, H)) for _ in c.initial_state(B)) for c in s.cells]
    w_out = rng.standard_normal((T, B, s.output_size))
    w_fin = [tuple(rng.standard_normal((B, H)) for _ in st) for st in states]

    def run():
        return s.forward(x, states, mask, train=True, rng=np.random.default_rng(42))

    def loss():
        out, finals, _ = run()
        value = (out * w_out).sum()
        for f, w in zip(finals, w_fin, strict=True):
            value += sum((a * b).sum() for a, b in zip(f, w, strict=True))
        return float(value)

    _, _, cache = run()
    dx, d_states, grads = s.backward(w_out, w_fin, cache)
    arrays = dict(s.params, x=x)
    analytic = dict(grads, x=dx)
    for k, (st, dst) in enumerate(zip(states, d_states, strict=True)):
        for j, (a, d) in enumerate(zip(st, dst, strict=True)):
            arrays[f"s{k}.{j}"], analytic[f"s{k}.{j}"] = a, d
    errors = check_gradients(loss, arrays, analytic)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_bidirectional_padding_invariance(cell):
    """Each sequence of a padded batch gives the same outputs and gradients as alone."""
    s, rng = make_stack(cell, True, 2, True)
    x = rng.standard_normal((T, B, D))
    mask = ragged_mask()
    x_garbage = x.copy()
    x_garbage[mask == 0] = 1e3  # padding content must not matter
    out, finals, cache = s.forward(x_garbage, None, mask)
    d_out = rng.standard_normal(out.shape) * mask[:, :, None]
    dx, _, grads = s.backward(d_out, None, cache)
    total = {k: np.zeros_like(v) for k, v in grads.items()}
    for b in range(B):
        L = int(mask[:, b].sum())
        o1, f1, c1 = s.forward(x[:L, b : b + 1], None, None)
        np.testing.assert_allclose(out[:L, b], o1[:, 0], atol=1e-12)
        for fa, fb in zip(finals, f1, strict=True):
            np.testing.assert_allclose(fa[0][b], fb[0][0], atol=1e-12)
        dx1, _, g1 = s.backward(d_out[:L, b : b + 1], None, c1)
        np.testing.assert_allclose(dx[:L, b], dx1[:, 0], atol=1e-12)
        assert np.all(dx[L:, b] == 0)
        for k in total:
            total[k] += g1[k]
    for k in grads:
        np.testing.assert_allclose(grads[k], total[k], atol=1e-10)


def test_reverse_index_reverses_within_length():
    mask = np.array([[1, 1], [1, 1], [1, 0], [0, 0]], float)
    rev = reverse_index(mask)
    assert rev[:, 0].tolist() == [2, 1, 0, 3]
    assert rev[:, 1].tolist() == [1, 0, 2, 3]


def test_dropout_is_off_at_evaluation():
    s, rng = make_stack("lstm", True, 2, False, dropout=0.5)
    x = rng.standard_normal((T, B, D))
    a, _, _ = s.forward(x)
    b, _, _ = s.forward(x, train=False, rng=np.random.default_rng(1))
    c, _, _ = s.forward(x, train=True, rng=np.random.default_rng(1))
    assert np.array_equal(a, b) and not np.allclose(a, c)


def test_step_through_stack_matches_forward():
    s, rng = make_stack("gru", False, 2, False)
    x = rng.standard_normal((T, B, D))
    out, finals, _ = s.forward(x)
    states = s.initial_state(B)
    for t in range(T):
        h, states = s.step(x[t], states)
        np.testing.assert_allclose(h, out[t], atol=1e-13)


def test_embedding_gradient_matches_add_at_and_numeric():
    rng = np.random.default_rng(0)
    emb = Embedding(7, 3, rng, np.float64)
    ids = rng.integers(0, 7, (5, 4))
    d = rng.standard_normal((5, 4, 3))
    dE = emb.backward(d, ids)["E"]
    expected = np.zeros((7, 3))
    np.add.at(expected, ids.reshape(-1), d.reshape(-1, 3))
    np.testing.assert_allclose(dE, expected, atol=1e-12)
    numeric = numerical_gradient(lambda: float((emb.forward(ids) * d).sum()), emb.params["E"])
    assert relative_error(dE, numeric) < 1e-8


def test_word_dropout_replaces_a_share_of_regular_words():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 10, size=(400, 50))  # ids 0-3 are <pad> <unk> <bos> <eos>
    out = word_dropout(rng, ids, 0.3)
    assert np.array_equal(out[ids < 4], ids[ids < 4])  # specials are never replaced
    regular = ids >= 4
    assert set(np.unique(out[regular & (out != ids)])) == {1}
    assert abs(np.mean(out[regular] == 1) - 0.3) < 0.01
    assert word_dropout(rng, ids, 0.3) is not ids and word_dropout(None, ids, 0.3) is ids


def test_linear_gradients():
    rng = np.random.default_rng(0)
    lin = Linear(4, 3, rng, np.float64)
    x = rng.standard_normal((2, 5, 4))
    w = rng.standard_normal((2, 5, 3))
    dx, grads = lin.backward(w, x)
    f = lambda: float((lin.forward(x) * w).sum())
    errors = check_gradients(f, dict(lin.params, x=x), dict(grads, x=dx))
    assert max(errors.values()) < 1e-8


@pytest.mark.parametrize("weighted", [False, True])
def test_softmax_cross_entropy_gradient(weighted):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((6, 5)) * 3
    y = rng.integers(0, 5, 6)
    w = np.array([1, 1, 0, 1, 0, 1.0]) if weighted else None
    loss, dz = softmax_cross_entropy(z, y, w)
    num = numerical_gradient(lambda: softmax_cross_entropy(z, y, w)[0], z)
    assert relative_error(dz, num) < 1e-8
    # the definition, directly
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    nll = -np.log(p[np.arange(6), y])
    ww = np.ones(6) if w is None else w
    assert loss == pytest.approx((nll * ww).sum() / ww.sum(), rel=1e-12)


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    z = np.array([[1000.0, 0.0, -1000.0]])
    loss, dz = softmax_cross_entropy(z, np.array([1]))
    assert np.isfinite(loss) and loss == pytest.approx(1000.0)
    assert np.all(np.isfinite(dz))


def test_sigmoid_bce_gradient_and_stability():
    rng = np.random.default_rng(0)
    z = rng.standard_normal(7) * 4
    y = rng.integers(0, 2, 7).astype(float)
    loss, dz = sigmoid_binary_cross_entropy(z, y)
    num = numerical_gradient(lambda: sigmoid_binary_cross_entropy(z, y)[0], z)
    assert relative_error(dz, num) < 1e-8
    s = 1 / (1 + np.exp(-z))
    assert loss == pytest.approx(np.mean(-y * np.log(s) - (1 - y) * np.log(1 - s)), rel=1e-12)
    big, _ = sigmoid_binary_cross_entropy(np.array([800.0, -800.0]), np.array([0.0, 1.0]))
    assert big == pytest.approx(800.0)
