"""rnncli gradcheck: the backward pass of a model against central differences, in float64.

A freshly built model of the chosen task and cell (or a trained one, -m), made float64, reads a
small padded batch (random ids, or the first examples of -d data); every parameter array's
analytic gradient is compared with (f(x + eps) - f(x - eps)) / 2 eps at up to --entries of its
entries (nn/gradcheck.py, the checker the tests use). eps = 1e-5: an array whose gradient is small
(an attention matrix of a fresh model: norm ~1e-5) would otherwise show rounding, not the backward.
Dropout stays on, with the same seed for every evaluation, so the check covers the training graph.
"""

import dataclasses

import numpy as np

from rnncli.config import make_config
from rnncli.nn.gradcheck import check_gradients
from rnncli.tasks.build import build_model, task_of
from rnncli.text.vocab import SPECIALS

TASK_FORMAT = {"lm": "text", "clm": "tsv", "classify": "tsv", "tag": "conll", "seq2seq": "pairs"}


def synthetic_meta(task, V=11, K=3):
    """Data meta for a task over a made-up vocabulary: what a model needs to be built."""
    vocab = list(SPECIALS) + [f"w{i}" for i in range(V - len(SPECIALS))]
    meta = {"vocab": vocab, "format": TASK_FORMAT[task], "level": "word", "lower": False}
    if task in ("classify", "clm"):
        meta["labels"] = [f"label{i}" for i in range(K)]
    if task == "tag":
        meta.update(tags=["B-X", "I-X", "O"], chars=list(SPECIALS) + list("abcde"), tag_scheme="iob2")
    if task == "seq2seq":
        meta.update(target_vocab=vocab[:9], target_level="word")
    return meta


def random_batch(task, meta, cfg, rng, T=5, B=3):
    """The loss arguments of a padded batch: sequences of lengths T, T-2 and 1."""
    lengths = np.array([T, max(T - 2, 1), 1][:B])
    mask = (np.arange(T)[:, None] < lengths[None]).astype(np.float64)
    V = len(meta["vocab"])
    ids = np.where(mask > 0, rng.integers(len(SPECIALS), V, (T, B)), 0)
    if task == "lm":
        return ids, np.where(mask > 0, rng.integers(len(SPECIALS), V, (T, B)), 0), None, mask
    if task == "classify":
        return ids, mask, rng.integers(0, len(meta["labels"]), B)
    if task == "clm":
        return ids, mask, rng.integers(0, len(meta["labels"]), B), np.where(mask > 0, rng.integers(3, V, (T, B)), 0)
    if task == "tag":
        # B-X or O at random, and I-X wherever B-X or I-X came before: a sequence IOB2 allows
        tags = np.where(rng.random((T, B)) < 0.5, meta["tags"].index("B-X"), meta["tags"].index("O"))
        for t in range(1, T):
            inside = (tags[t - 1] != meta["tags"].index("O")) & (rng.random(B) < 0.5)
            tags[t] = np.where(inside, meta["tags"].index("I-X"), tags[t])
        tags = np.where(mask > 0, tags, 0)
        if not cfg.char_features:
            return ids, mask, tags
        Lc = 4
        n = (rng.integers(1, Lc + 1, T * B) * (mask.T.reshape(-1) > 0))
        n = n.reshape(B, T).T.reshape(-1)  # column t*B + b holds word (t, b)
        cmask = (np.arange(Lc)[:, None] < n[None]).astype(np.float64)
        chars = np.where(cmask > 0, rng.integers(len(SPECIALS), len(meta["chars"]), (Lc, T * B)), 0)
        return ids, mask, tags, chars, cmask
    Vt = len(meta["target_vocab"])
    tmask = np.ones((4, B))
    tmask[3:, 1:] = 0
    return (ids, mask, np.where(tmask > 0, rng.integers(2, Vt, (4, B)), 0),
            np.where(tmask > 0, rng.integers(3, Vt, (4, B)), 0), tmask)


def data_batch(task, ds, cfg, B=3, T=6):
    """The first examples of a data set as the model's loss arguments."""
    from rnncli.text.batching import make_batch, stream_ids

    if task == "lm":
        ids = stream_ids(ds.train, ds.meta["format"])[: B * (T + 1)].reshape(B, T + 1).T
        return np.ascontiguousarray(ids[:-1]), np.ascontiguousarray(ids[1:]), None, None
    index = np.arange(min(B, ds.train.num_sequences))
    return make_batch(ds.train, index, task, cfg.char_features)


def float64_model(cfg, meta, params=None):
    cfg64 = dataclasses.replace(cfg, dtype="float64")
    model = build_model(cfg64, meta, np.random.default_rng(cfg.seed))
    for name, arr in (params or {}).items():
        model.params[name][...] = arr
    if params is None:  # a fresh model: make every array non-trivial (zero biases would hide a missing term)
        rng = np.random.default_rng(cfg.seed + 1)
        for arr in model.params.values():
            arr += rng.normal(scale=0.1, size=arr.shape)
    return model


def loss_of(model, task, batch, seed):
    """The scalar loss with dropout drawn from the same seed every time."""
    rng = np.random.default_rng(seed)
    if task == "lm":
        ids, targets, states, mask = batch
        return model.loss_and_grads(ids, targets, states, mask, rng=rng)[:2]
    return model.loss_and_grads(*batch, rng=rng)[:2]


def run_gradcheck(model_path=None, data=None, overrides=None, entries=30, eps=1e-5, seed=0):
    """-> (description, rows [(name, shape, relative error)])."""
    rng = np.random.default_rng(seed)
    if model_path is not None:
        from rnncli.config import config_from_meta
        from rnncli.models import read_checkpoint

        meta, groups = read_checkpoint(model_path)
        cfg = config_from_meta(model_path, meta["config"])
        task, data_meta = meta["task"], meta["data"]
        model = float64_model(cfg, data_meta, groups["best"] or groups["param"])
        if data is not None:
            from rnncli.text.store import load_dataset

            batch = data_batch(task, load_dataset(data), cfg)
            where = f"{model_path} on the first examples of {data}"
        else:
            batch = random_batch(task, data_meta, cfg, rng)
            where = f"{model_path} on a random padded batch of its vocabulary"
    else:
        overrides = dict(overrides or {})
        task = overrides.pop("task", None) or "lm"
        cfg = make_config(None, {"hidden": 4, "embed": 3, "char_hidden": 2, "char_embed": 3, "layers": 1,
                                 "dropout": 0.1, "task": "lm" if task == "clm" else task,
                                 "condition": "both" if task == "clm" else None, **overrides})
        data_meta = synthetic_meta(task)
        task = task_of(cfg, data_meta)
        model = float64_model(cfg, data_meta)
        batch = random_batch(task, data_meta, cfg, rng)
        where = "a fresh model on a random padded batch"
    _, grads = loss_of(model, task, batch, seed)
    errors = check_gradients(lambda: loss_of(model, task, batch, seed)[0], dict(model.params), grads, eps=eps,
                             entries=entries, rng=rng)
    both_ways = cfg.bidirectional is not False and task in ("classify", "tag", "seq2seq")
    what = f"{task}, {cfg.cell} x {cfg.layers}" + (", bidirectional" if both_ways else "")
    return f"{what}: {where}", [(name, model.params[name].shape, err) for name, err in errors.items()]
