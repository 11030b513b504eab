"""train, resume, sample and inspect through the functions the CLI calls, plus a few real CLI runs."""

import dataclasses
import json
import os

import numpy as np
import pytest
from cli_runner import cli

from rnncli.checkpoint import load_checkpoint
from rnncli.config import TrainConfig, make_config
from rnncli.errors import RnncliError, UsageError
from rnncli.models import load_model
from rnncli.nn.gradcheck import check_gradients
from rnncli.sample import generate, next_token
from rnncli.tasks.lm import LanguageModel
from rnncli.text.encode import tokenize
from rnncli.text.vocab import EOS
from rnncli.train import train

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "sample_data")
CORPUS = os.path.join(SAMPLES, "corpus.txt")


@pytest.fixture(scope="module")
def corpus_ds():
    return tokenize([CORPUS])


def small_cfg(**kw):
    base = dict(cell="gru", layers=1, hidden=32, embed=16, seq_len=16, batch_size=8, eval_every=10,
                max_steps=30, dropout=0.1)
    base.update(kw)
    return make_config(None, base)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_language_model_gradients_with_dropout_and_padding(cell):
    rng = np.random.default_rng(0)
    model = LanguageModel(7, rng, embed=3, hidden=4, cell=cell, layers=2, dropout=0.2, dtype=np.float64)
    ids = rng.integers(0, 7, (5, 3))
    targets = rng.integers(0, 7, (5, 3))
    mask = np.ones((5, 3))
    mask[3:, 2] = 0
    states = [tuple(rng.standard_normal((3, 4)) for _ in s) for s in model.initial_state(3)]

    def loss():
        return model.loss_and_grads(ids, targets, states, mask, rng=np.random.default_rng(5))[0]

    _, grads, _ = model.loss_and_grads(ids, targets, states, mask, rng=np.random.default_rng(5))
    errors = check_gradients(loss, dict(model.params), grads)
    assert max(errors.values()) < 1e-6, errors


def test_training_lowers_the_validation_loss(tmp_path, corpus_ds):
    out = str(tmp_path / "m.npz")
    summary = train(small_cfg(max_steps=60, lr=5e-3), corpus_ds, out)
    meta, groups = load_checkpoint(out)
    hist = meta["history"]
    assert hist[-1]["valid"]["loss"] < hist[0]["valid"]["loss"] - 0.5
    assert summary["best_score"] == min(h["valid"]["loss"] for h in hist)
    assert set(groups["best"]) == set(groups["param"])
    lines = open(str(tmp_path / "m.metrics.jsonl")).read().splitlines()
    assert len(lines) == len(hist) and json.loads(lines[0])["step"] == 10


def test_resume_gives_bit_identical_weights(tmp_path, corpus_ds):
    full = str(tmp_path / "full.npz")
    train(small_cfg(max_steps=24, eval_every=7), corpus_ds, full)
    part = str(tmp_path / "part.npz")
    train(small_cfg(max_steps=10, eval_every=7), corpus_ds, part)
    meta, groups = load_checkpoint(part)
    cfg = dataclasses.replace(TrainConfig(**meta["config"]), max_steps=24)
    train(cfg, corpus_ds, part, resume=(meta, groups))
    a, b = load_checkpoint(full)[1], load_checkpoint(part)[1]
    for name in a["param"]:
        assert np.array_equal(a["param"][name], b["param"][name]), name
    for name in a["opt"]:
        assert np.array_equal(a["opt"][name], b["opt"][name]), name


