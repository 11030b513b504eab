"""The tokenize pipeline: read files, cut them into examples, hold some out for validation,
build (or reuse) the vocabularies, encode everything into Splits (text/dataset.py).

Examples ("units") are what a split may not cut through:
    text, char level: paragraphs (cut after every run of two or more newlines), so that a
                      sample is one paragraph; decode(encode(text)) == text exactly
    text, word level: lines
    tsv:  one example per line;  conll: one sentence per blank-line-separated block
Every unit remembers where it came from (file, line), so that errors name the line.

Validation (text/split.py): text keeps its order and holds out its end (a language model reads
a stream); tsv/conll hold out a random share (fixed seed). The vocabulary comes from the
training part only; the label and tag sets, which the user defines, come from all the data given.
"""

import re
from collections import Counter

import numpy as np

from rnncli.errors import RnncliError, UsageError, where
from rnncli.frames.records import check_audio_options, normaliser
from rnncli.text.dataset import FORMAT_VERSION, Dataset, Split
from rnncli.text.meta import DataMeta
from rnncli.text.readers import (
    conll_records,
    detect_format,
    jsonl_records,
    looks_like_jsonl,
    pair_records,
    read_text,
    tsv_records,
)
from rnncli.text.split import split_examples, split_stream
from rnncli.text.standardise import mean_and_sd
from rnncli.text.targets import DEFAULT_TARGET_RATIO, source_limit, target_limit, too_long
from rnncli.text.vectors import WordLookup
from rnncli.text.vocab import EOS, SPECIALS, UNK, Vocab, char_counts, encode_chars, split_words


def _read(paths, fmt, known=None, audio_meta=None):
    """-> (format, [(path, text)], jsonl): the files' text, or for JSON lines their records
    (readers.jsonl_records), and the format they hold. fmt: given by the user (or "jsonl"); known:
    the format of the vocabulary being reused, which a file that is not JSON lines is read as.
    jsonl is "frames" for records of frames (frames/records.py), whose format is their output's."""
    texts = [(p, read_text(p)) for p in paths]
    if fmt == "jsonl" or (fmt is None and all(looks_like_jsonl(t, p) for p, t in texts)):
        parsed = [(p, jsonl_records(t, p, audio_meta)) for p, t in texts]
        kinds = {kind for _, (kind, _) in parsed}
        if len(kinds) > 1:
            raise UsageError(f"the JSON lines files hold different records ({', '.join(sorted(kinds))})")
        kind = kinds.pop()
        frames = kind.startswith("frames:")
        return kind[7:] if frames else kind, [(p, records) for p, (_, records) in parsed], "frames" if frames else True
    fmt = fmt or known
    if fmt == "scores":  # numbers travel in JSON lines only: {"text": ..., "target": 1.5}
        raise UsageError(f"{texts[0][0]}: scores are read from JSON lines records "
                         '({"text": ..., "target": number}); this file is not JSON lines')
    if fmt is None:
        found = {detect_format(t) for _, t in texts}
        if len(found) > 1:
            raise UsageError(f"input files look like different formats ({', '.join(sorted(found))}); "
                             "pass --format")
        fmt = found.pop()
    return fmt, texts, False


def _paragraphs(text):
    """(paragraph, its first line number) for each paragraph: text up to and including a run of
    two or more newlines."""
    ends = [m.end() for m in re.finditer(r"\n{2,}", text)]
    if not ends or ends[-1] != len(text):
        ends.append(len(text))
    out, start, line = [], 0, 1
    for end in ends:
        out.append((text[start:end], line))
        line += text.count("\n", start, end)
        start = end
    return out


def side_tokens(text, level, lower):
    """One side of a pair as tokens: its characters (char level) or its words."""
    if level == "char":
        return list(text.lower() if lower else text)
    return split_words(text, lower)


def _multiline(texts):
    """Do the texts of label+text JSON records hold newlines?"""
    return any("\n" in body for _, records in texts for _, _, body in records)


