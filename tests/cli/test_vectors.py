"""Pretrained word vectors (train --embeddings): reading every format, the matching rules and the
coverage report, words the training data never had reaching their vectors at prediction time,
frozen and sparse updates, checkpoints that predict without the vector file."""

import gzip
import json
import os
import re

import numpy as np
import pytest
from cli_runner import cli

from rnncli.errors import RnncliError
from rnncli.nn.optim import Optimizer
from rnncli.nn.rows import RowGradient
from rnncli.text.store import load_dataset
from rnncli.text.vectors import WordLookup, coverage, match, read_vectors

SAMPLES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "sample_data"))


def write_vectors(path, words, dim=6, seed=0, header=False):
    rng = np.random.default_rng(seed)
    table = np.round(rng.normal(size=(len(words), dim)), 4).astype(np.float32)
    text = (f"{len(words)} {dim}\n" if header else "") + "".join(
        w + " " + " ".join(f"{x:.4f}" for x in row) + "\n" for w, row in zip(words, table, strict=True))
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return dict(zip(words, table, strict=True))


def test_plain_header_and_gz_read_alike(tmp_path):
    words = ["the", ",", "paris", "josé", "’s", "-0.5"]  # a word may look like a number
    table = write_vectors(tmp_path / "a.txt", words)
    write_vectors(tmp_path / "b.vec", words, header=True)
    write_vectors(tmp_path / "c.txt.gz", words)
    for name in ("a.txt", "b.vec", "c.txt.gz"):
        v = read_vectors(str(tmp_path / name))
        assert v.words == words and v.dim == 6 and v.matrix.dtype == np.float32
        assert all(np.array_equal(v.matrix[v.index[w]], table[w]) for w in words)


@pytest.mark.parametrize("text,message", [
    ("a 1 2 3\nb 1 2\n", "v.txt:2: 2 numbers where every vector has 3"),
    ("2 3\na 1 2 3\nb 1 2 3 4\n", "v.txt:3: 4 numbers where every vector has 3"),
    ("a 1 2 3\nb 1 x 3\n", "v.txt:2: 'x' is not a number"),
    ("a 1 2 3\n\nb 1 nan 3\n", "v.txt:3: the vector of 'b' is not finite"),
    ("", "v.txt: no vectors (empty file?)"),
    ("lonely\n", "v.txt:1: expected a word and its numbers"),
])
def test_bad_vector_files_name_the_line(tmp_path, text, message):
    (tmp_path / "v.txt").write_text(text, encoding="utf-8")
    with pytest.raises(RnncliError, match=re.escape(message)):
        read_vectors(str(tmp_path / "v.txt"))


def test_matching_rules_and_coverage(tmp_path):
    write_vectors(tmp_path / "v.txt", ["paris", "the", "Berlin", "berlin"])
    v = read_vectors(str(tmp_path / "v.txt"))
    vocab = ["<pad>", "<unk>", "<bos>", "<eos>", "the", "Paris", "Berlin", "Zurich"]
    rows, rules = match(vocab, v)
    assert rules == ["", "", "", "", "exact", "lower", "exact", ""]  # exact first: "Berlin", not "berlin"
    assert rows.tolist() == [-1, -1, -1, -1, 1, 0, 2, -1]
    counts = np.array([0, 5, 0, 0, 50, 20, 10, 15])  # 5 <unk> tokens: words no vector could match
    report = coverage(rules, counts)
    assert report["tokens"] == 100 and report["tokens_exact"] == 60 and report["tokens_lower"] == 20
    assert report["types"] == 4 and report["types_exact"] == 2 and report["types_lower"] == 1


def test_lookup_of_words_the_training_data_never_had():
    lookup = WordLookup(["<pad>", "<unk>", "<bos>", "<eos>", "Paris", "paris"], ["london", "the", "Rome"])
    ids = lookup.encode(["Paris", "paris", "PARIS", "london", "London", "Rome", "rome", "Oslo"])
    assert ids.tolist() == [4, 5, 5, 6, 6, 8, 1, 1]  # exact, then lower-case in either part, else <unk>


