"""Regression tests for the bugs a new user met in the first release (issue 14), each named
after what the user expects. Most go through the command line, as the user did."""

import json
import math
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
from cli_runner import cli

SAMPLES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "sample_data"))
CORPUS = f"{SAMPLES}/corpus.txt"
TINY = ["--hidden", "8", "--layers", "1", "--embed", "4", "--eval-every", "5"]


def ok(r):
    assert r.returncode == 0, r.stderr
    return r


def files(folder):
    return sorted(p.name for p in folder.iterdir())


# 1 -------------------------------------------------------------------------------------------


def test_a_tsv_line_with_an_empty_text_is_refused_with_its_line(tmp_path):
    (tmp_path / "r.tsv").write_text("pos\tgood film\nneg\t\npos\tfine\n")
    r = cli("tokenize", "r.tsv", cwd=tmp_path)
    assert r.returncode == 1 and "r.tsv:2: empty text" in r.stderr, r.stderr
    assert files(tmp_path) == ["r.tsv"]


def test_mean_pooling_never_divides_by_a_zero_length():
    from rnncli.tasks.classify import Classifier

    model = Classifier(9, 2, np.random.default_rng(0), embed=3, hidden=4, pool="mean", dtype=np.float64)
    ids, mask = np.full((3, 2), 5), np.ones((3, 2))
    mask[:, 1], ids[:, 1] = 0, 0  # the second sequence has no real step
    loss, grads = model.loss_and_grads(ids, mask, np.array([1, 0]))
    assert math.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grads.values())


# 2 -------------------------------------------------------------------------------------------


def test_a_label_seen_only_in_validation_joins_the_label_set_with_a_warning(tmp_path):
    (tmp_path / "t.tsv").write_text("pos\tgood\nneg\tbad\n")
    (tmp_path / "v.tsv").write_text("neutral\tso so\npos\tnice\n")
    r = ok(cli("tokenize", "t.tsv", "--valid", "v.tsv", "--json", cwd=tmp_path))
    assert set(json.loads(r.stdout)["labels"]) == {"neg", "neutral", "pos"}
    assert "label 'neutral' has no training example" in r.stderr
    # with --vocab the set is closed: an unknown label names its file and line
    (tmp_path / "test.tsv").write_text("pos\tok\nangry\tgrr\n")
    r = cli("tokenize", "test.tsv", "--vocab", "tokens.npz", "-o", "test.npz", cwd=tmp_path)
    assert r.returncode == 1 and "test.tsv:2: label 'angry' is not one" in r.stderr, r.stderr


def test_a_tag_seen_only_in_validation_joins_the_tag_set(tmp_path):
    (tmp_path / "t.conll").write_text("Anna\tB-PER\nsings\tO\n")
    (tmp_path / "v.conll").write_text("in\tO\nRome\tB-LOC\n")
    r = ok(cli("tokenize", "t.conll", "--valid", "v.conll", "--json", cwd=tmp_path))
    assert set(json.loads(r.stdout)["tags"]) == {"B-LOC", "B-PER", "O"}
    assert "tag 'B-LOC' has no training example" in r.stderr


# 3 -------------------------------------------------------------------------------------------


def test_sample_primes_are_read_with_the_models_lower_casing(tmp_path):
    ok(cli("tokenize", CORPUS, "--lower", cwd=tmp_path))
    ok(cli("train", "--max-steps", "10", *TINY, cwd=tmp_path))
    outs = [ok(cli("sample", "--prime", p, "--seed", "3", "--max-len", "40", cwd=tmp_path)).stdout
            for p in ("MARA WREN", "mara wren")]
    assert outs[0][len("MARA WREN"):] == outs[1][len("mara wren"):]
    from rnncli.models import load_model
    from rnncli.sample import encode_prime
    from rnncli.text.vocab import UNK, Vocab

    _, meta, _ = load_model(str(tmp_path / "model.npz"))
    assert UNK not in encode_prime("The", Vocab(meta["data"]["vocab"]), "char", lower=True).tolist()