def _records(fmt, path, t, jsonl):
    """A file's records in its format's shape (readers.py), from its text or its JSON lines."""
    if jsonl:
        return t
    return {"tsv": tsv_records, "pairs": pair_records, "conll": conll_records}[fmt](t, path)


def read_units(fmt, texts, level, lower, target_level=None, jsonl=False):
    """The input as units and their origins (path, line): paragraphs (str) or word lists for
    text (with JSON lines: each record's text); (label, tokens) for tsv; (words, tags) for conll,
    whose words keep their case (the character features read it even when --lower folds the word
    vocabulary); (source tokens, target tokens, raw target) for pairs."""
    units, origin = [], []
    for path, t in texts:
        if jsonl == "frames" and fmt == "pairs":  # speech: (frames, the transcript's tokens, the transcript)
            new = [((a, side_tokens(b, target_level, lower), b), n) for n, a, b in t]
        elif jsonl == "frames":  # shaped as the words' units, each (T, D) array where the words would be
            new = [(((a, b) if fmt == "tsv" else (b, a) if fmt == "scores" else (a, b)), n) for n, a, b in t]
        elif fmt == "text" and jsonl:
            new = [((body.lower() if lower else body) if level == "char" else split_words(body, lower), n)
                   for n, body in t]
            new = [(u, n) for u, n in new if u]
        elif fmt == "text" and level == "char":
            new = _paragraphs(t.lower() if lower else t) if t else []
        elif fmt == "text":
            new = [(w, n) for n, line in enumerate(t.split("\n"), start=1) if (w := split_words(line, lower))]
        elif fmt == "tsv":
            new = [((label, side_tokens(body, level, lower)), n) for n, label, body in _records(fmt, path, t, jsonl)]
        elif fmt == "scores":  # shaped as tsv's units, the numbers where the label is
            new = [((scores, side_tokens(body, level, lower)), n) for n, body, scores in t]
        elif fmt == "pairs":
            # the raw target text stays beside its tokens: BLEU is scored against it
            new = [((side_tokens(a, level, lower), side_tokens(b, target_level or level, lower), b), n)
                   for n, a, b in _records(fmt, path, t, jsonl)]
        else:
            new = []
            for n, words, tags in _records(fmt, path, t, jsonl):
                _check_bio(tags, path, n)
                new.append(((words, tags), n))
        units.extend(u for u, _ in new)
        origin.extend((path, n) for _, n in new)
    return units, origin


def _check_target_lengths(meta, units, origin, fixed):
    """Every target must fit the decoder's length limit for its source (text/targets.py).
    fixed: the limit is an existing model's (--vocab), which the user cannot raise here."""
    ratio = meta["max_target_ratio"]
    hint = "the model's limit, set when its training data was tokenized" if fixed else "raise --max-target-ratio"
    for (source, target, _), (path, line) in zip(units, origin, strict=True):
        limit = int(target_limit(len(source), ratio))
        if len(target) > limit:
            raise RnncliError(f"{where(path, line)}: the target has {len(target)} tokens, more than a decoder "
                              f"writes for a {len(source)}-token source "
                              f"({limit} = {ratio:g} x {len(source)} + 10; {hint})")


def _check_known_sources(meta, units, origin):
    """Encoding for an existing model (--vocab, eval): a char-level model that never met <unk>
    in training (every training character is in its vocabulary) cannot read an unknown character,
    so that is an error; unknown words, which a model trained with --min-freq/--max-size has
    learnt to read as <unk>, are only counted (a warning)."""
    known = set(meta["vocab"])
    unknown = [(t, o) for (source, _, _), o in zip(units, origin, strict=True) for t in source if t not in known]
    if not unknown:
        return []
    token, (path, line) = unknown[0]
    if meta["level"] == "char" and not meta.get("source_unk_trained", True):
        raise RnncliError(f"{where(path, line)}: source character {token!r} is not in the model's vocabulary "
                          "(which holds every character it was trained on, so it never learnt <unk>)")
    return [f"{len(unknown)} source tokens are not in the vocabulary and read as <unk> (first: {token!r} "
            f"at {where(path, line)})"]


