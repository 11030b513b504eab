"""export / import: onnxruntime runs the exported graph of every task, cell, depth and direction
with rnncli's outputs on padded batches; the PyTorch state dict goes through safetensors and back
bit for bit, with the names and shapes PyTorch's modules load; import refuses what does not fit."""

import dataclasses
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from rnncli.config import make_config
from rnncli.errors import RnncliError
from rnncli.export.onnx_graph import build
from rnncli.export.state_dict import from_state_dict, to_state_dict
from rnncli.tasks.build import build_model

V, T, B = 12, 6, 3
LENGTHS = np.array([6, 4, 1])


def make(task, dtype="float32", classes=3, **kw):
    """A small model of the task with random weights (not its initialisation: biases and CRF
    scores non-zero) and the meta a checkpoint would hold."""
    cfg = make_config(None, {"task": "lm" if task == "clm" else task, "hidden": 5, "embed": 4, "char_hidden": 3,
                             "char_embed": 2, "dtype": dtype, **kw})
    data = {"vocab": ["<pad>", "<unk>", "<bos>", "<eos>"] + [f"w{i}" for i in range(V - 4)], "level": "word",
            "lower": False, "format": {"lm": "text", "classify": "tsv", "tag": "conll", "seq2seq": "pairs",
                                       "clm": "tsv", "regress": "scores"}[task]}
    if task == "regress":
        data.update(score_names=["a", "b"], score_mean=[1.5, -2.0], score_std=[0.5, 3.0])
    if task == "classify":
        data["labels"] = [f"c{i}" for i in range(classes)]
    if task == "tag":
        data.update(tags=["B-X", "I-X", "O"], chars=["<pad>", "<unk>", "<bos>", "<eos>", "a", "b", "c"],
                    tag_scheme="iob2")
    if task == "seq2seq":
        data.update(target_vocab=data["vocab"][:8], target_level="word")
    if task == "clm":
        data.update(labels=["x", "y", "z"], format="tsv")
    model = build_model(cfg, data, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    for p in model.params.values():
        p[...] = rng.normal(size=p.shape) * 0.5
    return model, {"task": task, "config": dataclasses.asdict(cfg), "data": data}


def batch(model, rng, chars=False):
    mask = (np.arange(T)[:, None] < LENGTHS[None]).astype(model.dtype)
    ids = np.where(mask > 0, rng.integers(4, V, (T, B)), 0)
    feeds = {"ids": ids}
    ch = cm = None
    if chars:
        Lc = 4
        n = rng.integers(1, Lc + 1, (T, B)) * (mask > 0)
        c = np.where(np.arange(Lc) < n[..., None], rng.integers(4, 7, (T, B, Lc)), 0)
        feeds["chars"] = c
        ch = np.ascontiguousarray(c.reshape(T * B, Lc).T)
        cm = (ch > 0).astype(model.dtype)
    return ids, mask, feeds, ch, cm


def run_onnx(model, meta, feeds):
    graph = build(model, meta)
    onnx.checker.check_model(graph, full_check=True)
    sess = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds), strict=True)), graph


CELLS = [dict(cell="rnn"), dict(cell="rnn", activation="relu"), dict(cell="gru"), dict(cell="gru", reset_after=False),
         dict(cell="lstm")]
IDS = ["rnn-tanh", "rnn-relu", "gru", "gru-reset-before", "lstm"]


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell", CELLS, ids=IDS)
def test_language_model_logits_and_states(cell, layers):
    model, meta = make("lm", layers=layers, **cell)
    rng = np.random.default_rng(2)
    ids = rng.integers(0, V, (T, B))
    n = 2 if cell["cell"] == "lstm" else 1
    h0 = rng.normal(size=(n, layers, B, 5)).astype(np.float32)
    feeds = {"ids": ids, "h0": h0[0], **({"c0": h0[1]} if n == 2 else {})}
    out, graph = run_onnx(model, meta, feeds)
    logits, finals, _ = model.forward(ids, [tuple(h0[j, k] for j in range(n)) for k in range(layers)])
    assert np.abs(logits).max() > 0.5  # a real output, not zeros on both sides
    np.testing.assert_allclose(out["logits"], logits, rtol=0, atol=1e-5)
    np.testing.assert_allclose(out["hN"], np.stack([f[0] for f in finals]), rtol=0, atol=1e-5)
    if n == 2:
        np.testing.assert_allclose(out["cN"], np.stack([f[1] for f in finals]), rtol=0, atol=1e-5)
    props = {p.key: p.value for p in graph.metadata_props}
    assert json.loads(props["vocab"]) == meta["data"]["vocab"] and props["rnncli_task"] == "lm"


