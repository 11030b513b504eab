"""rnncli tokenize: read a corpus, build its vocabulary, write tokens.npz (and vocab.json)."""

import contextlib
import io
import sys
from typing import NamedTuple

from rnncli.commands.common import refuse_overwrite
from rnncli.npzfile import write_text
from rnncli.text.dataset import dataset_stats
from rnncli.text.encode import check_options, tokenize
from rnncli.text.readers import require_file
from rnncli.text.store import load_vocab_source, save_dataset, vocab_json
from rnncli.text.stream import could_stream, spooled_stdin, stream_tokenize, streams


class Asked(NamedTuple):
    """What tokenize was asked, as the full reading (encode.tokenize) takes it."""

    fmt: str | None
    level: str | None
    lower: bool
    max_size: int | None
    min_freq: int
    valid_frac: float | None
    valid_path: str | None
    seed: int
    reuse: dict | None
    target_level: str | None
    max_target_ratio: float | None
    audio: dict | None


def tokenize_files(inputs, out, fmt=None, level=None, lower=False, max_size=None, min_freq=1,
                   valid_frac=None, valid=None, vocab=None, vocab_out=None, seed=0, force=False, target_level=None,
                   max_target_ratio=None, audio=None, progress=None):
    """Encode `inputs` into `out`; returns the report's figures. Nothing is written unless
    everything was read and encoded without error. progress(pass, bytes): the reads of a corpus that
    streams (text/stream.py)."""
    for path in inputs:  # a missing input is the first thing to hear about
        require_file(path)
    refuse_overwrite(out, force)
    if vocab_out is not None:
        refuse_overwrite(vocab_out, force)
    reuse = load_vocab_source(vocab) if vocab else None
    asked = Asked(fmt, level, lower, max_size, min_freq, valid_frac, valid, seed, reuse, target_level,
                  max_target_ratio, audio)
    options = (fmt, level, reuse, valid, (target_level, max_target_ratio, audio or None))
    if "-" in map(str, inputs) and could_stream(*options):
        # stdin may be a corpus larger than memory: kept in a file, it streams as a file does
        with spooled_stdin(out) as spool:
            if streamed := streams(inputs, *options, sources={"-": spool}):
                return _streamed(inputs, out, vocab_out, streamed, asked, progress, {"-": spool})
            with open(spool, "rb") as f, _stdin_holding(f.read()):  # the full reading reads stdin: what was kept
                return _in_memory(inputs, out, vocab_out, asked)
    if streamed := streams(inputs, *options):
        return _streamed(inputs, out, vocab_out, streamed, asked, progress)
    return _in_memory(inputs, out, vocab_out, asked)


@contextlib.contextmanager
def _stdin_holding(data):
    """sys.stdin reads `data` inside the context, and is itself again after it."""
    before = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
    try:
        yield
    finally:
        sys.stdin = before


def _in_memory(inputs, out, vocab_out, asked):
    ds = tokenize(inputs, **asked._asdict())
    save_dataset(out, ds)
    return _report(ds, out, vocab_out)


def _streamed(inputs, out, vocab_out, fmt, asked, progress, sources=None):
    """Plain text by characters or words, or label<TAB>text examples: read a chunk at a time, the ids
    written as they are made (text/stream.py). A vocabulary reused (--vocab) fixes the level and case."""
    valid_frac = check_options(asked.valid_frac, asked.max_size, asked.min_freq, asked.audio, asked.reuse)
    level, lower = asked.level or ("char" if fmt == "text" else "word"), asked.lower  # as the full reading decides
    if asked.reuse is not None:
        level, lower = asked.reuse["level"], asked.reuse["lower"]
    with stream_tokenize(inputs, out, lower=lower, max_size=asked.max_size, min_freq=asked.min_freq,
                         valid_frac=valid_frac, seed=asked.seed, progress=progress, level=level, sources=sources,
                         fmt=fmt, valid_path=asked.valid_path, reuse=asked.reuse) as ds:
        return _report(ds, out, vocab_out)


def _report(ds, out, vocab_out):
    """Write vocab.json if asked; -> the report's figures."""
    if vocab_out is not None:
        write_text(vocab_out, vocab_json(ds.meta))
    stats = dataset_stats(ds)
    stats["out"] = str(out)
    return stats
