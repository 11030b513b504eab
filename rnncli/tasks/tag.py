"""Many-to-many with Tx = Ty: named-entity recognition, one tag per token.

    ids (T, B) -> embedding [+ character features] -> recurrent stack (bidirectional) -> y_hat<t>

Character features: a small bidirectional recurrent layer reads each word's characters; its two
final states are concatenated to the word's embedding. They carry the signal for words the
vocabulary has never seen (capitals, suffixes, digits), which is most of what NER gets wrong.
"""

import numpy as np

from rnncli.nn.functional import log_softmax
from rnncli.nn.layers import Embedding, Linear, dropout_mask, word_dropout
from rnncli.nn.losses import softmax_cross_entropy
from rnncli.nn.stack import RecurrentStack


class Tagger:
    def __init__(self, vocab_size, num_tags, rng, embed=100, hidden=128, cell="lstm", layers=1,
                 bidirectional=True, dropout=0.0, char_vocab_size=None, dtype=np.float32, activation="tanh",
                 reset_after=True, char_embed=24, char_hidden=32, word_dropout=0.0, allowed=None):
        self.dtype, self.dropout, self.word_dropout = np.dtype(dtype), dropout, word_dropout
        self.allowed = allowed  # (start (K,), transitions (K, K)) booleans for constrained decoding, or None
        self.embedding = Embedding(vocab_size, embed, rng, dtype)
        self.params = {"embedding.E": self.embedding.params["E"]}
        in_size = embed
        self.char_rnn = None
        if char_vocab_size:
            self.char_embedding = Embedding(char_vocab_size, char_embed, rng, dtype)
            self.char_rnn = RecurrentStack(cell, char_embed, char_hidden, rng, bidirectional=True, dtype=dtype,
                                           activation=activation, reset_after=reset_after)
            self.params["char_embedding.E"] = self.char_embedding.params["E"]
            self.params.update({f"char_rnn.{k}": v for k, v in self.char_rnn.params.items()})
            in_size += 2 * char_hidden
        self.rnn = RecurrentStack(cell, in_size, hidden, rng, num_layers=layers, bidirectional=bidirectional,
                                  dropout=dropout, dtype=dtype, activation=activation, reset_after=reset_after)
        self.head = Linear(self.rnn.output_size, num_tags, rng, dtype)
        self.params.update({f"rnn.{k}": v for k, v in self.rnn.params.items()})
        self.params.update({f"head.{k}": v for k, v in self.head.params.items()})

    def forward(self, ids, mask, chars=None, char_mask=None, train=False, rng=None):
        """ids (T, B), mask (T, B), chars (Lc, T*B) -> logits (T, B, K), cache."""
        T, B = ids.shape
        if train:
            ids = word_dropout(rng, ids, self.word_dropout)
        x = self.embedding.forward(ids)  # (T, B, E)
        char_cache = None
        if self.char_rnn is not None:
            cx = self.char_embedding.forward(chars)  # (Lc, T*B, C)
            _, finals, c_cache = self.char_rnn.forward(cx, None, char_mask)
            word_feats = np.concatenate([finals[0][0], finals[1][0]], axis=-1).reshape(T, B, -1)
            x = np.concatenate([x, word_feats], axis=-1)  # (T, B, E + 2 Hc)
            char_cache = (chars, finals, c_cache)
        drop_in = dropout_mask(rng, x.shape, self.dropout, self.dtype) if train else None
        x_in = x * drop_in if drop_in is not None else x
        h, _, rnn_cache = self.rnn.forward(x_in, None, mask, train=train, rng=rng)
        drop = dropout_mask(rng, h.shape, self.dropout, self.dtype) if train else None
        h_in = h * drop if drop is not None else h
        return self.head.forward(h_in), (ids, char_cache, drop_in, rnn_cache, drop, h_in)

    def loss_and_grads(self, ids, mask, tags, chars=None, char_mask=None, train=True, rng=None):
        logits, (ids, char_cache, drop_in, rnn_cache, drop, h_in) = self.forward(ids, mask, chars, char_mask,
                                                                                train, rng)
        T, B, K = logits.shape
        loss, d_logits = softmax_cross_entropy(logits.reshape(T * B, K), tags.reshape(-1),
                                               mask.reshape(-1).astype(self.dtype))
        dh, head_grads = self.head.backward(d_logits.reshape(T, B, K), h_in)
        if drop is not None:
            dh *= drop
        dx, _, rnn_grads = self.rnn.backward(dh, None, rnn_cache)
        if drop_in is not None:
            dx *= drop_in
        E = self.embedding.params["E"].shape[1]
        grads = {"embedding.E": self.embedding.backward(dx[:, :, :E], ids)["E"]}
        if char_cache is not None:
            chars, finals, c_cache = char_cache
            d_feats = dx[:, :, E:].reshape(T * B, -1)
            Hc = self.char_rnn.hidden_size
            d_finals = [(d_feats[:, :Hc], *[np.zeros_like(a) for a in finals[0][1:]]),
                        (d_feats[:, Hc:], *[np.zeros_like(a) for a in finals[1][1:]])]
            dcx, _, c_grads = self.char_rnn.backward(None, d_finals, c_cache)
            grads["char_embedding.E"] = self.char_embedding.backward(dcx, chars)["E"]
            grads.update({f"char_rnn.{k}": v for k, v in c_grads.items()})
        grads.update({f"rnn.{k}": v for k, v in rnn_grads.items()})
        grads.update({f"head.{k}": v for k, v in head_grads.items()})
        return loss, grads

    def predict(self, ids, mask, chars=None, char_mask=None):
        """(T, B) tag ids: the best *valid* sequence when `allowed` is set (no I-X after O or
        after another type in IOB2 data), else the most likely tag of each token."""
        logits, _ = self.forward(ids, mask, chars, char_mask)
        if self.allowed is None:
            return logits.argmax(axis=-1)
        return constrained_decode(log_softmax(logits.astype(np.float64)), mask, *self.allowed)


def bio_transitions(tags):
    """For IOB2 tag names: which tags may start a sentence, and which may follow which."""
    K = len(tags)
    start = np.array([not t.startswith("I-") for t in tags])
    trans = np.ones((K, K), bool)
    for j, cur in enumerate(tags):
        if cur.startswith("I-"):
            for i, prev in enumerate(tags):
                trans[i, j] = prev in ("B-" + cur[2:], "I-" + cur[2:])
    return start, trans


def constrained_decode(logp, mask, start, trans):
    """Viterbi over per-token log-probabilities with forbidden transitions.

    logp (T, B, K), mask (T, B) -> (T, B) tag ids maximising the summed log-probability
    among sequences that obey `start` (K,) and `trans` (K, K). Padded steps carry the scores."""
    T, B, K = logp.shape
    penalty = np.where(trans, 0.0, -np.inf)  # (K, K)
    score = np.where(start, logp[0], -np.inf)  # (B, K)
    back = np.zeros((T, B, K), np.int64)
    for t in range(1, T):
        cand = score[:, :, None] + penalty[None]  # (B, K prev, K cur)
        back[t] = cand.argmax(axis=1)
        new = cand.max(axis=1) + logp[t]
        real = mask[t][:, None] > 0
        score = np.where(real, new, score)
        back[t] = np.where(real, back[t], np.arange(K)[None, :])
    best = np.zeros((T, B), np.int64)
    best[-1] = score.argmax(axis=1)
    for t in range(T - 1, 0, -1):
        best[t - 1] = back[t][np.arange(B), best[t]]
    return best