def test_weight_average_is_what_is_evaluated_saved_and_resumed(tmp_path, corpus_ds):
    full = str(tmp_path / "full.npz")
    summary = train(small_cfg(max_steps=24, eval_every=6, average=0.9), corpus_ds, full)
    best = load_checkpoint(full)[1]["best"]
    # the best model is the average as it stood at the best evaluation, not the live weights then
    upto = str(tmp_path / "upto.npz")
    train(small_cfg(max_steps=summary["best_step"], eval_every=6, average=0.9), corpus_ds, upto)
    _, groups = load_checkpoint(upto)
    for name, live in groups["param"].items():
        np.testing.assert_array_equal(best[name], groups["opt"][f"avg.{name}"])
        assert not np.array_equal(best[name], live)
    # the average lives in the optimizer state, so resuming continues it bit for bit
    part = str(tmp_path / "part.npz")
    train(small_cfg(max_steps=12, eval_every=6, average=0.9), corpus_ds, part)
    meta, groups = load_checkpoint(part)
    train(dataclasses.replace(TrainConfig(**meta["config"]), max_steps=24), corpus_ds, part, resume=(meta, groups))
    a, b = load_checkpoint(full)[1], load_checkpoint(part)[1]
    for group in ("param", "opt", "best"):
        for name in a[group]:
            assert np.array_equal(a[group][name], b[group][name]), (group, name)


def test_patience_counts_steps_not_the_extra_evaluations_at_epoch_ends(tmp_path):
    ds = tokenize([os.path.join(SAMPLES, "reviews.tsv")], valid_frac=0.2)  # 320 lines: 5 batches an epoch
    cfg = make_config(None, dict(task="classify", hidden=8, embed=8, batch_size=64, epochs=100,
                                 lr=1e-12, eval_every=20, patience=2))  # too small a step to change any answer
    summary = train(cfg, ds, str(tmp_path / "m.npz"))
    # evaluations at every epoch end (steps 5, 10, 15, ...): the first stays the best, and the run
    # waits 2 x 20 steps after it, not 2 evaluations
    assert summary["best_step"] == 5 and summary["steps"] == 45, summary
    assert summary["stop"].startswith("early stop: no improvement in 40 steps")


def test_same_seed_same_model(tmp_path, corpus_ds):
    p1, p2 = str(tmp_path / "a.npz"), str(tmp_path / "b.npz")
    train(small_cfg(max_steps=5), corpus_ds, p1)
    train(small_cfg(max_steps=5), corpus_ds, p2)
    a, b = load_checkpoint(p1)[1]["param"], load_checkpoint(p2)[1]["param"]
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, corpus_ds, monkeypatch):
    out = str(tmp_path / "m.npz")
    train(small_cfg(max_steps=10), corpus_ds, out)
    before = load_checkpoint(out)[1]["param"]
    meta, groups = load_checkpoint(out)
    real = LanguageModel.loss_and_grads
    calls = []

    def poisoned(self, *a, **kw):
        loss, grads, finals = real(self, *a, **kw)
        calls.append(1)
        return (float("nan") if len(calls) == 4 else loss), grads, finals

    monkeypatch.setattr(LanguageModel, "loss_and_grads", poisoned)
    cfg = dataclasses.replace(TrainConfig(**meta["config"]), max_steps=20, eval_every=100)
    with pytest.raises(RnncliError, match=r"loss became nan at step 14"):
        train(cfg, corpus_ds, out, resume=(meta, groups))
    after = load_checkpoint(out)[1]["param"]
    for k in before:
        assert np.array_equal(after[k], before[k])


def test_sampling_is_deterministic_and_stops_at_eos(tmp_path, corpus_ds):
    out = str(tmp_path / "m.npz")
    train(small_cfg(max_steps=40, lr=5e-3), corpus_ds, out)
    model, meta, _ = load_model(out)
    vocab = corpus_ds.vocab
    a = "".join(generate(model, vocab, "char", "MARA:", 0.8, rng=np.random.default_rng(3), max_len=200))
    b = "".join(generate(model, vocab, "char", "MARA:", 0.8, rng=np.random.default_rng(3), max_len=200))
    assert a == b and len(a) > 0
    # greedy decoding, followed by hand through step(): generation ends exactly where <eos> wins
    model.params["head.b"][EOS] = 0.0
    for boost in (0.0, 2.0, 4.0, 1e3):
        model.params["head.b"][EOS] = boost
        states, ids, expected = model.initial_state(1), [EOS], []
        for _ in range(60):
            logits, states = model.step(np.array([ids[-1]]), states)
            ids.append(int(np.argmax(np.where(np.arange(len(vocab)) < 3, -np.inf, logits[0]))))
            if ids[-1] == EOS:
                break
            expected.append(vocab.tokens[ids[-1]])
        got = list(generate(model, vocab, "char", "", 0.0, max_len=60))
        assert got == expected
        if ids[-1] == EOS:
            assert len(got) < 60  # it stopped at <eos>, not at max_len
    assert got == []  # an overwhelming <eos> ends the sample before its first token


