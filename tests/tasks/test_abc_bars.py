"""bench/abc_bars.py, the bar counter behind the music benchmark: exact on hand-made bars, and
on the real Nottingham tunes (when ../shared/data is there) nearly every bar adds up."""

import json
import os
import sys
from fractions import Fraction

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
from abc_bars import bar_fidelity, bars, meter_field  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "nottingham")


def test_hand_made_bars():
    tune = 'T:x\nM:6/8\nL:1/8\nK:G\nd|"G"g2g B^AB|d2d G3|(3ABc d>c B2|[GB]3 z3|d4 e|g6||'
    got = [(d, w, c) for d, w, c in bars(tune)]
    # pickup d, then five 6/8 bars of which the fourth is short (d4 e = 5/8), and the final bar
    assert [d for d, _, _ in got] == [Fraction(1, 8), Fraction(3, 4), Fraction(3, 4), Fraction(3, 4),
                                      Fraction(3, 4), Fraction(5, 8), Fraction(3, 4)]
    assert [c for _, _, c in got] == [False, True, True, True, True, True, False]
    share, n = bar_fidelity([tune])
    assert n == 5 and share == pytest.approx(4 / 5)
    assert meter_field(tune) == "6/8"


def test_meter_change_and_default_length():
    tune = "M:3/4\nK:D\nA|d2 f2 a2|b2 a2 f2|[M:2/4]d4|e4|f4|]"  # 3/4: L defaults to 1/8... 3/4 is not below 3/4
    d = [x for x, _, _ in bars(tune)]
    assert d[1] == Fraction(3, 4) and d[-2] == Fraction(1, 2)


@pytest.mark.skipif(not os.path.isdir(DATA), reason="../shared/data/nottingham is not here")
def test_real_tunes_add_up():
    tunes = [json.loads(line)["text"] for line in open(os.path.join(DATA, "valid.jsonl"), encoding="utf-8")]
    share, n = bar_fidelity(tunes)
    assert n > 500 and share > 0.99