@pytest.mark.parametrize("pool,classes", [("last", 3), ("mean", 2), ("max", 3)])
@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("cell", CELLS, ids=IDS)
def test_classifier_probabilities_on_padded_batches(cell, bidirectional, pool, classes):
    model, meta = make("classify", layers=2, bidirectional=bidirectional, pool=pool, classes=classes, **cell)
    ids, mask, feeds, _, _ = batch(model, np.random.default_rng(3))
    out, _ = run_onnx(model, meta, {**feeds, "lengths": LENGTHS.astype(np.int32)})
    np.testing.assert_allclose(out["probabilities"], model.predict_proba(ids, mask), rtol=0, atol=1e-5)


@pytest.mark.parametrize("pool", ["last", "mean", "max"])
@pytest.mark.parametrize("cell", CELLS, ids=IDS)
def test_regression_scores_on_padded_batches(cell, pool):
    model, meta = make("regress", layers=2, pool=pool, **cell)
    ids, mask, feeds, _, _ = batch(model, np.random.default_rng(3))
    out, _ = run_onnx(model, meta, {**feeds, "lengths": LENGTHS.astype(np.int32)})
    np.testing.assert_allclose(out["scores"], model.predict(ids, mask), rtol=0, atol=1e-4)


@pytest.mark.parametrize("encoder,crf", [("cnn", True), ("rnn", False), (None, True)])
@pytest.mark.parametrize("layers,bidirectional", [(1, True), (2, True), (1, False)])
@pytest.mark.parametrize("cell", CELLS, ids=IDS)
def test_tagger_emissions_and_crf_scores(cell, layers, bidirectional, encoder, crf):
    model, meta = make("tag", layers=layers, bidirectional=bidirectional, char_features=encoder is not None,
                       char_encoder=encoder or "cnn", crf=crf, **cell)
    ids, mask, feeds, ch, cm = batch(model, np.random.default_rng(4), chars=encoder is not None)
    out, _ = run_onnx(model, meta, {**feeds, "lengths": LENGTHS.astype(np.int32)})
    logits, _ = model.forward(ids, mask, ch, cm)
    real = mask > 0  # past a sentence's end nothing is defined
    np.testing.assert_allclose(out["emissions"][real], logits[real], rtol=0, atol=1e-5)
    if crf:
        for name in ("start", "trans", "end"):
            np.testing.assert_allclose(out[f"crf_{name}"], model.params[f"crf.{name}"], rtol=0, atol=1e-7)
    assert np.array_equal(out["allowed_trans"], model.allowed[1])


def test_a_float64_model_exports_as_float32_within_1e_5():
    model, meta = make("tag", dtype="float64", layers=2, char_features=True, crf=True, cell="lstm")
    ids, mask, feeds, ch, cm = batch(model, np.random.default_rng(5), chars=True)
    out, graph = run_onnx(model, meta, {**feeds, "lengths": LENGTHS.astype(np.int32)})
    logits, _ = model.forward(ids, mask, ch, cm)
    assert out["emissions"].dtype == np.float32
    np.testing.assert_allclose(out["emissions"][mask > 0], logits[mask > 0], rtol=0, atol=1e-5)


# dot attention needs the encoder's outputs as wide as the decoder's: unidirectional only
@pytest.mark.parametrize("layers,bidirectional,attention", [(1, False, "none"), (1, False, "dot"), (2, True, "none"),
                                                             (2, True, "general"), (2, True, "additive"),
                                                             (1, False, "additive")])
