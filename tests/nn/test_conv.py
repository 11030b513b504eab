"""The character convolution: gradient-checked, and a word's features do not depend on padding."""

import numpy as np
import pytest

from rnncli.nn.conv import CharConv
from rnncli.nn.gradcheck import check_gradients


def words(rng, L=6, N=5, C=3):
    x = rng.normal(size=(L, N, C))
    lengths = np.array([6, 1, 3, 0, 4])  # a one-letter word, and an empty (padded) word position
    mask = (np.arange(L)[:, None] < lengths[None]).astype(np.float64)
    return x, mask


@pytest.mark.parametrize("width", [1, 3, 5])
def test_gradients_match_central_differences(width):
    rng = np.random.default_rng(0)
    conv = CharConv(3, 4, rng, width=width, dtype=np.float64)
    conv.params["b"][...] = rng.normal(size=4)
    x, mask = words(rng)
    weights = rng.normal(size=(5, 4))  # a random linear read-out of the features

    def loss():
        return float((conv.forward(x, mask)[0] * weights).sum())

    out, cache = conv.forward(x, mask)
    dx, grads = conv.backward(weights, cache)
    errors = check_gradients(loss, {"x": x, **conv.params}, {"x": dx, **grads})
    assert max(errors.values()) < 1e-7, errors
    assert not out[3].any() and not dx[mask == 0].any()


def test_features_do_not_depend_on_padding_or_batch_neighbours():
    rng = np.random.default_rng(1)
    conv = CharConv(3, 4, rng, dtype=np.float64)
    x, mask = words(rng)
    out, _ = conv.forward(x, mask)
    for n, length in enumerate([6, 1, 3, 0, 4]):
        if length == 0:
            continue
        alone, _ = conv.forward(x[:length, n : n + 1], np.ones((length, 1)))
        np.testing.assert_allclose(out[n], alone[0], rtol=1e-13)
    # garbage in the padded character slots changes nothing
    noisy = np.where(mask[:, :, None] > 0, x, 1e6)
    np.testing.assert_array_equal(conv.forward(noisy, mask)[0], out)


def test_even_width_is_refused():
    with pytest.raises(ValueError, match="odd"):
        CharConv(3, 4, np.random.default_rng(0), width=2)


def test_tied_positions_share_the_gradient():
    # width 1 over a word of one repeated character: every position gives every filter the same
    # response, so the max is tied four ways; the gradient it passes back must still total d_out
    rng = np.random.default_rng(2)
    conv = CharConv(3, 4, rng, width=1, dtype=np.float64)
    x = np.tile(rng.normal(size=(1, 1, 3)), (4, 1, 1))  # (L=4, N=1, C=3)
    out, cache = conv.forward(x, np.ones((4, 1)))
    d_out = rng.normal(size=(1, 4))
    dx, grads = conv.backward(d_out, cache)
    np.testing.assert_allclose(grads["b"], d_out[0] * (1 - out[0] ** 2), rtol=1e-12)
    np.testing.assert_allclose(dx, np.tile(dx[:1], (4, 1, 1)), rtol=1e-12)  # shared equally
