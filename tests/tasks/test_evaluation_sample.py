"""What validations during training read (Task.evaluation_part, --eval-tokens): all of a small split,
a fixed, seeded sample of a large one, the same at every validation; a language model's sample is
one contiguous stretch of its stream, and the figures logged are of exactly that stretch."""

import json
import os

import numpy as np
import pytest
from cli_runner import run

from rnncli.config import TrainConfig
from rnncli.evaluate import evaluate_lm
from rnncli.models import load_model
from rnncli.tasks.registry import task_named
from rnncli.text.batching import stream_ids
from rnncli.text.dataset import Split
from rnncli.text.encode import tokenize

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "sample_data")


def tagged_split(rng, n=40):
    lengths = rng.integers(1, 9, n)
    offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    ids = rng.integers(4, 50, offsets[-1]).astype(np.int32)
    ids[offsets[:-1]] = 100 + np.arange(n)  # each sequence its own first token
    char_lengths = rng.integers(1, 6, offsets[-1])
    char_offsets = np.r_[0, np.cumsum(char_lengths)].astype(np.int64)
    return Split(ids, offsets, tags=rng.integers(0, 5, offsets[-1]).astype(np.int32),
                 chars=rng.integers(0, 30, char_offsets[-1]).astype(np.int32), char_offsets=char_offsets)


def test_take_carries_every_per_token_field():
    split = tagged_split(np.random.default_rng(0))
    index = [7, 2, 30]
    part = split.take(index)
    for j, i in enumerate(index):
        a, b = split.offsets[i], split.offsets[i + 1]
        assert np.array_equal(part.ids[part.offsets[j] : part.offsets[j + 1]], split.ids[a:b])
        assert np.array_equal(part.tags[part.offsets[j] : part.offsets[j + 1]], split.tags[a:b])
        for t_new, t_old in zip(range(part.offsets[j], part.offsets[j + 1]), range(a, b), strict=True):
            assert np.array_equal(part.chars[part.char_offsets[t_new] : part.char_offsets[t_new + 1]],
                                  split.chars[split.char_offsets[t_old] : split.char_offsets[t_old + 1]])


@pytest.mark.parametrize("name", ["tag", "classify", "seq2seq", "regress"])
def test_a_large_split_is_sampled_the_same_way_every_time_a_small_one_read_whole(name):
    task = task_named(name)
    split = tagged_split(np.random.default_rng(1), n=200)
    total = int(split.offsets[-1])
    part, read = task.evaluation_part(TrainConfig(eval_tokens=total // 4), split, split, "tsv")
    again, _ = task.evaluation_part(TrainConfig(eval_tokens=total // 4), split, split, "tsv")
    assert read["sample"] and read["of_tokens"] == total and read["tokens"] == int(part.offsets[-1])
    assert total // 4 <= read["tokens"] < total // 4 + 9  # whole sequences, to just past the budget
    assert np.array_equal(part.ids, again.ids) and np.array_equal(part.tags, again.tags)
    # each sampled sequence is one of the split's, in the split's order
    seqs = [tuple(split.ids[split.offsets[i] : split.offsets[i + 1]]) for i in range(split.num_sequences)]
    found = [seqs.index(tuple(part.ids[part.offsets[j] : part.offsets[j + 1]]))
             for j in range(part.num_sequences)]
    assert found == sorted(found)
    whole, read = task.evaluation_part(TrainConfig(eval_tokens=total), split, split, "tsv")
    assert whole is split and not read["sample"]
    whole, read = task.evaluation_part(TrainConfig(eval_tokens=0), split, split, "tsv")
    assert whole is split and read == {"tokens": total, "sequences": 200, "sample": False}


def test_the_default_budget_follows_the_training_between_validations():
    split = tagged_split(np.random.default_rng(2), n=100)
    mean = float(split.lengths().mean())
    cfg = TrainConfig(eval_every=50, batch_size=8)
    assert task_named("tag").evaluation_budget(cfg, split) == int(0.3 * 50 * 8 * mean)
    assert task_named("lm").evaluation_budget(TrainConfig(eval_every=50, batch_size=8, seq_len=20), split) == \
        int(0.035 * 50 * 8 * 20)


def test_a_language_models_sample_is_one_stretch_and_its_logged_loss_is_of_that_stretch(tmp_path):
    run("tokenize", os.path.join(SAMPLES, "corpus.txt"), "-o", "c.npz", "--valid-frac", "0.3", cwd=tmp_path)
    trained = json.loads(run("train", "-d", "c.npz", "-o", "m.npz", "--hidden", "16", "--layers", "1", "--embed", "8",
                             "--max-steps", "6", "--eval-every", "3", "--eval-tokens", "500", "--seed", "3", "--json",
                             cwd=tmp_path))
    records = [json.loads(line) for line in (tmp_path / "m.metrics.jsonl").read_text().splitlines()]
    reads = [r["valid_read"] for r in records]
    assert len(records) == 2 and reads[0] == reads[1]  # one yardstick
    read = reads[0]
    assert read["sample"] and read["tokens"] == 500 and read["of_tokens"] > 5000
    ds = tokenize([os.path.join(SAMPLES, "corpus.txt")], valid_frac=0.3)
    stream = stream_ids(ds.valid, "text")
    assert len(stream) == read["of_tokens"]
    model, meta, groups = load_model(str(tmp_path / "m.npz"), which="latest")
    loss = evaluate_lm(model, stream[read["from_token"] : read["from_token"] + 500])["loss"]
    assert loss == pytest.approx(records[-1]["valid"]["loss"], rel=1e-5)
    summary = json.loads(run("inspect", "m.npz", "--json", cwd=tmp_path))
    assert summary["history"][-1]["valid_read"] == read and trained["validation_read"] == read
