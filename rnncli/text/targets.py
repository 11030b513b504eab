"""How long an encoder-decoder's target may be.

A decoder writes until it emits <eos> or reaches max_len(S) = floor(R * S) + 10 tokens for a
source of S tokens. R is the data's max_target_ratio (`tokenize --max-target-ratio`, 2 by default),
kept in the dataset and the model, so that tokenize can refuse a target the decoder could never
write and decode.py stops where tokenize promised.

A source, too, has a limit: twice the longest source of the training data (tokenize records it).
A model never saw longer ones, and the work grows with the source (the encoder) times the target
(attention, beam search): one 200,000-character line would stall a pipeline for hours. predict
skips (or, with --too-long cut, cuts) a longer line; eval and show refuse it; --max-source-len
changes the limit.
"""

import numpy as np

DEFAULT_TARGET_RATIO = 2.0
SOURCE_SLACK = 2  # a source may be up to twice the longest the model was trained on
FALLBACK_SOURCE_LIMIT = 1000  # tokens, for models tokenized before the longest source was recorded


def source_limit(data_meta, given=None):
    """The longest source (in tokens) a model reads: `given` (--max-source-len) or twice its
    training data's longest."""
    if given is not None:
        return int(given)
    longest = data_meta.get("longest_source")
    return FALLBACK_SOURCE_LIMIT if longest is None else SOURCE_SLACK * int(longest)


def too_long(length, limit, frames=False):
    """The words of every message about a source over the limit (counted in frames for speech)."""
    unit = "frames" if frames else "tokens"
    what = "a recording" if frames else "a source"
    return (f"{what} of {length:,} {unit}, longer than this model's limit of {limit:,} (twice the longest "
            "training source; --max-source-len changes it)")


def target_limit(source_length, ratio=DEFAULT_TARGET_RATIO):
    """The longest output allowed for a source of source_length tokens (int or array of them)."""
    return np.floor(ratio * np.asarray(source_length)).astype(np.int64) + 10