def test_sparse_update_equals_the_dense_one_bit_for_bit():
    """Where a step's batch touched every row, the lazy row update is the dense update; rows
    never touched stay exactly as they were."""
    rng = np.random.default_rng(0)
    for kind in ("adam", "adamw", "sgd", "momentum", "adagrad", "rmsprop"):
        E0 = rng.normal(size=(7, 3)).astype(np.float32)
        dense, sparse = {"E": E0.copy()}, {"E": E0.copy()}
        opt_d, opt_s = Optimizer(kind, lr=0.01, weight_decay=0.01), Optimizer(kind, lr=0.01, weight_decay=0.01)
        for _ in range(4):
            g = rng.normal(size=(7, 3)).astype(np.float32)
            opt_d.step(dense, {"E": g})
            opt_s.step(sparse, {"E": RowGradient(np.arange(7), g.copy(), g.shape)})
        assert np.array_equal(dense["E"], sparse["E"]), kind
        part = {"E": E0.copy()}
        opt = Optimizer(kind, lr=0.01)
        for _ in range(3):
            opt.step(part, {"E": RowGradient(np.array([1, 4]), rng.normal(size=(2, 3)).astype(np.float32), (7, 3))})
        untouched = [0, 2, 3, 5, 6]
        assert np.array_equal(part["E"][untouched], E0[untouched]) and not np.array_equal(part["E"][1], E0[1])


def test_sparse_embedding_gradient_is_the_dense_one():
    from rnncli.nn.layers import Embedding

    rng = np.random.default_rng(1)
    emb = Embedding(9, 4, rng, np.float64)
    ids, d = rng.integers(0, 9, (5, 3)), rng.normal(size=(5, 3, 4))
    dense = emb.backward(d, ids)["E"]
    emb.sparse = True
    rows = emb.backward(d, ids)["E"]
    assert np.array_equal(rows.dense(), dense) and rows.rows.tolist() == sorted(set(ids.ravel().tolist()))
    assert rows.lazy
    # carried as rows for data-parallel workers (parallel/), the update stays dense
    emb.sparse, emb.as_rows = False, True
    carried = emb.backward(d, ids)["E"]
    assert not carried.lazy and np.array_equal(carried.dense(), dense)
    assert np.array_equal(carried.dense(2, 7), dense[2:7])  # a worker's block of rows


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    """A classifier of sample_data/reviews.tsv trained from vectors that know some of its words and
    two it never has ("splendid", "dreadful")."""
    d = tmp_path_factory.mktemp("vec")
    assert cli("tokenize", f"{SAMPLES}/reviews.tsv", "-o", "rev.npz", "--lower", cwd=d).returncode == 0

    vocab = load_dataset(str(d / "rev.npz")).meta["vocab"]
    known = vocab[4:40] + ["Film", "splendid", "dreadful"]
    table = write_vectors(d / "vec.txt", known, dim=8)
    (d / "cfg").mkdir()
    (d / "cfg" / "vectors.yaml").write_text("embeddings: ../vec.txt\nhidden: 12\nmax_steps: 40\neval_every: 20\n")
    return d, table, vocab


def trained(d, *args):
    r = cli("train", "-d", "rev.npz", "--hidden", "12", "--max-steps", "40", "--eval-every", "20", *args, cwd=d)
    assert r.returncode == 0, r.stderr
    return r


def test_training_starts_from_the_vectors_and_reaches_unseen_words(reviews):
    from rnncli.models import load_model
    from rnncli.text.encode import encode_words

    d, table, vocab = reviews
    r = trained(d, "-o", "m.npz", "--embeddings", "vec.txt", "--seed", "3")
    assert "embedding size 8, from vec.txt (instead of 64)" in r.stderr and "training words found by" in r.stderr
    model, meta, _ = load_model(str(d / "m.npz"))
    assert meta["data"]["pretrained_vocab"] == ["Film", "splendid", "dreadful"]  # "film" is a training word
    E = model.params["embedding.E"]
    assert E.shape == (len(vocab) + 3, 8)
    split = encode_words(meta["data"], [["splendid", "dreadful", "SPLENDID", "zzz"]])
    V = len(vocab)
    assert split.ids.tolist() == [V + 1, V + 2, V + 1, 1]
    out = model.embedding.forward(split.ids)  # the model reads the vector itself: no training touched it
    assert np.array_equal(out[0], table["splendid"]) and np.array_equal(out[1], table["dreadful"])
    os.rename(d / "vec.txt", d / "vec.away")  # predicting needs no vector file
    try:
        r = cli("predict", "-m", "m.npz", "--json", cwd=d, stdin="a splendid film\n")
        assert r.returncode == 0 and json.loads(r.stdout)["label"] in ("positive", "negative")
    finally:
        os.rename(d / "vec.away", d / "vec.txt")