def _check_known_targets(meta, units, origin):
    """Transcripts scored against a speech model (eval, --vocab): a character the model never
    wrote (--target-level char) is an error, since it could never be recognised and says the
    transcripts are in another alphabet; unknown words only count as errors (a warning)."""
    known = set(meta["target_vocab"])
    unknown = [(t, o) for (_, target, _), o in zip(units, origin, strict=True) for t in target if t not in known]
    if not unknown:
        return []
    token, (path, line) = unknown[0]
    if meta["target_level"] == "char":
        raise RnncliError(f"{where(path, line)}: the transcript holds {token!r}, a character the model never "
                          "saw in training (it writes only the characters of its training transcripts)")
    return [f"{len(unknown)} transcript words are not in the model's vocabulary and can only be missed (first: "
            f"{token!r} at {where(path, line)})"]


def bio_problem(tags, path, line):
    """Tags must be O or B-/I-/E-/S- followed by a type (BIO, IOB1, IOBES) -> the complaint about the
    first that is not, naming its line, or None."""
    for k, tag in enumerate(tags):
        if tag != "O" and not (len(tag) > 2 and tag[0] in "BIES" and tag[1] in "-_"):
            return f"{where(path, line + k)}: tag {tag!r} is not a BIO/IOB tag (O, B-TYPE or I-TYPE)"
    return None


def _check_bio(tags, path, line):
    if problem := bio_problem(tags, path, line):
        raise RnncliError(problem)


def is_iob2(tags):
    """Every I-X follows B-X or I-X (IOB2); IOB1 and looser files say otherwise."""
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and prev[2:] != tag[2:]:
            return False
        prev = tag
    return True


def build_vocabularies(meta, fmt, level, train_units, all_units, max_size, min_freq):
    """The token vocabulary (and for tagging the character set) from the training units; the
    label or tag set from all units. Returns warnings for names with no training example."""
    counts = Counter()
    warnings = []
    if fmt == "text" and level == "char":
        counts = char_counts("".join(train_units))
    elif fmt == "text":
        for u in train_units:
            counts.update(u)
    elif fmt == "pairs":
        targets = Counter()
        for source, target, _ in train_units:
            counts.update(_words(source))
            targets.update(target)
        meta["target_vocab"] = Vocab.build(targets, max_size, min_freq).tokens
    elif fmt == "scores":
        for _, words in train_units:
            counts.update(_words(words))
        scores = np.array([s for s, _ in train_units], np.float64)
        K = scores.shape[1]
        meta["score_names"] = ["target"] if K == 1 else [f"target[{k}]" for k in range(K)]
        # the model learns standardised scores (each near mean 0, sd 1) and reports them in their own units
        meta["score_mean"], meta["score_std"] = mean_and_sd(scores, "regression targets")
    elif fmt == "tsv":
        for _, words in train_units:
            counts.update(_words(words))
        meta["labels"] = sorted({label for label, _ in all_units})
        seen = Counter(label for label, _ in train_units)
        meta["label_counts"] = {n: seen[n] for n in meta["labels"]}  # a conditional LM's --label '*' draws by these
        warnings += [f"label {n!r} has no training example" for n in meta["labels"] if n not in seen]
    else:
        chars = Counter()
        for words, _ in train_units:
            words = _words(words)
            counts.update([w.lower() for w in words] if meta["lower"] else words)
            chars.update(ch for w in words for ch in w)
        meta["tags"] = sorted({t for _, tags in all_units for t in tags})
        seen = {t for _, tags in train_units for t in tags}
        warnings += [f"tag {n!r} has no training example" for n in meta["tags"] if n not in seen]
        meta["chars"] = Vocab.build(chars, None, 1).tokens
        meta["tag_scheme"] = "iob2" if all(is_iob2(tags) for _, tags in all_units) else "other"
    meta["vocab"] = Vocab.build(counts, max_size, min_freq).tokens
    if fmt == "pairs":  # did --min-freq/--max-size cut any training source token? Then <unk> was trained on.
        kept = set(meta["vocab"])
        meta["source_unk_trained"] = any(t not in kept for t in counts)
    return warnings


