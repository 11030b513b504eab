"""tokenize: formats, vocabulary rules, round trips, errors naming file and line."""

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnncli.errors import RnncliError
from rnncli.text.encode import tokenize
from rnncli.text.readers import detect_format
from rnncli.text.store import load_dataset, save_dataset
from rnncli.text.vocab import EOS, SPECIALS, UNK, Vocab, encode_chars, split_words

HERE = os.path.dirname(__file__)
SAMPLES = os.path.join(HERE, "..", "..", "sample_data")


def write(tmp_path, name, text, mode="w"):
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return str(p)


def decode_chars(ds, split):
    vocab = ds.vocab
    return "".join(vocab.decode(split.ids.tolist()))


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
               min_size=1, max_size=300))
def test_char_round_trip_is_exact(tmp_path_factory, text):
    path = write(tmp_path_factory.mktemp("rt"), "c.txt", text)
    ds = tokenize([path], fmt="text", valid_frac=0)
    expected = text.replace("\r\n", "\n")
    expected = expected[1:] if expected.startswith("\ufeff") else expected
    assert decode_chars(ds, ds.train) == expected
    assert (ds.train.ids == EOS).sum() == ds.train.num_sequences


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Zl", "Zp", "Cc")), max_size=40),
                min_size=1, max_size=10))
def test_word_round_trip_up_to_whitespace(tmp_path_factory, lines):
    # the special tokens' own spellings are read as the specials (documented), so keep them out
    lines = [line for line in lines if not any(sp in line for sp in SPECIALS[:1] + SPECIALS[2:])]
    text = "\n".join(lines)
    path = write(tmp_path_factory.mktemp("w"), "w.txt", text)
    words = [w for line in lines for w in split_words(line)]
    if not words:
        with pytest.raises(RnncliError):
            tokenize([path], fmt="text", level="word", valid_frac=0)
        return
    ds = tokenize([path], fmt="text", level="word", valid_frac=0)
    decoded = ds.vocab.decode(ds.train.ids.tolist())
    assert decoded == words


def test_word_splitter_keeps_punctuation_and_tags():
    assert split_words("Hello, world! It's <unk> fine.") == ["Hello", ",", "world", "!", "It's", "<unk>", "fine", "."]
    assert split_words("moore 's film", lower=True) == ["moore", "'s", "film"]


def test_specials_have_fixed_ids_and_ties_are_deterministic():
    from collections import Counter

    v = Vocab.build(Counter({"b": 2, "a": 2, "c": 5, "d": 1}), max_size=3)
    assert v.tokens[:4] == list(SPECIALS)
    assert v.tokens[4:] == ["c", "a", "b"]  # by count, ties by text; d cut by max_size
    assert v.encode(["d", "c"]).tolist() == [UNK, 4]
    assert Vocab.build(Counter({"x": 1, "y": 2}), min_freq=2).tokens[4:] == ["y"]


def test_encode_chars_vectorised_matches_dict():
    v = Vocab(list(SPECIALS) + list("abé😀"))
    assert encode_chars(v, "aé😀zb").tolist() == [4, 6, 7, UNK, 5]


def test_formats_detected_on_samples():
    for name, fmt in (("corpus.txt", "text"), ("reviews.tsv", "tsv"), ("ner.conll", "conll")):
        with open(os.path.join(SAMPLES, name), encoding="utf-8") as f:
            assert detect_format(f.read()) == fmt


def test_tsv_labels_and_split(tmp_path):
    ds = tokenize([os.path.join(SAMPLES, "reviews.tsv")], valid_frac=0.1, seed=3)
    assert ds.meta["labels"] == ["negative", "positive"]
    assert ds.train.num_sequences + ds.valid.num_sequences == 400
    assert ds.valid.num_sequences == 40
    assert len(ds.train.labels) == ds.train.num_sequences
    again = tokenize([os.path.join(SAMPLES, "reviews.tsv")], valid_frac=0.1, seed=3)
    assert np.array_equal(again.valid.ids, ds.valid.ids)


def test_conll_tags_chars_and_docstart(tmp_path):
    text = "-DOCSTART- O\n\nAnna B-PER\nsings O\n\nin O\nRome B-LOC\n"
    path = write(tmp_path, "a.conll", text)
    ds = tokenize([path], valid_frac=0)
    assert ds.meta["format"] == "conll" and ds.train.num_sequences == 2
    assert [ds.meta["tags"][t] for t in ds.train.tags] == ["B-PER", "O", "O", "B-LOC"]
    assert ds.train.char_offsets[-1] == len("Annasingsin" + "Rome")


def test_conll_lower_folds_word_ids_but_characters_keep_their_case(tmp_path):
    from rnncli.text.vocab import Vocab, encode_chars

    path = write(tmp_path, "a.conll", "Rome B-LOC\nin O\nrome B-LOC\n")
    ds = tokenize([path], fmt="conll", valid_frac=0, lower=True)
    assert ds.meta["vocab"][4:] == ["rome", "in"]
    assert ds.train.ids.tolist() == [4, 5, 4]
    chars = Vocab(ds.meta["chars"])
    assert ds.train.chars.tolist() == encode_chars(chars, "Romeinrome").tolist()


def test_vocab_is_built_from_the_training_part_only(tmp_path):
    lines = [f"positive\tword{i}" for i in range(50)]
    ds = tokenize([write(tmp_path, "t.tsv", "\n".join(lines))], valid_frac=0.2)
    assert np.all(ds.valid.ids == UNK)


