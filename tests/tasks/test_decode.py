"""Decoding: beam 1 is greedy, beam K never scores below greedy, n-best lists are sorted, every
reported score is the model's own log-probability of the hypothesis (checked by a teacher-forced
pass), and a batch decodes as its sentences do alone."""

import numpy as np
import pytest

from rnncli.decode import beam_search, greedy
from rnncli.nn.functional import log_softmax
from rnncli.tasks.seq2seq import Seq2Seq
from rnncli.text.vocab import BOS, EOS


def model_and_sources(attention="general", cell="lstm", seed=0, B=6):
    rng = np.random.default_rng(seed)
    model = Seq2Seq(11, 9, rng, embed=6, hidden=8, cell=cell, layers=2, bidirectional=True,
                    attention=attention, dtype=np.float64)
    for name in ("head.W", "target_embedding.E"):  # peakier distributions than at initialisation
        model.params[name] *= 4
    model.params["head.b"][EOS] = 0.0  # some sentences end, some reach the length limit
    S = 5
    source = rng.integers(4, 11, (S, B))
    mask = np.ones((S, B))
    for b in range(B):
        mask[1 + b % S :, b] = 0
    source[mask == 0] = 0
    return model, source, mask


def teacher_forced_logp(model, source, mask, b, tokens, ended):
    """log p(tokens [+ <eos>] | source b) by one teacher-forced pass (the independent check)."""
    S = int(mask[:, b].sum())
    target = tokens + ([EOS] if ended else [])
    target_in = np.array([BOS] + target[:-1])[:, None]
    logits, _ = model.forward(source[:S, b : b + 1], mask[:S, b : b + 1], target_in, np.ones((len(target), 1)))
    logp = log_softmax(logits[:, 0])
    return float(sum(logp[t, y] for t, y in enumerate(target)))


@pytest.mark.parametrize("attention,cell", [("general", "lstm"), (None, "gru"), ("additive", "rnn")])
def test_beam_one_is_greedy_and_beam_k_never_scores_lower(attention, cell):
    model, source, mask = model_and_sources(attention, cell, B=16)
    tokens, logp = greedy(model, source, mask)
    one = beam_search(model, source, mask, beam=1)
    five = beam_search(model, source, mask, beam=5)
    for b in range(source.shape[1]):
        assert one[b][0][0] == tokens[b]
        assert five[b][0][2] >= logp[b] - 1e-12
    assert any(five[b][0][2] > logp[b] + 1e-9 for b in range(source.shape[1]))  # the beam found better ones


def test_scores_are_the_models_log_probabilities_and_n_best_is_sorted():
    model, source, mask = model_and_sources()
    limits = 2 * mask.sum(axis=0) + 10
    results = beam_search(model, source, mask, beam=4, n_best=3, length_penalty=0.7)
    for b, hyps in enumerate(results):
        assert 1 <= len(hyps) <= 3
        norm = [h[1] for h in hyps]
        assert norm == sorted(norm, reverse=True)
        assert len({tuple(h[0]) for h in hyps}) == len(hyps)
        for tokens, normalised, logp in hyps:
            ended = len(tokens) < limits[b]
            assert abs(logp - teacher_forced_logp(model, source, mask, b, tokens, ended)) < 1e-9
            n = len(tokens) + (1 if ended else 0)
            assert abs(normalised - logp / n ** 0.7) < 1e-12
    tokens, logp = greedy(model, source, mask)
    for b in range(source.shape[1]):
        ended = len(tokens[b]) < limits[b]
        assert abs(logp[b] - teacher_forced_logp(model, source, mask, b, tokens[b], ended)) < 1e-9


def test_a_batch_decodes_as_its_sentences_alone():
    model, source, mask = model_and_sources()
    together = beam_search(model, source, mask, beam=3, n_best=2)
    greedy_together = greedy(model, source, mask)[0]
    for b in range(source.shape[1]):
        S = int(mask[:, b].sum())
        alone = beam_search(model, source[:S, b : b + 1], mask[:S, b : b + 1], beam=3, n_best=2)[0]
        assert [h[0] for h in alone] == [h[0] for h in together[b]]
        assert np.allclose([h[2] for h in alone], [h[2] for h in together[b]], atol=1e-10)
        assert greedy(model, source[:S, b : b + 1], mask[:S, b : b + 1])[0][0] == greedy_together[b]


def test_sampling_is_reproducible_and_respects_the_limit():
    model, source, mask = model_and_sources()
    a = greedy(model, source, mask, temperature=1.0, rng=np.random.default_rng(3))[0]
    b = greedy(model, source, mask, temperature=1.0, rng=np.random.default_rng(3))[0]
    assert a == b
    limits = 2 * mask.sum(axis=0) + 10
    assert all(len(t) <= limits[i] for i, t in enumerate(a))
    assert all(tok >= 4 for t in a for tok in t)  # no specials in the output
