"""Many-to-one: sentiment classification.

    ids (T, B) -> embedding -> recurrent stack (bidirectional by default) -> pool -> y_hat
pool = last: the state after each sequence's last real token (bidirectional: the forward
direction's last state and the backward direction's state at the first token, concatenated);
mean or max: over the real time steps. Two classes use one sigmoid output and binary
cross-entropy; more classes a softmax.
"""

import json

import numpy as np

from rnncli.errors import RnncliError
from rnncli.nn.layers import Linear, dropout_mask, input_grads, input_layer
from rnncli.nn.losses import sigmoid_binary_cross_entropy, softmax_cross_entropy
from rnncli.nn.names import prefixed
from rnncli.nn.stack import RecurrentStack
from rnncli.tasks.task import Task, reader_options
from rnncli.tasks.word_dropout import word_dropout


class Classifier:
    # training targets (1 - ε) on the true class and ε spread over all (nn/losses.py); build_model sets it
    label_smoothing = 0.0

    def __init__(self, vocab_size, num_classes, rng, embed=100, hidden=128, cell="lstm", layers=1,
                 bidirectional=True, dropout=0.0, pool="last", dtype=np.float32, activation="tanh",
                 reset_after=True, word_dropout=0.0, outputs=None, frame_dim=None, input_projection=None):
        """outputs: the head's size when it is not the classes' (the regression head, tasks/regress.py);
        frame_dim: inputs are frames of that many numbers, not token ids (nn/layers.FrameInput)."""
        if outputs is None and num_classes < 2:
            raise ValueError("a classifier needs at least two classes")
        self.dtype, self.dropout, self.pool, self.num_classes = np.dtype(dtype), dropout, pool, num_classes
        self.word_dropout = word_dropout
        self.embedding, input_params = input_layer(vocab_size, embed, rng, dtype, frame_dim, input_projection)
        self.frames = frame_dim is not None
        self.rnn = RecurrentStack(cell, self.embedding.width, hidden, rng, num_layers=layers,
                                  bidirectional=bidirectional, dropout=dropout, dtype=dtype, activation=activation,
                                  reset_after=reset_after)
        self.head = Linear(self.rnn.output_size, outputs or (1 if num_classes == 2 else num_classes), rng, dtype)
        self.params = dict(input_params)
        self.params.update(prefixed("rnn", self.rnn.params))
        self.params.update(prefixed("head", self.head.params))

    def _pool(self, h, finals, mask, for_backward=True):
        """h (T, B, F), mask (T, B) -> (B, F) and what backward needs (for_backward=False: nothing,
        and max pooling skips the positions of the maxima, a slower reduction than the maxima)."""
        if self.pool == "last":
            top = finals[-self.rnn.directions :]
            return np.concatenate([s[0] for s in top], axis=-1), None
        m = mask[:, :, None]
        if self.pool == "mean":
            # a sequence with no real step (never made by tokenize) pools to zeros, not 0/0
            lengths = np.maximum(m.sum(axis=0), 1)  # (B, 1)
            return (h * m).sum(axis=0) / lengths, lengths
        masked = np.where(m > 0, h, -np.inf)
        if not for_backward:  # the same numbers as below: the maxima themselves
            return masked.max(axis=0).astype(h.dtype, copy=False), None
        arg = masked.argmax(axis=0)  # (B, F)
        return np.take_along_axis(h, arg[None], axis=0)[0], arg

    def _unpool(self, d_pooled, h, finals, mask, aux):
        """-> (d_h (T, B, F) or None, d_finals list or None)."""
        if self.pool == "last":
            H, dirs = self.rnn.hidden_size, self.rnn.directions
            d_finals = [tuple(np.zeros_like(a) for a in s) for s in finals]
            for d in range(dirs):
                k = len(finals) - dirs + d
                d_finals[k] = (d_pooled[:, d * H : (d + 1) * H], *d_finals[k][1:])
            return None, d_finals
        if self.pool == "mean":
            return (d_pooled / aux)[None] * mask[:, :, None], None
        d_h = np.zeros_like(h)
        np.put_along_axis(d_h, aux[None], d_pooled[None], axis=0)
        return d_h, None

    def forward(self, ids, mask, train=False, rng=None, for_backward=True):
        """ids (T, B), mask (T, B) -> logits (B,) for two classes, else (B, K); and a cache
        (for_backward=False: predictions only, whose cache cannot serve backward)."""
        if train and not self.frames:
            ids = word_dropout(rng, ids, self.word_dropout)
        x = self.embedding.forward(ids)
        h, finals, rnn_cache = self.rnn.forward(x, None, mask, train=train, rng=rng)
        pooled, aux = self._pool(h, finals, mask, for_backward)
        drop = dropout_mask(rng, pooled.shape, self.dropout, self.dtype) if train else None
        feats = pooled * drop if drop is not None else pooled
        logits = self.head.forward(feats)
        if self.num_classes == 2:
            logits = logits[:, 0]
        return logits, (ids, mask, h, finals, rnn_cache, aux, drop, feats)

    def loss_and_grads(self, ids, mask, targets, train=True, rng=None):
        """targets: the label ids (B,) (tasks/regress.py: the scores (B, K)) -> (loss, grads)."""
        logits, cache = self.forward(ids, mask, train, rng)
        loss, d_logits = self.head_loss(logits, targets)
        dx, grads = self.backward(d_logits, cache)
        # what the input layer read (cache[0]): under word dropout, some ids are <unk>
        grads.update(input_grads(self.embedding, dx, cache[0]))
        return loss, grads

    def head_loss(self, logits, labels):
        """-> (cross-entropy, its gradient (B, 1 or K) with respect to the head's outputs)."""
        if self.num_classes == 2:
            loss, d_logits = sigmoid_binary_cross_entropy(logits, labels.astype(self.dtype))
            return loss, d_logits[:, None]
        return softmax_cross_entropy(logits, labels, smoothing=self.label_smoothing)

    def backward(self, d_logits, cache):
        """d_logits (B, 1 or K) and forward's cache -> d of the embedded inputs (T, B, E) and the
        gradients of the recurrent stack and the head (show's gradient x input reads dx)."""
        ids, mask, h, finals, rnn_cache, aux, drop, feats = cache
        d_feats, head_grads = self.head.backward(d_logits, feats)
        if drop is not None:
            d_feats *= drop
        d_h, d_finals = self._unpool(d_feats, h, finals, mask, aux)
        dx, _, rnn_grads = self.rnn.backward(d_h, d_finals, rnn_cache)
        grads = prefixed("rnn", rnn_grads)
        grads.update(prefixed("head", head_grads))
        return dx, grads

    def predict_proba(self, ids, mask):
        """(B, K) class probabilities."""
        from rnncli.nn.functional import sigmoid, softmax

        logits, _ = self.forward(ids, mask, for_backward=False)
        if self.num_classes == 2:
            p1 = sigmoid(logits.astype(np.float64))
            return np.stack([1 - p1, p1], axis=1)
        return softmax(logits.astype(np.float64))


