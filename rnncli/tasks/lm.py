"""Language model (many-to-many, shifted by one): y<t> = softmax(W_ya a<t> + b_y) predicts x<t+1>.

    ids (T, B) -> embedding (T, B, E) -> recurrent stack (T, B, H) -> dropout -> head (T, B, V)
"""

import numpy as np

from rnncli.errors import RnncliError
from rnncli.nn.layers import Embedding, Linear, dropout_mask
from rnncli.nn.losses import softmax_cross_entropy
from rnncli.nn.names import prefixed
from rnncli.nn.stack import RecurrentStack
from rnncli.tasks.task import Task
from rnncli.text.vocab import SPECIALS


class LanguageModel:
    # training targets (1 - ε) on the true class and ε spread over all (nn/losses.py); build_model sets it
    label_smoothing = 0.0

    def __init__(self, vocab_size, rng, embed=64, hidden=256, cell="lstm", layers=1, dropout=0.0,
                 dtype=np.float32, activation="tanh", reset_after=True):
        self.dtype = np.dtype(dtype)
        self.dropout = dropout
        self.embedding = Embedding(vocab_size, embed, rng, dtype)
        self.rnn = RecurrentStack(cell, embed, hidden, rng, num_layers=layers, dropout=dropout,
                                  dtype=dtype, activation=activation, reset_after=reset_after)
        self.head = Linear(hidden, vocab_size, rng, dtype)
        self.params = {"embedding.E": self.embedding.params["E"]}
        self.params.update(prefixed("rnn", self.rnn.params))
        self.params.update(prefixed("head", self.head.params))

    def initial_state(self, batch):
        return self.rnn.initial_state(batch)

    def forward(self, ids, states=None, mask=None, train=False, rng=None):
        """ids (T, B) -> logits (T, B, V), final states, cache."""
        x = self.embedding.forward(ids)  # (T, B, E)
        h, finals, rnn_cache = self.rnn.forward(x, states, mask, train=train, rng=rng)  # (T, B, H)
        drop = dropout_mask(rng, h.shape, self.dropout, self.dtype) if train else None
        h_in = h * drop if drop is not None else h
        logits = self.head.forward(h_in)  # (T, B, V)
        return logits, finals, (ids, rnn_cache, drop, h_in)

    def loss_and_grads(self, ids, targets, states=None, mask=None, train=True, rng=None):
        """Mean cross-entropy of predicting targets (T, B) and its gradients by parameter name.
        Also returns the final states, for truncated BPTT to carry into the next chunk."""
        logits, finals, (_, rnn_cache, drop, h_in) = self.forward(ids, states, mask, train, rng)
        T, B, V = logits.shape
        weights = None if mask is None else mask.reshape(-1).astype(self.dtype)
        loss, d_logits = softmax_cross_entropy(logits.reshape(T * B, V), targets.reshape(-1), weights,
                                               self.label_smoothing)
        dh, head_grads = self.head.backward(d_logits.reshape(T, B, V), h_in)
        if drop is not None:
            dh *= drop
        dx, _, rnn_grads = self.rnn.backward(dh, None, rnn_cache)
        grads = {"embedding.E": self.embedding.backward(dx, ids)["E"]}
        grads.update(prefixed("rnn", rnn_grads))
        grads.update(prefixed("head", head_grads))
        return loss, grads, finals

    def loss(self, ids, targets, states=None, mask=None):
        """Evaluation: (summed negative log-likelihood, token count, final states)."""
        logits, finals, _ = self.forward(ids, states, mask)
        T, B, V = logits.shape
        weights = None if mask is None else mask.reshape(-1).astype(self.dtype)
        loss, _ = softmax_cross_entropy(logits.reshape(T * B, V), targets.reshape(-1), weights)
        count = T * B if mask is None else float(mask.sum())
        return loss * count, count, finals

    def step(self, ids_t, states):
        """One generation step: ids_t (B,) -> logits (B, V), new states."""
        h, states = self.rnn.step(self.embedding.params["E"][ids_t], states)
        return self.head.forward(h), states


