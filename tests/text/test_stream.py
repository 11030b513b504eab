"""Plain text by characters or words, streamed (text/stream.py, stream_words.py), against the in-memory
pipeline as its twin:
the same arrays and meta for any text, whatever the chunk size (a few bytes here, so that runs of
newlines, CRLF pairs, multi-byte characters and the validation cut fall across chunk boundaries);
the same errors naming the same line."""

import json
import os
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnncli.text.stream as stream
from rnncli.errors import RnncliError
from rnncli.text.encode import tokenize
from rnncli.text.store import save_dataset

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "sample_data")


def written(folder):
    """-> [(meta, arrays)] of a.npz (the in-memory pipeline's) and b.npz (the streamed one's)."""
    out = []
    for name in ("a.npz", "b.npz"):
        with np.load(folder / name) as z:
            arrays = {k: z[k] for k in z.files}
        out.append((json.loads(str(arrays.pop("meta"))), arrays))
    return out


def both(tmp_path, paths, level="char", **options):
    """-> (the in-memory pipeline's arrays and meta, the streamed one's), as tokens.npz holds them."""
    save_dataset(str(tmp_path / "a.npz"), tokenize(paths, fmt="text", level=level, **options))
    with stream.stream_tokenize(paths, str(tmp_path / "b.npz"), **options, level=level):
        pass
    return written(tmp_path)


def assert_same(a, b):
    (meta_a, arrays_a), (meta_b, arrays_b) = a, b
    assert meta_a == meta_b
    assert set(arrays_a) == set(arrays_b)
    for k in arrays_a:
        assert arrays_a[k].dtype == arrays_b[k].dtype and np.array_equal(arrays_a[k], arrays_b[k]), k


pieces = st.lists(st.one_of(st.sampled_from(["\n", "\n\n", "\n\n\n", "\r\n", "\r\n\r\n", " ", "ab", "Σ", "é",
                                              "日本", "x" * 9, "ΟΔΟΣ ", "\t", "don't ", "<unk> ", "<eos>", "a-b", ", ",
                                              "word ", "Word. "]),
                            st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                                    max_size=6)), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(pieces, st.sampled_from([0.0, 0.05, 0.3, 0.5]), st.booleans(), st.sampled_from([1, 3, 7, 64]),
       st.booleans(), st.sampled_from(["char", "word"]))
def test_any_text_streams_to_the_same_data_set(tmp_path_factory, parts, frac, lower, chunk, bom, level):
    d = tmp_path_factory.mktemp("s")
    text = "".join(parts)
    (d / "c.txt").write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    stream.CHUNK = chunk
    try:
        if not tokenize_has_text(d / "c.txt", level):
            return
        assert_same(*both(d, [str(d / "c.txt")], level, valid_frac=frac, lower=lower))
    finally:
        stream.CHUNK = 1 << 20


def tokenize_has_text(path, level="char"):
    try:
        tokenize([str(path)], level=level, fmt="text")
        return True
    except RnncliError:
        return False


@pytest.mark.parametrize("chunk", [5, 1 << 20])
@pytest.mark.parametrize("level", ["char", "word"])
def test_the_sample_corpus_and_several_files_stream_alike(tmp_path, chunk, level):
    corpus = os.path.join(SAMPLES, "corpus.txt")
    (tmp_path / "two.txt").write_text("second file\n\nits end", encoding="utf-8")
    stream.CHUNK = chunk
    try:
        assert_same(*both(tmp_path, [corpus], level))
        assert_same(*both(tmp_path, [corpus, str(tmp_path / "two.txt")], level, valid_frac=0.2, max_size=20,
                          min_freq=2))
    finally:
        stream.CHUNK = 1 << 20


@pytest.mark.parametrize("data,message", [(b"line one\nline two\n\x00rest", "c.txt:3: NUL byte"),
                                          (b"ok\nstill ok\n\xff\xfe bad", "c.txt:3: invalid UTF-8 (byte 0xff)")])
