"""How long an encoder-decoder's target may be.

A decoder writes until it emits <eos> or reaches max_len(S) = floor(R * S) + 10 tokens for a
source of S tokens. R is the data's max_target_ratio (`tokenize --max-target-ratio`, 2 by default),
kept in the dataset and the model, so that tokenize can refuse a target the decoder could never
write and decode.py stops where tokenize promised.
"""

import numpy as np

DEFAULT_TARGET_RATIO = 2.0


def target_limit(source_length, ratio=DEFAULT_TARGET_RATIO):
    """The longest output allowed for a source of source_length tokens (int or array of them)."""
    return np.floor(ratio * np.asarray(source_length)).astype(np.int64) + 10
