"""Sentiment and NER through the command line: train, eval, predict on sample_data."""

import json
import os
import select
import subprocess
import sys

import numpy as np
import pytest
from cli_runner import cli

SAMPLES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "sample_data"))


@pytest.fixture(scope="module")
def sentiment(tmp_path_factory):
    d = tmp_path_factory.mktemp("sent")
    assert cli("tokenize", f"{SAMPLES}/reviews.tsv", "-o", "rev.npz", cwd=d).returncode == 0
    r = cli("train", "-d", "rev.npz", "-o", "m.npz", "--epochs", "6", "--hidden", "16", "--embed", "16",
            "--seed", "1", "--json", cwd=d)
    assert r.returncode == 0, r.stderr
    return d, json.loads(r.stdout)


@pytest.fixture(scope="module", params=[("--no-crf", "rnn", "32"), ("--crf", "cnn", "20")],
                ids=["softmax-rnn", "crf-cnn"])
def ner(tmp_path_factory, request):
    d = tmp_path_factory.mktemp("ner")
    crf, encoder, char_hidden = request.param
    assert cli("tokenize", f"{SAMPLES}/ner.conll", "-o", "ner.npz", cwd=d).returncode == 0
    r = cli("train", "-d", "ner.npz", "-o", "m.npz", "--epochs", "25", "--hidden", "24", "--embed", "16",
            "--lr", "0.01", "--char-features", crf, "--char-encoder", encoder, "--char-hidden", char_hidden,
            "--char-embed", "12", "--json", cwd=d)
    assert r.returncode == 0, r.stderr
    return d, json.loads(r.stdout), (encoder, int(char_hidden))


def test_sentiment_learns_and_predicts(sentiment):
    d, summary = sentiment
    assert summary["task"] == "classify" and summary["valid"]["accuracy"] >= 0.9
    r = cli("eval", "-m", "m.npz", f"{SAMPLES}/reviews.tsv", "--json", cwd=d)
    scores = json.loads(r.stdout)
    assert scores["accuracy"] >= 0.9 and len(scores["confusion"]) == 2
    r = cli("predict", "-m", "m.npz", "--proba", cwd=d, stdin="a warm and funny film\nthe plot makes no sense\n")
    lines = r.stdout.splitlines()
    assert [ln.split("\t")[0] for ln in lines] == ["positive", "negative"]
    assert all(0.5 <= float(ln.split("\t")[1]) <= 1 for ln in lines)
    r = cli("predict", "-m", "m.npz", "--json", cwd=d, stdin="i loved every minute\n")
    assert json.loads(r.stdout)["label"] == "positive"


def test_eval_refuses_labels_the_model_never_saw(sentiment, tmp_path):
    d, _ = sentiment
    bad = tmp_path / "bad.tsv"
    bad.write_text("positive\tgood film\nneutral\tso so\n")
    r = cli("eval", "-m", "m.npz", str(bad), cwd=d)
    assert r.returncode == 1 and "label 'neutral' is not one the model" in r.stderr


def test_ner_learns_entities_and_tags_a_stream(ner):
    d, summary, (encoder, char_hidden) = ner
    assert summary["task"] == "tag" and summary["valid"]["f1"] >= 0.8, summary["valid"]
    with np.load(d / "m.npz", allow_pickle=False) as z:  # the character sizes asked for are the ones built
        assert z["param.char_embedding.E"].shape[1] == 12
        if encoder == "cnn":
            assert z["param.char_cnn.W"].shape == (2 * char_hidden, 3 * 12)
        else:
            assert z["param.char_rnn.l0.W_aa"].shape == (4 * char_hidden, char_hidden)
    r = cli("predict", "-m", "m.npz", cwd=d, stdin="Wren moved to Velmora .\n")
    rows = [ln.split("\t") for ln in r.stdout.splitlines() if ln]
    assert [w for w, _ in rows] == ["Wren", "moved", "to", "Velmora", "."]
    assert rows[0][1] == "B-PER" and rows[3][1] == "B-LOC"
    r = cli("predict", "-m", "m.npz", "--format", "conll", f"{SAMPLES}/ner.conll", cwd=d)
    assert r.returncode == 0 and r.stdout.count("\n\n") == 300
    r = cli("eval", "-m", "m.npz", f"{SAMPLES}/ner.conll", "--json", cwd=d)
    assert json.loads(r.stdout)["f1"] >= 0.8


def test_ner_predict_gives_each_tag_its_probability(ner):
    d = ner[0]
    text = "Wren moved to Velmora .\n\nOdal met Brask in Tull .\n"
    plain = [ln.split("\t") for ln in cli("predict", "-m", "m.npz", cwd=d, stdin=text).stdout.splitlines() if ln]
    r = cli("predict", "-m", "m.npz", "--proba", cwd=d, stdin=text)
    rows = [ln.split("\t") for ln in r.stdout.splitlines() if ln]
    assert r.returncode == 0 and [row[:2] for row in rows] == plain  # the same tags, one column more
    assert all(0 < float(p) <= 1 for _, _, p in rows)
    r = cli("predict", "-m", "m.npz", "--json", cwd=d, stdin=text)
    objs = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert [len(o["tokens"]) for o in objs] == [5, 0, 6]  # one object per line in, the empty one too
    assert [[w, t] for o in objs for w, t in zip(o["tokens"], o["tags"], strict=True)] == plain
    assert [p for o in objs for p in o["probabilities"]] == pytest.approx([float(p) for *_, p in rows], abs=1e-4)


