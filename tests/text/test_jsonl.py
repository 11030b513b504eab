"""JSON lines in: every record kind gives exactly the data set its TSV/CoNLL/text twin gives,
and texts with newlines in them (tunes) stay whole."""

import json
import os

import numpy as np
import pytest

from rnncli.text.encode import tokenize
from rnncli.text.readers import read_text

SAMPLES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "sample_data"))


def same_data(a, b):
    assert {k: v for k, v in a.meta.items() if k not in ("sources", "input")} == \
           {k: v for k, v in b.meta.items() if k not in ("sources", "input")}
    for split_a, split_b in ((a.train, b.train), (a.valid, b.valid)):
        for field in ("ids", "offsets", "labels", "tags", "chars", "char_offsets", "targets", "target_offsets"):
            x, y = getattr(split_a, field), getattr(split_b, field)
            assert (x is None and y is None) or np.array_equal(x, y), field


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return str(path)


def test_label_and_text_equals_tsv(tmp_path):
    rows = [line.split("\t", 1) for line in read_text(f"{SAMPLES}/reviews.tsv").splitlines()]
    path = write_jsonl(tmp_path / "r.jsonl", [{"label": a, "text": b, "id": k} for k, (a, b) in enumerate(rows)])
    jsonl = tokenize([path], lower=True, max_size=300)
    assert jsonl.meta["input"] == "jsonl" and jsonl.meta["format"] == "tsv"
    same_data(jsonl, tokenize([f"{SAMPLES}/reviews.tsv"], lower=True, max_size=300))


def test_tokens_and_tags_equal_conll(tmp_path):
    blocks = read_text(f"{SAMPLES}/ner.conll").strip().split("\n\n")
    records = []
    for block in blocks:
        rows = [line.split("\t") for line in block.splitlines()]
        records.append({"tokens": [r[0] for r in rows], "tags": [r[-1] for r in rows]})
    path = write_jsonl(tmp_path / "n.jsonl", records)
    same_data(tokenize([path], valid_frac=0.2), tokenize([f"{SAMPLES}/ner.conll"], valid_frac=0.2))


def test_source_and_target_equal_pairs(tmp_path):
    rows = [line.split("\t") for line in read_text(f"{SAMPLES}/dates.tsv").splitlines()[:500]]
    (tmp_path / "d.tsv").write_text("".join(f"{a}\t{b}\n" for a, b in rows), encoding="utf-8")
    path = write_jsonl(tmp_path / "d.jsonl", [{"source": a, "target": b} for a, b in rows])
    a, b = tokenize([path], level="char"), tokenize([str(tmp_path / "d.tsv")], level="char")
    same_data(a, b)
    assert a.valid.target_texts == b.valid.target_texts


def test_text_records_are_one_sequence_each_with_their_newlines(tmp_path):
    tunes = ["T:One\nM:3/4\nabc|def|", "T:Two\nM:6/8\n\nabc|", "T:Three\nfed|"]
    path = write_jsonl(tmp_path / "t.jsonl", [{"text": t} for t in tunes])
    ds = tokenize([path], valid_frac=0)
    assert ds.meta["level"] == "char" and ds.train.num_sequences == 3  # the blank line inside Two does not cut it
    vocab = ds.meta["vocab"]
    for k, tune in enumerate(tunes):
        ids = ds.train.ids[ds.train.offsets[k] : ds.train.offsets[k + 1]]
        assert "".join(vocab[i] for i in ids[:-1]) == tune and vocab[ids[-1]] == "<eos>"


def test_labelled_texts_with_newlines_are_read_by_characters(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [{"label": "waltz", "text": "M:3/4\nabc|"},
                                              {"label": "jig", "text": "M:6/8\nabc abc|"}] * 5)
    ds = tokenize([path], valid_frac=0)
    assert ds.meta["level"] == "char" and ds.meta["label_counts"] == {"jig": 5, "waltz": 5}
    one_line = write_jsonl(tmp_path / "s.jsonl", [{"label": "pos", "text": "good film"}] * 4)
    assert tokenize([one_line], valid_frac=0).meta["level"] == "word"


def test_a_valid_file_must_hold_the_same_records(tmp_path):
    from rnncli.errors import UsageError

    train = write_jsonl(tmp_path / "a.jsonl", [{"label": "x", "text": "a b"}] * 30)
    valid = write_jsonl(tmp_path / "b.jsonl", [{"text": "a b"}])
    with pytest.raises(UsageError, match="holds text records, but the training data is tsv"):
        tokenize([train], valid_path=valid)


def test_a_character_level_classifier_predicts_what_eval_scores(tmp_path):
    """Labelled texts can be tokenized by characters (tunes need it); predict must then read its
    input by characters too: its answers on 40 lines give exactly eval's accuracy on them."""
    import json as _json

    from cli_runner import cli

    lines = read_text(f"{SAMPLES}/reviews.tsv").splitlines()[:40]
    (tmp_path / "part.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert cli("tokenize", f"{SAMPLES}/reviews.tsv", "--level", "char", "-o", "c.npz", cwd=tmp_path).returncode == 0
    r = cli("train", "-d", "c.npz", "-o", "m.npz", "--max-steps", "30", "--hidden", "16", "--embed", "8", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = cli("predict", "-m", "m.npz", "--json", cwd=tmp_path, stdin="\n".join(ln.split("\t", 1)[1] for ln in lines))
    predicted = [_json.loads(x)["label"] for x in r.stdout.splitlines()]
    truth = [ln.split("\t", 1)[0] for ln in lines]
    scores = _json.loads(cli("eval", "-m", "m.npz", "part.tsv", "--json", cwd=tmp_path).stdout)
    assert scores["examples"] == 40
    assert sum(p == t for p, t in zip(predicted, truth, strict=True)) / 40 == scores["accuracy"]
