"""Readers for the three input formats. `-` is standard input; errors name file and line.

    text   plain UTF-8, for language models
    tsv    label<TAB>text per line, for classification
    pairs  source<TAB>target per line, for encoder-decoders (translation); told from tsv by its
           first column, which a label set does not fill: see `looks_like_pairs`
    conll  token<TAB>tag (or space-separated columns, tag last) per line, a blank line between
           sentences, -DOCSTART- lines skipped, for tagging
    jsonl  one JSON object per line, whose fields say which of the four it stands for (JSONL_KINDS):
           {"text"}, {"label", "text"}, {"tokens", "tags"} or {"source", "target"}; the only
           sane way to hold texts with newlines in them (tunes, documents). Other fields are ignored.
           {"text", "target"} with a number (or a list of numbers) as the target is a fifth kind,
           "scores": a sequence and its measured values, for regression (a promoter and its
           transcription rate, a review and its stars).
"""

import json
import math
import os
import sys

from rnncli.errors import RnncliError, where

MAX_LINE = 1 << 20  # a line longer than 1 MiB in a tsv/conll file is not data we understand
FORMATS = ("text", "tsv", "conll", "pairs")
MAX_SCORES = 1000  # numbers in one record's target
# JSON lines: the fields that make each record kind, most specific first, and the format it stands for
JSONL_KINDS = ((("label", "text"), "tsv"), (("tokens", "tags"), "conll"), (("source", "target"), "pairs"),
               (("text",), "text"))
DISTINCT_PAIRS = 50  # more distinct first columns than this in the sample: sentences, not labels


def require_file(path):
    """One-line errors for an input that is missing or a folder (`-`, standard input, always exists)."""
    if str(path) == "-":
        return
    if os.path.isdir(path):
        raise RnncliError(f"{path}: is a directory, expected a file")
    if not os.path.exists(path):
        raise RnncliError(f"{path}: no such file")


def read_text(path):
    """The whole file as a str; rejects directories, binary data and invalid UTF-8."""
    if str(path) == "-":
        data = sys.stdin.buffer.read()
    else:
        require_file(path)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise RnncliError(f"{path}: cannot read: {e.strerror}") from None
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise RnncliError(f"{where(path, line)}: NUL byte: this looks like a binary file, not text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise RnncliError(f"{where(path, line)}: invalid UTF-8 (byte 0x{data[e.start]:02x})") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n")


def _lines(text, path):
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for n, line in enumerate(lines, start=1):
        if len(line) > MAX_LINE:
            raise RnncliError(f"{where(path, n)}: line of {len(line):,} characters (limit {MAX_LINE:,})")
    return lines


def _two_columns(text, path, first, second, nothing, exact=False):
    """-> list of (line number, first column, second column), one per non-empty line; a line
    without a tab or with an empty column is an error naming the line, and so, when `exact`,
    is a line with a second tab (a third column the format has no place for)."""
    records = []
    for n, line in enumerate(_lines(text, path), start=1):
        if not line.strip():
            continue
        if "\t" not in line:
            raise RnncliError(f"{where(path, n)}: expected '{first}<TAB>{second}', found no tab")
        if exact and line.count("\t") > 1:
            raise RnncliError(f"{where(path, n)}: expected '{first}<TAB>{second}', found {line.count(chr(9)) + 1} "
                              "tab-separated fields (a tab inside a sentence? remove it or quote the file as JSON "
                              "lines)")
        a, b = line.split("\t", 1)
        for value, name in ((a, first), (b, second)):
            if not value.strip():
                raise RnncliError(f"{where(path, n)}: empty {name}")
        records.append((n, a, b))
    if not records:
        raise RnncliError(f"{where(path)}: no {nothing} (empty file?)")
    return records


def tsv_records(text, path):
    """-> list of (line number, label, text); an example with no words has nothing to classify."""
    return [(n, label.strip(), body) for n, label, body in _two_columns(text, path, "label", "text", "examples")]


