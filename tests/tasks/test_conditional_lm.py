"""The conditional language model: gradient checks (every cell and condition, padded, one and two
layers), padding that never changes a text's loss, step-by-step generation equal to teacher
forcing, and a naive twin that writes the lecture's one-to-many out by hand, one text at a time."""

import numpy as np
import pytest

from rnncli.nn.functional import log_softmax
from rnncli.nn.gradcheck import check_gradients
from rnncli.tasks.conditional_lm import ConditionalLM


def batch(rng, T=5, B=3, V=8, C=3):
    ids = rng.integers(4, V, (T, B))
    ids[0] = 3  # every text is read from <eos>
    targets = rng.integers(3, V, (T, B))
    mask = np.ones((T, B))
    mask[3:, 1] = 0
    mask[2:, 2] = 0
    ids[mask == 0] = 0
    targets[mask == 0] = 0
    return ids, mask, rng.integers(0, C, B), targets


CASES = [(cell, condition, layers) for cell in ("rnn", "gru", "lstm") for condition in ("state", "input", "both")
         for layers in (1, 2) if (cell, layers) != ("rnn", 2)]


@pytest.mark.parametrize("cell,condition,layers", CASES)
def test_gradients(cell, condition, layers):
    rng = np.random.default_rng(0)
    model = ConditionalLM(8, 3, rng, embed=3, hidden=4, cell=cell, layers=layers, dropout=0.2,
                          condition=condition, label_embed=2, dtype=np.float64)
    data = batch(rng)

    def run():
        return model.loss_and_grads(*data, rng=np.random.default_rng(5))

    _, grads, _ = run()
    assert set(grads) == set(model.params)
    errors = check_gradients(lambda: run()[0], dict(model.params), grads, eps=1e-5)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("cell,condition", [("lstm", "both"), ("gru", "state"), ("rnn", "input")])
def test_padding_never_changes_a_texts_loss(cell, condition):
    rng = np.random.default_rng(1)
    model = ConditionalLM(8, 3, rng, embed=3, hidden=4, cell=cell, layers=2, condition=condition,
                          dtype=np.float64)
    ids, mask, labels, targets = batch(rng)
    together = model.token_nll(ids, mask, labels, targets).sum(axis=0)
    for b in range(ids.shape[1]):
        n = int(mask[:, b].sum())
        alone = model.token_nll(ids[:n, b : b + 1], mask[:n, b : b + 1], labels[b : b + 1], targets[:n, b : b + 1])
        assert abs(alone.sum() - together[b]) < 1e-12


def naive_nll(model, ids, labels, targets):
    """One text at a time, one step at a time, every equation written out (LSTM, two layers)."""
    P = model.params
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    H = model.rnn.hidden_size
    total = 0.0
    for b in range(ids.shape[1]):
        l = P["label_embedding.E"][labels[b]]
        a = [np.zeros(H), np.zeros(H)]
        c = [np.zeros(H), np.zeros(H)]
        if model.by_state:
            for k in range(2):
                a[k] = np.tanh(P[f"init.l{k}.a.W"] @ l + P[f"init.l{k}.a.b"])
                c[k] = P[f"init.l{k}.c.W"] @ l + P[f"init.l{k}.c.b"]
        for t in range(ids.shape[0]):
            x = P["embedding.E"][ids[t, b]]
            if model.by_input:
                x = np.concatenate([x, l])
            for k in range(2):
                z = P[f"rnn.l{k}.W_ax"] @ x + P[f"rnn.l{k}.W_aa"] @ a[k] + P[f"rnn.l{k}.b"]
                i, f, g, o = sigmoid(z[:H]), sigmoid(z[H : 2 * H]), np.tanh(z[2 * H : 3 * H]), sigmoid(z[3 * H :])
                c[k] = f * c[k] + i * g
                a[k] = o * np.tanh(c[k])
                x = a[k]
            y = P["head.W"] @ a[1] + P["head.b"]
            total -= log_softmax(y[None])[0, targets[t, b]]
    return total


