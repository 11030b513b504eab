"""Conditional language model (one-to-many): a label in, a sequence out. The lectures' music example.

    label c (B,) -> label embedding l = L[c] (B, Dl)
    condition "state": every layer k starts from a<0>_k = tanh(W_k l + b_k)
                       (an LSTM's cell from c<0>_k = W'_k l + b'_k: a cell needs no squashing)
    condition "input": l is fed at every step beside the token, x<t> = [E[y<t-1>]; l]
    condition "both":  the two together
    inputs <eos> y<1..n-1> (T, B) -> embedding -> recurrent stack -> dropout -> head -> softmax,
    predicting y<1..n> <eos>: each text is read on its own, from its label's state, and ends with
    <eos> (the same framing the unconditional model learns from its stream of texts).

Training reads long texts in chunks (truncated BPTT, as the unconditional model reads its stream):
the first chunk of a batch of texts starts from the labels' states, the next ones from the states
the previous chunk ended in, without back-propagating into it (text/batching.py: TextChunks).

Label dropout (training only): a share of the texts is read with one more row of L, "no label",
in place of their own, chosen per text (so every chunk of a text agrees: text/batching.py). The model
then also learns p(x) alone, which keeps it from leaning on label-specific habits, and sampling can
push away from it (classifier-free guidance, sample.py): log p(x<t> | c) + (g - 1) (log p(x<t> | c) -
log p(x<t> | no label)).

Sampling starts from the label's state and <eos> and feeds the model its own tokens (sample.py).
"""

import numpy as np

from rnncli.nn.functional import log_softmax
from rnncli.nn.layers import Embedding, InitialState, Linear, dropout_mask
from rnncli.nn.losses import softmax_cross_entropy
from rnncli.nn.names import layer_name, prefixed
from rnncli.nn.stack import RecurrentStack
from rnncli.tasks.lm import carried
from rnncli.tasks.task import Task

CONDITIONS = ("state", "input", "both")


class ConditionalLM:
    # training targets (1 - ε) on the true class and ε spread over all (nn/losses.py); build_model sets it
    label_smoothing = 0.0

    def __init__(self, vocab_size, num_labels, rng, embed=64, hidden=256, cell="lstm", layers=1, dropout=0.0,
                 condition="state", label_embed=None, dtype=np.float32, activation="tanh", reset_after=True,
                 unlabelled=False):
        if condition not in CONDITIONS:
            raise ValueError(f"condition must be one of {CONDITIONS}")
        self.dtype, self.dropout, self.condition = np.dtype(dtype), dropout, condition
        self.by_state, self.by_input = condition in ("state", "both"), condition in ("input", "both")
        Dl = label_embed or embed
        # unlabelled: row num_labels of L is "no label" (label dropout's, and guidance's)
        self.no_label = num_labels if unlabelled else None
        self.embedding = Embedding(vocab_size, embed, rng, dtype)
        self.label_embedding = Embedding(num_labels + bool(unlabelled), Dl, rng, dtype)
        self.rnn = RecurrentStack(cell, embed + (Dl if self.by_input else 0), hidden, rng, num_layers=layers,
                                  dropout=dropout, dtype=dtype, activation=activation, reset_after=reset_after)
        self.n_states = len(self.rnn.initial_state(1)[0])
        # one per layer: the label's row -> a<0> (and an LSTM's c<0>)
        self.init = [InitialState(Dl, hidden, self.n_states, rng, dtype)
                     for _ in range(layers if self.by_state else 0)]
        self.head = Linear(hidden, vocab_size, rng, dtype)
        self.params = {"embedding.E": self.embedding.params["E"], "label_embedding.E": self.label_embedding.params["E"]}
        self.params.update(prefixed("rnn", self.rnn.params))
        for k, init in enumerate(self.init):
            self.params.update(prefixed(f"init.{layer_name(k)}", init.params))
        self.params.update(prefixed("head", self.head.params))

    # ------------------------------------------------------------ the label's initial state

    def _initial(self, l):
        """l (B, Dl) -> one state tuple per layer (None without condition "state")."""
        if not self.by_state:
            return None
        return [init.forward((l,) * self.n_states) for init in self.init]

    def _initial_backward(self, d_init, l, states):
        """d of the initial states -> d l (B, Dl) and the projections' gradients."""
        dl, grads = np.zeros_like(l), {}
        for k, (init, state) in enumerate(zip(self.init, states, strict=True)):
            dls, g = init.backward(d_init[k], (l,) * self.n_states, state)
            dl += sum(dls)
            grads.update(prefixed(f"init.{layer_name(k)}", g))
        return dl, grads

    def _inputs(self, ids, l):
        x = self.embedding.forward(ids)  # (T, B, E)
        if self.by_input:
            x = np.concatenate([x, np.broadcast_to(l, (ids.shape[0], *l.shape))], axis=-1)
        return x

    # ------------------------------------------------------------ training

    def initial_state(self, batch):
        return self.rnn.initial_state(batch)

    def forward(self, ids, mask, labels, train=False, rng=None, states=None):
        """ids (T, B) inputs, mask (T, B), labels (B,) -> logits (T, B, V), final states, cache.
        states: where a previous chunk of the same texts ended (None: the texts start here)."""
        l = self.label_embedding.forward(labels)  # (B, Dl)
        init = self._initial(l) if states is None else states
        h, finals, rnn_cache = self.rnn.forward(self._inputs(ids, l), init, mask, train=train, rng=rng)
        drop = dropout_mask(rng, h.shape, self.dropout, self.dtype) if train else None
        h_in = h * drop if drop is not None else h
        return self.head.forward(h_in), finals, (l, init, rnn_cache, drop, h_in)

    def loss_and_grads(self, ids, mask, labels, targets, states=None, train=True, rng=None):
        """Mean cross-entropy of predicting targets (T, B) over the real positions, its gradients and
        the final states (for the next chunk). From carried states the label's initial-state path
        gets no gradient: truncated BPTT stops at the chunk's start."""
        logits, finals, (l, init, rnn_cache, drop, h_in) = self.forward(ids, mask, labels, train, rng, states)
        T, B, V = logits.shape
        loss, d_logits = softmax_cross_entropy(logits.reshape(T * B, V), targets.reshape(-1),
                                               mask.reshape(-1).astype(self.dtype), self.label_smoothing)
        dh, head_grads = self.head.backward(d_logits.reshape(T, B, V), h_in)
        if drop is not None:
            dh *= drop
        dx, d_init, rnn_grads = self.rnn.backward(dh, None, rnn_cache)
        E = self.embedding.params["E"].shape[1]
        grads = {"embedding.E": self.embedding.backward(dx[..., :E], ids)["E"]}
        dl = dx[..., E:].sum(axis=0) if self.by_input else np.zeros_like(l)
        if self.by_state:
            if states is None:
                d_l, init_grads = self._initial_backward(d_init, l, init)
                dl += d_l
            else:
                init_grads = {name: np.zeros_like(p) for name, p in self.params.items() if name.startswith("init.")}
            grads.update(init_grads)
        grads["label_embedding.E"] = self.label_embedding.backward(dl, labels)["E"]
        grads.update(prefixed("rnn", rnn_grads))
        grads.update(prefixed("head", head_grads))
        return loss, grads, finals

    def token_nll(self, ids, mask, labels, targets):
        """Evaluation: the negative log-likelihood of every target (T, B), 0 at padding."""
        logits, _, _ = self.forward(ids, mask, labels)
        logp = log_softmax(logits.astype(np.float64))
        nll = -np.take_along_axis(logp, targets[..., None].astype(np.int64), axis=-1)[..., 0]
        return nll * mask

    # ------------------------------------------------------------ generation

    def start(self, labels):
        """labels (B,) -> the initial states and the label embeddings the steps read."""
        l = self.label_embedding.forward(np.asarray(labels))
        init = self._initial(l)
        return (init if init is not None else self.rnn.initial_state(len(l))), l

    def step(self, ids_t, states, l):
        """One generation step: ids_t (B,) -> logits (B, V), new states."""
        x = self.embedding.params["E"][ids_t]
        if self.by_input:
            x = np.concatenate([x, l], axis=-1)
        h, states = self.rnn.step(x, states)
        return self.head.forward(h), states


