"""Checkpoints are untrusted files: a crafted one is refused in one line before anything is built or
allocated, by every command that opens one."""

import json
import time

import numpy as np
import pytest
from cli_runner import cli


def crafted(d, name, change):
    with np.load(d / "cls.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    change(meta, arrays)
    path = d / name
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)
    return path


def _config(key, value):
    return lambda meta, arrays: meta["config"].update({key: value})


def _history(value):
    return lambda meta, arrays: meta.update(history=value)


@pytest.mark.parametrize("change,message", [
    (_config("layers", 1_000_000), "config.layers says 1,000,000 but the stored rnn stack's layer count has 2"),
    (_config("hidden", 200_000), "config.hidden says 200,000"),
    (_config("embed", 100_000_000), "embedding.E is stored as (57, 4) but the configuration (embed 100000000"),
    (_config("layers", "2"), "key 'layers' should be int"),
    (_config("bidirectional", False), "config.bidirectional is False"),
    (_config("cell", "gru"), "config.cell says"),
    (lambda m, a: m["data"]["vocab"].append("extra"), "embedding.E is stored as (57, 4)"),
    (lambda m, a: m["data"].update(labels=["a", "b", "c"]), "head.W is stored as (1, 16)"),
    (lambda m, a: m["data"].update(labels=["a", 7]), "data.labels[1] should be a string"),
    (lambda m, a: m["data"].update(vocab="abc"), "data.vocab should be a list of strings"),
    (lambda m, a: m["data"]["vocab"].__setitem__(5, "x" * 20_000), "data.vocab[5] is a string of 20,000"),
    (lambda m, a: m.update(task="seq2seq"), "data.target_vocab should be a list of strings"),
    (lambda m, a: m.update(task="lm"), "task is lm but its configuration and data make a classify model"),
    (_history("lots"), "history should be a list"),
    (_history([{"step": "one"}]), "history[0].step should be a whole number"),
    (_history([{"step": 1, "train_loss": "<script>"}]), "history[0].train_loss should be a finite number"),
    (_history([{"step": 1, "valid": {"accuracy": [1]}}]), "history[0].valid.accuracy should be a finite number"),
    (lambda m, a: m.update(step=-3), "step should be a whole number >= 0"),
])
def test_a_crafted_checkpoint_is_refused_before_anything_is_built(models, change, message):
    path = crafted(models, "crafted.npz", change)
    start = time.perf_counter()
    r = cli("predict", "-m", str(path), cwd=models, stdin="good film\n", timeout=120)
    assert r.returncode == 1 and message in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert time.perf_counter() - start < 60  # before the fix: minutes and gigabytes for layers 1000000


@pytest.mark.parametrize("command", [["inspect", "{}"], ["show", "-m", "{}", "--curves", "-o", "c.html"],
                                     ["train", "--resume", "{}"], ["export", "-m", "{}", "-o", "c.onnx"]])
def test_every_command_that_loads_a_checkpoint_checks_it(models, command):
    path = crafted(models, "crafted2.npz", _config("layers", 1_000_000))
    r = cli(*[str(path) if c == "{}" else c for c in command], cwd=models, timeout=120)
    assert r.returncode == 1 and "config.layers says 1,000,000" in r.stderr, r.stderr
    assert not (models / "c.html").exists() and not (models / "c.onnx").exists()


def test_a_huge_array_header_is_refused_before_numpy_allocates(models, tmp_path):
    path = crafted(models, "big.npz", lambda m, a: None)
    raw = bytearray(path.read_bytes())
    header = b"'shape': (57, 4)"  # the embedding's header: claim 10^12 rows
    at = raw.find(header)
    assert at > 0
    raw[at: at + len(header)] = b"'shape': (10**12,4)"[: len(header)].ljust(len(header))
    fake = tmp_path / "huge.npz"
    fake.write_bytes(bytes(raw))
    r = cli("inspect", str(fake), cwd=tmp_path)
    assert r.returncode == 1 and "huge.npz: not a valid rnncli model" in r.stderr, r.stderr


def test_deeply_nested_checkpoint_meta_is_refused(models, tmp_path):
    with np.load(models / "cls.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    path = tmp_path / "deep.npz"
    np.savez(path, meta=np.array("[" * 100_000 + "]" * 100_000), **{k: v for k, v in arrays.items() if k != "meta"})
    r = cli("inspect", str(path), cwd=tmp_path)
    assert r.returncode == 1 and "deep.npz: damaged metadata (JSON nested too deeply)" in r.stderr, r.stderr


def test_import_refuses_nan_weights(models):
    pytest.importorskip("safetensors")
    from safetensors.numpy import load_file, save_file

    d = models
    assert cli("export", "-m", "cls.npz", "-o", "cls.safetensors", cwd=d).returncode == 0
    tensors = load_file(str(d / "cls.safetensors"))
    name = sorted(tensors)[0]
    tensors[name] = np.full_like(tensors[name], np.nan)
    save_file(tensors, str(d / "nan.safetensors"))
    r = cli("import", "nan.safetensors", "--like", "cls.npz", "-o", "nan.npz", cwd=d)
    assert r.returncode == 1 and f"nan.safetensors: tensor {name!r} holds NaN or infinite values" in r.stderr
    assert not (d / "nan.npz").exists()