def test_errors_name_the_line_as_the_full_reading_does(tmp_path, data, message):
    (tmp_path / "c.txt").write_bytes(data)
    with pytest.raises(RnncliError, match=re.escape(message)):
        tokenize([str(tmp_path / "c.txt")])
    stream.CHUNK = 4
    try:
        with pytest.raises(RnncliError, match=re.escape(message)), \
                stream.stream_tokenize([str(tmp_path / "c.txt")], str(tmp_path / "b.npz")):
            pass
    finally:
        stream.CHUNK = 1 << 20
    assert not (tmp_path / "b.npz").exists()


def test_which_inputs_stream(tmp_path):
    corpus = os.path.join(SAMPLES, "corpus.txt")
    assert stream.streams([corpus], None, None, None, None) == "text"
    assert stream.streams([corpus], "text", "char", None, None) == "text"
    assert stream.streams([corpus], None, "word", None, None) == "text"
    assert stream.streams([os.path.join(SAMPLES, "reviews.tsv")], None, None, None, None) == "tsv"
    assert not stream.streams([os.path.join(SAMPLES, "reviews.tsv"), corpus], None, None, None, None)
    assert stream.streams([os.path.join(SAMPLES, "ner.conll")], None, None, None, None) == "conll"
    assert not stream.streams([os.path.join(SAMPLES, "ner.conll")], None, "char", None, None)  # refused in full
    assert not stream.streams([corpus], None, None, {"vocab": []}, None)
    assert stream.streams([corpus], None, None, None, corpus) == "text"  # a validation file beside plain text
    assert not stream.streams(["-"], None, None, None, None)
    assert not stream.streams([os.path.join(SAMPLES, "scores.jsonl")], None, None, None, None)


def test_a_file_that_changes_while_it_is_read_is_refused(tmp_path, monkeypatch):
    """The passes read the file again: one that grows meanwhile (a log still being written) would
    give ids that do not match the paragraphs counted first."""
    path = tmp_path / "c.txt"
    path.write_text("first paragraph\n\nsecond one\n" * 50, encoding="utf-8")
    count = stream._count

    def count_then_append(texts, stop):
        with open(path, "a", encoding="utf-8") as f:
            f.write("more text arriving\n")
        return count(texts, stop)

    monkeypatch.setattr(stream, "_count", count_then_append)
    (tmp_path / "b.npz").write_bytes(b"the user's file")
    with pytest.raises(RnncliError, match="c.txt: changed while it was read; nothing was written"), \
            stream.stream_tokenize([str(path)], str(tmp_path / "b.npz")):
        pass
    assert (tmp_path / "b.npz").read_bytes() == b"the user's file"


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=400), st.integers(2, 12))
def test_word_counts_in_bounded_memory_are_short_by_at_most_what_they_say(ids, limit):
    """Lossy counting (stream_words.WordCounts) against exact counts: never over, never short by more
    than its undercount, and the table never holds more than its limit after an update."""
    from collections import Counter

    from rnncli.text.stream_words import WordCounts

    counts, exact = WordCounts(limit), Counter()
    for k in range(0, len(ids), 7):
        words = [f"w{i}" for i in ids[k : k + 7]]
        counts.update(words)
        exact.update(words)
        assert len(counts.counts) <= limit
    for w, c in exact.items():
        assert c - counts.undercount <= counts.counts.get(w, 0) <= c
    if len(exact) <= limit:
        assert counts.undercount == 0 and counts.counts == dict(exact)


def test_a_corpus_of_more_words_than_are_counted_exactly_says_so(tmp_path, monkeypatch):
    import rnncli.text.stream_words as stream_words

    monkeypatch.setattr(stream_words, "DISTINCT", 50)
    words = [f"rare{i}" for i in range(400)]
    text = "\n".join(f"the cat {w} sat" for w in words) + "\n"
    (tmp_path / "c.txt").write_text(text, encoding="utf-8")
    with stream.stream_tokenize([str(tmp_path / "c.txt")], str(tmp_path / "b.npz"), level="word") as ds:
        assert any("more than 50 different words" in w for w in ds.warnings)
        assert ds.meta["vocab"][4:7] == ["cat", "sat", "the"]  # the frequent words, exactly as counted in memory
        ids = ds.train.ids
        assert [ds.meta["vocab"][i] for i in ids[:5]] == ["the", "cat", "<unk>", "sat", "<eos>"]