def _sequence(fmt, unit):
    """A unit's input side: its words, or its (T, D) frames (the label, tags or scores beside them)."""
    return unit[1] if fmt in ("tsv", "scores") else unit[0]


def _words(sequence):
    """A unit's words; none for frames (a (T, D) array), which have no vocabulary."""
    return [] if isinstance(sequence, np.ndarray) else sequence


def encode_frames(meta, arrays):
    """(T, D) arrays -> a Split whose frames (N, D) float32 are normalised with the data's per-dimension
    mean and sd; ids (N,) are <unk> placeholders that keep the lengths (batching reads the frames)."""
    offsets = np.r_[0, np.cumsum([len(a) for a in arrays])].astype(np.int64)
    x = np.concatenate(arrays, axis=0) if arrays else np.zeros((0, meta["frame_dim"]), np.float32)
    mean, sd = np.asarray(meta["frame_mean"], np.float32), np.asarray(meta["frame_std"], np.float32)
    return Split(np.full(len(x), UNK, np.int32), offsets, frames=((x - mean) / sd).astype(np.float32))


def encode_units(meta, fmt, level, units, origin):
    vocab = Vocab(meta["vocab"])
    if fmt == "text" and level == "char":
        text = "".join(units)
        ids = encode_chars(vocab, text)
        ends = np.cumsum([len(u) for u in units]).astype(np.int64)
        # one <eos> after every paragraph
        ids = np.insert(ids, ends, EOS).astype(np.int32)
        return Split(ids, np.r_[0, ends + np.arange(1, len(ends) + 1)].astype(np.int64))
    if fmt == "text":
        flat = [w for words in units for w in (*words, SPECIALS[EOS])]
        lengths = np.array([len(w) + 1 for w in units], np.int64)
        return Split(vocab.encode(flat), np.r_[0, np.cumsum(lengths)].astype(np.int64))
    if fmt == "pairs":
        split = encode_pairs(meta, [u[0] for u in units], [u[1] for u in units])
        split.target_texts = [u[2] for u in units]
        return split
    sequences = [_sequence(fmt, u) for u in units]
    if meta.get("input") == "frames":
        split = encode_frames(meta, sequences)
    else:
        split = encode_words(meta, sequences)
    if fmt == "scores":
        K = len(meta["score_names"])
        for u, (path, line) in zip(units, origin, strict=True):
            if len(u[0]) != K:
                raise RnncliError(f"{where(path, line)}: {len(u[0])} numbers in 'target'; the model has {K}")
        split.scores = np.array([u[0] for u in units], np.float64).reshape(len(units), K)
    elif fmt == "tsv":
        split.labels = _encode_names(meta["labels"], [u[0] for u in units], origin, "label")
    else:  # each tag's own line: its sentence's first line plus its position
        tag_origin = [(path, line + k) for u, (path, line) in zip(units, origin, strict=True)
                      for k in range(len(u[1]))]
        split.tags = _encode_names(meta["tags"], [t for u in units for t in u[1]], tag_origin, "tag")
    return split


_lookup = [None, None]  # (pretrained words, their WordLookup): predict encodes group after group


_vocabs = {}  # id of a model's token list -> (that list, its Vocab): predict and serve encode group after group


def vocab_of(tokens):
    """Vocab(tokens), made once per list of tokens (a model's meta holds its lists for its lifetime;
    the list is kept here too, so its id is never another list's)."""
    cached = _vocabs.get(id(tokens))
    if cached is None or cached[0] is not tokens:
        if len(_vocabs) >= 16:
            _vocabs.clear()
        cached = _vocabs[id(tokens)] = (tokens, Vocab(tokens))
    return cached[1]


def word_encoder(meta):
    """The training vocabulary, or for a model with pretrained rows (text/vectors.py) the lookup
    that reaches them too."""
    extra = meta.get("pretrained_vocab")
    if not extra:
        return vocab_of(meta["vocab"])
    if _lookup[0] is not extra:
        _lookup[:] = extra, WordLookup(meta["vocab"], extra)
    return _lookup[1]