# 4 -------------------------------------------------------------------------------------------


def test_the_metrics_log_belongs_to_one_run_and_ends_at_the_checkpoint(tmp_path):
    ok(cli("tokenize", CORPUS, cwd=tmp_path))
    ok(cli("train", "--max-steps", "20", *TINY, cwd=tmp_path))
    ok(cli("train", "--max-steps", "10", *TINY, "--force", cwd=tmp_path))
    log = tmp_path / "model.metrics.jsonl"
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert steps == [5, 10], steps  # the --force run's own, nothing of the first run
    # a kill after a log line but before its checkpoint leaves a line the checkpoint does not know
    with open(log, "a") as f:
        f.write(json.dumps({"step": 15, "valid": None}) + "\n" + '{"step": 2')  # and a torn line
    ok(cli("train", "--resume", "model.npz", "--max-steps", "20", cwd=tmp_path))
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert steps == [5, 10, 15, 20], steps


# 5 -------------------------------------------------------------------------------------------


def test_a_corpus_without_blank_lines_still_gets_a_validation_part(tmp_path):
    lines = [f"line {i} of a text with no paragraphs at all" for i in range(200)]
    (tmp_path / "flat.txt").write_text("\n".join(lines) + "\n")
    r = ok(cli("tokenize", "flat.txt", "--json", cwd=tmp_path))
    report = json.loads(r.stdout)
    total = report["train"]["tokens"] + report["valid"]["tokens"]
    assert 0.03 < report["valid"]["tokens"] / total < 0.07
    assert "flat.txt:" in report["validation"]  # where the held-out part starts
    from rnncli.text.encode import tokenize

    ds = tokenize([str(tmp_path / "flat.txt")])
    vocab = ds.vocab
    text = "".join(vocab.decode(ds.train.ids.tolist())) + "".join(vocab.decode(ds.valid.ids.tolist()))
    assert text == (tmp_path / "flat.txt").read_text()  # cut at a line boundary, nothing lost
    assert "".join(vocab.decode(ds.valid.ids.tolist())).startswith("line ")


# 6 -------------------------------------------------------------------------------------------


def test_a_test_set_encoded_with_vocab_is_scored_whole(tmp_path):
    ok(cli("tokenize", f"{SAMPLES}/reviews.tsv", "-o", "train.npz", cwd=tmp_path))
    ok(cli("train", "-d", "train.npz", "--max-steps", "5", *TINY, cwd=tmp_path))
    (tmp_path / "test.tsv").write_text("".join(f"positive\tfilm number {i}\n" for i in range(40)))
    r = ok(cli("tokenize", "test.tsv", "--vocab", "model.npz", "-o", "test.npz", "--json", cwd=tmp_path))
    assert "valid" not in json.loads(r.stdout)
    scores = json.loads(ok(cli("eval", "test.npz", "--json", cwd=tmp_path)).stdout)
    assert scores["examples"] == 40 and sum(c["support"] for c in scores["classes"].values()) == 40
    assert scores["scored"].startswith("all of it")


# 7 -------------------------------------------------------------------------------------------


def test_task_lm_trains_a_word_language_model_on_tsv_and_conll(tmp_path):
    """--condition none: the labels are ignored (without it, labelled texts train a conditional LM)."""
    ok(cli("tokenize", f"{SAMPLES}/reviews.tsv", "-o", "r.npz", cwd=tmp_path))
    summary = json.loads(ok(cli("train", "-d", "r.npz", "--task", "lm", "--condition", "none", "--max-steps", "10",
                                *TINY, "--json", cwd=tmp_path)).stdout)
    assert summary["task"] == "lm" and summary["valid"]["perplexity"] > 1
    words = ok(cli("sample", "--seed", "1", "--max-len", "12", cwd=tmp_path)).stdout.split()
    assert 1 <= len(words) <= 12
    ok(cli("tokenize", f"{SAMPLES}/ner.conll", "-o", "n.npz", cwd=tmp_path))
    ok(cli("train", "-d", "n.npz", "-o", "n_lm.npz", "--task", "lm", "--max-steps", "5", *TINY, cwd=tmp_path))


