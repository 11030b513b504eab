"""Ensembles of classifiers and taggers: exact decoding, and the command line."""

import itertools
import json
import os

import numpy as np
import pytest
from cli_runner import cli

from rnncli.ensemble import Ensemble
from rnncli.nn.functional import log_softmax
from rnncli.tasks.classify import Classifier
from rnncli.tasks.tag import Tagger, bio_transitions

SAMPLES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "sample_data"))
TAGS = ["B-A", "B-B", "I-A", "I-B", "O"]


def tagger(seed, crf):
    rng = np.random.default_rng(seed)
    m = Tagger(9, len(TAGS), rng, embed=3, hidden=4, cell="gru", dtype=np.float64, crf=crf,
               allowed=bio_transitions(TAGS))
    for arr in m.params.values():
        arr[...] = rng.standard_normal(arr.shape)  # large weights: members disagree a lot
    return m


def padded_batch(rng):
    ids = rng.integers(4, 9, (4, 3))
    mask = np.ones((4, 3))
    mask[2:, 1] = 0
    mask[3:, 2] = 0
    ids[mask == 0] = 0
    return ids, mask


def sequence_scores(member, ids_col, T):
    """A member's score of every tag sequence of length T, written out from its definition:
    CRF: start + emissions + transitions + end; softmax: the sum of log-probabilities;
    -inf for a sequence the BIO scheme forbids. -> {tags: score} over all K**T sequences."""
    logits, _ = member.forward(ids_col[:T, None], np.ones((T, 1)))
    e = logits[:, 0, :]
    may_start, may_follow = member.allowed
    p = member.params
    scores = {}
    for tags in itertools.product(range(len(TAGS)), repeat=T):
        if not may_start[tags[0]] or not all(may_follow[a, b] for a, b in itertools.pairwise(tags)):
            scores[tags] = -np.inf
        elif not member.crf:
            scores[tags] = sum(log_softmax(e[t])[tags[t]] for t in range(T))
        else:
            scores[tags] = (p["crf.start"][tags[0]] + sum(e[t, tags[t]] for t in range(T))
                            + sum(p["crf.trans"][a, b] for a, b in itertools.pairwise(tags)) + p["crf.end"][tags[-1]])
    return scores


def test_tagger_ensemble_decodes_the_best_mean_sequence_score():
    """Against enumeration of every tag sequence, with CRF and softmax members mixed and padding."""
    rng = np.random.default_rng(3)
    members = [tagger(1, crf=True), tagger(2, crf=False), tagger(5, crf=True)]
    ids, mask = padded_batch(rng)
    pred = Ensemble(members).predict(ids, mask)
    for j in range(ids.shape[1]):
        T = int(mask[:, j].sum())
        scored = [sequence_scores(m, ids[:, j], T) for m in members]
        best = max(scored[0], key=lambda tags: np.mean([s[tags] for s in scored]))
        assert list(pred[:T, j]) == list(best)
    # a member alone, or twice, decodes as that member does
    for m in members:
        assert np.array_equal(Ensemble([m]).predict(ids, mask) * mask, m.predict(ids, mask) * mask)
        assert np.array_equal(Ensemble([m, m]).predict(ids, mask) * mask, m.predict(ids, mask) * mask)


def test_tagger_marginals_equal_enumeration_of_every_sequence():
    """p(y_t = k | x) of each member (CRF or softmax, BIO-constrained) and of the ensemble, against
    the members' distributions over whole tag sequences written out; padded steps get nothing."""
    rng = np.random.default_rng(4)
    members = [tagger(1, crf=True), tagger(2, crf=False), tagger(5, crf=True)]
    ids, mask = padded_batch(rng)
    got = [m.predict_with_marginals(ids, mask)[1] for m in members]
    ensemble = Ensemble(members).predict_with_marginals(ids, mask)[1]
    K = len(TAGS)
    for j in range(ids.shape[1]):
        T = int(mask[:, j].sum())
        want = []
        for m in members:
            scored = sequence_scores(m, ids[:, j], T)
            weights = np.exp(list(scored.values()))
            marg = np.zeros((T, K))
            for tags, w in zip(scored, weights / weights.sum(), strict=True):
                marg[np.arange(T), tags] += w
            want.append(marg)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g[:T, j], w, rtol=1e-9, atol=1e-15)
            assert not g[T:, j].any()
        np.testing.assert_allclose(ensemble[:T, j], np.mean(want, axis=0), rtol=1e-9, atol=1e-15)


