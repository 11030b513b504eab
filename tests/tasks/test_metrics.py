"""Entity F1 against seqeval (conlleval-compatible mode), to the last digit; classification scores."""

import random

import numpy as np
import pytest

from rnncli.metrics import chunks, classification_scores, entity_scores

seqeval = pytest.importorskip("seqeval.metrics")


def random_tags(rng, n, scheme_tags):
    return [rng.choice(scheme_tags) for _ in range(n)]


@pytest.mark.parametrize("seed", range(30))
def test_entity_scores_match_seqeval_on_random_sequences(seed):
    rng = random.Random(seed)
    tags = ["O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG", "B-ORG", "E-PER", "S-LOC"] if seed % 3 == 0 \
        else ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-MISC"]
    true = [random_tags(rng, rng.randint(1, 15), tags) for _ in range(40)]
    pred = [[t if rng.random() < 0.7 else rng.choice(tags) for t in s] for s in true]
    ours = entity_scores(true, pred)["overall"]
    assert ours["f1"] == seqeval.f1_score(true, pred)
    assert ours["precision"] == seqeval.precision_score(true, pred)
    assert ours["recall"] == seqeval.recall_score(true, pred)
    assert ours["token_accuracy"] == seqeval.accuracy_score(true, pred)
    report = seqeval.classification_report(true, pred, output_dict=True, zero_division=0)
    for name, s in entity_scores(true, pred)["types"].items():
        if s["support"]:
            assert s["f1"] == report[name]["f1-score"], name
            assert s["support"] == report[name]["support"]


def test_entity_scores_on_real_data(shared_data):
    import os

    from rnncli.text.readers import parse_conll, read_text

    path = os.path.join(shared_data, "wnut17", "valid.conll")
    _, true = parse_conll(read_text(path), path)
    rng = random.Random(0)
    names = sorted({t for s in true for t in s})
    pred = [[t if rng.random() < 0.8 else rng.choice(names) for t in s] for s in true]
    assert entity_scores(true, pred)["overall"]["f1"] == seqeval.f1_score(true, pred)
    assert entity_scores(true, true)["overall"]["f1"] == 1.0


def test_chunk_rules():
    assert chunks(["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC"]) == [("PER", 0, 1), ("LOC", 3, 4), ("LOC", 5, 5)]
    assert chunks(["I-PER", "I-ORG"]) == [("PER", 0, 0), ("ORG", 1, 1)]


def test_classification_scores():
    s = classification_scores([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], ["a", "b", "c"])
    assert s["accuracy"] == pytest.approx(0.6)
    assert s["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert s["classes"]["b"]["precision"] == pytest.approx(2 / 3) and s["classes"]["b"]["recall"] == 1.0
    assert s["macro_f1"] == pytest.approx(np.mean([0.5, 0.8, 0.0]))