@pytest.mark.parametrize("data,task,message", [
    ("corpus.txt", "classify", "--task classify needs one label per example"),
    ("corpus.txt", "tag", "--task tag needs a tag per token"),
    ("reviews.tsv", "tag", "--task tag needs a tag per token"),
    ("ner.conll", "classify", "--task classify needs one label per example"),
])
def test_task_refuses_what_the_data_cannot_train(tmp_path, data, task, message):
    ok(cli("tokenize", f"{SAMPLES}/{data}", cwd=tmp_path))
    r = cli("train", "--task", task, "--max-steps", "1", cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr


# 8 -------------------------------------------------------------------------------------------


def test_max_steps_alone_is_not_capped_by_the_default_epochs(tmp_path):
    ok(cli("tokenize", f"{SAMPLES}/reviews.tsv", "--valid-frac", "0.2", cwd=tmp_path))  # 5 batches of 64 an epoch
    args = ["--batch-size", "64", *TINY, "--eval-every", "100", "--json"]
    summary = json.loads(ok(cli("train", "--max-steps", "70", *args, cwd=tmp_path)).stdout)
    assert summary["steps"] == 70 and summary["epochs"] == 14
    summary = json.loads(ok(cli("train", "--max-steps", "70", "--epochs", "2", "--force", *args, cwd=tmp_path)).stdout)
    assert summary["steps"] == 10  # an explicit --epochs still counts


# 10 ------------------------------------------------------------------------------------------


def test_a_non_finite_gradient_norm_stops_training(tmp_path, monkeypatch):
    from rnncli.config import make_config
    from rnncli.errors import RnncliError
    from rnncli.tasks.lm import LanguageModel
    from rnncli.text.encode import tokenize
    from rnncli.train import train

    real = LanguageModel.loss_and_grads

    def poisoned(self, *a, **kw):
        loss, grads, finals = real(self, *a, **kw)
        grads["head.b"][0] = np.inf  # the loss stays finite
        return loss, grads, finals

    monkeypatch.setattr(LanguageModel, "loss_and_grads", poisoned)
    cfg = make_config(None, dict(hidden=8, layers=1, embed=4, max_steps=3))
    with pytest.raises(RnncliError, match="gradient norm became inf at step 1"):
        train(cfg, tokenize([CORPUS]), str(tmp_path / "m.npz"))


@pytest.mark.parametrize("field,value,message", [
    ("train_labels", np.array([0, 7] + [0] * 318, np.int32), "train labels do not fit the label set"),
    ("train_chars", None, None),
    ("train_offsets", np.array([0, 5, 3], np.int64), "train offsets do not fit the ids"),
])
def test_load_dataset_checks_every_id_range(tmp_path, field, value, message):
    from rnncli.errors import RnncliError
    from rnncli.text.encode import tokenize
    from rnncli.text.store import load_dataset, save_dataset

    path = str(tmp_path / "d.npz")
    save_dataset(path, tokenize([f"{SAMPLES}/reviews.tsv"], valid_frac=0.2))
    if value is None:  # a character id past the character set, in a tagging set
        save_dataset(path, tokenize([f"{SAMPLES}/ner.conll"]))
        field, message = "train_chars", "train characters do not fit the character set"
        with np.load(path) as z:
            value = z[field].copy()
        value[3] = 10_000
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays[field] = value
    np.savez(path, **arrays)
    with pytest.raises(RnncliError, match=message):
        load_dataset(path)


def test_resume_of_a_checkpoint_from_another_version_is_one_line(tmp_path):
    ok(cli("tokenize", CORPUS, cwd=tmp_path))
    ok(cli("train", "--max-steps", "2", *TINY, cwd=tmp_path))
    with np.load(tmp_path / "model.npz") as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    meta["config"]["warp_drive"] = 9
    np.savez(tmp_path / "future.npz", meta=np.array(json.dumps(meta)), **arrays)
    for args in (["train", "--resume", "future.npz"], ["sample", "-m", "future.npz"]):
        r = cli(*args, cwd=tmp_path)
        assert r.returncode == 1 and "future.npz: made by another rnncli version" in r.stderr, r.stderr
        assert r.stderr.count("\n") == 1


def test_vocab_out_is_written_atomically(tmp_path, monkeypatch):
    from rnncli import npzfile
    from rnncli.commands.tokenize import tokenize_files
    from rnncli.errors import RnncliError

    (tmp_path / "vocab.json").write_text("previous")
    real = npzfile.os.replace

    def full_disk(src, dst):
        if dst.endswith(".json"):
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(npzfile.os, "replace", full_disk)
    with pytest.raises(RnncliError, match="vocab.json: cannot write: No space left on device"):
        tokenize_files([CORPUS], str(tmp_path / "t.npz"), vocab_out=str(tmp_path / "vocab.json"), force=True)
    assert (tmp_path / "vocab.json").read_text() == "previous"
    assert not [n for n in files(tmp_path) if n.endswith(".tmp")]


# 12 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_lm_evaluation_is_one_continuous_pass_over_every_token(cell):
    from rnncli.evaluate import evaluate_lm
    from rnncli.nn.functional import log_softmax
    from rnncli.tasks.lm import LanguageModel
    from rnncli.text.vocab import EOS

    rng = np.random.default_rng(0)
    model = LanguageModel(11, rng, embed=5, hidden=6, cell=cell, layers=2, dtype=np.float64)
    ids = rng.integers(3, 11, 700).astype(np.int32)
    # the oracle: one token at a time through step(), the state carried from <eos> to the end
    states, nll, prev = model.initial_state(1), 0.0, EOS
    for token in ids:
        logits, states = model.step(np.array([prev]), states)
        nll -= log_softmax(logits[0])[token]
        prev = token
    for chunk in (1, 64, 1000):
        result = evaluate_lm(model, ids, chunk=chunk)
        assert result["tokens"] == 700
        assert abs(result["loss"] - nll / 700) < 1e-12


# 13 ------------------------------------------------------------------------------------------


# A normal user: uid/gid nobody. The interpreter may live where only root can look (/root), so
# the process keeps one capability, reading and searching any folder; writing stays a normal
# user's (no CAP_DAC_OVERRIDE), which is what this test is about.
AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]