def pair_records(text, path):
    """-> list of (line number, source, target) for source<TAB>target pairs."""
    return _two_columns(text, path, "source", "target", "pairs", exact=True)


def looks_like_pairs(lines):
    """A two-column TSV holds pairs, not labelled text, when its first column takes more than
    DISTINCT_PAIRS distinct values in the lines sampled (a label set is small) or when most of
    its first columns hold a space (labels are single words)."""
    firsts = [ln.split("\t", 1)[0].strip() for ln in lines]
    spaced = sum(" " in f for f in firsts)
    return len(set(firsts)) > DISTINCT_PAIRS or spaced > len(firsts) / 2


def parse_tsv(text, path):
    """-> (labels, texts), one pair per non-empty line."""
    records = tsv_records(text, path)
    return [r[1] for r in records], [r[2] for r in records]


def conll_line(line, columns):
    """A CoNLL line that is not blank, and the number of columns of its file's first (None before
    it) -> ("token", token, tag, columns), ("skip", ...) for -DOCSTART-, or ("problem", what is wrong,
    None, columns)."""
    parts = line.split("\t") if "\t" in line else line.split()
    if parts[0] == "-DOCSTART-":
        return "skip", None, None, columns
    if len(parts) < 2:
        return "problem", "expected 'token<TAB>tag', found 1 column", None, columns
    if columns is not None and len(parts) != columns:
        return "problem", f"expected {columns} columns like the first line, found {len(parts)}", None, columns
    tag = parts[-1].strip()
    if not tag:
        return "problem", "empty tag", None, columns or len(parts)
    return "token", parts[0], tag, columns or len(parts)


class LineProblem(Exception):
    """A line of a file that is not what its format says: its number and what is wrong (the reader
    adds the file's name)."""

    def __init__(self, line, what):
        super().__init__(what)
        self.line, self.what = line, what


def conll_sentences(numbered):
    """(line number, line) pairs of a CoNLL file -> (line number of the first token, tokens, tags)
    for each sentence; a line that is wrong raises LineProblem."""
    words, tags, start, columns = [], [], None, None
    for n, line in numbered:
        if not line.strip():
            if words:
                yield start, words, tags
                words, tags = [], []
            continue
        kind, word, tag, columns = conll_line(line, columns)
        if kind == "problem":
            raise LineProblem(n, word)
        if kind == "skip":
            continue
        if not words:
            start = n
        words.append(word)
        tags.append(tag)
    if words:
        yield start, words, tags


def conll_records(text, path):
    """-> list of (line number of the first token, tokens, tags), one per sentence."""
    try:
        records = list(conll_sentences(enumerate(_lines(text, path), start=1)))
    except LineProblem as e:
        raise RnncliError(f"{where(path, e.line)}: {e.what}") from None
    if not records:
        raise RnncliError(f"{where(path)}: no sentences (empty file?)")
    return records


def parse_conll(text, path):
    """-> (sentences, tags): lists of token lists and tag lists."""
    records = conll_records(text, path)
    return [r[1] for r in records], [r[2] for r in records]


def _jsonl_string(obj, key, path, n, allow_int=False):
    value = obj[key]
    if allow_int and isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # labels shipped as 0/1
    if not isinstance(value, str):
        raise RnncliError(f"{where(path, n)}: field {key!r} must be a string, found {type(value).__name__}")
    return value


