"""Holding out a validation part: the end of a text, or a random share of labelled examples.

Both return (train units, their origins, valid units, their origins, a description of what was
held out for the report); units and origins are as text/encode.py reads them.
"""

import re

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


def split_stream(units, origin, frac, level):
    """Text: hold out the last `frac` of the tokens. Cut between paragraphs (or lines) when one
    lies near the target; otherwise inside the unit there, at a line boundary (char level), so
    that a corpus without blank lines still gets its validation part.
    -> (train units, train origins, valid units, valid origins, description)."""
    what = "paragraphs" if level == "char" else "lines"
    sizes = np.array([len(u) for u in units], np.int64)
    total = int(sizes.sum())
    if frac <= 0 or total < 2:
        return units, origin, None, None, "none"
    target = total * (1 - frac)
    cum = np.cumsum(sizes)
    inner = cum[:-1]
    if len(inner):
        j = int(np.argmin(np.abs(inner - target)))
        if abs(inner[j] - target) <= 0.5 * frac * total:
            k = j + 1
            share = 1 - inner[j] / total
            return (units[:k], origin[:k], units[k:], origin[k:],
                    f"the last {len(units) - k:,} of {len(units):,} {what} ({100 * share:.1f} % of the tokens)")
    k = int(np.searchsorted(cum, target, side="right"))
    k = min(k, len(units) - 1)
    unit = units[k]
    if len(unit) < 2:  # no room inside: fall back to the nearest boundary
        k = min(max(k, 1), len(units) - 1)
        return units[:k], origin[:k], units[k:], origin[k:], f"the last {len(units) - k:,} {what}"
    cut = _cut_point(unit, int(round(target - (cum[k] - sizes[k]))), level)
    path, line = origin[k]
    line_b = line + (unit[:cut].count("\n") if level == "char" else 0)
    train_u, train_o = units[:k] + [unit[:cut]], origin[:k] + [(path, line)]
    valid_u, valid_o = [unit[cut:]] + units[k + 1 :], [(path, line_b)] + origin[k + 1 :]
    share = sum(len(u) for u in valid_u) / total
    return (train_u, train_o, valid_u, valid_o,
            f"the last {100 * share:.1f} % of the tokens, from {where(path, line_b)} on")


def split_examples(units, origin, frac, seed):
    """tsv/conll: a random share of the examples, the rest in their order."""
    S = len(units)
    if frac <= 0 or S < 2:
        return units, origin, None, None, "none"
    k = min(max(1, int(round(S * frac))), S - 1)
    order = np.random.default_rng(seed).permutation(S)
    tr, va = np.sort(order[k:]), np.sort(order[:k])
    return ([units[i] for i in tr], [origin[i] for i in tr], [units[i] for i in va], [origin[i] for i in va],
            f"a random {k:,} of {S:,} examples (seed {seed})")
