"""The conditional language model from the command line: JSON lines of labelled tunes in, a model
that writes the meter its label asks for, samples separated and as JSON, eval per label."""

import json
import random

import pytest
from cli_runner import cli

METER = {"waltz": "3/4", "jig": "6/8"}


def tune(rng, label, k):
    notes = "ABCDEFG"
    bar = 3 if label == "waltz" else 6
    body = "|".join("".join(rng.choice(notes) for _ in range(bar)) for _ in range(4))
    return f"T:Tune {k}\nM:{METER[label]}\nK:G\n{body}|"


@pytest.fixture(scope="module")
def tunes(tmp_path_factory):
    d = tmp_path_factory.mktemp("tunes")
    rng = random.Random(0)
    for name, n in (("train.jsonl", 300), ("valid.jsonl", 40)):
        labels = [rng.choice(["waltz", "jig"]) for _ in range(n)]
        (d / name).write_text("".join(json.dumps({"label": lab, "text": tune(rng, lab, k)}) + "\n"
                                      for k, lab in enumerate(labels)))
    r = cli("tokenize", "train.jsonl", "--valid", "valid.jsonl", "-o", "tunes.npz", "--json", cwd=d)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["level"] == "char" and report["input"] == "jsonl"  # texts with newlines: characters
    r = cli("train", "-d", "tunes.npz", "-o", "m.npz", "--task", "lm", "--condition", "both", "--hidden", "48",
            "--embed", "16", "--layers", "1", "--batch-size", "16", "--max-steps", "250", "--lr", "0.01",
            "--eval-every", "250", "--json", cwd=d)
    assert r.returncode == 0, r.stderr
    return d, json.loads(r.stdout)


def test_the_label_decides_the_meter(tunes):
    d, summary = tunes
    assert summary["task"] == "clm"
    for label, meter in METER.items():
        r = cli("sample", "-m", "m.npz", "--label", label, "-n", "10", "--temp", "0.5", "--seed", "1", "--json",
                cwd=d)
        assert r.returncode == 0, r.stderr
        records = [json.loads(line) for line in r.stdout.splitlines()]
        assert len(records) == 10 and all(rec["label"] == label and rec["prime"] == "" for rec in records)
        assert sum(f"M:{meter}\n" in rec["text"] for rec in records) >= 9, [rec["text"][:20] for rec in records]


def test_plain_samples_are_separated_by_a_blank_line_and_one_per_label(tunes):
    d, _ = tunes
    r = cli("sample", "-m", "m.npz", "--label", "jig", "--label", "waltz", "--temp", "0.3", "--seed", "2", cwd=d)
    assert r.returncode == 0, r.stderr
    samples = r.stdout.rstrip("\n").split("\n\n")
    assert len(samples) == 2 and "M:6/8" in samples[0] and "M:3/4" in samples[1]
    r = cli("sample", "-m", "m.npz", "--label", "waltz", "--prime", "T:Tune 7\nM:", "--temp", "0", "--json", cwd=d)
    record = json.loads(r.stdout)
    assert record["text"].startswith("T:Tune 7\nM:")


def test_label_star_draws_labels_and_eval_reports_each(tunes):
    d, _ = tunes
    r = cli("sample", "-m", "m.npz", "--label", "*", "-n", "20", "--seed", "3", "--max-len", "5", "--json", cwd=d)
    labels = {json.loads(line)["label"] for line in r.stdout.splitlines()}
    assert labels == {"waltz", "jig"}
    r = cli("eval", "-m", "m.npz", "valid.jsonl", "--json", cwd=d)
    assert r.returncode == 0, r.stderr
    scores = json.loads(r.stdout)
    assert set(scores["labels"]) == {"waltz", "jig"}
    total = sum(x["tokens"] for x in scores["labels"].values())
    assert total == scores["tokens"]
    mean = sum(x["loss"] * x["tokens"] for x in scores["labels"].values()) / total
    assert abs(mean - scores["loss"]) < 1e-9
    info = json.loads(cli("inspect", "m.npz", "--json", cwd=d).stdout)
    assert info["names"]["labels"] == ["jig", "waltz"]


