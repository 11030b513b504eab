"""Build the model a configuration and a data set describe, fresh or from a checkpoint."""

import numpy as np

from rnncli.checkpoint import assign_params, load_checkpoint
from rnncli.config import TrainConfig
from rnncli.errors import RnncliError

TASK_OF_FORMAT = {"text": "lm", "tsv": "classify", "conll": "tag"}


def task_of(cfg, data_meta):
    task = cfg.task or TASK_OF_FORMAT[data_meta["format"]]
    if task != TASK_OF_FORMAT[data_meta["format"]]:
        raise RnncliError(f"--task {task} needs {[f for f, t in TASK_OF_FORMAT.items() if t == task][0]} "
                          f"data, but the data set is {data_meta['format']}")
    return task


def build_model(cfg, data_meta, rng=None):
    rng = np.random.default_rng(cfg.seed) if rng is None else rng
    dtype = np.dtype(cfg.dtype)
    task = task_of(cfg, data_meta)
    V = len(data_meta["vocab"])
    if task == "lm":
        from rnncli.tasks.lm import LanguageModel

        if cfg.bidirectional:
            raise RnncliError("a language model cannot be bidirectional (it would see the future)")
        return LanguageModel(V, rng, embed=cfg.embed, hidden=cfg.hidden, cell=cfg.cell, layers=cfg.layers,
                             dropout=cfg.dropout, dtype=dtype, activation=cfg.activation,
                             reset_after=cfg.reset_after)
    bidirectional = True if cfg.bidirectional is None else cfg.bidirectional
    common = dict(embed=cfg.embed, hidden=cfg.hidden, cell=cfg.cell, layers=cfg.layers, bidirectional=bidirectional,
                  dropout=cfg.dropout, dtype=dtype, activation=cfg.activation, reset_after=cfg.reset_after)
    if task == "classify":
        from rnncli.tasks.classify import Classifier

        names = data_meta["labels"]
        if len(names) < 2:
            raise RnncliError(f"classification needs at least two labels; the data has {names}")
        model = Classifier(V, len(names), rng, pool=cfg.pool, word_dropout=cfg.word_dropout, **common)
    else:
        from rnncli.tasks.tag import Tagger, bio_transitions

        names = data_meta["tags"]
        chars = len(data_meta["chars"]) if cfg.char_features else None
        allowed = bio_transitions(names) if data_meta.get("tag_scheme") == "iob2" else None
        model = Tagger(V, len(names), rng, char_vocab_size=chars, word_dropout=cfg.word_dropout, allowed=allowed,
                       crf=cfg.crf, char_encoder=cfg.char_encoder, char_embed=cfg.char_embed,
                       char_hidden=cfg.char_hidden, **common)
    model.label_names = names
    return model


def load_model(path, which="best"):
    """-> (model, meta, groups): parameters from `best` when present, else the latest."""
    meta, groups = load_checkpoint(path)
    try:
        cfg = TrainConfig(**meta["config"])
    except TypeError as e:
        raise RnncliError(f"{path}: damaged model configuration ({e})") from None
    model = build_model(cfg, meta["data"])
    params = groups["best"] if which == "best" and groups["best"] else groups["param"]
    assign_params(path, model.params, params, model.dtype)
    return model, meta, groups