@pytest.mark.parametrize("cell", CELLS, ids=IDS)
def test_encoder_decoder_logits_and_attention(cell, layers, bidirectional, attention):
    model, meta = make("seq2seq", layers=layers, bidirectional=bidirectional, attention=attention, **cell)
    rng = np.random.default_rng(6)
    source, source_mask, _, _, _ = batch(model, rng)
    target_in = rng.integers(0, 8, (4, B))
    out, _ = run_onnx(model, meta, {"source": source, "source_lengths": LENGTHS.astype(np.int32),
                                    "target_in": target_in})
    logits, cache = model.forward(source, source_mask, target_in, np.ones(target_in.shape, model.dtype))
    assert np.abs(logits).max() > 0.5
    np.testing.assert_allclose(out["logits"], logits, rtol=0, atol=1e-5)
    if attention != "none":
        weights = model.attention.forward(*_decoder_and_memory(model, source, source_mask, target_in))[1]
        np.testing.assert_allclose(out["attention"], weights, rtol=0, atol=1e-6)


def _decoder_and_memory(model, source, source_mask, target_in):
    memory, init = model.start(source, source_mask)
    h, _, _ = model.decoder.forward(model.target_embedding.forward(target_in), init)
    return h, memory, source_mask


@pytest.mark.parametrize("condition", ["state", "input", "both"])
@pytest.mark.parametrize("cell", CELLS, ids=IDS)
def test_conditional_language_model_from_each_labels_state(cell, condition):
    model, meta = make("clm", layers=2, condition=condition, **cell)
    rng = np.random.default_rng(7)
    ids, labels = rng.integers(3, V, (T, B)), np.array([2, 0, 1])
    out, _ = run_onnx(model, meta, {"ids": ids, "labels": labels})
    logits, finals, _ = model.forward(ids, np.ones((T, B), model.dtype), labels)
    np.testing.assert_allclose(out["logits"], logits, rtol=0, atol=1e-5)
    np.testing.assert_allclose(out["hN"], np.stack([f[0] for f in finals]), rtol=0, atol=1e-5)


# ---------------------------------------------------------------- PyTorch names, safetensors

EXPECTED = {  # the names and shapes PyTorch's modules hold for these models (E 4, H 5, V 12)
    "lm-lstm-2": {"embedding.weight": (12, 4), "rnn.weight_ih_l0": (20, 4), "rnn.weight_hh_l0": (20, 5),
                  "rnn.bias_ih_l0": (20,), "rnn.bias_hh_l0": (20,), "rnn.weight_ih_l1": (20, 5),
                  "rnn.weight_hh_l1": (20, 5), "rnn.bias_ih_l1": (20,), "rnn.bias_hh_l1": (20,),
                  "head.weight": (12, 5), "head.bias": (12,)},
    "tag-gru-cnn": {"embedding.weight": (12, 4), "char_embedding.weight": (7, 2), "char_cnn.weight": (6, 2, 3),
                    "char_cnn.bias": (6,), "rnn.weight_ih_l0": (15, 10), "rnn.weight_hh_l0": (15, 5),
                    "rnn.bias_ih_l0": (15,), "rnn.bias_hh_l0": (15,), "rnn.weight_ih_l0_reverse": (15, 10),
                    "rnn.weight_hh_l0_reverse": (15, 5), "rnn.bias_ih_l0_reverse": (15,),
                    "rnn.bias_hh_l0_reverse": (15,), "head.weight": (3, 10), "head.bias": (3,), "crf.start": (3,),
                    "crf.trans": (3, 3), "crf.end": (3,)},
}
MODELS = {"lm-lstm-2": dict(task="lm", cell="lstm", layers=2),
          "tag-gru-cnn": dict(task="tag", cell="gru", layers=1, char_features=True, char_encoder="cnn", crf=True)}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_state_dict_names_and_shapes_are_pytorchs(name):
    kw = dict(MODELS[name])
    model, meta = make(kw.pop("task"), **kw)
    sd = to_state_dict(model.params, meta["config"])
    assert {k: v.shape for k, v in sd.items()} == EXPECTED[name]


@pytest.mark.parametrize("kw", [dict(task="lm", cell="gru", layers=2), dict(task="classify", cell="lstm"),
                                dict(task="tag", cell="rnn", char_features=True, char_encoder="rnn", crf=True),
                                dict(task="seq2seq", cell="gru", attention="additive"),
                                dict(task="lm", cell="lstm", dtype="float64")],
                         ids=lambda kw: f"{kw['task']}-{kw['cell']}")
