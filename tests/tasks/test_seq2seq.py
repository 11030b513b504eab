"""The encoder-decoder: gradient checks through every piece (each cell, each attention, with
and without the bridge, padded), and padding that never changes the loss."""

import numpy as np
import pytest

from rnncli.nn.gradcheck import check_gradients, numerical_gradient
from rnncli.tasks.seq2seq import Seq2Seq


def batch(rng, S=5, T=4, B=3, Vs=9, Vt=7):
    src = rng.integers(4, Vs, (S, B))
    src_mask = np.ones((S, B))
    src_mask[3:, 1] = 0
    src_mask[1:, 2] = 0
    src[src_mask == 0] = 0
    tgt_in = rng.integers(4, Vt, (T, B))
    tgt_in[0] = 2  # <bos>
    tgt_out = rng.integers(3, Vt, (T, B))
    tgt_mask = np.ones((T, B))
    tgt_mask[2:, 0] = 0
    tgt_in[tgt_mask == 0] = 0
    tgt_out[tgt_mask == 0] = 0
    return src, src_mask, tgt_in, tgt_out, tgt_mask


CASES = [("rnn", None, False, 1), ("gru", None, True, 2), ("lstm", None, True, 1), ("lstm", "dot", False, 2),
         ("gru", "general", True, 1), ("lstm", "additive", True, 2), ("rnn", "additive", False, 1),
         ("lstm", "general", False, 1)]


# without dropout the head reads attention's output itself (not a fresh dropped-out copy): an array
# laid out (B, T, H) in memory, which the head's gradient at the real positions must still fill
@pytest.mark.parametrize("cell,attention,bidirectional,layers,dropout",
                         [(*case, 0.2) for case in CASES] + [(*case, 0.0) for case in CASES[3:6]])
def test_seq2seq_gradients(cell, attention, bidirectional, layers, dropout):
    rng = np.random.default_rng(0)
    model = Seq2Seq(9, 7, rng, embed=3, hidden=4, cell=cell, layers=layers, bidirectional=bidirectional,
                    dropout=dropout, attention=attention, dtype=np.float64)
    data = batch(rng)

    def run():
        return model.loss_and_grads(*data, rng=np.random.default_rng(4))

    _, grads = run()
    assert set(grads) == set(model.params)
    # eps 1e-4: through two layers and additive attention some gradients are ~1e-5 in norm, where
    # eps 1e-6's rounding noise (~1e-10 absolute) alone would be a 1e-5 relative error
    errors = check_gradients(lambda: run()[0], dict(model.params), grads, eps=1e-4)
    for name in [n for n, e in errors.items() if e >= 1e-6]:
        # a gradient near zero (||g|| ~ 1e-7: W_q behind a saturated additive score) has no meaningful
        # relative error; there the difference itself must be at rounding level
        numeric = numerical_gradient(lambda: run()[0], model.params[name], eps=1e-4)
        assert np.linalg.norm(grads[name]) < 1e-6 and np.abs(numeric - grads[name]).max() < 1e-10, (name, errors)


@pytest.mark.parametrize("cell,attention,bidirectional,layers", CASES[:6])
def test_padding_never_changes_the_loss(cell, attention, bidirectional, layers):
    """Each example's loss alone equals its share of the padded batch's."""
    rng = np.random.default_rng(1)
    model = Seq2Seq(9, 7, rng, embed=3, hidden=4, cell=cell, layers=layers, bidirectional=bidirectional,
                    attention=attention, dtype=np.float64)
    src, src_mask, tgt_in, tgt_out, tgt_mask = batch(rng)
    nll, count = model.loss(src, src_mask, tgt_in, tgt_out, tgt_mask)
    alone = 0.0
    for b in range(src.shape[1]):
        S, T = int(src_mask[:, b].sum()), int(tgt_mask[:, b].sum())
        one = model.loss(src[:S, b : b + 1], src_mask[:S, b : b + 1], tgt_in[:T, b : b + 1],
                         tgt_out[:T, b : b + 1], tgt_mask[:T, b : b + 1])
        alone += one[0]
    assert count == tgt_mask.sum()
    assert abs(nll - alone) < 1e-10


def test_step_by_step_decoding_equals_teacher_forcing():
    """start() + step() with the true previous tokens give the logits of the whole-sequence pass."""
    rng = np.random.default_rng(2)
    model = Seq2Seq(9, 7, rng, embed=3, hidden=4, cell="lstm", layers=2, bidirectional=True,
                    attention="additive", dtype=np.float64)
    src, src_mask, tgt_in, _, _ = batch(rng)
    full = np.ones_like(tgt_in, dtype=np.float64)
    logits, _ = model.forward(src, src_mask, tgt_in, full)
    memory, states = model.start(src, src_mask)
    for t in range(tgt_in.shape[0]):
        step_logits, states = model.step(tgt_in[t], states, memory, src_mask)
        np.testing.assert_allclose(step_logits, logits[t], rtol=0, atol=1e-12)


# a decoder of its own width (--decoder-hidden): the bridge maps the encoder's states to it, attention
# and the head read it; bidirectional or not, with input feeding or without
WIDE = [("gru", "general", True, 1, True), ("lstm", "additive", False, 2, False), ("lstm", None, False, 1, False)]


@pytest.mark.parametrize("cell,attention,bidirectional,layers,feeding", WIDE)
def test_a_decoder_of_its_own_width(cell, attention, bidirectional, layers, feeding):
    from gradient_asserts import assert_model_gradients

    rng = np.random.default_rng(5)
    model = Seq2Seq(9, 7, rng, embed=3, hidden=4, cell=cell, layers=layers, bidirectional=bidirectional,
                    dropout=0.2, attention=attention, dtype=np.float64, input_feeding=feeding, decoder_hidden=6)
    assert model.decoder.hidden_size == 6 and model.head.params["W"].shape[1] == 6 and model.bridge
    data = batch(rng)
    assert_model_gradients(model, data)  # padded, with dropout
    src, src_mask, tgt_in, tgt_out, tgt_mask = data
    assert_model_gradients(model, (src, np.ones(src.shape), tgt_in, tgt_out, np.ones(tgt_in.shape)))
    # step by step as teacher-forced; each example alone as in the padded batch
    logits, _ = model.forward(src, src_mask, tgt_in, np.ones(tgt_in.shape))
    memory, states = model.start(src, src_mask)
    for t in range(tgt_in.shape[0]):
        step_logits, states = model.step(tgt_in[t], states, memory, src_mask)
        np.testing.assert_allclose(step_logits, logits[t], rtol=0, atol=1e-12)
    nll, _ = model.loss(*data)
    alone = sum(model.loss(src[:S, b : b + 1], src_mask[:S, b : b + 1], tgt_in[:T, b : b + 1], tgt_out[:T, b : b + 1],
                           tgt_mask[:T, b : b + 1])[0]
                for b in range(src.shape[1]) for S, T in [(int(src_mask[:, b].sum()), int(tgt_mask[:, b].sum()))])
    assert abs(nll - alone) < 1e-10
