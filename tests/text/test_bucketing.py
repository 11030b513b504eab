"""An epoch's bucketed batches (text/batching.EpochBatches) are held as one index array and the order
of the batches, not as a list of arrays: the same batches, in the same order, as the list made
naively (the twin below, the implementation before), so training and --resume are unchanged."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rnncli.text.batching import EpochBatches, SequenceBatches, bucketed_batches
from rnncli.text.dataset import Split


def naive_bucketed_batches(lengths, batch_size, rng):
    n = len(lengths)
    order = rng.permutation(n)
    window = batch_size * 50
    parts = [order[i : i + window] for i in range(0, n, window)]
    order = np.concatenate([p[np.argsort(lengths[p], kind="stable")] for p in parts])
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=1, max_size=700), st.integers(1, 9), st.integers(0, 5))
def test_the_epochs_batches_are_the_naive_lists(lengths, batch_size, seed):
    lengths = np.array(lengths)
    want = naive_bucketed_batches(lengths, batch_size, np.random.default_rng([seed, 2]))
    got = bucketed_batches(lengths.astype(np.uint32), batch_size, np.random.default_rng([seed, 2]))
    assert isinstance(got, EpochBatches) and len(got) == len(want)
    for k, batch in enumerate(got):
        assert batch.dtype == np.int64 and np.array_equal(batch, want[k]) and np.array_equal(got[k], want[k])


def test_an_epoch_is_planned_once_however_often_it_is_resumed():
    offsets = np.r_[0, np.cumsum(np.random.default_rng(0).integers(1, 9, 500))].astype(np.int64)
    split = Split(np.zeros(int(offsets[-1]), np.int32), offsets)
    batches = SequenceBatches(split, 8, 3, lambda split, index: index)
    whole = [b for _, b in batches.epoch(0, 0)]
    planned = batches._planned[1]
    resumed = [b for _, b in batches.epoch(0, 17)]
    assert batches._planned[1] is planned
    assert all(np.array_equal(a, b) for a, b in zip(whole[17:], resumed, strict=True))
    next(batches.epoch(1, 0))
    assert batches._planned[0] == 1


def test_lengths_are_made_a_block_at_a_time_in_the_type_asked():
    offsets = np.r_[0, np.cumsum(np.arange(1, 2_500_001) % 7 + 1)].astype(np.int64)
    split = Split(np.zeros(0, np.int32), offsets)
    assert np.array_equal(split.lengths(), np.diff(offsets)) and split.lengths().dtype == np.int64
    small = split.lengths(np.uint32)
    assert small.dtype == np.uint32 and np.array_equal(small, np.diff(offsets))
