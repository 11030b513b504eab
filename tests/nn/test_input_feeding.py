"""Input feeding (nn/input_feeding.py): the decoder against its naive twin, gradients in float64
(padded and not, with dropout, every cell and score), step-by-step decoding against teacher
forcing, padding that changes nothing, and the command line."""

import json
import os

import numpy as np
import pytest
from cli_runner import cli
from gradient_asserts import assert_model_gradients
from reference_attention import input_fed_lstm_decoder
from test_seq2seq import batch

from rnncli.checkpoint import load_checkpoint
from rnncli.tasks.seq2seq import Seq2Seq

SAMPLES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "sample_data"))
CONFIGS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "configs"))


def model_of(rng, cell="lstm", attention="general", bidirectional=True, layers=1, dropout=0.0):
    return Seq2Seq(9, 7, rng, embed=3, hidden=4, cell=cell, layers=layers, bidirectional=bidirectional,
                   dropout=dropout, attention=attention, dtype=np.float64, input_feeding=True)


@pytest.mark.parametrize("kind", ["dot", "general", "additive"])
def test_the_decoder_equals_its_naive_twin(kind):
    rng = np.random.default_rng(0)
    model = model_of(rng, attention=kind, bidirectional=False)
    for p in model.params.values():
        p[...] = rng.normal(size=p.shape) * 0.7
    src, src_mask, t_in, _, _ = batch(rng)
    memory, states = model.start(src, src_mask)
    y = model.target_embedding.forward(t_in)
    ones = np.ones(t_in.shape)
    fast, _, _, _ = model.feeding.forward(y, states[:-1], ones, memory, src_mask)
    cell = {k[len("decoder.l0."):]: v for k, v in model.params.items() if k.startswith("decoder.l0.")}
    att = {k[len("attention."):]: v for k, v in model.params.items() if k.startswith("attention.")}
    naive = input_fed_lstm_decoder(kind, cell, att, y, states[0], memory, src_mask)
    np.testing.assert_allclose(fast, naive, atol=1e-12)


CASES = [("lstm", "general", True, 2), ("gru", "additive", False, 1), ("rnn", "dot", False, 2),
         ("gru", "general", True, 1)]


# two cases in the default run; all eight with -m slow
GRADIENT_CASES = [pytest.param(*case, padded, marks=() if (k, padded) in ((0, True), (1, False)) else pytest.mark.slow)
                  for k, case in enumerate(CASES) for padded in (True, False)]


@pytest.mark.parametrize("cell,attention,bidirectional,layers,padded", GRADIENT_CASES)
def test_gradients(cell, attention, bidirectional, layers, padded):
    rng = np.random.default_rng(1)
    model = model_of(rng, cell, attention, bidirectional, layers, dropout=0.2)
    data = batch(rng)
    if not padded:
        src, _, t_in, t_out, _ = data
        data = (src, np.ones(src.shape), t_in, t_out, np.ones(t_in.shape))

    assert_model_gradients(model, data)


@pytest.mark.parametrize("cell,attention,bidirectional,layers", CASES)
def test_step_by_step_decoding_equals_teacher_forcing_and_padding_changes_nothing(cell, attention, bidirectional,
                                                                                 layers):
    rng = np.random.default_rng(2)
    model = model_of(rng, cell, attention, bidirectional, layers)
    src, src_mask, t_in, t_out, t_mask = batch(rng)
    logits, _ = model.forward(src, src_mask, t_in, np.ones(t_in.shape))
    memory, states = model.start(src, src_mask)
    for t in range(t_in.shape[0]):
        step_logits, states = model.step(t_in[t], states, memory, src_mask)
        np.testing.assert_allclose(step_logits, logits[t], rtol=0, atol=1e-12)
    nll, _ = model.loss(src, src_mask, t_in, t_out, t_mask)
    alone = 0.0
    for b in range(src.shape[1]):
        S, T = int(src_mask[:, b].sum()), int(t_mask[:, b].sum())
        alone += model.loss(src[:S, b : b + 1], src_mask[:S, b : b + 1], t_in[:T, b : b + 1],
                            t_out[:T, b : b + 1], t_mask[:T, b : b + 1])[0]
    assert abs(nll - alone) < 1e-10


