"""Attention: the fast layer against its naive twin, gradient checks in float64 (padded and
not), and padding that never changes a result."""

import numpy as np
import pytest
from reference_attention import attention as naive_attention

from rnncli.nn.attention import Attention
from rnncli.nn.gradcheck import check_gradients

KINDS = ["dot", "general", "additive"]


def setup(kind, padded, T=4, S=5, B=3, Hd=4, He=4, seed=0):
    rng = np.random.default_rng(seed)
    layer = Attention(kind, Hd, He if kind != "dot" else Hd, rng, dtype=np.float64)
    query = rng.standard_normal((T, B, Hd))
    memory = rng.standard_normal((S, B, He if kind != "dot" else Hd))
    mask = np.ones((S, B))
    if padded:
        mask[3:, 1] = 0
        mask[1:, 2] = 0  # a one-step source
    return layer, query, memory, mask, rng


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("padded", [False, True])
def test_attention_matches_its_naive_twin(kind, padded):
    layer, query, memory, mask, _ = setup(kind, padded, He=6)
    out, alpha, _ = layer.forward(query, memory, mask)
    ref_out, ref_alpha = naive_attention(kind, layer.params, query, memory, mask)
    np.testing.assert_allclose(out, ref_out, rtol=0, atol=1e-12)
    np.testing.assert_allclose(alpha, ref_alpha, rtol=0, atol=1e-12)
    assert np.all(alpha[mask.T[:, None, :].repeat(alpha.shape[1], axis=1) == 0] == 0)  # no weight on padding


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("padded", [False, True])
def test_attention_gradients(kind, padded):
    layer, query, memory, mask, rng = setup(kind, padded, He=6)
    weights = rng.standard_normal(query.shape)

    def loss():
        return float((layer.forward(query, memory, mask)[0] * weights).sum())

    out, _, cache = layer.forward(query, memory, mask)
    d_query, d_memory, grads = layer.backward(weights, cache)
    arrays = {**layer.params, "query": query, "memory": memory}
    errors = check_gradients(loss, arrays, {**grads, "query": d_query, "memory": d_memory})
    assert max(errors.values()) < 1e-7, errors
    if padded:  # padded memory steps get no gradient
        assert np.all(d_memory[mask == 0] == 0)


@pytest.mark.parametrize("kind", KINDS)
def test_padding_never_changes_the_result(kind):
    layer, query, memory, mask, rng = setup(kind, True, He=6)
    out, alpha, _ = layer.forward(query, memory, mask)
    noisy = memory.copy()
    noisy[mask == 0] = rng.standard_normal(noisy[mask == 0].shape) * 100
    wider = np.concatenate([noisy, rng.standard_normal((2,) + memory.shape[1:])])  # two more padded steps
    wider_mask = np.concatenate([mask, np.zeros((2, mask.shape[1]))])
    out2, alpha2, _ = layer.forward(query, wider, wider_mask)
    np.testing.assert_allclose(out2, out, rtol=0, atol=1e-13)
    np.testing.assert_allclose(alpha2[:, :, : memory.shape[0]], alpha, rtol=0, atol=1e-13)


def test_dot_attention_refuses_unequal_sizes():
    with pytest.raises(ValueError, match="dot attention needs equal sizes"):
        Attention("dot", 4, 8, np.random.default_rng(0))
