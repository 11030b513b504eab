"""rnncli tokenize: read a corpus, build its vocabulary, write tokens.npz (and vocab.json)."""

import contextlib
import io
import sys

from rnncli.commands.common import refuse_overwrite
from rnncli.npzfile import write_text
from rnncli.text.dataset import dataset_stats
from rnncli.text.encode import check_options, tokenize
from rnncli.text.readers import require_file
from rnncli.text.store import load_vocab_source, save_dataset, vocab_json
from rnncli.text.stream import could_stream, spooled_stdin, stream_tokenize, streams


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
    options = (fmt, level, reuse, valid, (target_level, max_target_ratio, audio or None))
    if "-" in map(str, inputs) and could_stream(*options):
        # stdin may be a corpus larger than memory: kept in a file, it streams as a file does
        with spooled_stdin(out) as spool:
            if streamed := streams(inputs, *options, sources={"-": spool}):
                return _streamed(inputs, out, vocab_out, streamed, lower, max_size, min_freq, valid_frac, seed,
                                 progress, level, audio, valid, {"-": spool})
            with open(spool, "rb") as f, _stdin_holding(f.read()):  # the full reading reads stdin: what was kept
                return _in_memory(inputs, out, vocab_out, fmt, level, lower, max_size, min_freq, valid_frac, valid,
                                  reuse, seed, target_level, max_target_ratio, audio)
    if streamed := streams(inputs, *options):
        return _streamed(inputs, out, vocab_out, streamed, lower, max_size, min_freq, valid_frac, seed, progress,
                         level, audio, valid)
    return _in_memory(inputs, out, vocab_out, fmt, level, lower, max_size, min_freq, valid_frac, valid, reuse, seed,
                      target_level, max_target_ratio, audio)


@contextlib.contextmanager
def _stdin_holding(data):
    """sys.stdin reads `data` inside the context, and is itself again after it."""
    before = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
    try:
        yield
    finally:
        sys.stdin = before


def _in_memory(inputs, out, vocab_out, fmt, level, lower, max_size, min_freq, valid_frac, valid, reuse, seed,
               target_level, max_target_ratio, audio):
    ds = tokenize(inputs, fmt=fmt, level=level, lower=lower, max_size=max_size, min_freq=min_freq,
                  valid_frac=valid_frac, valid_path=valid, seed=seed, reuse=reuse, target_level=target_level,
                  max_target_ratio=max_target_ratio, audio=audio)
    save_dataset(out, ds)
    return _report(ds, out, vocab_out)


def _streamed(inputs, out, vocab_out, fmt, lower, max_size, min_freq, valid_frac, seed, progress, level, audio,
              valid=None, sources=None):
    """Plain text by characters or words, or label<TAB>text examples: read a chunk at a time, the ids
    written as they are made (text/stream.py)."""
    valid_frac = check_options(valid_frac, max_size, min_freq, audio, None)
    level = level or ("char" if fmt == "text" else "word")  # as the full reading decides
    with stream_tokenize(inputs, out, lower=lower, max_size=max_size, min_freq=min_freq, valid_frac=valid_frac,
                         seed=seed, progress=progress, level=level, sources=sources, fmt=fmt,
                         valid_path=valid) as ds:
        return _report(ds, out, vocab_out)


def _report(ds, out, vocab_out):
    """Write vocab.json if asked; -> the report's figures."""
    if vocab_out is not None:
        write_text(vocab_out, vocab_json(ds.meta))
    stats = dataset_stats(ds)
    stats["out"] = str(out)
    return stats