def test_frozen_vectors_stay_and_fine_tuned_ones_move(reviews):
    from rnncli.models import load_model

    d, table, vocab = reviews
    trained(d, "-o", "frozen.npz", "--embeddings", "vec.txt", "--freeze-embeddings")
    trained(d, "-o", "tuned.npz", "--embeddings", "vec.txt")
    frozen = load_model(str(d / "frozen.npz"))[0].params["embedding.E"]
    tuned = load_model(str(d / "tuned.npz"))[0].params["embedding.E"]
    rows = [vocab.index(w) for w in vocab[4:40]]
    assert all(np.array_equal(frozen[i], table[vocab[i]]) for i in rows)
    assert sum(not np.array_equal(tuned[i], table[vocab[i]]) for i in rows) > 20
    assert np.array_equal(tuned[len(vocab):], frozen[len(vocab):])  # the added rows: never in a batch
    # the training words the vectors lack are not frozen: their random rows learn, as without vectors
    trained(d, "-o", "frozen_short.npz", "--embeddings", "vec.txt", "--freeze-embeddings", "--max-steps", "2")
    short = load_model(str(d / "frozen_short.npz"))[0].params["embedding.E"]
    lacking = range(40, len(vocab))
    assert np.array_equal(short[4:40], frozen[4:40]) and np.array_equal(short[len(vocab):], frozen[len(vocab):])
    assert sum(not np.array_equal(short[i], frozen[i]) for i in lacking) > len(lacking) // 2


def test_a_config_names_vectors_relative_to_itself(reviews):
    d, _, _ = reviews
    r = cli("train", "-d", "rev.npz", "-o", "c.npz", "--config", "cfg/vectors.yaml", "--json", cwd=d)
    assert r.returncode == 0, r.stderr
    from rnncli.checkpoint import load_checkpoint

    meta, _ = load_checkpoint(str(d / "c.npz"))
    assert meta["config"]["embeddings"].endswith("vec.txt") and meta["config"]["embed"] == 8
    assert meta["data"]["pretrained"]["rows_added"] == 3


@pytest.mark.parametrize("freeze", [[], ["--freeze-embeddings"]])
def test_resume_keeps_the_rows_without_reading_the_file(reviews, freeze):
    """A resumed run equals an unbroken one, and a frozen run keeps the same rows fixed (the
    checkpoint records which rows came from the vectors)."""
    from rnncli.checkpoint import load_checkpoint

    d, _, _ = reviews
    full, part = f"full{len(freeze)}.npz", f"part{len(freeze)}.npz"
    trained(d, "-o", full, "--embeddings", "vec.txt", "--max-steps", "30", "--average", "0.9", *freeze)
    trained(d, "-o", part, "--embeddings", "vec.txt", "--max-steps", "10", "--average", "0.9", *freeze)
    os.rename(d / "vec.txt", d / "vec.away")
    try:
        r = cli("train", "-d", "rev.npz", "--resume", part, "--max-steps", "30", cwd=d)
        assert r.returncode == 0, r.stderr
    finally:
        os.rename(d / "vec.away", d / "vec.txt")
    (_, full), (_, part) = (load_checkpoint(str(d / n)) for n in (full, part))
    for group in ("param", "best", "opt"):  # the lazily kept average included
        assert set(full[group]) == set(part[group]) and all(np.array_equal(full[group][k], part[group][k])
                                                            for k in full[group]), group
    assert "avgc.embedding.E" in full["opt"]


