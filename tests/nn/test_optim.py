"""Optimizers against trajectories computed by hand, step by step, with the textbook formulas."""

import math

import numpy as np
import pytest

from rnncli.nn.init import orthogonal
from rnncli.nn.optim import Optimizer, clip_global_norm, decayed_lr

GRADS = [np.array([0.5, -1.0]), np.array([0.1, 0.2]), np.array([-0.3, 0.4])]


def run(kind, **kw):
    p = {"w": np.array([1.0, 2.0])}
    opt = Optimizer(kind, **kw)
    out = []
    for g in GRADS:
        opt.step(p, {"w": g.copy()})
        out.append(p["w"].copy())
    return out


def by_hand(kind, lr=0.1, mu=0.9, rho=0.95, b1=0.9, b2=0.999, eps=1e-8, wd=0.0):
    w = np.array([1.0, 2.0])
    m = np.zeros(2)
    v = np.zeros(2)
    out = []
    for t, g in enumerate(GRADS, start=1):
        if wd and kind != "adamw":
            g = g + wd * w
        if kind == "sgd":
            w = w - lr * g
        elif kind == "momentum":
            m = mu * m + g
            w = w - lr * m
        elif kind == "adagrad":
            v = v + g**2
            w = w - lr * g / (np.sqrt(v) + eps)
        elif kind == "rmsprop":
            v = rho * v + (1 - rho) * g**2
            w = w - lr * g / (np.sqrt(v) + eps)
        else:
            if kind == "adamw":
                w = w - lr * wd * w
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g**2
            m_hat = m / (1 - b1**t)
            v_hat = v / (1 - b2**t)
            w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(w)
    return out


@pytest.mark.parametrize("kind", ["sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw"])
@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_three_steps_match_hand_computation(kind, wd):
    got = run(kind, lr=0.1, weight_decay=wd)
    want = by_hand(kind, wd=wd)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_adam_first_step_is_lr_times_sign():
    # with bias correction the first Adam step moves every weight by lr (eps aside)
    p = {"w": np.array([0.0, 0.0])}
    Optimizer("adam", lr=0.01).step(p, {"w": np.array([3.0, -0.001])})
    np.testing.assert_allclose(p["w"], [-0.01, 0.01], rtol=1e-4)


def test_clip_global_norm_keeps_direction():
    g = {"a": np.array([3.0]), "b": np.array([4.0])}
    norm = clip_global_norm(g, 1.0)
    assert norm == pytest.approx(5.0)
    assert math.hypot(g["a"][0], g["b"][0]) == pytest.approx(1.0, rel=1e-5)
    assert g["a"][0] / g["b"][0] == pytest.approx(0.75)
    small = {"a": np.array([0.1])}
    clip_global_norm(small, 1.0)
    assert small["a"][0] == 0.1


def test_decay_and_orthogonal_init():
    assert decayed_lr(1.0, 0.5, 3) == 0.125
    q = orthogonal(np.random.default_rng(0), (6, 6), np.float64)
    np.testing.assert_allclose(q @ q.T, np.eye(6), atol=1e-12)


def test_weight_average_follows_the_trajectory_by_hand():
    p = {"w": np.array([1.0, 2.0])}
    opt = Optimizer("sgd", lr=0.1, average=0.9)
    assert opt.averaged(p)["w"] is p["w"]  # nothing to average before the first step
    trajectory = []
    for g in GRADS:
        opt.step(p, {"w": g.copy()})
        trajectory.append(p["w"].copy())
    w1, w2, w3 = trajectory
    # the average starts at the first updated point, then p_avg = d_t p_avg + (1 - d_t) p with a
    # warming-up decay d_t = min(0.9, (1 + t) / (10 + t)): 3/12 at step 2, 4/13 at step 3
    d2, d3 = 3 / 12, 4 / 13
    want = d3 * (d2 * w1 + (1 - d2) * w2) + (1 - d3) * w3
    np.testing.assert_allclose(opt.averaged(p)["w"], want, rtol=1e-15)
    np.testing.assert_array_equal(p["w"], w3)  # the live weights are untouched


def test_weight_average_decay_reaches_its_setting_and_stays():
    p = {"w": np.zeros(1)}
    opt = Optimizer("sgd", lr=1.0, average=0.9)
    for _ in range(200):  # (1 + t) / (10 + t) passes 0.9 at t = 80
        opt.step(p, {"w": np.ones(1)})  # p = -t after step t
    before = opt.averaged(p)["w"].copy()
    opt.step(p, {"w": np.ones(1)})
    np.testing.assert_allclose(opt.averaged(p)["w"], 0.9 * before + 0.1 * p["w"], rtol=1e-15)


