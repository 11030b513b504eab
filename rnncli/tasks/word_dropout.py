"""Word dropout: in training, read a share of the words as <unk>.

A vocabulary built from the training data has no <unk> in it, so without this the <unk>
embedding is never trained and every unseen word at test time reads as noise.
"""

import numpy as np

from rnncli.text.vocab import SPECIALS, UNK


def word_dropout(rng, ids, rate):
    """ids (...) -> ids with a share `rate` of the regular tokens (not <pad>, <bos>, <eos>)
    replaced by <unk>; ids unchanged when rate is 0 or there is no rng (evaluation)."""
    if rate <= 0.0 or rng is None:
        return ids
    drop = (rng.random(ids.shape) < rate) & (ids >= len(SPECIALS))
    return np.where(drop, UNK, ids)