class ConditionalLanguageModelTask(Task):
    """Texts read whole in chunks from their label's state: a batch's first chunk starts from the
    labels, the next ones carry the state on."""

    name, title = "clm", "conditional language model"
    graph = "conditional_lm_graph"  # export/onnx_graph.py
    text_picture = "lm_picture"  # commands/show.py
    generates = one_way = True
    pretrained_rows = False
    report = "conditional_lm_report"  # render.py: eval's tables
    conditioned, ensembles = True, False

    def build(self, cfg, data_meta, rng, V, dtype):
        model = ConditionalLM(V, len(data_meta["labels"]), rng, embed=cfg.embed, hidden=cfg.hidden, cell=cfg.cell,
                              layers=cfg.layers, dropout=cfg.dropout, condition=cfg.condition, dtype=dtype,
                              activation=cfg.activation, reset_after=cfg.reset_after,
                              unlabelled=cfg.label_dropout > 0)
        model.label_names = data_meta["labels"]
        return model

    def described(self, cfg):
        return f"language model conditioned on the label ({cfg.get('condition')})"

    def names_needed(self, cfg):
        return {"labels": 1}  # a model of one label (200 jigs) is still a model of that label's texts

    def training_batches(self, cfg, ds, split, model, world):
        from rnncli.text.batching import TextChunks

        return TextChunks(ds.train, cfg.batch_size, cfg.seed, cfg.seq_len, cfg.label_dropout, model.no_label,
                          world.share)

    def make_batch(self, split, index, char_features=False):
        from rnncli.text.batching import framed_texts

        return framed_texts(split, index)

    def step(self, model, batch, carry, rng):
        if batch is None:  # none of this batch's texts are this worker's
            return 0.0, None, None, 0, 0
        *args, first = batch
        tokens = int(args[1].sum())
        if not tokens:  # this worker's texts may all have ended before this chunk: their states stay
            return 0.0, None, carry, 0, 0
        loss, grads, finals = model.loss_and_grads(*args, None if first else carry, rng=rng)
        return loss, grads, carried(finals), tokens, tokens

    def synthetic_names(self, vocab, K):
        return {"labels": [f"label{i}" for i in range(K)]}

    def random_outputs(self, meta, cfg, rng, inputs, mask):
        labels = rng.integers(0, len(meta["labels"]), mask.shape[1])
        return inputs, mask, labels, np.where(mask > 0, rng.integers(3, len(meta["vocab"]), mask.shape), 0)

    def scores(self, model, split, fmt, char_features, world, decode_sample, references):
        from rnncli.evaluate import evaluate_clm

        return evaluate_clm(model, split, world=world)