def test_top_k_top_p_and_temperature():
    logits = np.array([0, 0, 0, 0, 5.0, 4.0, 1.0, -3.0])
    rng = np.random.default_rng(0)
    assert next_token(logits, rng, 0.0) == 4
    picks = {next_token(logits, rng, 1.0, top_k=2) for _ in range(200)}
    assert picks <= {4, 5} and len(picks) == 2
    assert {next_token(logits, rng, 1.0, top_p=0.5) for _ in range(50)} == {4}
    # specials other than <eos> are never produced
    assert next_token(np.array([9.0, 9, 9, 0, 0]), rng, 0.0) in (3, 4)


def test_config_precedence_and_errors(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("hidden: 64\nlayers: 3\nmax_time: 10m\npatience: null\n")
    cfg = make_config(str(y), {"hidden": 32, "layers": None})
    assert (cfg.hidden, cfg.layers, cfg.cell, cfg.max_time) == (32, 3, "lstm", "10m")
    y.write_text("hiden: 64\n")
    with pytest.raises(UsageError, match="unknown key 'hiden'"):
        make_config(str(y))
    y.write_text("hidden: lots\n")
    with pytest.raises(UsageError, match="key 'hidden' should be int"):
        make_config(str(y))
    with pytest.raises(UsageError, match="dropout"):
        make_config(None, {"dropout": 1.0})


def test_cli_three_command_flow(tmp_path):
    r = cli("tokenize", os.path.abspath(CORPUS), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "tokens.npz").exists()
    r = cli("train", "--cell", "lstm", "--hidden", "32", "--layers", "1", "--max-steps", "20", "--eval-every",
            "10", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["steps"] == 20 and (tmp_path / "model.npz").exists()
    r = cli("sample", "--temp", "0.8", "--seed", "1", "--max-len", "50", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # at most --max-len characters, each one the corpus has, and a newline to end the sample
    text = r.stdout[:-1] if r.stdout.endswith("\n") else r.stdout
    assert 1 <= len(text) <= 50 and r.stdout.endswith("\n")
    assert set(text) <= set(open(CORPUS, encoding="utf-8").read())
    r2 = cli("sample", "--temp", "0.8", "--seed", "1", "--max-len", "50", cwd=tmp_path)
    assert r2.stdout == r.stdout
    r = cli("sample", "--prime", "-", "--max-len", "20", "--seed", "0", cwd=tmp_path, stdin="MARA\nWREN\n")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2
    assert r.stdout.splitlines()[1].startswith("WREN")
    r = cli("inspect", "--json", cwd=tmp_path)
    assert json.loads(r.stdout)["cell"] == "lstm"
    # an existing model is not overwritten without --force
    r = cli("train", "--max-steps", "1", cwd=tmp_path)
    assert r.returncode == 2 and "exists" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args,code,message", [
    (["sample", "--temp", "-1"], 2, "--temp must be >= 0"),
    (["sample", "--model", "nope.npz"], 1, "nope.npz: no such model"),
    (["train", "--data", "missing.npz"], 1, "missing.npz: no such data set"),
    (["train", "--dropout", "1.5", "--data", "x"], 2, "--dropout must be in [0, 1)"),
    (["train", "--hidden", "0"], 2, "--hidden must be at least 1"),
    (["tokenize", "nothere.txt"], 1, "nothere.txt: no such file"),
    (["sample", "--top-p", "0"], 2, "--top-p must be in (0, 1]"),
    (["train", "--no-such-option"], 2, "No such option"),
])
def test_cli_errors_are_one_line(tmp_path, args, code, message):
    r = cli(*args, cwd=tmp_path)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert message in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0


def test_checkpoint_with_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.npz"
    np.savez(path, meta=np.array([Evil()], dtype=object))
    r = cli("sample", "--model", str(path), cwd=tmp_path)
    assert r.returncode == 1 and "refusing" in r.stderr
    assert not marker.exists()


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_learning_rate_schedule_over_the_step_limit_with_warmup_and_an_exact_resume(tmp_path, corpus_ds, schedule):
    seen = []
    cfg = small_cfg(max_steps=20, eval_every=5, lr=0.01, lr_schedule=schedule, warmup=4)
    full = str(tmp_path / "full.npz")
    train(cfg, corpus_ds, full, callback=lambda p: seen.append(p.lr) if p.event == "step" else None)
    # step s (from 0) of 20: the share done is s / 20; warm-up scales the first four by (s + 1) / 4
    shape = {"linear": lambda d: 1 - d, "cosine": lambda d: (1 + np.cos(np.pi * d)) / 2}[schedule]
    expected = [0.01 * shape(s / 20) * min(1.0, (s + 1) / 4) for s in range(20)]
    np.testing.assert_allclose(seen, expected, rtol=1e-12, atol=0)
    history = [json.loads(line) for line in open(full.replace(".npz", ".metrics.jsonl"))]
    assert [round(r["lr"], 12) for r in history] == [round(expected[s - 1], 12) for s in (5, 10, 15, 20)]
    # the schedule's clock is the step count: a run broken off after step 12 resumes from its checkpoint of
    # step 10 and continues the schedule bit for bit
    part = str(tmp_path / "part.npz")

    def break_off(p):
        if p.step == 12:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, corpus_ds, part, callback=break_off)
    meta, groups = load_checkpoint(part)
    assert meta["step"] == 10
    train(TrainConfig(**meta["config"]), corpus_ds, part, resume=(meta, groups))
    for name, value in load_checkpoint(full)[1]["param"].items():
        assert np.array_equal(value, load_checkpoint(part)[1]["param"][name]), name


