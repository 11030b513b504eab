"""rnncli gradients: the vanishing-gradient report (gradflow.py) for a trained language model or
for fresh models of each cell, on the same windows of the same data."""

import dataclasses

import numpy as np

from rnncli.errors import RnncliError, UsageError
from rnncli.gradflow import state_gradients, windows

SHOWN = (1, 2, 5, 10, 20, 40, 80, 160, 320)  # the distances the table lists
MAX_WINDOWS = 4096  # --batch


def gradient_report(data, model_path=None, cells=("rnn", "gru", "lstm"), steps=100, batch=16, hidden=128,
                    embed=64, layers=1, seed=0):
    """-> {"data": ..., "steps": T, "models": {name: {"distance": [...], "a": [...], "c": [...] or None}}}."""
    from rnncli.text.batching import stream_ids
    from rnncli.text.store import load_dataset

    if batch > MAX_WINDOWS:
        raise UsageError(f"--batch must be at most {MAX_WINDOWS:,} (the mean over more windows changes nothing "
                         f"one can see), not {batch:,}")
    ds = load_dataset(data)
    ids, nxt = _windows(stream_ids(ds.train, ds.meta["format"]), steps, batch, seed)
    models = {}
    if model_path is not None:
        from rnncli.config import config_from_meta
        from rnncli.models import load_model
        from rnncli.tasks.build import build_model

        model, meta, _ = load_model(model_path)
        if meta["task"] != "lm":
            raise UsageError(f"{model_path}: gradients reads language models (this is a {meta['task']} model)")
        if meta["data"]["vocab"] != ds.meta["vocab"]:
            raise RnncliError(f"{data}: another vocabulary than {model_path}'s (tokenize with --vocab {model_path})")
        cfg = config_from_meta(model_path, meta["config"])
        twin = build_model(dataclasses.replace(cfg, dtype="float64", dropout=0.0), meta["data"])
        for name, arr in model.params.items():  # float64, so that 1e-30 is still a number
            twin.params[name][...] = arr
        models[f"{model_path} ({cfg.cell})"] = twin
    else:
        from rnncli.config import TrainConfig
        from rnncli.tasks.build import check_fits_in_memory
        from rnncli.tasks.lm import LanguageModel

        for cell in cells:
            check_fits_in_memory(TrainConfig(task="lm", cell=cell, hidden=hidden, embed=embed, layers=layers,
                                             dtype="float64"), ds.meta)
        V = len(ds.meta["vocab"])
        for cell in cells:
            models[f"{cell}, fresh"] = LanguageModel(V, np.random.default_rng(seed), embed=embed, hidden=hidden,
                                                     cell=cell, layers=layers, dtype=np.float64)
    out = {}
    for name, model in models.items():
        r = state_gradients(model, ids, nxt)
        out[name] = {"distance": r["distance"].tolist(), "a": r["a"].tolist(),
                     "c": None if r["c"] is None else r["c"].tolist()}
    return {"data": str(data), "steps": steps, "batch": batch, "models": out}


def _windows(stream, steps, batch, seed):
    try:
        return windows(stream, steps, batch, np.random.default_rng(seed))
    except ValueError as e:
        raise UsageError(str(e)) from None