def _one_at_a_time(d, lines, answer_ends, *args):
    """Write each line to a running `predict` and read its whole answer before writing the next:
    the pipe must answer while the input stays open, and every answer comes from a batch of one."""
    proc = subprocess.Popen([sys.executable, "-m", "rnncli", "predict", "-m", "m.npz", *args], cwd=d,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    answers = []
    try:
        for line in lines:
            proc.stdin.write((line + "\n").encode())
            answer = b""
            while not answer_ends(answer.decode()):
                # raw reads of the pipe: a buffered readline could hide the rest of an answer from select
                if not select.select([proc.stdout], [], [], 60)[0]:
                    raise AssertionError(f"no answer to {line!r} while the input is still open")
                answer += os.read(proc.stdout.fileno(), 1 << 16)
            answers.append(answer.decode())
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert proc.returncode == 0, proc.stderr.read().decode()
    return "".join(answers)


def test_predict_answers_a_pipe_line_by_line_as_a_file_in_batches(sentiment, tmp_path):
    d, _ = sentiment
    with open(f"{SAMPLES}/reviews.tsv") as f:
        lines = [ln.split("\t")[1].rstrip("\n") for ln in f][:60]
    lines[5:5] = ["", "zzz unknown qqq words", "a " * 40 + "film"]  # empty, unknown, long: alignment kept
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    batched = cli("predict", "-m", "m.npz", "--proba", str(tmp_path / "in.txt"), cwd=d)
    assert batched.returncode == 0, batched.stderr
    alone = _one_at_a_time(d, lines, lambda a: a.endswith("\n"), "--proba")
    rows = [[ln.split("\t") for ln in out.split("\n")[:-1]] for out in (batched.stdout, alone)]
    assert len(rows[0]) == len(rows[1]) == len(lines) and rows[0][5] == rows[1][5] == [""]
    for b, a in zip(*rows, strict=True):
        assert b[0] == a[0] and (b == a == [""] or abs(float(b[1]) - float(a[1])) <= 2e-4), (b, a)


def test_tagger_answers_a_pipe_sentence_by_sentence_as_a_file_in_batches(ner, tmp_path):
    d, _, _ = ner
    with open(f"{SAMPLES}/ner.conll") as f:
        sentences = [" ".join(ln.split("\t")[0] for ln in block.splitlines()) for block in f.read().split("\n\n")]
    sentences = [s for s in sentences if s][:80]
    (tmp_path / "in.txt").write_text("\n".join(sentences) + "\n")
    batched = cli("predict", "-m", "m.npz", str(tmp_path / "in.txt"), cwd=d)
    assert batched.returncode == 0, batched.stderr
    alone = _one_at_a_time(d, sentences, lambda a: a.endswith("\n\n"))
    assert batched.stdout == alone and batched.stdout.count("\n\n") == len(sentences)


def test_sample_refuses_a_classifier(sentiment):
    d, _ = sentiment
    r = cli("sample", "-m", "m.npz", cwd=d)
    assert r.returncode == 2 and "use predict" in r.stderr


def test_predict_reads_json_lines_as_it_reads_plain_lines(sentiment, ner):
    """JSON lines in (the text or tokens field; a blank line stays a blank answer) give exactly
    the answers of the same input as plain lines or CoNLL."""
    d, _ = sentiment
    texts = ["a warm and funny film", "", "the plot makes no sense", "i loved every minute"]
    plain = cli("predict", "-m", "m.npz", "--json", cwd=d, stdin="\n".join(texts) + "\n")
    (d / "in.jsonl").write_text("".join(json.dumps({"text": t, "id": k}) + "\n" if t else "\n"
                                        for k, t in enumerate(texts)))
    as_jsonl = cli("predict", "-m", "m.npz", "--json", "in.jsonl", cwd=d)
    assert as_jsonl.returncode == 0, as_jsonl.stderr
    assert as_jsonl.stdout == plain.stdout and len(plain.stdout.splitlines()) == 4
    d, _, _ = ner
    sentences = [["John", "lives", "in", "Paris", "."], ["Mary", "met", "Bob"]]
    conll = cli("predict", "-m", "m.npz", "-f", "conll", "--proba", cwd=d,
                stdin="".join("".join(w + "\n" for w in s) + "\n" for s in sentences))
    records = [{"tokens": sentences[0]}, {"tokens": " ".join(sentences[1])}]  # a list, or a string of words
    jsonl = cli("predict", "-m", "m.npz", "-f", "jsonl", "--proba", cwd=d,
                stdin="".join(json.dumps(r) + "\n" for r in records))
    assert jsonl.returncode == 0, jsonl.stderr
    assert jsonl.stdout == conll.stdout and conll.stdout.count("\n") == 10