def _jsonl_list(obj, key, path, n):
    value = obj[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RnncliError(f"{where(path, n)}: field {key!r} must be a list of strings")
    return value


def json_object(line, path, n):
    """One JSON line as a dict, or a one-line error naming file:line."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise RnncliError(f"{where(path, n)}: invalid JSON ({e.msg}, column {e.colno})") from None
    except RecursionError:  # a record nested thousands of levels deep
        raise RnncliError(f"{where(path, n)}: invalid JSON (nested too deeply)") from None
    except ValueError as e:  # e.g. an integer of more than 4,300 digits
        raise RnncliError(f"{where(path, n)}: invalid JSON ({str(e)[:100]})") from None
    if not isinstance(obj, dict):
        raise RnncliError(f"{where(path, n)}: expected a JSON object {{...}}, found {type(obj).__name__}")
    return obj


def jsonl_kind(obj):
    """The format a JSON record stands for, from its fields (None if none fits): a text with a
    numeric target is "scores"; a target that is text makes a pair with a source. A record of
    frames (frames/records.py) is "frames:" and the format of its output field."""
    from rnncli.frames.records import frame_field

    if frame_field(obj) is not None:
        out = next((kind for key, kind in (("label", "tsv"), ("tags", "conll"), ("target", "scores"),
                                           ("text", "pairs")) if key in obj), None)
        return None if out is None else f"frames:{out}"
    if "text" in obj and "target" in obj and "source" not in obj and "label" not in obj:
        return "scores"
    return next((kind for keys, kind in JSONL_KINDS if all(k in obj for k in keys)), None)


def is_number(v):
    """A finite int or float, and not a bool (JSON's true is no number here)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def jsonl_scores(obj, path, n):
    """A record's "target": a finite number or a non-empty list of them -> list of floats."""
    value = obj["target"]
    values = value if isinstance(value, list) else [value]
    if not values or len(values) > MAX_SCORES or not all(is_number(v) for v in values):
        raise RnncliError(f"{where(path, n)}: field 'target' must be a finite number or a list of 1 to "
                          f"{MAX_SCORES:,} of them, found {json.dumps(value)[:60]}")
    return [float(v) for v in values]


def _tagged_record(obj, path, n):
    """{"tokens": [...], "tags": [...]} -> (line, tokens, tags): as many of each, words without spaces."""
    tokens, tags = _jsonl_list(obj, "tokens", path, n), _jsonl_list(obj, "tags", path, n)
    if len(tokens) != len(tags):
        raise RnncliError(f"{where(path, n)}: {len(tokens)} tokens but {len(tags)} tags")
    if not tokens:
        raise RnncliError(f"{where(path, n)}: field 'tokens' is empty")
    bad = next((t for t in tokens if not t.strip() or any(c.isspace() for c in t)), None)
    if bad is not None:
        raise RnncliError(f"{where(path, n)}: field 'tokens' holds {bad!r}: a token is one word without spaces")
    return n, tokens, [t.strip() for t in tags]


def _scored_record(obj, path, n, records):
    """{"text": ..., "target": number or [numbers]} -> (line, text, [numbers]), as many numbers as
    the first record's."""
    text, scores = _jsonl_string(obj, "text", path, n), jsonl_scores(obj, path, n)
    if not text.strip():
        raise RnncliError(f"{where(path, n)}: field 'text' is empty")
    if records and len(scores) != len(records[0][2]):
        raise RnncliError(f"{where(path, n)}: {len(scores)} numbers in 'target', where the first record "
                          f"has {len(records[0][2])}")
    return n, text, scores


def jsonl_records(text, path, audio_meta=None):
    """-> (kind, records): records shaped as the kind's own reader gives them:
    text  (line, text)               tsv    (line, label, text)
    conll (line, tokens, tags)       pairs  (line, source, target)
    scores (line, text, [numbers]): every record with as many numbers as the first
    With frames (kind "frames:tsv", "frames:conll", "frames:scores" or "frames:pairs", a recording
    and its transcript) a (T, D) array stands where the text, the tokens or the source would;
    audio_meta is text/frames.record_frames's.
    The first record decides the kind; every line must then have its fields, of the right type
    and not empty. Blank lines are skipped."""
    records, kind, keys = [], None, None
    audio_meta = {} if audio_meta is None else audio_meta
    for n, line in enumerate(_lines(text, path), start=1):
        if not line.strip():
            continue
        obj = json_object(line, path, n)
        if kind is None:
            kind = jsonl_kind(obj)
            if kind is None:
                raise RnncliError(f"{where(path, n)}: expected the fields text, label + text, tokens + tags, "
                                  "source + target, text + target, or frames/features/audio with label, tags, "
                                  f"target or text; found {', '.join(map(repr, obj)) or 'none'}")
            keys = (("text", "target") if kind == "scores" else () if kind.startswith("frames:")
                    else next(k for k, v in JSONL_KINDS if v == kind))
        for key in keys:
            if key not in obj:
                raise RnncliError(f"{where(path, n)}: missing field {key!r} (this file's records have "
                                  f"{' and '.join(keys)})")
        if kind == "conll":
            records.append(_tagged_record(obj, path, n))
        elif kind.startswith("frames:"):
            records.append(_frames_record(obj, kind[7:], path, n, audio_meta, records))
        elif kind == "scores":
            records.append(_scored_record(obj, path, n, records))
        else:
            values = [_jsonl_string(obj, key, path, n, allow_int=key == "label") for key in keys]
            for key, value in zip(keys, values, strict=True):
                if not value.strip():
                    raise RnncliError(f"{where(path, n)}: field {key!r} is empty")
            if kind == "tsv":
                values[0] = values[0].strip()
            records.append((n, *values))
    if not records:
        raise RnncliError(f"{where(path)}: no records (empty file?)")
    return kind, records


def _frames_record(obj, out, path, n, audio_meta, records):
    """One frames record shaped as its output's reader gives records (the frames where the text is)."""
    from rnncli.frames.records import frame_field, record_frames

    if frame_field(obj) is None:
        raise RnncliError(f"{where(path, n)}: missing field 'frames', 'features' or 'audio' (this file's records "
                          "hold frames)")
    key = {"tsv": "label", "conll": "tags", "scores": "target", "pairs": "text"}[out]
    if key not in obj:
        raise RnncliError(f"{where(path, n)}: missing field {key!r} (this file's records have one)")
    x = record_frames(obj, path, n, audio_meta)
    first = records[0][2 if out == "tsv" else 1].shape[1] if records else x.shape[1]
    if x.shape[1] != first:
        raise RnncliError(f"{where(path, n)}: frames of {x.shape[1]} numbers where the first record's have {first}")
    if out == "tsv":
        return n, _jsonl_string(obj, "label", path, n, allow_int=True).strip(), x
    if out == "pairs":  # speech: the recording's transcript
        text = _jsonl_string(obj, "text", path, n)
        if not text.strip():
            what = "an image needs its caption" if "image" in obj or "pixels" in obj else \
                "a recording needs its transcript"
            raise RnncliError(f"{where(path, n)}: field 'text' is empty ({what})")
        return n, x, text
    if out == "scores":
        scores = jsonl_scores(obj, path, n)
        if records and len(scores) != len(records[0][2]):
            raise RnncliError(f"{where(path, n)}: {len(scores)} numbers in 'target', where the first record "
                              f"has {len(records[0][2])}")
        return n, x, scores
    tags = _jsonl_list(obj, "tags", path, n)
    if len(tags) != len(x):
        raise RnncliError(f"{where(path, n)}: {len(x)} frames but {len(tags)} tags (one tag per frame)")
    return n, x, [t.strip() for t in tags]


def looks_like_jsonl(text, path):
    """A .jsonl file, or one whose first non-blank line is a JSON object."""
    if str(path).endswith(".jsonl"):
        return True
    first = next((ln for ln in text.split("\n", 50)[:50] if ln.strip()), "")
    if not first.lstrip().startswith("{"):
        return False
    try:
        return isinstance(json.loads(first), dict)
    except (ValueError, RecursionError):
        return False


def detect_format(text):
    """Guess text / tsv / conll / pairs from the first lines (see the module docstring)."""
    lines = text.split("\n")[:2000]
    nonempty = [ln for ln in lines if ln.strip()][:200]
    if not nonempty:
        return "text"
    has_blank = any(not ln.strip() for ln in lines[: len(lines) - 1])

    def tagish(s):
        return s == "O" or (len(s) > 2 and s[0] in "BIES" and s[1] in "-_")

    if all("\t" in ln for ln in nonempty):
        lasts = [ln.rsplit("\t", 1)[1].strip() for ln in nonempty]
        if all(" " not in ln.split("\t", 1)[1].strip() for ln in nonempty) and (
            has_blank or all(tagish(t) for t in lasts)
        ):
            return "conll"
        sample = [ln for ln in lines if ln.strip()][:2000]
        return "pairs" if looks_like_pairs(sample) else "tsv"
    split = [ln.split() for ln in nonempty if ln.split()[0] != "-DOCSTART-"]
    if split and has_blank and all(2 <= len(p) <= 6 for p in split) and all(tagish(p[-1]) for p in split):
        return "conll"
    return "text"


CHUNK = 1 << 16


def line_groups(stream, path):
    """Lists of (line number, line) with every complete line that one read brings: what a pipe's
    writer has sent so far, or the next 64 KiB of a file. So `predict` answers a pipe line by line
    and still works through a file in batches. Checks each line as the other readers do."""
    pending, n = bytearray(), 0
    while True:
        chunk = stream.read1(CHUNK)
        pending += chunk
        if chunk:
            *raws, rest = pending.split(b"\n")
        else:  # end of input: a last line without a newline is a line too
            raws, rest = ([pending] if pending else []), b""
        group = []
        for raw in raws:
            n += 1
            if len(raw) > MAX_LINE:
                raise RnncliError(f"{where(path, n)}: line of {len(raw):,} bytes (limit {MAX_LINE:,})")
            if b"\x00" in raw:
                raise RnncliError(f"{where(path, n)}: NUL byte: this looks like a binary file, not text")
            try:
                line = raw.decode("utf-8").rstrip("\r")
            except UnicodeDecodeError:
                raise RnncliError(f"{where(path, n)}: invalid UTF-8") from None
            group.append((n, line.lstrip("\ufeff") if n == 1 else line))
        if len(rest) > MAX_LINE:  # a line without end in sight: stop before holding all of it
            raise RnncliError(f"{where(path, n + 1)}: line of more than {MAX_LINE:,} bytes")
        pending = bytearray(rest)
        if group:
            yield group
        if not chunk:
            return


def jsonl_field(line, path, n, key):
    """One JSON line's field for `predict`: the string `key` (text, source), or for "tokens" a list
    of strings or one string of words; None for a blank line (its answer stays blank)."""
    if not line.strip():
        return None
    obj = json_object(line, path, n)
    if key not in obj:
        raise RnncliError(f"{where(path, n)}: missing field {key!r} (found {', '.join(map(repr, obj)) or 'none'})")
    if key == "tokens" and not isinstance(obj[key], str):
        return _jsonl_list(obj, key, path, n)
    return _jsonl_string(obj, key, path, n)


def read_groups(path, conll=False, field=None):
    """Stream the input for `predict`: yields lists of (file:line, line), or with conll=True of
    (file:line, [tokens]) sentences (first column; a blank line ends one), or with field="text"
    (JSON lines) of (file:line, that field of each object), as soon as they are complete.
    Memory stays flat however long the input."""
    stream = sys.stdin.buffer if str(path) == "-" else None
    if stream is None:
        require_file(path)
        try:
            stream = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as e:
            raise RnncliError(f"{path}: cannot read: {e.strerror}") from None
    words, start = [], None
    try:
        for lines in line_groups(stream, path):
            if field is not None:
                yield [(where(path, n), jsonl_field(line, path, n, field)) for n, line in lines]
                continue
            if not conll:
                yield [(where(path, n), line) for n, line in lines]
                continue
            sentences = []
            for n, line in lines:
                if not line.strip():
                    if words:
                        sentences.append((where(path, start), words))
                    words = []
                    continue
                first = line.split("\t")[0] if "\t" in line else line.split()[0]
                if first == "-DOCSTART-":
                    continue
                start = start if words else n
                words.append(first)
            if sentences:
                yield sentences
        if conll and words:
            yield [(where(path, start), words)]
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