def test_learning_rate_schedule_over_a_time_budget_ends_near_zero(tmp_path, corpus_ds):
    seen = []
    cfg = small_cfg(max_steps=None, epochs=10**6, max_time="2s", eval_every=10**6, lr=0.01, lr_schedule="linear")
    train(cfg, corpus_ds, str(tmp_path / "m.npz"), callback=lambda p: seen.append(p.lr) if p.event == "step" else None)
    assert seen[0] == 0.01 and len(seen) > 10
    assert all(b <= a for a, b in zip(seen, seen[1:], strict=False))  # the clock only moves forward
    assert seen[-1] < 0.002  # the last step ran within the last fifth of the budget


TINY = ["--hidden", "8", "--layers", "1", "--embed", "4", "--eval-every", "5"]


def ok(r):
    assert r.returncode == 0, r.stderr
    return r


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


def test_max_steps_alone_is_not_capped_by_the_default_epochs(tmp_path):
    ok(cli("tokenize", f"{SAMPLES}/reviews.tsv", "--valid-frac", "0.2", cwd=tmp_path))  # 5 batches of 64 an epoch
    args = ["--batch-size", "64", *TINY, "--eval-every", "100", "--json"]
    summary = json.loads(ok(cli("train", "--max-steps", "70", *args, cwd=tmp_path)).stdout)
    assert summary["steps"] == 70 and summary["epochs"] == 14
    summary = json.loads(ok(cli("train", "--max-steps", "70", "--epochs", "2", "--force", *args, cwd=tmp_path)).stdout)
    assert summary["steps"] == 10  # an explicit --epochs still counts


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