class LanguageModelTask(Task):
    """Many-to-many, shifted by one: contiguous streams read in chunks, the state carried across."""

    name, title, format = "lm", "language model", "text"
    graph = "lm_graph"  # export/onnx_graph.py
    text_picture = "lm_picture"  # commands/show.py
    generates = one_way = True
    pretrained_rows = False  # its input words are also the words it predicts
    report = "lm_report"  # render.py: eval's tables
    ensembles = False

    def build(self, cfg, data_meta, rng, V, dtype):
        """The model a config and a data set describe (tasks/build.py has checked and sized them)."""
        if cfg.bidirectional:
            raise RnncliError("a language model cannot be bidirectional (it would see the future)")
        return LanguageModel(V, rng, embed=cfg.embed, hidden=cfg.hidden, cell=cfg.cell, layers=cfg.layers,
                             dropout=cfg.dropout, dtype=dtype, activation=cfg.activation, reset_after=cfg.reset_after)

    def training_batches(self, cfg, ds, split, model, world):
        from rnncli.text.batching import StreamBatches, stream_ids

        return StreamBatches(stream_ids(ds.train, ds.meta["format"]), cfg.batch_size, cfg.seq_len,
                             world.share(cfg.batch_size))

    def step(self, model, batch, carry, rng):
        if batch is None:
            return 0.0, None, carry, 0, 0
        x, y = batch
        loss, grads, finals = model.loss_and_grads(x, y, carry, train=True, rng=rng)
        return loss, grads, carried(finals), x.size, x.size

    def random_outputs(self, meta, cfg, rng, inputs, mask):
        targets = np.where(mask > 0, rng.integers(len(SPECIALS), len(meta["vocab"]), mask.shape), 0)
        return inputs, targets, None, mask

    def first_examples(self, ds, cfg, B=3, T=6):
        from rnncli.text.batching import stream_ids

        ids = stream_ids(ds.train, ds.meta["format"])[: B * (T + 1)].reshape(B, T + 1).T
        return np.ascontiguousarray(ids[:-1]), np.ascontiguousarray(ids[1:]), None, None

    def check_loss(self, model, batch, rng):
        ids, targets, states, mask = batch
        return model.loss_and_grads(ids, targets, states, mask, rng=rng)[:2]

    # a validation reads the stream one token after another (batch 1: bench/scale.py measured a token
    # 0.7 to 2.8 times a training token's cost, the most for a small model of characters), so 3.5 %
    # of the tokens trained keeps it under a tenth
    evaluation_share = 0.035

    def sequence_tokens(self, cfg, train):
        return cfg.seq_len  # a step reads B streams of seq_len tokens

    def evaluation_part(self, cfg, split, train, fmt):
        """A language model reads one stream: its sample is one contiguous stretch of it, at a
        seeded place (whole sequences for words read from labelled or tagged sentences)."""
        from rnncli.text.batching import stream_ids
        from rnncli.text.dataset import Split

        budget = self.evaluation_budget(cfg, train)
        if fmt != "text" or split is None or budget == 0 or len(split.ids) <= budget:
            return super().evaluation_part(cfg, split, train, fmt)
        stream = stream_ids(split, fmt)
        start = int(np.random.default_rng([cfg.seed, 4]).integers(len(stream) - budget + 1))
        part = Split(np.ascontiguousarray(stream[start : start + budget]), np.array([0, budget], np.int64))
        return part, {"tokens": budget, "sequences": 1, "sample": True, "of_tokens": int(len(stream)),
                      "of_sequences": split.num_sequences, "from_token": start}

    def scores(self, model, split, fmt, char_features, world, decode_sample, references):
        from rnncli.evaluate import evaluate_lm
        from rnncli.text.batching import stream_ids

        return evaluate_lm(model, stream_ids(split, fmt))


def carried(finals):
    """The states a chunk ended in, as the next chunk's start: copies, not views of its buffers."""
    return [tuple(s.copy() for s in f) for f in finals]
