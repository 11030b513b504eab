"""How workers share out a step (rnncli/parallel/layout.py), without MPI: the buffer layouts,
packing and unpacking, and the optimizer's state cut into blocks and made whole again."""

import numpy as np
import pytest

from rnncli.nn.optim import Optimizer
from rnncli.nn.rows import RowGradient
from rnncli.parallel.layout import (
    Plan,
    block_layout,
    block_of_step,
    blocks_of_rows,
    blocks_of_state,
    disagreement,
    pack_blocks,
    pack_rows,
    pack_step,
    share_of,
    unpack_blocks,
    unpack_rows,
    unpack_step,
    whole_state,
)


def arrays(seed=0):
    rng = np.random.default_rng(seed)
    return {"a": rng.normal(size=(7, 3)), "b": rng.normal(size=5), "c": rng.normal(size=(4, 2, 2))}


@pytest.mark.parametrize("size", [1, 2, 3])
def test_a_reduce_scatter_of_packed_steps_gives_each_worker_its_blocks_sums(size):
    """Each worker packs n_i * its gradients and its scalars; summing the buffers (what MPI's
    Reduce_scatter does) and cutting out a worker's count gives the global mean of its rows."""
    params = arrays()
    shares = blocks_of_rows(params, size)
    layout = block_layout(shares, list(params), {k: params[k][0].size for k in params}, tail=4)
    counts, grads = [3.0, 5.0, 2.0][:size], [arrays(seed) for seed in range(1, size + 1)]
    bufs = []
    for n, g in zip(counts, grads, strict=True):
        plan = Plan(layout, 4, {}, np.empty(sum(layout.counts)), None)
        pack_step(plan, g, n, [0.5 * n, n, 10 * n, 1.0], params)
        bufs.append(plan.buf.copy())
    summed, at = np.sum(bufs, axis=0), 0
    for r in range(size):
        plan = Plan(layout, 4, {}, None, summed[at : at + layout.counts[r]].copy())
        at += layout.counts[r]
        out, loss, total, tokens, flags = unpack_step(plan, params, r)
        assert total == sum(counts) and loss == pytest.approx(0.5) and tokens == 10 * sum(counts)
        assert flags == [size]
        for k, (lo, hi) in shares[r].items():
            mean = sum(n * g[k][lo:hi] for n, g in zip(counts, grads, strict=True)) / sum(counts)
            np.testing.assert_allclose(out[k], mean, rtol=1e-12)


def test_packed_blocks_gathered_make_every_array_whole():
    whole, size = arrays(), 3
    shares = blocks_of_rows(whole, size)
    layout = block_layout(shares, list(whole), {k: whole[k][0].size for k in whole})
    buf = np.zeros(sum(layout.counts))
    for r in range(size):  # what the Allgather does: each worker's runs arrive in one buffer
        pack_blocks(buf, layout, whole, r)
    mine = {k: np.where(np.arange(len(a)).reshape(-1, *[1] * (a.ndim - 1)) >= 0, 0.0, a) for k, a in whole.items()}
    for k, (lo, hi) in shares[1].items():
        mine[k][lo:hi] = whole[k][lo:hi]
    unpack_blocks(buf, layout, mine, 1)
    assert all(np.array_equal(mine[k], whole[k]) for k in whole)


def test_rows_packed_by_workers_sum_where_they_meet():
    params = {"t.E": np.zeros((6, 2))}
    g0 = {"t.E": RowGradient(np.array([1, 4]), np.array([[1.0, 2.0], [3.0, 4.0]]), (6, 2), lazy=True)}
    g1 = {"t.E": RowGradient(np.array([4]), np.array([[10.0, 20.0]]), (6, 2), lazy=True)}
    sparse = {"t.E": True}
    (s0, n0), (s1, n1) = pack_rows(sparse, g0, 2.0, params), pack_rows(sparse, g1, 1.0, params)
    out = unpack_rows(np.concatenate([s0, s1]), np.array([n0, n1]), sparse, params, total=3.0)["t.E"]
    expected = (2.0 * g0["t.E"].dense() + g1["t.E"].dense()) / 3.0
    assert out.lazy and np.array_equal(out.dense(), expected)


def test_the_optimizer_steps_views_of_a_block_and_its_state_goes_whole_and_back():
    """A worker's step over views of its rows lands in the parameters; its state, made whole for a
    checkpoint (zeros where the others' rows go), is cut back to the block before the next step."""
    params = arrays()
    share = blocks_of_rows(params, 3)[1]  # some of a's and c's rows, all of b's
    opt, before = Optimizer("adam", average=0.9), {k: a.copy() for k, a in params.items()}
    grads = {k: g[slice(*share[k])] for k, g in arrays(5).items()}  # reduce_step's: the block's rows
    opt.step(*block_of_step(params, grads, share), 0.1)
    assert 0 < share["a"][0] and share["b"] == (0, 5) and share["c"][1] < 4
    for k, (lo, hi) in share.items():
        assert np.array_equal(params[k][:lo], before[k][:lo])  # the other worker's rows: untouched
        if lo == hi:
            assert "m." + k not in opt.state
        else:
            assert not np.array_equal(params[k][lo:hi], before[k][lo:hi]) and opt.state["m." + k].shape[0] == hi - lo
    blocks = {key: a.copy() for key, a in opt.state.items()}
    wholes = whole_state(opt.state, ("m.", "v.", "avg."), params, share)
    for slot, by_name in wholes.items():
        for k, a in by_name.items():
            lo, hi = share[k]
            if lo == hi:
                continue
            assert a.shape == params[k].shape and not a[:lo].any() and np.array_equal(a[lo:hi], blocks[slot + k])
            opt.state[slot + k] = a
    assert all(len(opt.state[key]) == len(params[key.split(".", 1)[1]]) for key in blocks)
    back = blocks_of_state(opt.state, share)  # b's block is b whole: nothing to cut
    assert set(back) == {key for key in blocks if not key.endswith(".b")}
    assert all(np.array_equal(back[key], blocks[key]) for key in back)


def test_workers_that_differ_are_named():
    same = [("h0", {"vocab": 5, "cfg": {"lr": 1}}), ("h1", {"vocab": 5, "cfg": {"lr": 1}})]
    assert disagreement(same) is None
    differ = [same[0], ("h1", {"vocab": 5, "cfg": {"lr": 2}})]
    assert disagreement(differ) == ("worker 1 (on h1) has a different cfg from worker 0 (on h0) (lr: 2 vs 1); "
                                    "every worker needs the same")


def test_shares_of_a_batch_are_contiguous_and_cover_it():
    for n in range(0, 12):
        for size in range(1, 5):
            parts = [share_of(n, size, r) for r in range(size)]
            assert [i for p in parts for i in range(n)[p]] == list(range(n))
            assert max(p.stop - p.start for p in parts) - min(p.stop - p.start for p in parts) <= 1