class ManyToOneTask(Task):
    """A sequence in, one answer out (a classifier, a regression): the loss is a mean over the
    batch's sequences, and predict reads a line's text (a JSON record's "text")."""

    many_to_one = True
    input_field = "text"

    def input_tokens(self, item, data):
        return text_tokens(item, data)


class ClassifierTask(ManyToOneTask):
    name, title = "classify", "classifier"
    graph = "classify_graph"  # export/onnx_graph.py
    text_picture, frames_picture = "classify_picture", "classify_frames"  # commands/show.py
    maximizes = True
    report = "classify_report"  # render.py: eval's tables
    score_name = "accuracy %"
    metric = metric_title = "accuracy"

    def build(self, cfg, data_meta, rng, V, dtype):
        names = data_meta["labels"]
        if len(names) < 2:
            raise RnncliError(f"classification needs at least two labels; the data has {names}")
        model = Classifier(V, len(names), rng, pool=cfg.pool, word_dropout=cfg.word_dropout,
                           **reader_options(cfg, data_meta, dtype))
        model.label_names = names
        return model

    def names_needed(self, cfg):
        return {"labels": 2}  # two labels to choose between at the least

    def selection_score(self, metrics):
        return -metrics["accuracy"]

    def make_batch(self, split, index, char_features=False):
        from rnncli.text.batching import labelled_batch

        return labelled_batch(split, index)

    def synthetic_names(self, vocab, K):
        return {"labels": [f"label{i}" for i in range(K)]}

    def random_outputs(self, meta, cfg, rng, inputs, mask):
        return inputs, mask, rng.integers(0, len(meta["labels"]), mask.shape[1])

    def scores(self, model, split, fmt, char_features, world, decode_sample, references):
        from rnncli.evaluate import evaluate_classifier

        return evaluate_classifier(model, split, world)

    def predict(self, model, split, char_features=False, proba=False):
        from rnncli.evaluate import predict_classes

        return predict_classes(model, split)

    def answer(self, prediction):
        return {"label": int(prediction)}

    def prediction_text(self, record, names, proba=False, as_json=False):
        if not record["tokens"]:  # an empty line in, an empty line out: the lines stay aligned
            return "\n"
        k, p = record["label"], record["probabilities"]
        if as_json:
            return json.dumps({"label": names[k], "probability": float(p[k]), "probabilities":
                               {n: float(v) for n, v in zip(names, p, strict=True)}}) + "\n"
        return f"{names[k]}\t{p[k]:.4f}\n" if proba else names[k] + "\n"


def text_tokens(line, data):
    """A many-to-one model's input line -> its words, or characters for a model tokenized with
    --level char."""
    from rnncli.text.encode import side_tokens

    return side_tokens(line or "", data.get("level", "word"), data["lower"])
