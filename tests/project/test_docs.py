"""The documentation says what the code does: docs/checkpoint.md's keys and shapes against real
checkpoints of every task, and the README's `jq` keys against a real `train --json`."""

import json
import os
import re

import numpy as np
import pytest
from cli_runner import cli

from rnncli.checkpoint import load_checkpoint
from rnncli.config import make_config
from rnncli.text.encode import tokenize
from rnncli.train import train

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
SAMPLES = os.path.join(ROOT, "sample_data")
DOC = open(os.path.join(ROOT, "docs", "checkpoint.md"), encoding="utf-8").read()


def doc_table(heading):
    """Rows (first cell, second cell) of the first table after `## heading`, backticks stripped."""
    section = DOC.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:3] for line in section.splitlines() if line.startswith("| `")]
    return [(a.strip().strip("`"), b.strip()) for a, b in rows]


PARAM_ROWS = doc_table("Parameter names and shapes")
META_KEYS = {k for cell, _ in doc_table("Meta (JSON)") for k in re.findall(r"[a-z_]+", cell)}

CASES = {  # name: (data file, options); every optional parameter appears in at least one
    "lm-lstm": ("corpus.txt", dict(cell="lstm", layers=2, hidden=6, embed=5, batch_size=4, max_steps=3)),
    "lm-gru-lecture": ("corpus.txt", dict(cell="gru", reset_after=False, layers=1, hidden=6, embed=5, max_steps=2)),
    "clm-lstm-both": ("reviews.tsv", dict(task="lm", condition="both", cell="lstm", layers=2, hidden=6, embed=5,
                                          max_steps=2)),
    "classify-2": ("reviews.tsv", dict(cell="gru", layers=2, hidden=6, embed=5, max_steps=2, average=0.9)),
    "classify-3": ("three.tsv", dict(cell="rnn", layers=1, hidden=6, embed=5, max_steps=2,
                                     bidirectional=False, optimizer="momentum")),
    "tag-rnn-crf": ("ner.conll", dict(cell="gru", layers=2, hidden=6, embed=5, max_steps=2, char_features=True,
                                      crf=True, char_hidden=4, char_embed=3)),
    "seq2seq-lstm-general": ("dates.tsv", dict(cell="lstm", layers=2, hidden=6, embed=5, max_steps=2,
                                                attention="general")),
    "seq2seq-gru-additive": ("dates.tsv", dict(cell="gru", layers=1, hidden=6, embed=5, max_steps=2,
                                                attention="additive")),
    "seq2seq-rnn-dot": ("dates.tsv", dict(cell="rnn", layers=1, hidden=6, embed=5, max_steps=2, attention="dot",
                                          bidirectional=False)),
    "regress-gru-max": ("scores.jsonl", dict(cell="gru", layers=1, hidden=6, embed=5, max_steps=2, pool="max")),
    "tag-cnn": ("ner.conll", dict(cell="lstm", layers=1, hidden=6, embed=5, max_steps=2, char_features=True,
                                  char_encoder="cnn", char_hidden=4, char_embed=3, optimizer="rmsprop")),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    (d / "three.tsv").write_text("".join(f"{lab}\tsome words {i}\n" for i in range(30) for lab in "abc"))
    out = {}
    for name, (data, options) in CASES.items():
        path = str(d / data) if data == "three.tsv" else os.path.join(SAMPLES, data)
        ds = tokenize([path], valid_frac=0.2, level="char" if data == "dates.tsv" else None)
        cfg = make_config(None, {"eval_every": 1, **options})
        train(cfg, ds, str(d / f"{name}.npz"))
        out[name] = (cfg, ds, load_checkpoint(str(d / f"{name}.npz")))
    return out


def symbols(cfg, ds, task, layer):
    dirs = 1 if task in ("lm", "clm") or cfg.bidirectional is False else 2
    Vt = len(ds.meta.get("target_vocab", []))
    K = len(ds.meta.get("labels") or ds.meta.get("tags") or ds.meta.get("score_names") or [])
    E0 = cfg.embed + (2 * cfg.char_hidden if task == "tag" and cfg.char_features else 0)
    if task == "clm" and cfg.condition in ("input", "both"):
        E0 += cfg.embed  # the label's embedding (Dl = E) beside every token
    return {"V": len(ds.meta["vocab"]), "E": cfg.embed, "H": cfg.hidden, "dirs": dirs,
            "G": {"rnn": 1, "gru": 3, "lstm": 4}[cfg.cell], "K": K, "C": len(ds.meta.get("chars", [])),
            "Ce": cfg.char_embed, "Hc": cfg.char_hidden, "D": E0 if layer == 0 else dirs * cfg.hidden,
            "Dl": cfg.embed,
            "O": {"lm": len(ds.meta["vocab"]), "clm": len(ds.meta["vocab"]), "seq2seq": Vt}.get(
                task, 1 if K == 2 and task == "classify" else K),
            "Vt": Vt, "Hh": cfg.hidden if task in ("lm", "clm", "seq2seq") else dirs * cfg.hidden,
            "Dd": cfg.embed if layer == 0 else cfg.hidden}


def documented_shape(row_shape, values):
    dims = [d.strip() for d in row_shape.strip("()").split(",") if d.strip()]
    return tuple(int(eval(d.replace("·", "*"), {}, dict(values))) for d in dims)  # noqa: S307 - our own doc


def match_row(name):
    for pattern, shape in PARAM_ROWS:
        m = re.fullmatch(re.escape(pattern).replace(r"\{k\}", r"(\d+)"), name)
        if m:
            return pattern, shape, int(m.group(1)) if m.groups() else 0
    return None


def test_every_parameter_is_documented_with_its_shape(checkpoints):
    used = set()
    for name, (cfg, ds, (meta, groups)) in checkpoints.items():
        for pname, arr in groups["param"].items():
            row = match_row(pname)
            assert row is not None, f"{name}: {pname} is not in docs/checkpoint.md"
            pattern, shape, layer = row
            used.add(pattern)
            assert arr.shape == documented_shape(shape, symbols(cfg, ds, meta["task"], layer)), (name, pname)
    assert used == {p for p, _ in PARAM_ROWS}, f"documented but never seen: {({p for p, _ in PARAM_ROWS} - used)}"


def test_meta_keys_are_the_documented_ones(checkpoints):
    for name, (_, _, (meta, _)) in checkpoints.items():
        assert set(meta) == META_KEYS, (name, set(meta) ^ META_KEYS)


def test_array_groups_and_optimizer_slots_are_documented(checkpoints):
    for name, (cfg, _, (_, groups)) in checkpoints.items():
        params = set(groups["param"])
        assert set(groups["best"]) == params
        slots = {k.split(".", 1)[0] for k in groups["opt"]}
        expected = {"adam": {"m", "v"}, "momentum": {"m"}, "rmsprop": {"v"}}[cfg.optimizer]
        assert slots == expected | ({"avg"} if cfg.average else set()), name
        for slot in slots:
            assert {k.split(".", 1)[1] for k in groups["opt"] if k.startswith(slot + ".")} == params
            assert f"`opt.{slot}.<name>`" in DOC, slot
        for k, arr in groups["carry"].items():  # carry.<layer>.<state>: (B, H)
            layer, state = map(int, k.split("."))
            assert arr.shape == (cfg.batch_size, cfg.hidden) and layer < cfg.layers
            assert state < (2 if cfg.cell == "lstm" else 1)
    meta, groups = checkpoints["lm-lstm"][2]
    assert len(groups["carry"]) == 4  # two layers, (a, c) each: the run stopped mid-epoch


def test_best_holds_the_average_under_average(checkpoints):
    _, _, (meta, groups) = checkpoints["classify-2"]
    # the run's last evaluation was its best or not; either way best.* is an average, never the live weights
    for name, live in groups["param"].items():
        assert not np.array_equal(groups["best"][name], live) or np.array_equal(groups["opt"][f"avg.{name}"], live)


def test_readme_jq_keys_exist_in_the_train_summary(tmp_path):
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    keys = re.findall(r"rnncli train [^\n|]*--json[^\n|]*\| jq \.(\w+)", readme)
    assert keys
    assert cli("tokenize", os.path.join(SAMPLES, "corpus.txt"), cwd=tmp_path).returncode == 0
    r = cli("train", "--json", "--max-steps", "2", "--hidden", "8", "--layers", "1", cwd=tmp_path)
    summary = json.loads(r.stdout)
    assert all(k in summary for k in keys), (keys, sorted(summary))


def _python_block(doc):
    with open(os.path.join(ROOT, "docs", doc), encoding="utf-8") as f:
        return re.search(r"```python\n(.*?)```", f.read(), re.S).group(1)


def _run_example(tmp_path, monkeypatch, data, model, exported, doc):
    """A small model of sample_data/<data>, exported, and the doc's Python example run beside it;
    -> the example's variables."""
    assert cli("tokenize", f"{ROOT}/sample_data/{data}", "-o", "d.npz", cwd=tmp_path).returncode == 0
    assert cli("train", "-d", "d.npz", "-o", model, "--max-steps", "4", "--hidden", "8", "--embed", "4",
               cwd=tmp_path).returncode == 0
    assert cli("export", "-m", model, "-o", exported, cwd=tmp_path).returncode == 0
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(_python_block(doc), scope)  # noqa: S102 - our own documentation's example
    return scope


def test_the_onnx_serving_example_in_docs_scaling_runs(tmp_path, monkeypatch):
    """docs/scaling.md's onnxruntime lines, on an exported classifier: the probabilities it prints
    are the model's own."""
    from rnncli.models import load_model
    from rnncli.text.encode import encode_words

    scope = _run_example(tmp_path, monkeypatch, "reviews.tsv", "sentiment.npz", "sentiment.onnx", "scaling.md")
    model, meta, _ = load_model(str(tmp_path / "sentiment.npz"))
    split = encode_words(meta["data"], [["a", "warm", "and", "funny", "film"]])
    mask = np.ones((5, 1), np.float32)
    assert np.allclose(scope["probs"], model.predict_proba(split.ids[:, None], mask), atol=1e-5)


def test_the_pytorch_loading_example_in_docs_pytorch_runs(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from rnncli.models import load_model

    scope = _run_example(tmp_path, monkeypatch, "corpus.txt", "model.npz", "model.safetensors", "pytorch.md")
    model, _, _ = load_model(str(tmp_path / "model.npz"))
    assert np.abs(scope["logits"].detach().numpy() - model.forward(scope["ids"].numpy())[0]).max() < 1e-5