def test_tunes_read_in_chunks_resume_bit_for_bit(tunes):
    """Truncated BPTT inside texts (--seq-len 8: each tune is several chunks, the state carried
    between them): stopped at step 12 (inside a batch of tunes) and resumed to 24, the weights equal
    those of an uninterrupted run, because the carried state is kept in the checkpoint."""
    import numpy as np

    from rnncli.checkpoint import load_checkpoint

    d, _ = tunes
    args = ["train", "-d", "tunes.npz", "--task", "lm", "--condition", "both", "--hidden", "12", "--embed", "6",
            "--batch-size", "8", "--seq-len", "8", "--dropout", "0.1", "--eval-every", "7"]
    assert cli(*args, "-o", "full.npz", "--max-steps", "24", cwd=d).returncode == 0
    assert cli(*args, "-o", "part.npz", "--max-steps", "12", cwd=d).returncode == 0
    meta, groups = load_checkpoint(str(d / "part.npz"))
    from rnncli.text.batching import TextChunks
    from rnncli.text.store import load_dataset

    plan = TextChunks(load_dataset(str(d / "tunes.npz")).train, 8, meta["config"]["seed"], 8).plan(0)
    assert plan[meta["chunk"]][1] > 0 and groups["carry"]  # stopped between two chunks of one batch of tunes
    r = cli("train", "-d", "tunes.npz", "--resume", "part.npz", "--max-steps", "24", cwd=d)
    assert r.returncode == 0, r.stderr
    full, part = load_checkpoint(str(d / "full.npz"))[1]["param"], load_checkpoint(str(d / "part.npz"))[1]["param"]
    assert all(np.array_equal(full[k], part[k]) for k in full)


def test_show_reads_a_text_from_its_labels_state(tunes):
    """show --label: the hidden unit it colours is the unit the model computes reading the text
    for that label (teacher forcing from the label's state)."""
    import numpy as np

    from rnncli.models import load_model
    from rnncli.text.vocab import Vocab

    d, _ = tunes
    text = "T:Tune 1\nM:3/4\nK:G\nABC|"
    r = cli("show", "-m", "m.npz", "--label", "waltz", "--unit", "2", text, "--json", cwd=d)
    assert r.returncode == 0, r.stderr
    values = json.loads(r.stdout)["values"]
    model, meta, _ = load_model(str(d / "m.npz"))
    ids = np.concatenate([[3], Vocab(meta["data"]["vocab"]).encode(list(text))])[:, None]
    label = np.array([meta["data"]["labels"].index("waltz")])
    l = model.label_embedding.forward(label)
    h, _, _ = model.rnn.forward(model._inputs(ids, l), model._initial(l), np.ones(ids.shape))
    assert np.allclose(values, h[1:, 0, 2], atol=1e-5)
    r = cli("show", "-m", "m.npz", text, cwd=d)
    assert r.returncode == 2 and "--label one of jig, waltz" in r.stderr


def test_label_dropout_trains_and_guidance_follows_the_label(tunes):
    """--label-dropout adds the "no label" row and sample --guidance uses it; the guided samples
    still write the label's meter, and guidance 0 (the label ignored) writes both meters."""
    import numpy as np

    from rnncli.checkpoint import load_checkpoint

    d, _ = tunes
    r = cli("train", "-d", "tunes.npz", "-o", "ld.npz", "--task", "lm", "--condition", "both", "--hidden", "48",
            "--embed", "16", "--layers", "1", "--batch-size", "16", "--max-steps", "250", "--lr", "0.01",
            "--eval-every", "250", "--label-dropout", "0.3", "--json", cwd=d)
    assert r.returncode == 0, r.stderr
    meta, groups = load_checkpoint(str(d / "ld.npz"))
    assert meta["config"]["label_dropout"] == 0.3 and groups["param"]["label_embedding.E"].shape[0] == 3
    for label, meter in METER.items():
        r = cli("sample", "-m", "ld.npz", "--label", label, "-n", "10", "--temp", "0.5", "--seed", "1",
                "--guidance", "2", "--json", cwd=d)
        assert r.returncode == 0, r.stderr
        texts = [json.loads(line)["text"] for line in r.stdout.splitlines()]
        assert sum(f"M:{meter}\n" in t for t in texts) >= 9, [t[:20] for t in texts]
    # without --guidance such a model samples at 2: the same tunes as --guidance 2 asks for, not as 1
    runs = {g: cli("sample", "-m", "ld.npz", "--label", "jig", "-n", "5", "--seed", "4", *g, cwd=d).stdout
            for g in ((), ("--guidance", "2"), ("--guidance", "1"))}
    assert runs[()] == runs[("--guidance", "2")] != runs[("--guidance", "1")]
    r = cli("sample", "-m", "ld.npz", "--label", "waltz", "-n", "40", "--seed", "2", "--guidance", "0", "--json",
            cwd=d)
    texts = [json.loads(line)["text"] for line in r.stdout.splitlines()]
    meters = [m for m in METER.values() if any(f"M:{m}\n" in t for t in texts)]
    assert len(meters) == 2, np.unique([t[:12] for t in texts])