def encode_words(meta, sentences):
    """Word lists -> a Split with their ids (lower-cased first when the vocabulary is) and, for
    tagging data, the characters of every word (with their case: the character features read it)."""
    flat = [w for ws in sentences for w in ws]
    offsets = np.r_[0, np.cumsum([len(ws) for ws in sentences])].astype(np.int64)
    split = Split(word_encoder(meta).encode([w.lower() for w in flat] if meta["lower"] else flat), offsets)
    if "chars" in meta:
        split.chars = encode_chars(vocab_of(meta["chars"]), "".join(flat))
        split.char_offsets = np.r_[0, np.cumsum([len(w) for w in flat])].astype(np.int64)
    return split


def encode_pairs(meta, sources, targets=None):
    """Token lists of each side -> a Split: sources as ids/offsets (or, for speech, (T, D) frames as
    encode_frames makes them), targets (if given) as targets/target_offsets in their vocabulary."""
    if meta.get("input") == "frames":
        split = encode_frames(meta, sources)
    else:
        flat = [t for ts in sources for t in ts]
        split = Split(word_encoder(meta).encode(flat),
                      np.r_[0, np.cumsum([len(ts) for ts in sources])].astype(np.int64))
    if targets is not None:
        flat = [t for ts in targets for t in ts]
        split.targets = vocab_of(meta["target_vocab"]).encode(flat)
        split.target_offsets = np.r_[0, np.cumsum([len(ts) for ts in targets])].astype(np.int64)
    return split


def _encode_names(names, values, origin, what):
    index = {n: i for i, n in enumerate(names)}
    out = np.fromiter((index.get(v, -1) for v in values), np.int32, count=len(values))
    bad = np.flatnonzero(out < 0)
    if len(bad):
        v = values[bad[0]]
        raise RnncliError(f"{where(*origin[bad[0]])}: {what} {v!r} is not one the model or vocabulary knows "
                          f"(known: {', '.join(names[:12])})")
    return out


def tokenize(paths, fmt=None, level=None, lower=False, max_size=None, min_freq=1,
             valid_frac=None, valid_path=None, seed=0, reuse=None, target_level=None, max_target_ratio=None,
             max_source=None, audio=None, min_source=None):
    """Read, split, build (or reuse) the vocabularies, encode. Returns a Dataset.

    reuse: a meta dict whose vocabularies are used as they are (--vocab: encoding data for an
    existing model). valid_frac None means 0.05, or 0 with `reuse`, so that a test set encoded
    for a model is scored whole. max_target_ratio (pairs): targets may be at most
    floor(ratio * source length) + 10 tokens long (text/targets.py); None means 2, or the model's.
    max_source (pairs with `reuse`): the longest source accepted; None means the model's limit.
    min_source (speech with `reuse`): the fewest frames a recording may have (the model's encoder
    joins that many into one step: Seq2Seq.reduction).
    audio: log-mel settings for recordings (window_ms, hop_ms, bands, deltas; audio.DEFAULTS for the
    rest); a reused model's own settings are kept and cannot change.
    """
    valid_frac = check_options(valid_frac, max_size, min_freq, audio, reuse)
    audio_meta = dict(reuse.get("audio") or {}) if reuse is not None else dict(audio or {})
    if reuse is not None and "image" in reuse:  # a model's images: new ones must be of its size
        audio_meta["image"] = list(reuse["image"])
    fmt, texts, jsonl = _read(paths, fmt, known=reuse["format"] if reuse is not None else None, audio_meta=audio_meta)
    level, lower, target_level, max_target_ratio = _reading(paths, fmt, texts, jsonl, level, lower, target_level,
                                                            max_target_ratio, reuse)
    meta: DataMeta = {"format_version": FORMAT_VERSION, "format": fmt, "level": level, "lower": bool(lower),
                      "options": {"max_size": max_size, "min_freq": min_freq, "valid_frac": valid_frac,
                                  "seed": seed, "valid_file": valid_path},
                      "sources": [str(p) for p in paths]}
    if fmt == "pairs":
        meta["target_level"], meta["max_target_ratio"] = target_level, max_target_ratio
    if jsonl:
        meta["input"] = "frames" if jsonl == "frames" else "jsonl"
    units, origin = read_units(fmt, texts, level, lower, target_level, jsonl)
    if not units:
        raise RnncliError(f"{where(paths[0])}: nothing to tokenize (empty file?)")
    (t_units, t_origin, v_units, v_origin), warnings = _hold_out(meta, units, origin, valid_path, valid_frac, seed,
                                                                 jsonl, audio_meta)
    if reuse is None:
        warnings += build_vocabularies(meta, fmt, level, t_units, units + (v_units or []), max_size, min_freq)
        if jsonl == "frames":  # normalisation from the training split's frames alone
            arrays = [_sequence(fmt, u) for u in t_units]
            meta["frame_dim"] = int(arrays[0].shape[1])
            meta["frame_mean"], meta["frame_std"] = normaliser(arrays)
            reader = dict(audio_meta)  # what the first record fixed: an image's size, or the recordings' settings
            if "image" in reader:
                meta["image"] = reader.pop("image")
            if reader:
                meta["audio"] = reader
    else:
        warnings += _reuse_vocabularies(meta, reuse, t_units, t_origin)
    if fmt == "pairs":
        _check_pair_lengths(meta, t_units, t_origin, v_units, v_origin, reuse, max_source, min_source)
    train = encode_units(meta, fmt, level, t_units, t_origin)
    valid = encode_units(meta, fmt, level, v_units, v_origin) if v_units else None
    return Dataset(meta, train, valid, warnings)