def test_classifier_ensemble_averages_probabilities():
    rng = np.random.default_rng(0)
    members = [Classifier(9, 3, np.random.default_rng(s), embed=3, hidden=4, dtype=np.float64) for s in (1, 2)]
    ids, mask = padded_batch(rng)
    p = Ensemble(members).predict_proba(ids, mask)
    assert np.allclose(p, (members[0].predict_proba(ids, mask) + members[1].predict_proba(ids, mask)) / 2,
                       rtol=0, atol=1e-15)
    assert np.allclose(p.sum(axis=1), 1.0)


@pytest.fixture(scope="module")
def two_taggers(tmp_path_factory):
    d = tmp_path_factory.mktemp("ens")
    assert cli("tokenize", f"{SAMPLES}/ner.conll", "-o", "ner.npz", cwd=d).returncode == 0
    for seed, extra in (("1", ["--crf", "--char-features", "--char-encoder", "cnn"]), ("2", ["--no-crf"])):
        r = cli("train", "-d", "ner.npz", "-o", f"m{seed}.npz", "--epochs", "8", "--hidden", "16", "--embed", "12",
                "--lr", "0.01", "--seed", seed, *extra, "-q", cwd=d)
        assert r.returncode == 0, r.stderr
    return d


def test_ensemble_through_eval_and_predict(two_taggers):
    d = two_taggers
    scores = [json.loads(cli("eval", *m, f"{SAMPLES}/ner.conll", "--json", cwd=d).stdout)
              for m in (["-m", "m1.npz"], ["-m", "m2.npz"], ["-m", "m1.npz", "-m", "m2.npz"])]
    assert scores[2]["models"] == ["m1.npz", "m2.npz"]
    # each figure against seqeval on the same models' predictions, made here in-process
    from seqeval.metrics import f1_score

    from rnncli.evaluate import predict_tags
    from rnncli.models import load_models
    from rnncli.text.encode import tokenize

    for s, paths in zip(scores, (["m1.npz"], ["m2.npz"], ["m1.npz", "m2.npz"]), strict=True):
        model, meta = load_models([str(d / p) for p in paths])
        split = tokenize([f"{SAMPLES}/ner.conll"], valid_frac=0, reuse=meta["data"]).train
        pred, _ = predict_tags(model, split, char_features=meta["config"].get("char_features"))
        names = meta["data"]["tags"]
        true = [[names[t] for t in split.tags[a:b]] for a, b in zip(split.offsets[:-1], split.offsets[1:], strict=True)]
        assert s["f1"] == pytest.approx(f1_score(true, [[names[t] for t in p] for p in pred]), abs=1e-12)
    text = "Wren moved to Velmora .\nOdal met Brask in Tull .\n"
    r = cli("predict", "-m", "m1.npz", "-m", "m2.npz", cwd=d, stdin=text)
    assert r.returncode == 0, r.stderr
    rows = [ln.split("\t") for ln in r.stdout.splitlines() if ln]
    assert [w for w, _ in rows] == text.split() and all(t in ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG",
                                                              "I-ORG") for _, t in rows)


def test_ensemble_members_must_match(two_taggers, tmp_path):
    d = two_taggers
    assert cli("tokenize", f"{SAMPLES}/ner.conll", "--max-size", "12", "-o", str(tmp_path / "other.npz"),
               cwd=d).returncode == 0
    r = cli("train", "-d", str(tmp_path / "other.npz"), "-o", str(tmp_path / "other_model.npz"), "--epochs", "1",
            "--hidden", "8", "--embed", "8", "-q", cwd=d)
    assert r.returncode == 0, r.stderr
    r = cli("eval", "-m", "m1.npz", "-m", str(tmp_path / "other_model.npz"), f"{SAMPLES}/ner.conll", cwd=d)
    assert r.returncode == 1 and "another vocabulary than m1.npz" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_language_models_and_mixed_tasks_are_refused(two_taggers, tmp_path):
    d = two_taggers
    for data, out in (("corpus.txt", "lm"), ("reviews.tsv", "cls")):
        assert cli("tokenize", f"{SAMPLES}/{data}", "-o", f"{tmp_path}/{out}_data.npz", cwd=d).returncode == 0
        r = cli("train", "-d", f"{tmp_path}/{out}_data.npz", "-o", f"{tmp_path}/{out}.npz", "--max-steps", "2",
                "--hidden", "8", "--embed", "8", "--layers", "1", "-q", cwd=d)
        assert r.returncode == 0, r.stderr
    r = cli("eval", "-m", f"{tmp_path}/lm.npz", "-m", f"{tmp_path}/lm.npz", f"{SAMPLES}/corpus.txt", cwd=d)
    assert r.returncode == 1 and "cannot be part of an ensemble" in r.stderr
    r = cli("predict", "-m", "m1.npz", "-m", f"{tmp_path}/cls.npz", cwd=d, stdin="a film\n")
    assert r.returncode == 1 and "a classify model cannot join m1.npz, a tag model" in r.stderr
    assert r.stdout == ""
