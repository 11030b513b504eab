"""A small ABC reader for one question: do the notes of each bar add up to the meter?

    python bench/abc_bars.py ../shared/data/nottingham/valid.jsonl     # the share for real tunes

What it reads of ABC 2.1: header fields M: (meter; C = 4/4, C| = 2/2) and L: (unit note length; by
default 1/16 when the meter is below 3/4, else 1/8), also inline ([M:3/4]) or on a line of their own
inside the body; notes A-G a-g with accidentals and octave marks, rests z/x, lengths (2, /2, /, 3/2),
chords [CEG] (the first note's length), broken rhythm (a>b, a<b), tuplets ((3abc: three in the time
of two). Chord symbols "Am", decorations !trill! ~ . and grace notes {g} take no time.

Which bars count: a part of a tune may start with a pickup and end with the bar that completes it,
so the first and the last bar of each section (between the start, ||, |:, :|, ::, |], [|, an ending
[1/[2, and a meter or length change) are left out; every other bar is "complete" when its notes add
up to the meter exactly.
"""

import json
import re
import sys
from fractions import Fraction

NOTE = re.compile(r"(\^{1,2}|_{1,2}|=)?([A-Ga-gzxZ])([,']*)(\d*)(/*)(\d*)")
SECTION_BARS = ("||", "|:", ":|", "::", "|]", "[|", ":||", "||:")


def meter_length(value):
    """'6/8' -> 3/4 (of a whole note); 'C' -> 1; 'C|' -> 1; None for 'none' or nonsense."""
    value = value.strip()
    if value == "C":
        return Fraction(1)
    if value == "C|":
        return Fraction(1)
    m = re.fullmatch(r"(\d+(?:\+\d+)*)/(\d+)", value)
    if not m:
        return None
    return Fraction(sum(int(x) for x in m.group(1).split("+")), int(m.group(2)))


def default_unit(meter):
    return Fraction(1, 16) if meter is not None and meter < Fraction(3, 4) else Fraction(1, 8)


def note_length(num, slashes, den):
    length = Fraction(int(num) if num else 1)
    if slashes:
        length /= int(den) if den else 2 ** len(slashes)
    return length


def _tuplet(p, meter):
    """(p: the number of notes that fill the time of q."""
    if p in (2, 4, 8):
        q = 3
    elif p in (3, 6):
        q = 2
    else:  # 5, 7, 9: 3 in compound meters, else 2
        q = 3 if meter is not None and meter.numerator % 3 == 0 and meter.numerator > 3 else 2
    return Fraction(q, p)


def bars(tune):
    """-> list of (duration of the bar's notes, bar length the meter asks for, counts?) for a tune."""
    meter, unit, unit_given = None, None, False
    out, section = [], []

    def close_section():
        # first and last bar of a section may be partial (pickup and its complement)
        for k, (dur, want) in enumerate(section):
            out.append((dur, want, 0 < k < len(section) - 1))
        section.clear()

    current, tuplet_left, tuplet_factor, broken = Fraction(0), 0, Fraction(1), None
    for line in tune.split("\n"):
        header = re.match(r"^([A-Za-z]):(.*)$", line)
        if header:
            key, value = header.group(1), header.group(2)
            if key == "M":
                close_section()
                meter = meter_length(value)
                if not unit_given:
                    unit = default_unit(meter)
            elif key == "L":
                close_section()
                unit, unit_given = meter_length(value) or unit, True
            continue
        if unit is None:
            unit = default_unit(meter)
        # drop what takes no time: chord symbols, decorations, grace notes, inline fields but meter
        line = re.sub(r'"[^"]*"', "", line)
        line = re.sub(r"![^!]*!|\+[^+]*\+", "", line)
        line = re.sub(r"\{[^}]*\}", "", line)
        i = 0
        while i < len(line):
            ch = line[i]
            inline = re.match(r"\[([A-Za-z]):([^\]]*)\]", line[i:])
            if inline:
                if inline.group(1) == "M":
                    if current:
                        section.append((current, meter))
                        current = Fraction(0)
                    close_section()
                    meter = meter_length(inline.group(2))
                elif inline.group(1) == "L":
                    unit = meter_length(inline.group(2)) or unit
                i += inline.end()
                continue
            bar = re.match(r":*\|[\]|:]*\d*|:*\[\||::|:+", line[i:])
            ending = re.match(r"\[\d", line[i:])
            if bar or ending:
                token = (bar or ending).group(0)
                if current or not bar:
                    if current:
                        section.append((current, meter))
                    current = Fraction(0)
                if ending or any(s in token for s in SECTION_BARS) or re.search(r"\d", token):
                    close_section()
                i += len(token)
                continue
            if ch == "(" and i + 1 < len(line) and line[i + 1].isdigit():
                tuplet_left, tuplet_factor = int(line[i + 1]), _tuplet(int(line[i + 1]), meter)
                i += 2
                continue
            if ch == "[":  # a chord: the first note's length; skip the rest
                end = line.find("]", i)
                end = len(line) if end < 0 else end
                m = NOTE.search(line, i + 1, end)
                length = note_length(m.group(4), m.group(5), m.group(6)) if m else Fraction(0)
                after = re.match(r"(\d*)(/*)(\d*)", line[end + 1 :])
                if after.group(0):
                    length *= note_length(after.group(1), after.group(2), after.group(3))
                i = end + 1 + len(after.group(0))
                current, tuplet_left, broken = _add(current, length * unit, tuplet_left, tuplet_factor, broken,
                                                    line, i)
                if tuplet_left == 0:
                    tuplet_factor = Fraction(1)
                continue
            m = NOTE.match(line, i)
            if m and (m.group(0)):
                length = note_length(m.group(4), m.group(5), m.group(6))
                if m.group(2) == "Z":  # multi-measure rest: whole bars
                    length = meter / unit * length if meter else Fraction(0)
                i = m.end()
                current, tuplet_left, broken = _add(current, length * unit, tuplet_left, tuplet_factor, broken,
                                                    line, i)
                if tuplet_left == 0:
                    tuplet_factor = Fraction(1)
                continue
            i += 1
    if current:
        section.append((current, meter))
    close_section()
    return out


def _add(current, length, tuplet_left, factor, broken, line, i):
    """Add one note's time, applying a pending broken rhythm and the tuplet in force; read a
    broken-rhythm sign right after the note for the next one."""
    if tuplet_left:
        length *= factor
        tuplet_left -= 1
    if broken is not None:
        length *= broken
        broken = None
    sign = re.match(r"\s*(>+|<+)", line[i:])
    if sign:
        n = len(sign.group(1))
        longer, shorter = 2 - Fraction(1, 2 ** n), Fraction(1, 2 ** n)
        if sign.group(1)[0] == ">":
            length, broken = length * longer, shorter
        else:
            length, broken = length * shorter, longer
    return current + length, tuplet_left, broken


def bar_fidelity(tunes):
    """The share of counted bars whose notes add up to the meter, over some tunes: (share, bars counted)."""
    good = total = 0
    for tune in tunes:
        for duration, want, counts in bars(tune):
            if counts and want is not None:
                total += 1
                good += duration == want
    return (good / total if total else 0.0), total


def meter_field(tune):
    """The first M: field's value ('6/8'), or None."""
    m = re.search(r"^M:\s*(\S+)", tune, re.M)
    return m.group(1) if m else None


if __name__ == "__main__":
    texts = [json.loads(line)["text"] for line in open(sys.argv[1], encoding="utf-8")]
    share, n = bar_fidelity(texts)
    print(f"{len(texts)} tunes: {100 * share:.2f} % of {n:,} counted bars add up to the meter")