def test_examples_of_more_words_than_are_counted_exactly_are_encoded_from_the_text(tmp_path, monkeypatch):
    """Rare words dropped from the counts change the numbers pass 1 wrote: the ids come from the text."""
    import rnncli.text.stream_words as stream_words

    monkeypatch.setattr(stream_words, "DISTINCT", 50)
    text = "".join(f"{'pos' if i % 2 else 'neg'}\tthe cat rare{i} sat\n" for i in range(400))
    (tmp_path / "c.tsv").write_text(text, encoding="utf-8")
    with stream.stream_tokenize([str(tmp_path / "c.tsv")], str(tmp_path / "b.npz"), level="word", fmt="tsv",
                                valid_frac=0.1) as ds:
        assert any("more than 50 different tokens" in w for w in ds.warnings)
        vocab, split = ds.meta["vocab"], ds.train
        assert vocab[4:7] == ["cat", "sat", "the"]
        assert [vocab[i] for i in split.ids[:4]] == ["the", "cat", "<unk>", "sat"]
        assert len(split.ids) == 4 * len(split.labels)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="ab \n", min_size=2, max_size=40), st.integers(0, 45), st.lists(st.integers(1, 9), max_size=8))
def test_the_cut_inside_a_paragraph_is_found_reading_it_in_pieces(unit, offset, sizes):
    """A paragraph may be the whole corpus (one line of a gigabyte): its cut is found piece by piece,
    where split._cut_point finds it in the whole text."""
    from rnncli.text.split import _cut_point

    offset = min(max(offset, 1), len(unit) - 1)
    pieces, at = [], 0
    for n in sizes:
        pieces.append(unit[at : at + n])
        at += n
    pieces.append(unit[at:])
    assert stream._streamed_cut_point(iter(pieces), len(unit), offset) == _cut_point(unit, offset, "char")


@pytest.mark.parametrize("level", ["char", "word"])
def test_a_corpus_on_stdin_is_kept_in_a_file_and_streams(tmp_path, monkeypatch, level):
    """`cat corpus | rnncli tokenize -`: stdin is spooled beside the output and streamed as a file is;
    the data set is the in-memory reading's, sources ["-"]; nothing is left behind."""
    import io
    import sys

    from rnncli.commands.tokenize import tokenize_files

    corpus = os.path.join(SAMPLES, "corpus.txt")
    with open(corpus, "rb") as f:
        data = f.read()
    calls = []
    monkeypatch.setattr(stream, "_write_archive", lambda *a, _w=stream._write_archive: calls.append(1) or _w(*a))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    report = tokenize_files(["-"], str(tmp_path / "b.npz"), level=level)
    assert calls and report["train"]["tokens"] > 0  # it took the streaming path
    save_dataset(str(tmp_path / "a.npz"), tokenize([corpus], fmt="text", level=level))
    with np.load(tmp_path / "a.npz") as a, np.load(tmp_path / "b.npz") as b:
        meta_a, meta_b = json.loads(str(a["meta"])), json.loads(str(b["meta"]))
        assert meta_b["sources"] == ["-"] and meta_a["vocab"] == meta_b["vocab"]
        assert {k: v for k, v in meta_a.items() if k not in ("sources", "validation")} == \
               {k: v for k, v in meta_b.items() if k not in ("sources", "validation")}
        for k in a.files:
            if k != "meta":
                assert np.array_equal(a[k], b[k]), k
    assert sorted(n for n in os.listdir(tmp_path) if not n.endswith(".lock")) == ["a.npz", "b.npz"]


def test_labelled_text_on_stdin_is_read_whole_as_before(tmp_path, monkeypatch):
    import io
    import sys

    from rnncli.commands.tokenize import tokenize_files

    before = io.TextIOWrapper(io.BytesIO(b"pos\tgood film\nneg\tbad film\npos\tfine\nneg\tdull\n"))
    monkeypatch.setattr(sys, "stdin", before)
    report = tokenize_files(["-"], str(tmp_path / "b.npz"))
    assert report["format"] == "tsv" and sys.stdin is before
    assert sorted(n for n in os.listdir(tmp_path) if not n.endswith(".lock")) == ["b.npz"]


