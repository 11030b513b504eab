"""tokenize from the command line: what it refuses (naming the line), the label and tag sets, the
validation split, encoding a test set for a model, and data files checked on loading."""

import json
import os

import numpy as np
import pytest
from cli_runner import cli

SAMPLES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "sample_data"))


TINY = ["--hidden", "8", "--layers", "1", "--embed", "4", "--eval-every", "5"]


def ok(r):
    assert r.returncode == 0, r.stderr
    return r


def files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_a_tsv_line_with_an_empty_text_is_refused_with_its_line(tmp_path):
    (tmp_path / "r.tsv").write_text("pos\tgood film\nneg\t\npos\tfine\n")
    r = cli("tokenize", "r.tsv", cwd=tmp_path)
    assert r.returncode == 1 and "r.tsv:2: empty text" in r.stderr, r.stderr
    assert files(tmp_path) == ["r.tsv"]


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


def test_a_test_set_encoded_with_vocab_is_scored_whole(tmp_path):
    ok(cli("tokenize", f"{SAMPLES}/reviews.tsv", "-o", "train.npz", cwd=tmp_path))
    ok(cli("train", "-d", "train.npz", "--max-steps", "5", *TINY, cwd=tmp_path))
    (tmp_path / "test.tsv").write_text("".join(f"positive\tfilm number {i}\n" for i in range(40)))
    r = ok(cli("tokenize", "test.tsv", "--vocab", "model.npz", "-o", "test.npz", "--json", cwd=tmp_path))
    assert "valid" not in json.loads(r.stdout)
    scores = json.loads(ok(cli("eval", "test.npz", "--json", cwd=tmp_path)).stdout)
    assert scores["examples"] == 40 and sum(c["support"] for c in scores["classes"].values()) == 40
    assert scores["scored"].startswith("all of it")


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
            value = z[field].astype(np.int32)  # stored compact (uint8): widened to hold the id
        value[3] = 10_000
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays[field] = value
    np.savez(path, **arrays)
    with pytest.raises(RnncliError, match=message):
        load_dataset(path)