def check_options(valid_frac, max_size, min_freq, audio, reuse):
    """The options that need no data -> valid_frac, its default filled in."""
    if valid_frac is None:
        valid_frac = 0.0 if reuse is not None else 0.05
    if max_size is not None and max_size < 1:
        raise UsageError("--max-size must be at least 1")
    if min_freq < 1:
        raise UsageError("--min-freq must be at least 1")
    if not 0 <= valid_frac < 1:
        raise UsageError("--valid-frac must be in [0, 1)")
    if audio and reuse is not None:
        raise UsageError("--window-ms, --hop-ms, --mel-bands and --deltas are the model's (set when its data was "
                         "tokenized); drop them with --vocab")
    if audio:
        check_audio_options(audio)
    return valid_frac


def _reading(paths, fmt, texts, jsonl, level, lower, target_level, max_target_ratio, reuse):
    """How the data is read, from the options, the data and a reused vocabulary's meta -> (level,
    lower, target_level, max_target_ratio)."""
    frames = jsonl == "frames"
    if reuse is not None:
        if fmt != reuse["format"]:
            raise UsageError(f"--vocab was built for {reuse['format']} data, not {fmt}")
        if frames != (reuse.get("input") == "frames"):
            raise UsageError(f"{paths[0]}: the model reads {'frames' if not frames else 'text'}, but these records "
                             f"hold {'frames' if frames else 'text'}")
        level, lower, target_level = reuse["level"], reuse["lower"], reuse.get("target_level")
    if frames:
        level = "frame"
    if level is None:
        # texts that span lines (JSON lines: tunes, documents) are read by characters, as plain text is
        level = "char" if fmt == "text" or (jsonl and fmt == "tsv" and _multiline(texts)) else "word"
        if fmt == "scores" and not any(any(c.isspace() for c in body.strip()) for _, records in texts
                                       for _, body, _ in records):
            level = "char"  # one word per record (a DNA or protein sequence): read its letters
    if fmt == "conll" and level == "char":
        raise UsageError("--level char applies to text, label<TAB>text and pairs; tagging data is tokenized "
                         "by words (--char-features reads their characters)")
    for name, value in (("--target-level", target_level), ("--max-target-ratio", max_target_ratio)):
        if value is not None and fmt != "pairs":
            raise UsageError(f"{name} applies to source<TAB>target pairs, not {fmt} data")
    if max_target_ratio is not None and reuse is not None:
        raise UsageError("--max-target-ratio is the model's (set when its data was tokenized); drop it with --vocab")
    if max_target_ratio is not None and not (0 < max_target_ratio < float("inf")):
        raise UsageError("--max-target-ratio must be a positive number")
    if fmt == "pairs":
        target_level = target_level or ("word" if frames else level)  # a transcript is read by words
        if reuse is not None:
            max_target_ratio = reuse.get("max_target_ratio", DEFAULT_TARGET_RATIO)
        max_target_ratio = DEFAULT_TARGET_RATIO if max_target_ratio is None else float(max_target_ratio)
    return level, lower, target_level, max_target_ratio


