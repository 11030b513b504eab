"""Many-to-many with Tx = Ty: named-entity recognition, one tag per token.

    ids (T, B) -> embedding [+ character features] -> recurrent stack (bidirectional) -> y_hat<t>

Character features: a small bidirectional recurrent layer (char_encoder="rnn") or a convolution
with max-pooling (char_encoder="cnn", nn/conv.py: no loop over characters, several times faster)
reads each word's characters; the result is concatenated to the word's embedding. They carry the
signal for words the vocabulary has never seen (capitals, suffixes, digits), which is most of
what NER gets wrong.

Output: a softmax per token (cross-entropy), or with crf=True a linear-chain CRF over the same
scores (nn/crf.py), which learns that I-ORG follows B-ORG and scores the tag sequence as a whole.
"""

import json

import numpy as np

from rnncli.nn.conv import CharConv
from rnncli.nn.crf import crf_marginals, crf_nll, viterbi
from rnncli.nn.functional import log_softmax
from rnncli.nn.init import zeros
from rnncli.nn.layers import Embedding, Linear, dropout_mask, input_grads, input_layer
from rnncli.nn.losses import softmax_cross_entropy
from rnncli.nn.names import prefixed
from rnncli.nn.stack import RecurrentStack
from rnncli.tasks.task import Task, reader_options
from rnncli.tasks.word_dropout import word_dropout
from rnncli.text.vocab import SPECIALS