@pytest.mark.parametrize("condition", ["state", "input", "both"])
def test_equals_the_naive_twin(condition):
    rng = np.random.default_rng(2)
    model = ConditionalLM(8, 3, rng, embed=3, hidden=4, cell="lstm", layers=2, condition=condition,
                          label_embed=2, dtype=np.float64)
    ids, _, labels, targets = batch(rng)
    full = np.ones(ids.shape)
    ids = np.where(ids == 0, 5, ids)
    fast = model.token_nll(ids, full, labels, targets).sum()
    assert abs(fast - naive_nll(model, ids, labels, targets)) < 1e-10


def test_generation_steps_equal_teacher_forcing():
    rng = np.random.default_rng(3)
    model = ConditionalLM(8, 3, rng, embed=3, hidden=4, cell="gru", layers=2, condition="both", dtype=np.float64)
    ids, _, labels, _ = batch(rng)
    full = np.ones(ids.shape)
    logits, _, _ = model.forward(ids, full, labels)
    states, l = model.start(labels)
    for t in range(ids.shape[0]):
        step_logits, states = model.step(ids[t], states, l)
        np.testing.assert_allclose(step_logits, logits[t], rtol=0, atol=1e-12)


def test_the_label_changes_the_prediction():
    rng = np.random.default_rng(4)
    for condition in ("state", "input"):
        model = ConditionalLM(8, 3, rng, embed=3, hidden=4, cell="lstm", condition=condition, dtype=np.float64)
        ids = np.full((1, 2), 3)
        logits, _, _ = model.forward(ids, np.ones((1, 2)), np.array([0, 1]))
        assert np.abs(logits[0, 0] - logits[0, 1]).max() > 1e-3


def test_batched_sampling_draws_from_the_same_distribution():
    """sample_batch's Gumbel-max draws against the one-at-a-time sampler's: the first token's
    frequencies over many draws agree with softmax(logits / T)."""
    from rnncli.nn.functional import softmax
    from rnncli.sample import sample_batch

    rng = np.random.default_rng(5)
    model = ConditionalLM(8, 2, rng, embed=3, hidden=4, cell="gru", condition="state", dtype=np.float64)
    n = 20000
    firsts = [s[0] if s else 3 for s in sample_batch(model, n, labels=np.ones(n, int), temperature=0.7,
                                                      max_len=1, rng=np.random.default_rng(6))]
    states, l = model.start(np.array([1]))
    logits, _ = model.step(np.array([3]), states, l)
    z = logits[0] / 0.7
    z[[0, 1, 2]] = -np.inf
    expected = softmax(z)
    observed = np.bincount(firsts, minlength=8) / n
    assert np.abs(observed - expected).max() < 0.015, (observed, expected)
    greedy = sample_batch(model, 3, labels=np.array([0, 1, 1]), temperature=0, max_len=5)
    assert greedy[1] == greedy[2]


def test_texts_are_framed_from_eos_to_eos():
    from rnncli.text.batching import framed_texts, pad_targets
    from rnncli.text.dataset import Split

    split = Split(np.array([5, 6, 7, 8, 9], np.int32), np.array([0, 3, 5]), labels=np.array([1, 0], np.int32),
                  targets=np.array([4, 4, 5], np.int32), target_offsets=np.array([0, 1, 3]))
    inputs, mask, labels, targets = framed_texts(split, np.array([1, 0]))
    assert inputs.T.tolist() == [[3, 8, 9, 0], [3, 5, 6, 7]]
    assert targets.T.tolist() == [[8, 9, 3, 0], [5, 6, 7, 3]]
    assert mask.T.tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]] and labels.tolist() == [0, 1]
    target_in, target_out, target_mask = pad_targets(split, np.array([0, 1]))
    assert target_in.T.tolist() == [[2, 4, 0], [2, 4, 5]] and target_out.T.tolist() == [[4, 3, 0], [4, 5, 3]]
    assert target_mask.T.tolist() == [[1, 1, 0], [1, 1, 1]]