@pytest.mark.parametrize("who", ["root", "user"])
def test_an_output_that_is_not_a_regular_file_is_written_in_place(tmp_path, who):
    prefix = []
    if who == "root" and os.geteuid() != 0:
        pytest.skip("not root here; the 'user' case runs as this user")
    if who == "user" and os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("no setpriv to run as a normal user")
        prefix = AS_NOBODY
    # a folder anyone may enter and write (pytest's own are private to the user running it)
    folder = Path(tempfile.mkdtemp(prefix="rnncli-out-", dir="/tmp"))
    os.chmod(folder, 0o777)
    root_only = Path(tempfile.mkdtemp(prefix="rnncli-root-", dir="/tmp"))  # 0o700
    fifo = folder / "pipe"
    os.mkfifo(fifo)
    os.chmod(fifo, 0o666)
    got = {}

    def read_fifo():
        with open(fifo, "rb") as f:
            got["data"] = f.read()

    reader = threading.Thread(target=read_fifo, daemon=True)
    reader.start()
    env = {**os.environ, "HOME": str(folder)}
    r = subprocess.run([*prefix, sys.executable, "-m", "rnncli", "tokenize", CORPUS, "-o", str(fifo), "--force"],
                       cwd=folder, capture_output=True, text=True, timeout=120, env=env)
    if reader.is_alive():  # the run never opened the FIFO: let the reader go
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    reader.join(timeout=60)
    assert r.returncode == 0, r.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and got.get("data", b"").startswith(b"PK")
    # a symlink to a regular file: the link survives, its target is updated
    target = folder / "real.npz"
    target.write_bytes(b"old")
    os.chmod(target, 0o666)
    link = folder / "link.npz"
    os.symlink(target, link)
    r = subprocess.run([*prefix, sys.executable, "-m", "rnncli", "tokenize", CORPUS, "-o", str(link), "--force"],
                       cwd=folder, capture_output=True, text=True, timeout=120, env=env)
    if prefix:  # and it really ran as a normal user: it could not write where root alone may
        r2 = subprocess.run([*prefix, sys.executable, "-m", "rnncli", "tokenize", CORPUS, "-o",
                             str(root_only / "t.npz")], cwd=folder, capture_output=True, text=True, timeout=120)
        assert r2.returncode == 1 and "is not writable" in r2.stderr, r2.stderr
    assert r.returncode == 0, r.stderr
    assert os.path.islink(link) and target.read_bytes().startswith(b"PK")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666  # the file keeps its permissions
    shutil.rmtree(folder)
    shutil.rmtree(root_only)