class Tagger:
    # training targets (1 - ε) on the true class and ε spread over all (nn/losses.py); build_model sets it
    label_smoothing = 0.0

    def __init__(self, vocab_size, num_tags, rng, embed=100, hidden=128, cell="lstm", layers=1,
                 bidirectional=True, dropout=0.0, char_vocab_size=None, dtype=np.float32, activation="tanh",
                 reset_after=True, char_embed=24, char_hidden=32, word_dropout=0.0, allowed=None, crf=False,
                 char_encoder="rnn", frame_dim=None, input_projection=None):
        """frame_dim: inputs are frames of that many numbers, one tag per frame (nn/layers.FrameInput)."""
        self.dtype, self.dropout, self.word_dropout = np.dtype(dtype), dropout, word_dropout
        self.allowed = allowed  # (start (K,), transitions (K, K)) booleans for constrained decoding, or None
        self.crf = crf
        self.embedding, input_params = input_layer(vocab_size, embed, rng, dtype, frame_dim, input_projection)
        self.frames = frame_dim is not None
        self.params = dict(input_params)
        in_size = self.embedding.width
        self.char_encoder = char_encoder if char_vocab_size else None
        if char_vocab_size:
            self.char_embedding = Embedding(char_vocab_size, char_embed, rng, dtype)
            self.params["char_embedding.E"] = self.char_embedding.params["E"]
            if char_encoder == "rnn":
                self.char_net = RecurrentStack(cell, char_embed, char_hidden, rng, bidirectional=True, dtype=dtype,
                                               activation=activation, reset_after=reset_after)
            else:
                self.char_net = CharConv(char_embed, 2 * char_hidden, rng, dtype=dtype)
            self.params.update(prefixed(f"char_{char_encoder}", self.char_net.params))
            in_size += 2 * char_hidden
        self.rnn = RecurrentStack(cell, in_size, hidden, rng, num_layers=layers, bidirectional=bidirectional,
                                  dropout=dropout, dtype=dtype, activation=activation, reset_after=reset_after)
        self.head = Linear(self.rnn.output_size, num_tags, rng, dtype)
        self.params.update(prefixed("rnn", self.rnn.params))
        self.params.update(prefixed("head", self.head.params))
        if crf:
            # zero scores: the CRF starts as the softmax tagger and learns transitions from the data
            for name, shape in (("start", (num_tags,)), ("trans", (num_tags, num_tags)), ("end", (num_tags,))):
                self.params[f"crf.{name}"] = zeros(rng, shape, self.dtype)

    def _constrained(self, start, trans, end):
        """Start (K,), transition (K, K) and end (K,) scores with -inf where the tag scheme forbids."""
        if self.allowed is None:
            return start, trans, end
        may_start, may_follow = self.allowed
        return np.where(may_start, start, -np.inf), np.where(may_follow, trans, -np.inf), end

    def _char_features(self, chars, char_mask):
        """chars (Lc, N), char_mask (Lc, N) -> one feature vector per word (N, 2 Hc), cache.
        rnn: the forward direction's state after the last character beside the backward
        direction's state after the first; cnn: max-pooled character n-gram filters."""
        cx = self.char_embedding.forward(chars)  # (Lc, N, C)
        if self.char_encoder == "cnn":
            feats, cache = self.char_net.forward(cx, char_mask)
            return feats, (chars, cache)
        _, finals, cache = self.char_net.forward(cx, None, char_mask)
        return np.concatenate([finals[0][0], finals[1][0]], axis=-1), (chars, (finals, cache))

    def _char_backward(self, d_feats, char_cache):
        """d_feats (N, 2 Hc) -> gradients of the character embedding and encoder."""
        chars, cache = char_cache
        if self.char_encoder == "cnn":
            dcx, grads = self.char_net.backward(d_feats, cache)
        else:
            finals, cache = cache
            Hc = self.char_net.hidden_size
            d_finals = [(d_feats[:, :Hc], *[np.zeros_like(a) for a in finals[0][1:]]),
                        (d_feats[:, Hc:], *[np.zeros_like(a) for a in finals[1][1:]])]
            dcx, _, grads = self.char_net.backward(None, d_finals, cache)
        out = prefixed(f"char_{self.char_encoder}", grads)
        out["char_embedding.E"] = self.char_embedding.backward(dcx, chars)["E"]
        return out

    def forward(self, ids, mask, chars=None, char_mask=None, train=False, rng=None):
        """ids (T, B), mask (T, B), chars (Lc, T*B) -> logits (T, B, K), cache."""
        T, B = ids.shape[:2]
        if train and not self.frames:
            ids = word_dropout(rng, ids, self.word_dropout)
        x = self.embedding.forward(ids)  # (T, B, E)
        char_cache = None
        if self.char_encoder is not None:
            word_feats, char_cache = self._char_features(chars, char_mask)
            x = np.concatenate([x, word_feats.reshape(T, B, -1)], axis=-1)  # (T, B, E + 2 Hc)
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
        if self.crf:
            p = self.params
            loss, d_logits, crf_grads = crf_nll(logits, tags, mask,
                                                *self._constrained(p["crf.start"], p["crf.trans"], p["crf.end"]))
        else:
            loss, d_logits = softmax_cross_entropy(logits.reshape(T * B, K), tags.reshape(-1),
                                                   mask.reshape(-1).astype(self.dtype), self.label_smoothing)
            crf_grads = {}
        dh, head_grads = self.head.backward(d_logits.reshape(T, B, K), h_in)
        if drop is not None:
            dh *= drop
        dx, _, rnn_grads = self.rnn.backward(dh, None, rnn_cache)
        if drop_in is not None:
            dx *= drop_in
        E = self.embedding.width
        grads = input_grads(self.embedding, dx[:, :, :E], ids)
        if char_cache is not None:
            grads.update(self._char_backward(dx[:, :, E:].reshape(T * B, -1), char_cache))
        grads.update(prefixed("rnn", rnn_grads))
        grads.update(prefixed("head", head_grads))
        grads.update(prefixed("crf", crf_grads))
        return loss, grads

    def decoding_scores(self, ids, mask, chars=None, char_mask=None):
        """What Viterbi maximises, in float64: per-token scores (T, B, K) and start (K,),
        transition (K, K) and end (K,) scores, -inf where the tag scheme forbids a move. With a CRF
        its emissions and learnt scores; else the softmax's log-probabilities and no preference
        between allowed moves. Ensembles average these (a product of the members' distributions)."""
        logits, _ = self.forward(ids, mask, chars, char_mask)
        K = logits.shape[-1]
        if self.crf:
            scores = logits.astype(np.float64)
            start, trans, end = (self.params[f"crf.{k}"].astype(np.float64) for k in ("start", "trans", "end"))
        else:
            scores = log_softmax(logits.astype(np.float64))
            start, trans, end = np.zeros(K), np.zeros((K, K)), np.zeros(K)
        return scores, *self._constrained(start, trans, end)

    def predict_with_marginals(self, ids, mask, chars=None, char_mask=None):
        """predict's (T, B) tag ids and (T, B, K) p(y_t = k | x) under the same scores
        (forward-backward; for a softmax tagger without tag constraints, its per-token softmax),
        padded rows 0, from one forward pass."""
        scores, start, trans, end = self.decoding_scores(ids, mask, chars, char_mask)
        return viterbi(scores, mask, start, trans, end), crf_marginals(scores, mask, start, trans, end)

    def predict(self, ids, mask, chars=None, char_mask=None):
        """(T, B) tag ids: with a CRF its best sequence; else the best *valid* sequence when
        `allowed` is set (no I-X after O or after another type in IOB2 data), else the most
        likely tag of each token."""
        if not self.crf and self.allowed is None:
            logits, _ = self.forward(ids, mask, chars, char_mask)
            return logits.argmax(axis=-1)
        scores, start, trans, end = self.decoding_scores(ids, mask, chars, char_mask)
        return viterbi(scores, mask, start, trans, end)


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


