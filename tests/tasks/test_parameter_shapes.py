"""A model's parameter shapes are written once, in its constructors: a model drawn on a Blueprint
(nn/init.py) has exactly the parameters of the model really built, shape for shape, and allocates
nothing whatever sizes it is given. The checkpoint checks and the memory estimate read it."""

import math
import tracemalloc

import numpy as np
import pytest

from rnncli.commands.gradcheck import synthetic_meta
from rnncli.config import TrainConfig
from rnncli.nn.init import Blueprint, Planned
from rnncli.tasks.build import build_model, parameter_count, parameter_shapes
from rnncli.tasks.registry import task_named

SMALL = dict(embed=5, hidden=6, layers=2)
VARIANTS = [
    ("lm", dict(cell="lstm")), ("lm", dict(cell="gru", reset_after=False)), ("lm", dict(cell="rnn")),
    ("classify", dict(cell="gru")), ("classify", dict(cell="lstm", bidirectional=False, pool="max")),
    ("regress", dict(cell="lstm")),
    ("tag", dict(cell="lstm", crf=True)), ("tag", dict(cell="gru", char_features=True, char_encoder="cnn")),
    ("tag", dict(cell="rnn", char_features=True, char_encoder="rnn")),
    ("seq2seq", dict(cell="lstm", attention="general")), ("seq2seq", dict(cell="gru", attention="none")),
    ("seq2seq", dict(cell="lstm", attention="additive", input_feeding=True, decoder_layers=1, decoder_hidden=8)),
    ("clm", dict(cell="lstm", condition="state")), ("clm", dict(cell="gru", condition="both", label_dropout=0.1)),
    ("caption", dict(cell="lstm")), ("caption", dict(cell="gru", attention="general")),
]


def _meta(name):
    task = task_named(name)
    meta = synthetic_meta(task)
    if name == "clm":
        meta["labels"] = ["jig", "reel"]
    return meta, (None if name == "clm" else name if name != "lm" else None)


@pytest.mark.parametrize("name,options", VARIANTS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(VARIANTS)])
def test_the_blueprint_has_the_real_models_parameters(name, options):
    meta, task = _meta(name)
    cfg = TrainConfig(task="lm" if name in ("lm", "clm") else task, **SMALL, **options)
    real = build_model(cfg, meta)
    planned = parameter_shapes(cfg, meta)
    assert list(planned) == list(real.params)  # the same names in the same order
    assert planned == {k: v.shape for k, v in real.params.items()}
    assert parameter_count(cfg, meta) == sum(v.size for v in real.params.values())


def test_a_blueprint_allocates_nothing_however_large():
    meta, _ = _meta("seq2seq")
    cfg = TrainConfig(task="seq2seq", embed=100_000, hidden=1_000_000, layers=3, cell="lstm", attention="general")
    tracemalloc.start()
    shapes = parameter_shapes(cfg, meta)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert shapes["encoder.l0.W_aa"] == (4_000_000, 1_000_000)
    assert parameter_count(cfg, meta) > 10**13
    assert peak < 1_000_000  # bytes: names and shapes only


def test_a_planned_parameter_takes_a_constructors_writes_and_keeps_nothing():
    p = Blueprint.array((8,), np.float32)
    p[2:4] = 1.0  # as the LSTM sets its forget-gate bias
    assert isinstance(p, Planned) and p.shape == (8,) and p.size == math.prod(p.shape) and p.dtype == np.float32