def both_tsv(tmp_path, paths, level=None, **options):
    """As both(), for label<TAB>text examples (text/stream_examples.py)."""
    save_dataset(str(tmp_path / "a.npz"), tokenize(paths, fmt="tsv", level=level, **options))
    with stream.stream_tokenize(paths, str(tmp_path / "b.npz"), **options, level=level or "word", fmt="tsv"):
        pass
    return written(tmp_path)


examples = st.lists(st.one_of(
    st.tuples(st.sampled_from(["pos", "neg", " Neu ", "pos "]),
              st.lists(st.sampled_from(["good", "Bad", "film", "it's", "ΟΔΟΣ", "!", "日本", "<unk>", "a-b", "x" * 7,
                                        "'Tis", "in\tside", "<b>", "Supercalifragilistic", "--"]),
                       min_size=1, max_size=9).map(" ".join)),
    st.sampled_from(["", "  "])), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(examples, st.sampled_from([0.0, 0.1, 0.3, 0.5]), st.booleans(), st.sampled_from([1, 5, 64]),
       st.sampled_from([None, "char"]), st.integers(0, 3), st.booleans())
def test_any_labelled_examples_stream_to_the_same_data_set(tmp_path_factory, rows, frac, lower, chunk, level, seed,
                                                           crlf):
    d = tmp_path_factory.mktemp("e")
    lines = [r if isinstance(r, str) else f"{r[0]}\t{r[1]}" for r in rows]
    if not any("\t" in ln for ln in lines):
        return
    (d / "c.tsv").write_bytes(("\r\n" if crlf else "\n").join(lines).encode("utf-8"))
    stream.CHUNK = chunk
    try:
        assert_same(*both_tsv(d, [str(d / "c.tsv")], level, valid_frac=frac, lower=lower, seed=seed, max_size=8))
    finally:
        stream.CHUNK = 1 << 20


@pytest.mark.parametrize("chunk", [7, 1 << 20])
def test_the_sample_reviews_stream_alike(tmp_path, chunk):
    reviews = os.path.join(SAMPLES, "reviews.tsv")
    stream.CHUNK = chunk
    try:
        assert_same(*both_tsv(tmp_path, [reviews]))
        assert_same(*both_tsv(tmp_path, [reviews, reviews], valid_frac=0.2, min_freq=2, lower=True))
    finally:
        stream.CHUNK = 1 << 20


@pytest.mark.parametrize("data,message", [
    (b"pos\tgood\nneg bad\npos\tfine\n", "c.tsv:2: expected 'label<TAB>text', found no tab"),
    (b"pos\tgood\n\t bad\n", "c.tsv:2: empty label"),
    (b"pos\tgood\npos\t  \n", "c.tsv:2: empty text"),
    (b"pos\tgood\nneg bad\n\xff\n", "c.tsv:3: invalid UTF-8"),  # decoding errors first, as read_text's
    (b"\n\n", "c.tsv: no examples (empty file?)"),
])
def test_bad_examples_are_refused_as_the_full_reading_refuses_them(tmp_path, data, message):
    (tmp_path / "c.tsv").write_bytes(data)
    with pytest.raises(RnncliError, match=re.escape(message)):
        tokenize([str(tmp_path / "c.tsv")], fmt="tsv")
    stream.CHUNK = 3
    try:
        with pytest.raises(RnncliError, match=re.escape(message)), \
                stream.stream_tokenize([str(tmp_path / "c.tsv")], str(tmp_path / "b.npz"), level="word", fmt="tsv"):
            pass
    finally:
        stream.CHUNK = 1 << 20
    assert not (tmp_path / "b.npz").exists()


@pytest.mark.parametrize("level", ["char", "word"])
@pytest.mark.parametrize("chunk", [4, 1 << 20])
def test_a_validation_file_streams_beside_the_corpus(tmp_path, level, chunk):
    """tokenize train.txt --valid valid.txt: the training text whole, the file encoded with its
    vocabulary (unknown characters or words as <unk>), as the full reading does it."""
    corpus = os.path.join(SAMPLES, "corpus.txt")
    (tmp_path / "v.txt").write_text("Unseen words: zyzzyva, Ωmega!\r\n\nand the rest\nof it", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("\n\n", encoding="utf-8")
    stream.CHUNK = chunk
    try:
        for valid in ("v.txt", "empty.txt"):
            v = str(tmp_path / valid)
            assert_same(*both(tmp_path, [corpus], level, valid_path=v, lower=True, min_freq=2))
        assert stream.streams([corpus], None, level, None, str(tmp_path / "v.txt")) == "text"
        assert not stream.streams([os.path.join(SAMPLES, "reviews.tsv")], None, None, None, str(tmp_path / "v.txt"))
    finally:
        stream.CHUNK = 1 << 20


@pytest.mark.parametrize("level", ["char", "word"])
@pytest.mark.parametrize("frac", [0.0, 0.2])
def test_text_encoded_with_a_models_vocabulary_streams(tmp_path, level, frac):
    """tokenize test.txt --vocab model.npz: the model's vocabulary, level and case, nothing counted."""
    corpus = os.path.join(SAMPLES, "corpus.txt")
    (tmp_path / "t.txt").write_text("Unseen words: zyzzyva, Ωmega!\n\nand the rest\nof it\n" * 3, encoding="utf-8")
    reuse = tokenize([corpus], fmt="text", level=level, lower=True, max_size=30).meta
    save_dataset(str(tmp_path / "a.npz"), tokenize([str(tmp_path / "t.txt")], reuse=reuse, valid_frac=frac))
    stream.CHUNK = 5
    try:
        with stream.stream_tokenize([str(tmp_path / "t.txt")], str(tmp_path / "b.npz"), level=level, lower=True,
                                    valid_frac=frac, reuse=reuse):
            pass
    finally:
        stream.CHUNK = 1 << 20
    assert_same(*written(tmp_path))
    assert stream.streams([str(tmp_path / "t.txt")], None, None, reuse, None) == "text"
    assert not stream.streams([str(tmp_path / "t.txt")], None, None, {**reuse, "format": "tsv"}, None)


@given(st.lists(st.integers(1, 9), min_size=1, max_size=60), st.integers(1, 20), st.integers(1, 7))
@settings(max_examples=100, deadline=None)
def test_numbers_are_read_back_in_blocks_of_whole_examples(tmp_path_factory, sizes, tokens, window):
    from rnncli.text.stream_examples import numbered_blocks

    path = tmp_path_factory.mktemp("n") / "numbers.u32"
    sizes = np.array(sizes, np.uint32)
    numbers = np.arange(int(sizes.sum()), dtype=np.uint32)
    numbers.tofile(path)
    parts = list(numbered_blocks(str(path), sizes, tokens, window))
    assert [p.start for p, _ in parts] == [0] + [p.stop for p, _ in parts[:-1]] and parts[-1][0].stop >= len(sizes)
    assert np.array_equal(np.concatenate([n for _, n in parts]), numbers)
    for part, n in parts:
        assert len(n) == sizes[part].sum() and len(n) < tokens + sizes[part].max()  # (cut after reaching it)


def both_conll(tmp_path, paths, **options):
    save_dataset(str(tmp_path / "a.npz"), tokenize(paths, fmt="conll", **options))
    with stream.stream_tokenize(paths, str(tmp_path / "b.npz"), **options, level="word", fmt="conll"):
        pass
    return written(tmp_path)


tagged = st.lists(st.one_of(
    st.lists(st.tuples(st.sampled_from(["EU", "rejects", "German", "call", "é", "Köln", "don't", "x" * 20, "-", "."]),
                       st.sampled_from(["O", "B-ORG", "I-ORG", "B-LOC", "I-PER", "S-MISC"])), min_size=1, max_size=7),
    st.sampled_from(["-DOCSTART-", ""])), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(tagged, st.sampled_from([0.0, 0.1, 0.3, 0.5]), st.booleans(), st.sampled_from([1, 5, 64, 1 << 20]),
       st.integers(0, 3), st.sampled_from(["\t", " "]), st.booleans())
def test_any_tagged_sentences_stream_to_the_same_data_set(tmp_path_factory, rows, frac, lower, chunk, seed, sep,
                                                          crlf):
    d = tmp_path_factory.mktemp("c")
    lines = []
    for r in rows:
        if isinstance(r, str):
            lines += [r + (sep + "O" if r else ""), ""] if r else [""]
        else:
            lines += [f"{w}{sep}{t}" for w, t in r] + [""]
    if not any(isinstance(r, list) for r in rows):
        return
    (d / "c.conll").write_bytes(("\r\n" if crlf else "\n").join(lines).encode("utf-8"))
    stream.CHUNK = chunk
    try:
        assert_same(*both_conll(d, [str(d / "c.conll")], valid_frac=frac, lower=lower, seed=seed, max_size=9))
    finally:
        stream.CHUNK = 1 << 20


def test_the_sample_tags_stream_alike(tmp_path):
    tags = os.path.join(SAMPLES, "ner.conll")
    assert stream.streams([tags], None, None, None, None) == "conll"
    assert_same(*both_conll(tmp_path, [tags]))
    assert_same(*both_conll(tmp_path, [tags, tags], valid_frac=0.2, min_freq=2, lower=True))


@pytest.mark.parametrize(("data", "message"), [
    (b"EU\tB-ORG\nrejects\n", "c.conll:2: expected 'token<TAB>tag', found 1 column"),
    (b"EU\tB-ORG\tx\nrejects\tO\n", "c.conll:2: expected 3 columns like the first line, found 2"),
    (b"EU\tB-ORG\nrejects\t \n", "c.conll:2: empty tag"),
    (b"EU\tORG\n\nrejects\tO\nx\n", "c.conll:4: expected 'token<TAB>tag', found 1 column"),  # before the tag
    (b"EU\tB-ORG\n\nrejects\tO\nit\tPER\n", "c.conll:4: tag 'PER' is not a BIO/IOB tag"),
    (b"-DOCSTART-\tO\n\n", "c.conll: no sentences (empty file?)"),
    (b"EU\tO\n" + b"x" * (1 << 20) + b"\tO\nit\t?\n", "c.conll:2: line of"),
])
def test_bad_tagged_sentences_are_refused_as_the_full_reading_refuses_them(tmp_path, data, message):
    (tmp_path / "c.conll").write_bytes(data)
    with pytest.raises(RnncliError) as full:
        tokenize([str(tmp_path / "c.conll")], fmt="conll")
    with pytest.raises(RnncliError) as streamed:
        with stream.stream_tokenize([str(tmp_path / "c.conll")], str(tmp_path / "b.npz"), level="word", fmt="conll"):
            pass
    assert str(streamed.value) == str(full.value) and message in str(full.value)


def test_tagged_sentences_of_more_words_than_are_counted_exactly_are_encoded_from_the_text(tmp_path, monkeypatch):
    import rnncli.text.stream_words as stream_words

    monkeypatch.setattr(stream_words, "DISTINCT", 50)
    text = "".join(f"The\tO\ncat\tB-ANI\nRare{i}\tO\n\n" for i in range(400))
    (tmp_path / "c.conll").write_text(text, encoding="utf-8")
    with stream.stream_tokenize([str(tmp_path / "c.conll")], str(tmp_path / "b.npz"), level="word", fmt="conll",
                                valid_frac=0.1, lower=True) as ds:
        assert any("more than 50 different words" in w for w in ds.warnings)
        vocab, chars, split = ds.meta["vocab"], ds.meta["chars"], ds.train
        assert vocab[4:6] == ["cat", "the"]
        assert [vocab[i] for i in split.ids[:3]] == ["the", "cat", "<unk>"]
        assert "".join(chars[c] for c in split.chars[: split.char_offsets[2]]) == "Thecat"  # as written
        assert len(split.ids) == 3 * split.num_sequences