def test_reuse_vocab_and_save_load(tmp_path):
    ds = tokenize([os.path.join(SAMPLES, "corpus.txt")])
    out = str(tmp_path / "tokens.npz")
    save_dataset(out, ds)
    back = load_dataset(out)
    assert back.meta["vocab"] == ds.meta["vocab"]
    assert np.array_equal(back.train.ids, ds.train.ids) and np.array_equal(back.valid.offsets, ds.valid.offsets)
    other = tokenize([write(tmp_path, "x.txt", "MARA:\nzzz\n")], reuse=back.meta, valid_frac=0)
    assert other.meta["vocab"] == ds.meta["vocab"]
    assert UNK in other.train.ids.tolist()


@pytest.mark.parametrize("name,content,fmt,message", [
    ("bad.tsv", "positive\tok\nno tab here\n", "tsv", "bad.tsv:2: expected 'label<TAB>text', found no tab"),
    ("bad.conll", "a\tO\nb\tc\tO\n", "conll", "bad.conll:2: expected 2 columns"),
    ("one.conll", "a\tO\nlonely\n", "conll", "one.conll:2: expected 'token<TAB>tag', found 1 column"),
    ("utf.txt", b"fine\nbad \xff byte\n", "text", "utf.txt:2: invalid UTF-8"),
    ("bin.txt", b"abc\x00def", "text", "bin.txt:1: NUL byte"),
    ("tags.conll", "a\tPERSON\n", "conll", "is not a BIO/IOB tag"),
    ("empty.txt", "", "text", "nothing to tokenize"),
])
def test_bad_input_names_file_and_line(tmp_path, name, content, fmt, message):
    path = write(tmp_path, name, content)
    with pytest.raises(RnncliError) as e:
        tokenize([path], fmt=fmt)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_cli_stdin_vocab_out_and_json(tmp_path):
    import json
    import subprocess
    import sys

    text = open(os.path.join(SAMPLES, "corpus.txt"), encoding="utf-8").read()
    r = subprocess.run([sys.executable, "-m", "rnncli", "tokenize", "-", "--vocab-out", "v.json", "--json"],
                       cwd=tmp_path, input=text, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)  # stdout carries only the JSON; the table went to stderr
    assert report["format"] == "text" and report["vocab_size"] > 30 and "tokenized" in r.stderr
    vocab = json.loads((tmp_path / "v.json").read_text(encoding="utf-8"))
    assert vocab["vocab"][:4] == list(SPECIALS)
    again = tokenize([os.path.join(SAMPLES, "corpus.txt")], reuse=load_vocab_json(tmp_path / "v.json"))
    assert again.meta["vocab"] == vocab["vocab"]


def load_vocab_json(path):
    from rnncli.text.store import load_vocab_source

    return load_vocab_source(str(path))


class Trickle:
    """A stream whose reads return a few bytes at a time, like a slow pipe."""

    def __init__(self, data, size):
        self.data, self.size = data, size

    def read1(self, _n):
        chunk, self.data = self.data[: self.size], self.data[self.size :]
        return chunk


@pytest.mark.parametrize("size", [1, 3, 7, 1 << 16])
def test_predict_reader_rebuilds_lines_cut_across_reads(size):
    from rnncli.text.readers import line_groups

    data = "\ufeffprémier\r\nsecond line\n\nthird, no newline".encode()
    groups = list(line_groups(Trickle(data, size), "in.txt"))
    assert [line for g in groups for line in g] == [(1, "prémier"), (2, "second line"), (3, ""),
                                                     (4, "third, no newline")]
    if size > len(data):  # one read brings every complete line: one batch (the last line waits for the end)
        assert [len(g) for g in groups] == [3, 1]
    assert list(line_groups(Trickle(b"", size), "in.txt")) == []
    with pytest.raises(RnncliError, match=r"in.txt:2: invalid UTF-8"):
        list(line_groups(Trickle(b"ok\n\xff\xfe\n", size), "in.txt"))


def test_predict_reader_yields_conll_sentences_whole(tmp_path):
    from rnncli.text.readers import read_groups

    path = write(tmp_path, "s.conll", "-DOCSTART- O\n\nA\tB-PER\nb\tO\n\n\nC x O\n")
    assert [s for g in read_groups(path, conll=True) for s in g] == [(f"{path}:3", ["A", "b"]),
                                                                      (f"{path}:7", ["C"])]


@pytest.mark.parametrize("name, options", [("corpus.txt", {}), ("corpus.txt", {"level": "word"}),
                                           ("reviews.tsv", {}), ("ner.conll", {}), ("dates.tsv", {"level": "char"}),
                                           ("scores.jsonl", {})])
def test_every_meta_field_tokenize_writes_is_declared(name, options):
    """text/meta.DataMeta names every field a data set's meta holds (and says what it holds)."""
    from rnncli.text.meta import DataMeta

    ds = tokenize([os.path.join(SAMPLES, name)], **options)
    assert set(ds.meta) <= set(DataMeta.__annotations__), set(ds.meta) - set(DataMeta.__annotations__)
    assert {"format", "level", "vocab", "validation"} <= set(ds.meta)


@pytest.mark.parametrize("S", [2, 3, 17, 1000, 65_537])
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_the_held_out_examples_are_those_of_earlier_versions(S, seed):
    """held_out_examples shuffles 4-byte numbers in place; the examples it picks are still the first
    round(S * frac) of rng.permutation(S), as every earlier version picked them."""
    from rnncli.text.split import held_out_examples

    held, _ = held_out_examples(S, 0.1, seed)
    k = min(max(1, round(S * 0.1)), S - 1)
    expected = np.zeros(S, bool)
    expected[np.random.default_rng(seed).permutation(S)[:k]] = True
    assert np.array_equal(held, expected)