class TaggerTask(Task):
    name, title, format = "tag", "tagger", "conll"
    graph = "tag_graph"  # export/onnx_graph.py
    text_picture, frames_picture = "tag_picture", "tag_frames"  # commands/show.py
    maximizes = True
    report = "tag_report"  # render.py: eval's tables
    score_name = "entity F1"
    metric, metric_title = "f1", "entity F1"

    def build(self, cfg, data_meta, rng, V, dtype):
        names = data_meta["tags"]
        chars = len(data_meta["chars"]) if cfg.char_features else None
        allowed = bio_transitions(names) if data_meta.get("tag_scheme") == "iob2" else None
        model = Tagger(V, len(names), rng, char_vocab_size=chars, word_dropout=cfg.word_dropout, allowed=allowed,
                       crf=cfg.crf, char_encoder=cfg.char_encoder, char_embed=cfg.char_embed,
                       char_hidden=cfg.char_hidden, **reader_options(cfg, data_meta, dtype))
        model.label_names = names
        return model

    def names_needed(self, cfg):
        return {"tags": 1, **({"chars": 1} if cfg.char_features else {})}

    def make_batch(self, split, index, char_features=False):
        from rnncli.text.batching import tagged_batch

        return tagged_batch(split, index, char_features)

    def synthetic_names(self, vocab, K):
        return {"tags": ["B-X", "I-X", "O"], "chars": list(SPECIALS) + list("abcde"), "tag_scheme": "iob2"}

    def random_outputs(self, meta, cfg, rng, inputs, mask):
        tags = np.where(mask > 0, random_tags(meta["tags"], rng, mask.shape), 0)
        if not cfg.char_features:
            return inputs, mask, tags
        T, B = mask.shape
        Lc = 4
        n = rng.integers(1, Lc + 1, T * B) * (mask.T.reshape(-1) > 0)
        n = n.reshape(B, T).T.reshape(-1)  # column t*B + b holds word (t, b)
        cmask = (np.arange(Lc)[:, None] < n[None]).astype(np.float64)
        chars = np.where(cmask > 0, rng.integers(len(SPECIALS), len(meta["chars"]), (Lc, T * B)), 0)
        return inputs, mask, tags, chars, cmask

    def selection_score(self, metrics):
        return -metrics["f1"]

    def scores(self, model, split, fmt, char_features, world, decode_sample, references):
        from rnncli.evaluate import evaluate_tagger

        return evaluate_tagger(model, split, char_features, world)

    def predict(self, model, split, char_features=False, proba=False):
        from rnncli.evaluate import predict_tags

        return predict_tags(model, split, char_features=char_features, proba=proba)

    def answer(self, prediction):
        return {"tags": prediction}

    def prediction_text(self, record, names, proba=False, as_json=False):
        """token<TAB>tag lines (and each tag's probability with proba), a blank line after each
        sentence; with as_json one object per sentence (an empty line in gives an empty sentence)."""
        words, tags, p = record["tokens"], record.get("tags", []), record.get("probabilities")
        if as_json:
            return json.dumps({"tokens": words, "tags": [names[t] for t in tags],
                               "probabilities": [round(float(v), 6) for v in (p if p is not None else [])]}) + "\n"
        if not words:
            return ""
        lines = [f"{w}\t{names[t]}" for w, t in zip(words, tags, strict=True)]
        if proba:  # the marginal probability of each chosen tag, given the whole sentence
            lines = [f"{line}\t{v:.4f}" for line, v in zip(lines, p, strict=True)]
        return "".join(line + "\n" for line in lines) + "\n"


def random_tags(names, rng, shape):
    """(T, B) tag ids that an IOB2 scheme allows: any tag but an I-X first, an I-X only after its
    B-X or I-X (each such step continues the entity half of the time)."""
    begins = np.array([k for k, n in enumerate(names) if not n.startswith("I-")])
    tags = begins[rng.integers(0, len(begins), shape)]
    for t in range(1, shape[0]):
        for b in range(shape[1]):
            previous = names[tags[t - 1, b]]
            inside = f"I-{previous[2:]}" if previous[:2] in ("B-", "I-") else None
            if inside in names and rng.random() < 0.5:
                tags[t, b] = names.index(inside)
    return tags