def test_scheduled_learning_rates_by_their_definitions():
    from rnncli.nn.optim import scheduled_lr

    for done in (0.0, 0.25, 0.5, 0.9, 1.0):
        assert scheduled_lr(0.1, "constant", done) == 0.1
        assert scheduled_lr(0.1, "linear", done) == pytest.approx(0.1 * (1 - done), abs=1e-15)
        assert scheduled_lr(0.1, "cosine", done) == pytest.approx(0.05 * (1 + np.cos(np.pi * done)), abs=1e-15)
    assert scheduled_lr(0.1, "linear", 1.7) == 0.0 and scheduled_lr(0.1, "cosine", -1) == 0.1  # clamped to 0..1
    assert [scheduled_lr(0.1, "constant", 0, step, warmup=4) for step in range(6)] == pytest.approx(
        [0.025, 0.05, 0.075, 0.1, 0.1, 0.1])


@pytest.mark.parametrize("kind", ["sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw"])
def test_shares_of_a_step_make_the_whole_step(kind):
    """Data-parallel workers each update a block of rows from its gradients alone (parallel/world.py):
    joined, the blocks are one optimizer's step bit for bit, moments and weight average included;
    a table's gradient carried as rows (lazy=False) updates densely, as the dense array would."""
    from rnncli.nn.rows import RowGradient

    rng = np.random.default_rng(0)
    start = {"a": rng.normal(size=(7, 3)), "b": rng.normal(size=5), "E": rng.normal(size=(9, 4))}
    shares = [{"a": (0, 4), "b": (0, 0), "E": (0, 2)}, {"a": (4, 7), "b": (0, 5), "E": (2, 9)}]
    whole = {k: v.copy() for k, v in start.items()}
    joined = {k: v.copy() for k, v in start.items()}
    one = Optimizer(kind, average=0.9, weight_decay=0.01)
    workers = [Optimizer(kind, average=0.9, weight_decay=0.01) for _ in shares]
    for _ in range(4):
        g = {"a": rng.normal(size=(7, 3)), "b": rng.normal(size=5),
             "E": RowGradient(np.array([1, 5, 8]), rng.normal(size=(3, 4)), (9, 4), lazy=False)}
        one.step(whole, {**g, "E": g["E"].dense()}, 0.1)
        copies = [{k: v.copy() for k, v in joined.items()} for _ in shares]
        for opt, share, params in zip(workers, shares, copies, strict=True):  # each has its block's sums
            rows = {k: slice(*share[k]) for k in share if share[k][0] < share[k][1]}
            blocks = {k: g[k].dense(share[k][0], share[k][1]) if isinstance(g[k], RowGradient) else g[k][r]
                      for k, r in rows.items()}
            opt.step({k: params[k][r] for k, r in rows.items()}, blocks, 0.1)  # views of its rows alone
        for share, params in zip(shares, copies, strict=True):  # what the Allgather does
            for k, (lo, hi) in share.items():
                joined[k][lo:hi] = params[k][lo:hi]
    assert all(np.array_equal(whole[k], joined[k]) for k in start)
    for key, value in one.state.items():
        name = key.split(".", 1)[1]
        merged = np.zeros_like(value)
        for opt, share in zip(workers, shares, strict=True):
            lo, hi = share[name]
            if lo < hi:
                merged[lo:hi] = opt.state[key]  # a worker's state holds its rows alone
        assert np.array_equal(merged, value), key


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_blocks_of_rows_cover_every_number_once_in_about_equal_runs(size):
    from rnncli.parallel import blocks_of_rows

    rng = np.random.default_rng(size)
    arrays = {f"a{i}": np.zeros(tuple(rng.integers(1, 9, rng.integers(1, 3)))) for i in range(7)}
    arrays["big"] = np.zeros((50, 4))
    blocks = blocks_of_rows(arrays, size)
    owner = {k: np.full(len(a), -1) for k, a in arrays.items()}
    numbers = [0] * size
    for r, block in enumerate(blocks):
        for k, (lo, hi) in block.items():
            assert 0 <= lo <= hi <= len(arrays[k])
            assert (owner[k][lo:hi] == -1).all()
            owner[k][lo:hi] = r
            numbers[r] += (hi - lo) * arrays[k][0].size
    assert all((o >= 0).all() for o in owner.values())  # every row has a worker
    # laid end to end in order, worker r's rows come after worker r - 1's
    order = np.concatenate([owner[k] for k in arrays])
    assert (np.diff(order) >= 0).all()
    widest = max(a[0].size for a in arrays.values())
    total = sum(a.size for a in arrays.values())
    assert max(numbers) - min(numbers) <= 2 * widest and sum(numbers) == total
