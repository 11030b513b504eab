"""Holding out a validation part: the end of a text, or a random share of labelled examples.

Both return (train units, their origins, valid units, their origins, a description of what was
held out for the report); units and origins are as text/encode.py reads them.
"""

import re
from typing import NamedTuple

import numpy as np

from rnncli.errors import where


def _cut_point(unit, offset, level):
    """Where to cut one unit near `offset` (1 <= cut < len): after a newline, else at a space."""
    if level == "char":
        for sep in ("\n", " "):
            spots = [m.end() for m in re.finditer(re.escape(sep), unit) if 0 < m.end() < len(unit)]
            if spots:
                return min(spots, key=lambda s: abs(s - offset))
    return min(max(offset, 1), len(unit) - 1)


class Cut(NamedTuple):
    """Where the last `frac` of a stream of units is held out: units[k:] (whole, when `inside` is None),
    or from position `inside` of unit k on; `share` of the tokens held out (None: not said)."""

    k: int
    inside: int | None
    share: float | None


BLOCK = 1 << 20  # units read at a time: sizes may be a mapped file of millions of lines


def _first_end(sizes, value, strictly):
    """The first unit whose end (the running sum of sizes) is > value (strictly) or >= value ->
    (its index, its end); (len(sizes), the total) when none is. Read in blocks: no running sum of
    the whole array is held."""
    done = 0
    for s in range(0, len(sizes), BLOCK):
        ends = np.cumsum(sizes[s : s + BLOCK], dtype=np.int64) + done
        i = int(np.searchsorted(ends, value, side="right" if strictly else "left"))
        if i < len(ends):
            return s + i, int(ends[i])
        done = int(ends[-1])
    return len(sizes), done


def stream_cut(sizes, frac):
    """The cut of a stream of units of these sizes that holds out its last `frac` -> a Cut, or None
    (nothing held out). Between two units when one lies near the target; otherwise inside the unit
    there (where exactly: _cut_point, on its text); a unit under two tokens falls back to the
    nearest boundary. split_stream and text/stream.py share it; sizes may be a mapped file."""
    n = len(sizes)
    total = _first_end(sizes, float("inf"), True)[1]
    if frac <= 0 or total < 2:
        return None
    target = total * (1 - frac)
    k, end = _first_end(sizes, target, True)  # the unit the target falls in (the last ends at total > target)
    start = end - int(sizes[k])
    if n > 1:
        # the boundaries nearest the target: where unit k starts (at or before it) and where it ends (after)
        below, above = (start if k >= 1 else None), (end if k <= n - 2 else None)
        if below is not None and (above is None or abs(below - target) <= abs(above - target)):
            j, at = _first_end(sizes, below, False)[0], below  # the first boundary there (units of size 0)
        else:
            j, at = k, end
        if abs(at - target) <= 0.5 * frac * total:
            return Cut(j + 1, None, 1 - at / total)
    if sizes[k] < 2:  # no room inside
        return Cut(min(max(k, 1), n - 1), None, None)
    return Cut(k, int(round(target - start)), None)


def split_stream(units, origin, frac, level):
    """Text: hold out the last `frac` of the tokens (stream_cut). Cut between paragraphs (or lines)
    when one lies near the target; otherwise inside the unit there, at a line boundary (char level),
    so that a corpus without blank lines still gets its validation part.
    -> (train units, train origins, valid units, valid origins, description)."""
    what = "paragraphs" if level == "char" else "lines"
    sizes = np.array([len(u) for u in units], np.int64)
    c = stream_cut(sizes, frac)
    if c is None:
        return units, origin, None, None, "none"
    k = c.k
    if c.inside is None:
        said = (f"the last {len(units) - k:,} of {len(units):,} {what} ({100 * c.share:.1f} % of the tokens)"
                if c.share is not None else f"the last {len(units) - k:,} {what}")
        return units[:k], origin[:k], units[k:], origin[k:], said
    unit = units[k]
    cut = _cut_point(unit, c.inside, level)
    path, line = origin[k]
    line_b = line + (unit[:cut].count("\n") if level == "char" else 0)
    train_u, train_o = units[:k] + [unit[:cut]], origin[:k] + [(path, line)]
    valid_u, valid_o = [unit[cut:]] + units[k + 1 :], [(path, line_b)] + origin[k + 1 :]
    share = sum(len(u) for u in valid_u) / int(sizes.sum())
    return (train_u, train_o, valid_u, valid_o,
            f"the last {100 * share:.1f} % of the tokens, from {where(path, line_b)} on")


def held_out_examples(S, frac, seed):
    """Which of S examples are held out: a random share, fixed by the seed -> (a mask of them, or
    None for none; the description). split_examples and text/stream_examples.py share it."""
    if frac <= 0 or S < 2:
        return None, "none"
    k = min(max(1, int(round(S * frac))), S - 1)
    held = np.zeros(S, bool)
    # rng.permutation(S) drawn in place over 4-byte numbers: the same draw in half the memory
    order = np.arange(S, dtype=np.uint32 if S <= np.iinfo(np.uint32).max else np.int64)
    np.random.default_rng(seed).shuffle(order)
    held[order[:k]] = True
    return held, f"a random {k:,} of {S:,} examples (seed {seed})"


def split_examples(units, origin, frac, seed):
    """tsv/conll: a random share of the examples, the rest in their order."""
    held, how = held_out_examples(len(units), frac, seed)
    if held is None:
        return units, origin, None, None, how
    tr, va = np.flatnonzero(~held), np.flatnonzero(held)
    return [units[i] for i in tr], [origin[i] for i in tr], [units[i] for i in va], [origin[i] for i in va], how
