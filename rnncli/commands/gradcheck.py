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
from rnncli.tasks.registry import task_named
from rnncli.text.vocab import SPECIALS


def synthetic_meta(task, V=11, K=3):
    """Data meta for a task over a made-up vocabulary: what a model needs to be built."""
    vocab = list(SPECIALS) + [f"w{i}" for i in range(V - len(SPECIALS))]
    return {"vocab": vocab, "format": task.format, "level": "word", "lower": False, **task.synthetic_names(vocab, K)}


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
    return task.check_loss(model, batch, np.random.default_rng(seed))


def run_gradcheck(model_path=None, data=None, overrides=None, entries=30, eps=1e-5, seed=0):
    """-> (description, rows [(name, shape, relative error)])."""
    rng = np.random.default_rng(seed)
    if model_path is not None:
        from rnncli.config import config_from_meta
        from rnncli.models import read_checkpoint

        meta, groups = read_checkpoint(model_path)
        cfg = config_from_meta(model_path, meta["config"])
        task, data_meta = task_named(meta["task"]), meta["data"]
        model = float64_model(cfg, data_meta, groups["best"] or groups["param"])
        if data is not None:
            from rnncli.text.store import load_dataset

            batch = task.first_examples(load_dataset(data), cfg)
            where = f"{model_path} on the first examples of {data}"
        else:
            batch = task.random_batch(data_meta, cfg, rng)
            where = f"{model_path} on a random padded batch of its " + (
                "frames' size" if data_meta.get("input") == "frames" else "vocabulary")
    else:
        overrides = dict(overrides or {})
        task = task_named(overrides.pop("task", None) or "lm")
        conditional = {"task": "lm", "condition": "both"} if task.name == "clm" else {"task": task.name}
        cfg = make_config(None, {"hidden": 4, "embed": 3, "char_hidden": 2, "char_embed": 3, "layers": 1,
                                 "dropout": 0.1, **conditional, **overrides})
        data_meta = synthetic_meta(task)
        task = task_named(task_of(cfg, data_meta))
        model = float64_model(cfg, data_meta)
        batch = task.random_batch(data_meta, cfg, rng)
        where = "a fresh model on a random padded batch"
    _, grads = loss_of(model, task, batch, seed)
    errors = check_gradients(lambda: loss_of(model, task, batch, seed)[0], dict(model.params), grads, eps=eps,
                             entries=entries, rng=rng)
    both_ways = cfg.bidirectional is not False and not task.one_way
    what = f"{task.name}, {cfg.cell} x {cfg.layers}" + (", bidirectional" if both_ways else "")
    return f"{what}: {where}", [(name, model.params[name].shape, err) for name, err in errors.items()]