def _hold_out(meta, units, origin, valid_path, valid_frac, seed, jsonl, audio_meta):
    """The validation split: the file given, the end of a text, or a random share of examples ->
    ((train units, their origins, valid units, their origins), warnings); meta["validation"] says how."""
    fmt, level, frames = meta["format"], meta["level"], jsonl == "frames"
    if valid_path is not None:
        v_fmt, v_texts, v_jsonl = _read([valid_path], "jsonl" if jsonl else fmt, audio_meta=audio_meta)
        if v_fmt != fmt or v_jsonl != jsonl:
            v_fmt = f"frames+{v_fmt}" if v_jsonl == "frames" else v_fmt
            raise UsageError(f"{valid_path}: holds {v_fmt} records, but the training data is "
                             f"{'frames+' if frames else ''}{fmt}")
        v_units, v_origin = read_units(fmt, v_texts, level, meta["lower"], meta.get("target_level"), v_jsonl)
        t_units, t_origin, how = units, origin, f"the file {valid_path}"
    elif fmt == "text":
        t_units, t_origin, v_units, v_origin, how = split_stream(units, origin, valid_frac, level)
    else:
        t_units, t_origin, v_units, v_origin, how = split_examples(units, origin, valid_frac, seed)
    warnings = []
    if valid_frac > 0 and valid_path is None and v_units is None:
        warnings.append("too little data to hold any out for validation; training will select on its own loss")
    meta["validation"] = how
    return (t_units, t_origin, v_units, v_origin), warnings


REUSED = ("vocab", "labels", "tags", "chars", "tag_scheme", "target_vocab", "source_unk_trained", "pretrained_vocab",
          "longest_source", "score_names", "score_mean", "score_std", "frame_dim", "frame_mean", "frame_std", "audio")


def _reuse_vocabularies(meta, reuse, units, origin):
    """A model's vocabularies, label sets and frame statistics, checked against the data -> warnings."""
    meta.update({key: reuse[key] for key in REUSED if key in reuse})
    frames = meta.get("input") == "frames"
    if frames:
        for u, (path, line) in zip(units, origin, strict=True):
            x = _sequence(meta["format"], u)
            if x.shape[1] != meta["frame_dim"]:
                raise RnncliError(f"{where(path, line)}: frames of {x.shape[1]} numbers; the model reads "
                                  f"{meta['frame_dim']}")
    if meta["format"] != "pairs":
        return []
    return _check_known_targets(meta, units, origin) if frames else _check_known_sources(meta, units, origin)


def _check_pair_lengths(meta, t_units, t_origin, v_units, v_origin, reuse, max_source, min_source):
    """Targets within their limit; for a new model the longest source it will read unasked, for a
    reused one its sources within the model's limits."""
    for u, o in ((t_units, t_origin), (v_units or [], v_origin or [])):
        _check_target_lengths(meta, u, o, fixed=reuse is not None)
    if reuse is None:  # the longest source a model of this data will read without being told (targets.py)
        meta["longest_source"] = max(len(u[0]) for u in t_units + (v_units or []))
        return
    limit, frames = source_limit(meta, max_source), meta.get("input") == "frames"
    for (source, *_), (path, line) in zip(t_units, t_origin, strict=True):
        if len(source) > limit:
            raise RnncliError(f"{where(path, line)}: {too_long(len(source), limit, frames)}")
        if min_source is not None and len(source) < min_source:
            raise RnncliError(f"{where(path, line)}: a recording of {len(source):,} frames, shorter than "
                              f"the encoder's reduction of {min_source:,} frames (--stack-frames x "
                              "2^--pyramid)")
