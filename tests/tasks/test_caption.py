"""The one-to-many captioner (tasks/caption.py): gradients against numerical ones in float64 with
captions padded and not, its loss against a naive twin written from the lecture's equations
(reference_cells.py), and padding that never changes a caption's loss."""

import numpy as np
import pytest
from gradient_asserts import assert_model_gradients
from reference_cells import gru_sequence, lstm_sequence, rnn_sequence

from rnncli.tasks.caption import Captioner

W, H = 4, 3  # an image of 4 columns of 3 numbers


def batch(rng, B=3, T=4, V=8, padded=True):
    """Whole images (S = W columns, no padding) and captions of T, T-2 and 1 tokens (or all T)."""
    images = rng.normal(size=(W, B, H))
    tgt_in = rng.integers(4, V, (T, B))
    tgt_in[0] = 2  # <bos>
    tgt_out = rng.integers(3, V, (T, B))
    mask = np.ones((T, B))
    if padded:
        mask[T - 2:, 1] = 0
        mask[1:, 2] = 0
    tgt_in[mask == 0] = 0
    tgt_out[mask == 0] = 0
    return images, np.ones((W, B)), tgt_in, tgt_out, mask


CASES = [("lstm", 1), ("gru", 2), ("rnn", 1), ("lstm", 2)]


@pytest.mark.parametrize("padded", [True, False], ids=["padded", "unpadded"])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("cell,layers", CASES)
def test_captioner_gradients(cell, layers, dropout, padded):
    rng = np.random.default_rng(0)
    model = Captioner(W, H, 8, rng, embed=3, hidden=5, cell=cell, layers=layers, dropout=dropout, dtype=np.float64)
    assert_model_gradients(model, batch(rng, padded=padded))


def naive_loss(model, images, tgt_in, tgt_out, mask):
    """Summed cross-entropy of the real caption tokens, one equation per line: v = [x<1>; ...; x<S>];
    each decoder layer starts at a<0> = tanh(W_a v + b_a) (an LSTM's c<0> = W_c v + b_c); the layers
    read the embedded words step by step (reference_cells.py); softmax over the head's scores."""
    p = model.params
    B = images.shape[1]
    v = np.concatenate([images[t] for t in range(images.shape[0])], axis=1)  # (B, S*D), column after column
    x = p["target_embedding.E"][tgt_in]
    for k in range(len(model.decoder.layers)):
        a0 = np.tanh(v @ p[f"bridge.l{k}.a.W"].T + p[f"bridge.l{k}.a.b"])
        layer = {name[len(f"decoder.l{k}."):]: value for name, value in p.items()
                 if name.startswith(f"decoder.l{k}.")}
        if model.n_states == 2:
            c0 = v @ p[f"bridge.l{k}.c.W"].T + p[f"bridge.l{k}.c.b"]
            x, _ = lstm_sequence(layer, x, (a0, c0), mask)
        elif "b_an" in layer:
            x, _ = gru_sequence(layer, x, a0, mask)
        else:
            x, _ = rnn_sequence(layer, x, a0, mask)
    total = 0.0
    for t in range(x.shape[0]):
        for b in range(B):
            if mask[t, b]:
                z = p["head.W"] @ x[t, b] + p["head.b"]
                total += np.log(np.exp(z - z.max()).sum()) + z.max() - z[tgt_out[t, b]]
    return total, mask.sum()


@pytest.mark.parametrize("cell,layers", CASES)
def test_the_loss_is_the_lectures_equations(cell, layers):
    rng = np.random.default_rng(1)
    model = Captioner(W, H, 8, rng, embed=3, hidden=5, cell=cell, layers=layers, dtype=np.float64)
    data = batch(rng)
    got, count = model.loss(*data)
    want, want_count = naive_loss(model, data[0], *data[2:])
    assert count == want_count
    assert got == pytest.approx(want, rel=1e-12)


def test_padding_never_changes_a_captions_loss():
    rng = np.random.default_rng(2)
    model = Captioner(W, H, 8, rng, embed=3, hidden=5, cell="lstm", layers=2, dtype=np.float64)
    images, src_mask, tgt_in, tgt_out, mask = batch(rng)
    together, _ = model.loss(images, src_mask, tgt_in, tgt_out, mask)
    alone = 0.0
    for b in range(images.shape[1]):
        T = int(mask[:, b].sum())
        one = (images[:, b:b + 1], src_mask[:, b:b + 1], tgt_in[:T, b:b + 1], tgt_out[:T, b:b + 1], mask[:T, b:b + 1])
        alone += model.loss(*one)[0]
    assert together == pytest.approx(alone, rel=1e-12)


def test_an_image_of_another_size_is_refused():
    model = Captioner(W, H, 8, np.random.default_rng(3), embed=3, hidden=5, dtype=np.float64)
    images, src_mask, tgt_in, tgt_out, mask = batch(np.random.default_rng(4))
    with pytest.raises(ValueError, match="an image of 5 x 3 frames; this model reads 4 x 3"):
        model.loss(np.concatenate([images, images[:1]]), np.ones((W + 1, 3)), tgt_in, tgt_out, mask)