def test_cli_round_trip_through_safetensors_is_bit_exact(tmp_path, kw):
    from cli_runner import cli

    from rnncli.checkpoint import load_checkpoint, save_checkpoint

    kw = dict(kw)
    model, meta = make(kw.pop("task"), **kw)
    save_checkpoint(str(tmp_path / "m.npz"), meta, model.params)
    r = cli("export", "-m", "m.npz", "-o", "m.safetensors", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = cli("import", "m.safetensors", "--like", "m.npz", "-o", "back.npz", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    back = load_checkpoint(str(tmp_path / "back.npz"))[1]["param"]
    assert set(back) == set(model.params)
    for k, v in model.params.items():
        assert back[k].dtype == v.dtype and np.array_equal(back[k], v), k


def test_import_refuses_what_does_not_fit(tmp_path):
    model, meta = make("lm", cell="lstm", layers=2)
    sd = to_state_dict(model.params, meta["config"])
    cases = [({k: v for k, v in sd.items() if k != "head.bias"}, "no tensor 'head.bias'"),
             ({**sd, "rnn.weight_hh_l1": np.zeros((20, 6), np.float32)},
              "tensor 'rnn.weight_hh_l1' has shape (20, 6), the model's is (20, 5)"),
             ({**sd, "rnn.weight_ih_l2": np.zeros((20, 5), np.float32)}, "tensor 'rnn.weight_ih_l2' has no place")]
    for tensors, message in cases:
        with pytest.raises(RnncliError, match=message.replace("(", r"\(").replace(")", r"\)")):
            from_state_dict(tensors, model.params, meta["config"], "x.safetensors")


def test_the_lectures_gru_has_no_pytorch_module_and_export_says_so():
    model, meta = make("lm", cell="gru", reset_after=False)
    with pytest.raises(RnncliError, match="no PyTorch module computes; export it to ONNX instead"):
        to_state_dict(model.params, meta["config"])


def test_a_missing_extra_is_named(tmp_path, monkeypatch):
    from rnncli.checkpoint import save_checkpoint
    from rnncli.commands.export import export_model

    model, meta = make("lm", cell="rnn")
    save_checkpoint(str(tmp_path / "m.npz"), meta, model.params)
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(RnncliError, match=r"pip install 'rnncli\[export\]'"):
        export_model(str(tmp_path / "m.npz"), str(tmp_path / "m.onnx"))
    assert not (tmp_path / "m.onnx").exists()


def test_pytorch_modules_load_the_state_dict_and_give_rnncli_outputs(tmp_path):
    """As docs/pytorch.md shows it: nn.Embedding + nn.LSTM/nn.GRU + nn.Linear from the file, the same
    logits; trained a step in PyTorch, saved, imported back: rnncli computes what PyTorch does."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file, save_file

    from rnncli.export.state_dict import load, save

    for cell in ("lstm", "gru", "rnn"):
        model, meta = make("lm", cell=cell, layers=2, dtype="float64")
        save(tmp_path / "m.safetensors", model.params, meta)
        sd = load_file(str(tmp_path / "m.safetensors"))
        rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell](4, 5, 2)
        net = torch.nn.ModuleDict({"embedding": torch.nn.Embedding(V, 4), "rnn": rnn,
                                   "head": torch.nn.Linear(5, V)}).double()
        net.load_state_dict(sd)
        ids = np.random.default_rng(6).integers(0, V, (T, B))
        with torch.no_grad():
            y, _ = net["rnn"](net["embedding"](torch.from_numpy(ids)))
            logits = net["head"](y).numpy()
        np.testing.assert_allclose(logits, model.forward(ids)[0], rtol=0, atol=1e-10)
        with torch.no_grad():  # change the weights in PyTorch, bring them back
            for p in net.parameters():
                p.add_(0.01 * torch.randn_like(p))
            y, _ = net["rnn"](net["embedding"](torch.from_numpy(ids)))
            logits = net["head"](y).numpy()
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "t.safetensors"))
        tensors, _ = load(tmp_path / "t.safetensors")
        for name, arr in from_state_dict(tensors, model.params, meta["config"], "t").items():
            model.params[name][...] = arr
        np.testing.assert_allclose(model.forward(ids)[0], logits, rtol=0, atol=1e-10)


@pytest.mark.parametrize("task,projection", [("classify", None), ("regress", 0), ("tag", None)])
def test_frame_models_take_raw_frames(task, projection):
    """A model of frames exports with its normalisation inside: onnxruntime reads the frames as
    tokenize makes them (log-mel or as given) and equals rnncli on the normalised ones."""
    D = 3
    cfg = make_config(None, {"task": task, "hidden": 5, "embed": 4, "input_projection": projection,
                             "crf": task == "tag"})
    data = {"vocab": ["<pad>", "<unk>", "<bos>", "<eos>"], "level": "frame", "lower": False, "input": "frames",
            "format": {"classify": "tsv", "regress": "scores", "tag": "conll"}[task], "frame_dim": D,
            "frame_mean": [0.5, -1.0, 2.0], "frame_std": [2.0, 0.5, 1.0], "labels": ["a", "b", "c"],
            "tags": ["0", "1"], "score_names": ["y"], "score_mean": [3.0], "score_std": [2.0]}
    model = build_model(cfg, data, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    for p in model.params.values():
        p[...] = rng.normal(size=p.shape) * 0.5
    raw = rng.normal(size=(T, B, D)).astype(np.float32)
    mask = (np.arange(T)[:, None] < LENGTHS[None]).astype(np.float32)
    x = (raw - np.array(data["frame_mean"], np.float32)) / np.array(data["frame_std"], np.float32) * mask[..., None]
    meta = {"task": task, "config": dataclasses.asdict(cfg), "data": data}
    out, _ = run_onnx(model, meta, {"frames": raw, "lengths": LENGTHS.astype(np.int32)})
    if task == "classify":
        np.testing.assert_allclose(out["probabilities"], model.predict_proba(x, mask), atol=1e-5)
    elif task == "regress":
        np.testing.assert_allclose(out["scores"], model.predict(x, mask), atol=1e-4)
    else:
        logits, _ = model.forward(x, mask)
        np.testing.assert_allclose(out["emissions"][mask > 0], logits[mask > 0], atol=1e-5)


@pytest.mark.parametrize("attention", ["none", "general"], ids=["whole-image", "attending"])
@pytest.mark.parametrize("cell", CELLS, ids=IDS)
def test_image_captioner_logits_from_raw_pixels(cell, attention):
    """A captioner exports with the frames' normalisation inside: onnxruntime reads an image's columns as
    tokenize makes them and gives rnncli's logits (and, attending, its attention)."""
    H, W = 3, 4
    cfg = make_config(None, {"task": "caption", "hidden": 5, "embed": 4, "layers": 2, "attention": attention,
                             **cell})
    data = {"vocab": ["<pad>", "<unk>", "<bos>", "<eos>"], "level": "frame", "lower": False, "input": "frames",
            "format": "pairs", "frame_dim": H, "image": [H, W, 1], "frame_mean": [0.2, 0.5, 0.1],
            "frame_std": [0.3, 0.4, 0.2], "target_vocab": ["<pad>", "<unk>", "<bos>", "<eos>", "one", "two", "top"],
            "target_level": "word"}
    model = build_model(cfg, data, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    for p in model.params.values():
        p[...] = rng.normal(size=p.shape) * 0.5
    raw = rng.random((W, B, H)).astype(np.float32)  # columns of pixels in [0, 1]
    x = (raw - np.array(data["frame_mean"], np.float32)) / np.array(data["frame_std"], np.float32)
    mask = np.ones((W, B), np.float32)
    target_in = rng.integers(0, 7, (4, B))
    meta = {"task": "caption", "config": dataclasses.asdict(cfg), "data": data}
    out, _ = run_onnx(model, meta, {"frames": raw, "source_lengths": np.full(B, W, np.int32), "target_in": target_in})
    logits, _ = model.forward(x, mask, target_in, np.ones(target_in.shape, np.float32))
    assert np.abs(logits).max() > 0.5
    np.testing.assert_allclose(out["logits"], logits, rtol=0, atol=2e-5)
