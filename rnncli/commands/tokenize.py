"""rnncli tokenize: read a corpus, build its vocabulary, write tokens.npz (and vocab.json)."""

from rnncli.commands.common import refuse_overwrite
from rnncli.npzfile import write_text
from rnncli.text.dataset import dataset_stats
from rnncli.text.encode import check_options, tokenize
from rnncli.text.readers import require_file
from rnncli.text.store import load_vocab_source, save_dataset, vocab_json
from rnncli.text.stream import stream_tokenize, streams


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
    if streams(inputs, fmt, level, reuse, valid, (target_level, max_target_ratio, audio or None)):
        # plain text by characters or words: read a chunk at a time, the ids written as made (text/stream.py)
        valid_frac = check_options(valid_frac, max_size, min_freq, audio, reuse)
        with stream_tokenize(inputs, out, lower=lower, max_size=max_size, min_freq=min_freq, valid_frac=valid_frac,
                             seed=seed, progress=progress, level=level or "char") as ds:
            return _report(ds, out, vocab_out)
    ds = tokenize(inputs, fmt=fmt, level=level, lower=lower, max_size=max_size, min_freq=min_freq,
                  valid_frac=valid_frac, valid_path=valid, seed=seed, reuse=reuse, target_level=target_level,
                  max_target_ratio=max_target_ratio, audio=audio)
    save_dataset(out, ds)
    return _report(ds, out, vocab_out)


def _report(ds, out, vocab_out):
    """Write vocab.json if asked; -> the report's figures."""
    if vocab_out is not None:
        write_text(vocab_out, vocab_json(ds.meta))
    stats = dataset_stats(ds)
    stats["out"] = str(out)
    return stats
