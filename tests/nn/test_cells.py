"""Every cell against its naive oracle, and against central differences in float64."""

import numpy as np
import pytest
import reference_cells as ref

from rnncli.nn.gradcheck import check_gradients
from rnncli.nn.recurrent import make_cell

T, B, D, H = 5, 3, 4, 6
CELLS = [
    ("rnn", {"activation": "tanh"}),
    ("rnn", {"activation": "relu"}),
    ("gru", {"reset_after": True}),
    ("gru", {"reset_after": False}),
    ("lstm", {}),
]
IDS = ["rnn-tanh", "rnn-relu", "gru-reset-after", "gru-reset-before", "lstm"]


def make(cell, kw, seed=0):
    rng = np.random.default_rng(seed)
    c = make_cell(cell, D, H, rng, np.float64, **kw)
    for arr in c.params.values():
        arr[...] = rng.standard_normal(arr.shape) * 0.5
    return c, rng


def ragged_mask():
    mask = np.ones((T, B))
    mask[3:, 1] = 0
    mask[1:, 2] = 0
    return mask


def reference(cell, kw, c, x, s0, mask):
    if cell == "rnn":
        return ref.rnn_sequence(c.params, x, s0[0], mask, **kw)
    if cell == "lstm":
        return ref.lstm_sequence(c.params, x, s0, mask)
    return ref.gru_sequence(c.params, x, s0[0], mask, **kw)


@pytest.mark.parametrize("cell,kw", CELLS, ids=IDS)
@pytest.mark.parametrize("masked", [False, True], ids=["full", "padded"])
def test_fused_cell_matches_naive_oracle(cell, kw, masked):
    c, rng = make(cell, kw)
    x = rng.standard_normal((T, B, D))
    s0 = tuple(rng.standard_normal((B, H)) for _ in range(c.n_states))
    mask = ragged_mask() if masked else None
    out, final, _ = c.forward(x, s0, mask)
    ref_out, ref_final = reference(cell, kw, c, x, s0, mask)
    np.testing.assert_allclose(out, ref_out, rtol=0, atol=1e-12)
    for a, b in zip(final, ref_final, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell,kw", CELLS, ids=IDS)
@pytest.mark.parametrize("masked", [False, True], ids=["full", "padded"])
def test_cell_gradients(cell, kw, masked):
    """Every parameter, the inputs and the initial state, through outputs and final state."""
    c, rng = make(cell, kw)
    x = rng.standard_normal((T, B, D))
    s0 = tuple(rng.standard_normal((B, H)) for _ in range(c.n_states))
    mask = ragged_mask() if masked else None
    w_out = rng.standard_normal((T, B, H))
    w_final = [rng.standard_normal((B, H)) for _ in range(c.n_states)]

    def loss():
        out, final, _ = c.forward(x, s0, mask)
        return float((out * w_out).sum() + sum((f * w).sum() for f, w in zip(final, w_final, strict=True)))

    _, _, cache = c.forward(x, s0, mask)
    dx, ds0, grads = c.backward(w_out, tuple(w_final), cache)
    arrays = dict(c.params, x=x, **{f"state{i}": s for i, s in enumerate(s0)})
    analytic = dict(grads, x=dx, **{f"state{i}": d for i, d in enumerate(ds0)})
    errors = check_gradients(loss, arrays, analytic)
    assert set(grads) == set(c.params)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("cell,kw", CELLS, ids=IDS)
def test_step_reproduces_sequence_forward(cell, kw):
    c, rng = make(cell, kw)
    x = rng.standard_normal((T, B, D))
    state = tuple(rng.standard_normal((B, H)) for _ in range(c.n_states))
    out, final, _ = c.forward(x, state)
    for t in range(T):
        state = c.step(x[t], state)
        np.testing.assert_allclose(state[0], out[t], rtol=0, atol=1e-13)
    for a, b in zip(state, final, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-13)


@pytest.mark.parametrize("cell,kw", CELLS, ids=IDS)
def test_padding_never_leaks(cell, kw):
    """A sequence padded with garbage gives the same outputs, state and gradients as alone."""
    c, rng = make(cell, kw)
    x = rng.standard_normal((T, B, D))
    mask = ragged_mask()
    lengths = mask.sum(axis=0).astype(int)
    out, final, cache = c.forward(x, None, mask)
    d_out = rng.standard_normal((T, B, H)) * mask[:, :, None]
    dx, _, grads = c.backward(d_out, None, cache)
    total = {k: np.zeros_like(v) for k, v in grads.items()}
    for b in range(B):
        L = lengths[b]
        o1, f1, c1 = c.forward(x[:L, b : b + 1], None, None)
        np.testing.assert_allclose(out[:L, b], o1[:, 0], atol=1e-12)
        np.testing.assert_allclose(final[0][b], f1[0][0], atol=1e-12)
        dx1, _, g1 = c.backward(d_out[:L, b : b + 1], None, c1)
        np.testing.assert_allclose(dx[:L, b], dx1[:, 0], atol=1e-12)
        assert np.all(dx[L:, b] == 0)
        for k in total:
            total[k] += g1[k]
    for k in grads:
        np.testing.assert_allclose(grads[k], total[k], atol=1e-11)


def test_lstm_forget_bias_starts_at_one():
    c = make_cell("lstm", D, H, np.random.default_rng(0))
    b = c.params["b"]
    assert np.all(b[H : 2 * H] == 1) and np.all(b[:H] == 0) and np.all(b[2 * H :] == 0)


@pytest.mark.parametrize("cell,kw", CELLS, ids=IDS)
def test_float32_stays_float32(cell, kw):
    c = make_cell(cell, D, H, np.random.default_rng(0), np.float32, **kw)
    x = np.random.default_rng(1).standard_normal((T, B, D)).astype(np.float32)
    out, final, cache = c.forward(x, None, ragged_mask())
    assert out.dtype == np.float32 and all(f.dtype == np.float32 for f in final)
    dx, ds0, grads = c.backward(np.ones_like(out), None, cache)
    assert dx.dtype == np.float32 and all(g.dtype == np.float32 for g in grads.values())


def test_same_seed_same_numbers():
    a = make_cell("lstm", D, H, np.random.default_rng(7))
    b = make_cell("lstm", D, H, np.random.default_rng(7))
    for k in a.params:
        assert np.array_equal(a.params[k], b.params[k])
    c = make_cell("lstm", D, H, np.random.default_rng(8))
    assert not np.array_equal(a.params["W_aa"], c.params["W_aa"])
