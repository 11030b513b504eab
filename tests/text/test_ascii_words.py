"""text/ascii_words.py against its oracle, the regular expression of text/vocab.py."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rnncli.text import ascii_words
from rnncli.text.ascii_words import Interner, newlines, spans
from rnncli.text.vocab import words_and_newlines

# the bytes the expression treats specially, a few letters, digits, spaces of every kind and controls
TRICKY = "ab_Z9'-'-<<>>\n\n\t\r\x0b\x0c\x1c\x1f .,!\"#\x01\x7f"
texts = st.text(st.sampled_from(TRICKY), max_size=60)
long_words = st.text(st.sampled_from("xyz'-"), min_size=9, max_size=40)
mixed = st.lists(st.one_of(texts, long_words, st.sampled_from(["é", "naïve", "\u2014", "\xa0", "\0"])),
                 max_size=8).map(" ".join)


@settings(max_examples=2000, deadline=None)
@given(texts)
def test_spans_are_the_expressions_tokens(text):
    starts, ends = spans(np.frombuffer(text.encode("ascii"), np.uint8))
    assert [text[s:e] for s, e in zip(starts, ends, strict=True)] == words_and_newlines(text)


def test_every_ascii_byte_is_classed_as_the_expression_classes_it():
    for c in range(128):
        text = f"a{chr(c)}b{chr(c)}{chr(c)}"
        starts, ends = spans(np.frombuffer(text.encode("ascii"), np.uint8))
        assert [text[s:e] for s, e in zip(starts, ends, strict=True)] == words_and_newlines(text), repr(chr(c))


@settings(max_examples=300, deadline=None)
@given(st.lists(mixed, min_size=1, max_size=6), st.sampled_from([3, 11, 1 << 18]))
def test_the_interner_numbers_the_expressions_tokens(texts, step):
    """Non-ASCII text and NUL take the expression, tokens of more than 16 bytes the dict, a long text
    is split in steps; a token keeps its number wherever it is met."""
    old, ascii_words.STEP = ascii_words.STEP, step
    try:
        interner = Interner()
        for text in texts:
            numbers = interner.of_text(text)
            assert [interner.tokens[n] for n in numbers] == words_and_newlines(text)
            assert newlines(text).tolist() == [t == "\n" for t in words_and_newlines(text)]
        assert len(set(interner.tokens)) == len(interner) and interner.tokens[0] == "\n"
    finally:
        ascii_words.STEP = old


def test_forgotten_tokens_leave_the_cache_and_come_back_under_new_numbers():
    interner = Interner()
    text = "the cat sat on the mat\nthe dog's bone-dry supercalifragilistic\n"
    before = interner.of_text(text)
    keep = np.zeros(len(interner), bool)
    keep[interner.index["the"]] = keep[interner.index["mat"]] = True
    renumber = interner.keep(keep)
    assert interner.tokens == ["\n", "the", "mat"]
    assert renumber[before[0]] == interner.index["the"] and renumber[interner.index["the"]] >= 0
    again = interner.of_text(text)
    assert [interner.tokens[n] for n in again] == words_and_newlines(text)
    assert len(interner) == len(set(words_and_newlines(text)))