def test_dev_null_discards_and_dev_full_fails_cleanly(tmp_path):
    r = ok(cli("tokenize", CORPUS, "-o", "/dev/null", "--force", cwd=tmp_path))
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    r = cli("tokenize", CORPUS, "-o", "/dev/full", "--force", cwd=tmp_path)
    assert r.returncode == 1 and "/dev/full: cannot write: No space left on device" in r.stderr, r.stderr
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


# 14 ------------------------------------------------------------------------------------------


def _float_options():
    """Every float option of every command, read from the command functions' signatures (so
    a new float option is covered without touching this test)."""
    import typing

    from rnncli.cli import app

    found = []
    for command in app.registered_commands:
        name = command.name or command.callback.__name__
        for param, hint in typing.get_type_hints(command.callback, include_extras=True).items():
            base, info = typing.get_args(hint)[:2] if typing.get_origin(hint) is typing.Annotated else (hint, None)
            if float not in (base, *typing.get_args(base)):
                continue
            decls = [d for d in (getattr(info, "param_decls", None) or ()) if d.startswith("--")]
            found.append((name, decls[0] if decls else "--" + param.replace("_", "-")))
    return found


FIRST_ARGS = {"tokenize": ["x.txt"], "eval": ["x.txt"]}


@pytest.mark.parametrize("command,option", _float_options())
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_float_options_are_usage_errors(tmp_path, command, option, value):
    r = cli(command, *FIRST_ARGS.get(command, []), option, value, cwd=tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert option in r.stderr and "finite" in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_the_float_options_include_the_known_ones():
    assert {("sample", "--temp"), ("sample", "--top-p"), ("train", "--lr"), ("tokenize", "--valid-frac")} <= set(
        _float_options())


def test_a_yaml_config_with_nan_is_refused(tmp_path):
    (tmp_path / "c.yaml").write_text("lr: .nan\n")
    r = cli("train", "--config", "c.yaml", cwd=tmp_path)
    assert r.returncode == 2 and "--lr must be a finite number" in r.stderr, r.stderr


# 16 ------------------------------------------------------------------------------------------


def test_top_level_help_keeps_its_examples_on_their_own_lines(tmp_path):
    out = ok(cli("--help", cwd=tmp_path)).stdout.splitlines()
    for example in ("rnncli tokenize corpus.txt", "rnncli train --cell lstm", "rnncli sample --temp 0.8"):
        assert any(line.strip() == example for line in out), out


# 17 ------------------------------------------------------------------------------------------


def test_yaml_floats_written_without_a_dot_are_numbers(tmp_path):
    from rnncli.config import make_config

    (tmp_path / "c.yaml").write_text("lr: 1e-3\nweight_decay: 5E-5\naverage: 9.99e-1\nhidden: 64\n")
    cfg = make_config(str(tmp_path / "c.yaml"))
    assert (cfg.lr, cfg.weight_decay, cfg.average, cfg.hidden) == (1e-3, 5e-5, 0.999, 64)
    (tmp_path / "c.yaml").write_text("hidden: 1e3\n")  # still not an int
    r = cli("train", "--config", "c.yaml", cwd=tmp_path)
    assert r.returncode == 2 and "key 'hidden' should be int" in r.stderr
