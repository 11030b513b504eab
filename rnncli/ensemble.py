"""Several trained classifiers, taggers or regressions used as one model (`eval` and `predict`
with -m twice).

Networks trained from different seeds make partly different mistakes; averaging what they
decide from removes some of them (on WikiANN's test set two taggers score 77.7 alone, 78.8 together).

    classifier: p(y | x) = mean over members of p_m(y | x)
    regression: y_hat(x) = mean over members of y_hat_m(x), in the scores' own units
    tagger:     score(y_1..T) = mean over members of score_m(y_1..T), best sequence by Viterbi

A tagger's sequence score is its per-token scores plus start, transition and end scores (a
CRF's own; zeros for a softmax tagger, whose per-token scores are log-probabilities), so the
mean is again such a score and one Viterbi pass finds its best sequence. For softmax members
this decodes the product of their distributions; CRF and softmax members can be mixed.

Averaging the members' per-token marginals p(y_t | x) and decoding their best valid path was
tried too: on WikiANN's held-out sentences it scored lower (4 members: 81.45 against 81.98 entity
F1), so the marginals only give `predict --proba` its per-token confidence.
"""

import numpy as np

from rnncli.nn.crf import crf_marginals, viterbi

# what the members must share: they read the same ids and their outputs are averaged
SHARED = {"format": "data format", "level": "token level", "lower": "case folding", "vocab": "vocabulary",
          "chars": "character set", "labels": "labels", "tags": "tags",
          "pretrained_vocab": "set of pretrained word rows (train --embeddings)", "score_names": "scores",
          "input": "kind of input", "frame_dim": "frame size", "frame_mean": "frame normalisation",
          "frame_std": "frame normalisation", "audio": "audio features"}


class Ensemble:
    def __init__(self, members):
        self.members = members
        self.label_names = getattr(members[0], "label_names", None)
        self.num_classes = getattr(members[0], "num_classes", None)
        self.num_scores = getattr(members[0], "num_scores", None)  # regression
        if self.num_scores is not None:
            self.score_names = members[0].score_names
            self.score_std = members[0].score_std

    def predict_proba(self, ids, mask):
        """ids (T, B), mask (T, B) -> (B, C) the members' mean class probabilities."""
        return np.mean([m.predict_proba(ids, mask) for m in self.members], axis=0)

    def predict(self, ids, mask, chars=None, char_mask=None):
        """ids (T, B) -> (T, B) tag ids: the best sequence under the members' mean scores; for
        regression members, (B, K) the mean of their predictions."""
        if self.num_scores is not None:
            return np.mean([m.predict(ids, mask) for m in self.members], axis=0)
        return _best_mean_sequence([m.decoding_scores(ids, mask, chars, char_mask) for m in self.members], mask)

    def predict_with_marginals(self, ids, mask, chars=None, char_mask=None):
        """predict's (T, B) tag ids and (T, B, K) the members' mean p(y_t = k | x), each member
        run once for both."""
        parts = [m.decoding_scores(ids, mask, chars, char_mask) for m in self.members]
        probs = np.mean([crf_marginals(scores, mask, *chain) for scores, *chain in parts], axis=0)
        return _best_mean_sequence(parts, mask), probs


def _best_mean_sequence(parts, mask):
    """Viterbi under the mean of the members' (scores, start, trans, end)."""
    scores, start, trans, end = (np.mean(group, axis=0) for group in zip(*parts, strict=True))
    return viterbi(scores, mask, start, trans, end)