def test_words_min_freq_cut_reach_their_vectors_in_training_as_in_prediction(tmp_path):
    """A tagger's data keeps every word's characters, so a word --min-freq 2 turned into <unk> gets
    its pretrained row in the training split exactly as `eval`/`predict` encode it."""
    from rnncli.pretrained import reach_cut_words
    from rnncli.text.encode import encode_words, tokenize
    from rnncli.text.readers import parse_conll, read_text

    rows = [("Anna", "B-PER"), ("met", "O"), ("Zoltan", "B-PER"), ("in", "O"), ("Paris", "B-LOC")]
    text = "".join(f"{w}\t{t}\n" for w, t in rows) + "\n" + "Anna\tB-PER\nmet\tO\nBob\tB-PER\nin\tO\nRome\tB-LOC\n\n"
    (tmp_path / "d.conll").write_text(text * 1 + "Anna\tB-PER\nmet\tO\nin\tO\n\n")
    ds = tokenize([str(tmp_path / "d.conll")], min_freq=2, valid_frac=0)
    sentences, _ = parse_conll(read_text(str(tmp_path / "d.conll")), "d.conll")
    flat = [w for s in sentences for w in s]
    cut = sorted({w for w in flat if w not in ds.meta["vocab"]})
    assert len(cut) >= 2
    write_vectors(tmp_path / "v.txt", [w.lower() for w in cut[:2]] + ["unrelated"])
    from rnncli.pretrained import Pretrained

    pre = Pretrained(read_vectors(str(tmp_path / "v.txt")), ds.meta, "tag", ds.train.ids)
    meta = {**ds.meta, "pretrained_vocab": pre.extra}
    split = reach_cut_words(ds.train, meta)
    assert np.array_equal(split.ids, encode_words(meta, sentences).ids)  # as prediction encodes the raw words
    V = len(ds.meta["vocab"])
    reached = {flat[p] for p in np.flatnonzero(split.ids >= V)}
    assert reached == set(cut[:2]) and (split.ids == 1).sum() == (ds.train.ids == 1).sum() - sum(
        flat.count(w) for w in cut[:2])


def test_an_encoder_decoders_source_and_a_word_language_model_start_from_the_vectors(tmp_path):
    from rnncli.models import load_model

    table = write_vectors(tmp_path / "v.txt", ["sentence", "number", "seven", "unseen"], dim=5)
    (tmp_path / "pairs.tsv").write_text("".join(f"sentence number {i}\tphrase {i}\n" for i in range(40)))
    (tmp_path / "text.txt").write_text("".join(f"the sentence number {i} is here\n" for i in range(60)))
    assert cli("tokenize", "pairs.tsv", "-o", "p.npz", cwd=tmp_path).returncode == 0
    assert cli("tokenize", "text.txt", "--level", "word", "-o", "t.npz", cwd=tmp_path).returncode == 0
    for data, out, table_name, added in (("p.npz", "p_model.npz", "source_embedding.E", ["seven", "unseen"]),
                                         ("t.npz", "t_model.npz", "embedding.E", [])):
        r = cli("train", "-d", data, "-o", out, "--embeddings", "v.txt", "--freeze-embeddings", "--hidden", "8",
                "--max-steps", "5", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        model, meta, _ = load_model(str(tmp_path / out))
        vocab, E = meta["data"]["vocab"], model.params[table_name]
        assert meta["data"]["pretrained_vocab"] == added and E.shape == (len(vocab) + len(added), 5)
        for word in ("sentence", "number"):
            assert np.array_equal(E[vocab.index(word)], table[word])
        for k, word in enumerate(added):
            assert np.array_equal(E[len(vocab) + k], table[word])


def test_the_lazy_weight_average_of_a_sparse_table_equals_the_dense_one():
    """With --average, rows no batch touched get their average brought up to date only when read
    (nn/optim.py); where the weights agree (plain SGD, untouched rows stay put) the averages do too."""
    rng = np.random.default_rng(1)
    E0 = rng.normal(size=(30, 4))
    dense, lazy = {"E": E0.copy()}, {"E": E0.copy()}
    opt_d, opt_l = Optimizer("sgd", lr=0.01, average=0.95), Optimizer("sgd", lr=0.01, average=0.95)
    for step in range(300):
        rows = np.unique(rng.integers(0, 30, 5))
        values = rng.normal(size=(len(rows), 4))
        g = np.zeros((30, 4))
        g[rows] = values
        opt_d.step(dense, {"E": g})
        opt_l.step(lazy, {"E": RowGradient(rows, values.copy(), (30, 4))})
        if step % 37 == 0 or step == 299:  # reading the average in between must not disturb it
            assert np.allclose(opt_d.averaged(dense)["E"], opt_l.averaged(lazy)["E"], rtol=0, atol=1e-12)
    assert np.array_equal(dense["E"], lazy["E"])


def test_the_shipped_glove_config_finds_the_shared_vectors():
    from rnncli.config import make_config

    cfg = make_config(os.path.join(os.path.dirname(__file__), "..", "..", "configs", "ner-glove.yaml"))
    assert cfg.embeddings.endswith(os.path.join("shared", "data", "glove", "glove.6B.50d.top100k.txt"))
    shared = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data")
    assert os.path.exists(cfg.embeddings) or not os.path.isdir(shared)  # beside the repository, where it lives