@pytest.mark.parametrize("cell,condition", [("lstm", "both"), ("gru", "state"), ("rnn", "input")])
def test_chunks_read_from_carried_states_equal_the_whole_text(cell, condition):
    """Truncated BPTT's forward pass is exact: texts read in chunks of 2, each from where the last
    ended, give the logits of reading them whole (padded rows included)."""
    rng = np.random.default_rng(3)
    model = ConditionalLM(8, 3, rng, embed=3, hidden=4, cell=cell, layers=2, condition=condition, dtype=np.float64)
    ids, mask, labels, _ = batch(rng)
    whole, _, _ = model.forward(ids, mask, labels)
    states, parts = None, []
    for a in range(0, len(ids), 2):
        logits, states, _ = model.forward(ids[a : a + 2], mask[a : a + 2], labels, states=states)
        parts.append(logits)
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=0, atol=1e-12)


@pytest.mark.parametrize("condition", ["state", "input", "both"])
def test_gradients_from_carried_states(condition):
    """A later chunk: gradients of everything but the initial-state projections, which get none."""
    rng = np.random.default_rng(4)
    model = ConditionalLM(8, 3, rng, embed=3, hidden=4, cell="lstm", layers=2, dropout=0.2, condition=condition,
                          label_embed=2, dtype=np.float64)
    data = batch(rng)
    carried = [tuple(rng.normal(size=(3, 4)) for _ in range(2)) for _ in range(2)]

    def run():
        return model.loss_and_grads(*data, carried, rng=np.random.default_rng(5))

    _, grads, finals = run()
    assert set(grads) == set(model.params) and len(finals) == 2
    assert all(not grads[k].any() for k in grads if k.startswith("init."))
    errors = check_gradients(lambda: run()[0], dict(model.params), grads, eps=1e-5)
    assert max(errors.values()) < 1e-6, errors