def test_input_feeding_from_the_command_line(tmp_path):
    d = tmp_path
    assert cli("tokenize", f"{SAMPLES}/dates_valid.tsv", "--level", "char", "-o", "d.npz", cwd=d).returncode == 0
    # with a decoder of its own width too (--decoder-hidden): the checkpoint's checks, predict and show read it
    r = cli("train", "-d", "d.npz", "-o", "m.npz", "--config", f"{CONFIGS}/dates.yaml", "--input-feeding",
            "--decoder-hidden", "40", "--max-steps", "30", "--json", cwd=d)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["task"] == "seq2seq"
    assert load_checkpoint(str(d / "m.npz"))[1]["param"]["decoder.l0.W_aa"].shape[1] == 40
    p = cli("predict", "-m", "m.npz", "--beam", "3", cwd=d, stdin="3 March 1998\n")
    assert p.returncode == 0 and len(p.stdout.splitlines()) == 1, p.stderr
    s = cli("show", "-m", "m.npz", "3 March 1998", "--json", cwd=d)
    assert s.returncode == 0, s.stderr
    weights = np.array(json.loads(s.stdout)["attention"])
    np.testing.assert_allclose(weights.sum(axis=1), 1, atol=1e-5)
    bad = cli("train", "-d", "d.npz", "-o", "x.npz", "--input-feeding", "--attention", "none", cwd=d)
    assert bad.returncode == 2 and "--input-feeding feeds the attentional state" in bad.stderr


@pytest.mark.parametrize("cell,layers,bidirectional,attention", [("lstm", 2, True, "general"),
                                                                 ("gru", 1, False, "additive"),
                                                                 ("rnn", 1, True, "general")])
def test_onnx_runs_the_input_fed_decoder_as_rnncli_does(cell, layers, bidirectional, attention):
    _onnx_parity(cell, layers, bidirectional, attention, input_feeding=True)


def _onnx_parity(cell, layers, bidirectional, attention, **options):
    """The exported graph on onnxruntime against the model's own forward pass: logits and attention."""
    import dataclasses

    import onnx
    import onnxruntime as ort

    from rnncli.config import make_config
    from rnncli.export.onnx_graph import build
    from rnncli.tasks.build import build_model

    cfg = make_config(None, {"task": "seq2seq", "cell": cell, "hidden": 5, "embed": 4, "layers": layers,
                             "bidirectional": bidirectional, "attention": attention, **options})
    vocab = ["<pad>", "<unk>", "<bos>", "<eos>"] + [f"w{i}" for i in range(8)]
    data = {"vocab": vocab, "level": "word", "lower": False, "format": "pairs", "target_vocab": vocab[:8],
            "target_level": "word"}
    rng = np.random.default_rng(0)
    model = build_model(cfg, data, rng)
    for p in model.params.values():
        p[...] = rng.normal(size=p.shape) * 0.5
    graph = build(model, {"task": "seq2seq", "config": dataclasses.asdict(cfg), "data": data})
    onnx.checker.check_model(graph, full_check=True)
    sess = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    lengths = np.array([6, 4, 1])
    mask = (np.arange(6)[:, None] < lengths[None]).astype(np.float32)
    source = np.where(mask > 0, rng.integers(4, 12, (6, 3)), 0)
    target_in = rng.integers(2, 8, (5, 3))
    out = dict(zip([o.name for o in sess.get_outputs()],
                   sess.run(None, {"source": source, "source_lengths": lengths.astype(np.int32),
                                   "target_in": target_in}), strict=True))
    logits, _ = model.forward(source, mask, target_in, np.ones(target_in.shape, np.float32))
    np.testing.assert_allclose(out["logits"], logits, rtol=0, atol=1e-5)
    np.testing.assert_allclose(out["attention"], model.attention_weights(source, mask, target_in), rtol=0, atol=1e-6)


@pytest.mark.parametrize("feeding,bidirectional", [(True, True), (False, False)])
def test_onnx_runs_a_decoder_of_its_own_width_as_rnncli_does(feeding, bidirectional):
    _onnx_parity("gru", 1, bidirectional, "general", input_feeding=feeding, decoder_hidden=7)