def test_text_chunks_cover_each_batch_once_in_order():
    """TextChunks cuts each bucketed batch of framed texts into seq_len steps; put back together the
    chunks are the whole batches, and with a long seq_len every batch is one chunk."""
    from rnncli.text.batching import TextChunks, bucketed_batches, framed_texts
    from rnncli.text.dataset import Split

    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 30, 23)
    split = Split(rng.integers(4, 9, lengths.sum()).astype(np.int32), np.concatenate([[0], np.cumsum(lengths)]),
                  labels=rng.integers(0, 3, 23).astype(np.int32))
    for seq_len in (4, 7, 100):
        chunks = TextChunks(split, 5, seed=2, seq_len=seq_len)
        order = bucketed_batches(split.lengths() + 1, 5, np.random.default_rng([2, 1]))
        got = list(chunks.epoch(1, 0))
        assert chunks.per_epoch == len(got) and [k for k, _ in got] == list(range(len(got)))
        assert chunks.steps_for(3) == sum(len(chunks.plan(e)) for e in range(3))
        batches = []  # the chunks, grouped where a batch of texts starts
        for _, chunk in got:
            batches.append([chunk]) if chunk[4] else batches[-1].append(chunk)
        assert len(batches) == len(order)
        for index, parts in zip(order, batches, strict=True):
            inputs, mask, labels, targets = framed_texts(split, index)
            assert len(parts) == (1 if seq_len == 100 else -(-len(inputs) // seq_len))
            assert all(np.array_equal(p[2], labels) for p in parts)
            for j, whole in ((0, inputs), (1, mask), (3, targets)):
                assert np.array_equal(np.concatenate([p[j] for p in parts]), whole)
        resumed = list(chunks.epoch(1, 3))
        assert [k for k, _ in resumed] == [k for k, _ in got[3:]]


def test_label_dropout_is_chosen_per_text_and_kept_by_every_chunk():
    """label_dropout: a share of the texts is read with the "no label" id; every chunk of a batch of
    texts carries the same labels, a resumed epoch makes the same choice, and the share is near p."""
    from rnncli.text.batching import TextChunks
    from rnncli.text.dataset import Split

    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 30, 400)
    true = rng.integers(0, 3, 400).astype(np.int32)
    split = Split(rng.integers(4, 9, lengths.sum()).astype(np.int32), np.concatenate([[0], np.cumsum(lengths)]),
                  labels=true)
    chunks = TextChunks(split, 8, seed=2, seq_len=6, label_dropout=0.3, no_label=3)
    plain = TextChunks(split, 8, seed=2, seq_len=6)
    got, dropped, seen = list(chunks.epoch(1, 0)), 0, 0
    for (_, a), (_, b) in zip(got, plain.epoch(1, 0), strict=True):
        kept = a[2] != 3
        assert np.array_equal(a[2][kept], b[2][kept])  # the others keep their own label
        if a[4]:  # a batch starts: count its texts once
            labels, dropped, seen = a[2], dropped + int((~kept).sum()), seen + len(kept)
        assert np.array_equal(a[2], labels)  # every chunk of the batch agrees
    assert 0.25 < dropped / seen < 0.35, dropped / seen
    resumed = dict(chunks.epoch(1, 5))
    assert all(np.array_equal(resumed[k][2], a[2]) for k, a in got[5:])
    other_epoch = np.concatenate([a[2] for _, a in chunks.epoch(2, 0) if a[4]])
    assert (other_epoch == 3).any()


def test_an_unlabelled_row_passes_gradient_check():
    rng = np.random.default_rng(3)
    model = ConditionalLM(8, 3, rng, embed=3, hidden=4, cell="lstm", layers=2, condition="both", label_embed=2,
                          dtype=np.float64, unlabelled=True)
    assert model.params["label_embedding.E"].shape == (4, 2) and model.no_label == 3
    ids, mask, _, targets = batch(rng)
    data = (ids, mask, np.array([3, 0, 3]), targets)
    _, grads, _ = model.loss_and_grads(*data)
    assert grads["label_embedding.E"][3].any() and not grads["label_embedding.E"][1:3].any()
    errors = check_gradients(lambda: model.loss_and_grads(*data)[0], dict(model.params), grads, eps=1e-5)
    assert max(errors.values()) < 1e-6, errors


def test_guidance_mixes_the_label_and_no_label_as_written():
    """Classifier-free guidance against a twin that runs the label and "no label" models apart:
    scores = log p(. | no label) + g (log p(. | c) - log p(. | no label)); g = 1 samples exactly what
    unguided sampling does and g = 0 exactly what sampling with the "no label" row does."""
    from rnncli.sample import _stepper, sample_batch

    rng = np.random.default_rng(4)
    model = ConditionalLM(9, 3, rng, embed=4, hidden=5, cell="gru", layers=2, condition="both",
                          dtype=np.float64, unlabelled=True)
    labels, ids = np.array([0, 2]), [np.array([3, 3]), np.array([5, 7]), np.array([8, 4])]
    states, step = _stepper(model, 2, labels, guidance=1.7)
    s_c, l_c = model.start(labels)
    s_u, l_u = model.start(np.array([3, 3]))
    for x in ids:
        got, states = step(x, states)
        with_label, s_c = model.step(x, s_c, l_c)
        without, s_u = model.step(x, s_u, l_u)
        c, u = log_softmax(with_label), log_softmax(without)
        assert np.allclose(got, u + 1.7 * (c - u), atol=1e-12)
    plain = sample_batch(model, 6, labels=np.arange(6) % 3, rng=np.random.default_rng(1), max_len=30)
    same = sample_batch(model, 6, labels=np.arange(6) % 3, rng=np.random.default_rng(1), max_len=30, guidance=1.0)
    assert plain == same
    none = sample_batch(model, 6, labels=np.full(6, 3), rng=np.random.default_rng(1), max_len=30)
    ignored = sample_batch(model, 6, labels=np.arange(6) % 3, rng=np.random.default_rng(1), max_len=30,
                           guidance=0.0)
    assert none == ignored
