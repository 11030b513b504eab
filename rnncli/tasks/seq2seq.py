"""Encoder-decoder (many-to-many with Tx != Ty): the lecture's translation model.

    source ids (S, B) -> embedding -> encoder stack (bi/unidirectional) -> outputs m<1..S>, final states
    final states -> bridge -> the decoder's initial states
    target inputs <bos> y<1..T-1> (T, B) -> embedding -> decoder stack -> h<1..T>
    [attention over m<1..S> (nn/attention.py): h~<t> = tanh(W_c [c<t>; h<t>] + b_c)]
    [input feeding (nn/input_feeding.py): the decoder reads [E y<t-1>; h~<t-1>], step by step]
    -> dropout -> head -> softmax over the target vocabulary, predicting y<1..T-1> <eos>

Speech (audio in, text out) swaps the source embedding for frames: x<t> in R^D (log-mel frames)
-> [k neighbouring frames stacked into one step] -> projection W x + b (nn/layers.FrameInput) ->
an encoder that may be a pyramid (nn/stack.py: each layer reads half as many steps as the one
below), so that attention runs over a few steps a second instead of 100 (nn/reduce.py).

Training feeds the true previous token (teacher forcing); decode.py feeds the model's own.
The bridge: a unidirectional encoder hands each layer's final state to the same decoder layer
as it is (the lecture's encoder-decoder). A bidirectional encoder has two final states per
layer, [forward; backward], which a learned map brings to the decoder's size:
a<0> = tanh(W [a_fwd; a_bwd] + b), and for an LSTM c<0> = W' [c_fwd; c_bwd] + b' (a cell needs no squashing).
A decoder of another width than the encoder (decoder_hidden) always starts through such a map.
"""

import json

import numpy as np

from rnncli.nn.attention import Attention
from rnncli.nn.bridge import Bridge
from rnncli.nn.decoder import AttentiveDecoder
from rnncli.nn.input_feeding import InputFeedingDecoder
from rnncli.nn.layers import Embedding, Linear
from rnncli.nn.losses import softmax_cross_entropy
from rnncli.nn.names import prefixed
from rnncli.nn.source_encoder import SourceEncoder, source_reader
from rnncli.nn.stack import RecurrentStack
from rnncli.tasks.task import Task, random_inputs
from rnncli.text.targets import DEFAULT_TARGET_RATIO


class Seq2Seq:
    # training targets (1 - ε) on the true class and ε spread over all (nn/losses.py); build_model sets it
    label_smoothing = 0.0

    def __init__(self, source_vocab_size, target_vocab_size, rng, embed=64, hidden=256, cell="lstm", layers=1,
                 bidirectional=False, dropout=0.0, attention=None, dtype=np.float32, activation="tanh",
                 reset_after=True, frame_dim=None, input_projection=None, stack_frames=1, pyramid=0,
                 decoder_layers=None, input_feeding=False, decoder_hidden=None):
        """frame_dim: the source is frames of that many numbers (speech), not token ids; stack_frames:
        join that many neighbouring frames into one step; input_projection: the frames' projection
        width (None: embed, 0: none); pyramid: halvings of the encoder's rate between its layers;
        decoder_layers: the decoder's depth (None: layers), fed by the encoder's top layers;
        input_feeding: the decoder reads its previous attentional state beside each word (needs attention);
        decoder_hidden: the decoder's width (None: hidden), e.g. 2 hidden beside a bidirectional encoder."""
        self.dtype, self.dropout = np.dtype(dtype), dropout
        self.frames, self.stack_frames = frame_dim is not None, stack_frames
        decoder_layers = layers if decoder_layers is None else decoder_layers
        Hd = hidden if decoder_hidden is None else decoder_hidden
        if not 1 <= decoder_layers <= layers:
            raise ValueError("the decoder has 1 to `layers` layers (each starts from an encoder layer's state)")
        if input_feeding and not attention:
            raise ValueError("input feeding feeds the attentional state: it needs attention")
        reader = source_reader(source_vocab_size, embed, rng, dtype, frame_dim, input_projection, stack_frames)
        self.target_embedding = Embedding(target_vocab_size, embed, rng, dtype)
        common = dict(dropout=dropout, dtype=dtype, activation=activation, reset_after=reset_after)
        self.source = SourceEncoder(reader, cell, hidden, rng, layers, bidirectional, pyramid, stack_frames, **common)
        self.encoder = self.source.stack
        if not self.frames:
            self.source_embedding = reader  # by its parameters' name, for those that look it up
        # with input feeding the first decoder layer reads [E y<t-1>; h~<t-1>]
        self.decoder = RecurrentStack(cell, embed + (Hd if input_feeding else 0), Hd, rng,
                                      num_layers=decoder_layers, bidirectional=False, **common)
        self.n_states = self.decoder.layers[0][0].n_states
        # one per decoder layer, for a bidirectional encoder or a decoder of its own width only
        self.directions = 2 if bidirectional else 1
        self.bridge = Bridge(layers, decoder_layers, self.directions, hidden, Hd, self.n_states, rng, dtype)
        self.attention = Attention(attention, Hd, self.encoder.output_size, rng, dtype) if attention else None
        self.feeding = InputFeedingDecoder(self.decoder, self.attention, dropout) if input_feeding else None
        self.reader = self.feeding or AttentiveDecoder(self.decoder, self.attention, dropout)  # reads the targets
        # fan-in init (nn/init.py): from Glorot's, 3x smaller for 15,000 words, it learnt far less per step
        self.head = Linear(Hd, target_vocab_size, rng, dtype, init="fan_in")
        self.params = {k: v for k, v in self.source.params.items() if not k.startswith("encoder.")}  # as before:
        self.params["target_embedding.E"] = self.target_embedding.params["E"]  # the readers, then the encoder
        self.params.update(self.source.params)
        self.params.update(prefixed("decoder", self.decoder.params))
        self.params.update(prefixed("bridge", self.bridge.params))
        if self.attention:
            self.params.update(prefixed("attention", self.attention.params))
        self.params.update(prefixed("head", self.head.params))
        self._prepared = (None, None)  # step(): the memory last read and attention.prepare of it

    # ------------------------------------------------------------ the encoder

    @property
    def reduction(self):
        """How many source steps (frames) one step of the encoder's top layer stands for."""
        return self.source.reduction

    def memory_mask(self, source_mask):
        """source mask (S, B) -> the mask of the encoder's outputs, which attention reads."""
        return self.source.memory_mask(source_mask)

    # ------------------------------------------------------------ teacher-forced training

    def forward(self, source, source_mask, target_in, target_mask, train=False, rng=None):
        """source (S, B) (frames: (S, B, D)), target_in (T, B), masks alike -> logits (T, B, V_target), cache."""
        h_in, cache = self.read_targets(source, source_mask, target_in, target_mask, train, rng)
        return self.head.forward(h_in), cache

    def read_targets(self, source, source_mask, target_in, target_mask, train=False, rng=None):
        """Everything but the head: -> h_in (T, B, H), what the head reads at each target step, and
        the cache backward needs (the head's input is h_in itself)."""
        memory, finals, enc_cache = self.source.forward(source, source_mask, train, rng)
        init, bridge_cache = self.bridge.forward(finals)
        y = self.target_embedding.forward(target_in)  # (T, B, E)
        h_in, _, _, dec_cache = self.reader.forward(y, init, target_mask, memory, self.memory_mask(source_mask),
                                                    train, rng)
        return h_in, (enc_cache, bridge_cache, dec_cache)

    @staticmethod
    def real_positions(h_in, target_mask):
        """The target steps that are words, not padding: -> their flat indices (N,) into T * B and
        their h_in (N, H). The head and the loss read only these: a batch's padding (a third of
        its target positions on eng-fra) would otherwise cost the largest product of the step."""
        real = np.flatnonzero(target_mask.reshape(-1))
        return real, h_in.reshape(-1, h_in.shape[-1])[real]

    def loss_and_grads(self, source, source_mask, target_in, target_out, target_mask, train=True, rng=None):
        """Mean cross-entropy over the real target tokens and its gradients by parameter name."""
        h_in, (enc_cache, bridge_cache, dec_cache) = self.read_targets(
            source, source_mask, target_in, target_mask, train, rng)
        real, h_real = self.real_positions(h_in, target_mask)  # (N,), (N, H)
        loss, d_logits = softmax_cross_entropy(self.head.forward(h_real), target_out.reshape(-1)[real],
                                               None, self.label_smoothing)
        dh_real, grads = self.head.backward(d_logits, h_real)
        grads = prefixed("head", grads)
        dh = np.zeros(h_in.shape, h_in.dtype)  # C order, so the flat view below writes into it; padding's 0
        dh.reshape(-1, dh.shape[-1])[real] = dh_real
        dy, d_init, d_memory, dec_grads, att_grads = self.reader.backward(dh, dec_cache)
        grads.update(prefixed("decoder", dec_grads))
        grads.update(prefixed("attention", att_grads))
        d_finals, bridge_grads = self.bridge.backward(d_init, bridge_cache)
        grads.update(prefixed("bridge", bridge_grads))
        grads.update(self.source.backward(d_memory, d_finals, enc_cache))
        grads["target_embedding.E"] = self.target_embedding.backward(dy, target_in)["E"]
        return loss, grads

    def attention_weights(self, source, source_mask, target_in):
        """alpha (B, T, S'): each target step's attention over the encoder's outputs, the previous
        tokens target_in (T, B) given (readout.py draws them)."""
        memory, init = self.start(source, source_mask)
        y = self.target_embedding.forward(target_in)
        init = init[:-1] if self.feeding else init  # the feed h~<0> is made by forward
        return self.reader.forward(y, init, np.ones(target_in.shape, self.dtype), memory,
                                   self.memory_mask(source_mask))[2]

    def loss(self, source, source_mask, target_in, target_out, target_mask):
        """Evaluation: (summed negative log-likelihood, number of target tokens)."""
        h_in, _ = self.read_targets(source, source_mask, target_in, target_mask)
        real, h_real = self.real_positions(h_in, target_mask)
        loss, _ = softmax_cross_entropy(self.head.forward(h_real), target_out.reshape(-1)[real])
        return loss * len(real), float(len(real))

    # ------------------------------------------------------------ step by step (decode.py)

    def start(self, source, source_mask):
        """Encode a batch of sources: -> memory (S', B, He) and the decoder's initial states (with
        input feeding, h~<0> = 0 after them as one more state tuple)."""
        memory, finals, _ = self.source.forward(source, source_mask)
        states = self.bridge.forward(finals)[0]
        if self.feeding:
            states = [*states, (self.feeding.initial_feed(memory.shape[1]),)]
        return memory, states

    def step(self, ids_t, states, memory, source_mask):
        """One decoder step: previous tokens (N,), states -> logits (N, V_target), new states.
        source_mask: the memory's (memory_mask)."""
        y_t = self.target_embedding.params["E"][ids_t]
        if self.attention and self._prepared[0] is not memory:  # the memory's keys once per decoding
            self._prepared = (memory, self.attention.prepare(memory))
        if self.feeding:
            h, states = self.feeding.step(y_t, states[:-1], states[-1][0], memory, source_mask, self._prepared[1])
            return self.head.forward(h), [*states, (h,)]
        h, states = self.reader.step(y_t, states, memory, source_mask, self._prepared[1])
        return self.head.forward(h), states


class EncoderDecoderTask(Task):
    """Tx != Ty: sources (words, characters or frames) in, target tokens out."""

    name, title, format = "seq2seq", "encoder-decoder", "pairs"
    graph = "seq2seq_graph"  # export/onnx_graph.py
    text_picture, frames_picture = "translation_picture", "speech_frames"  # commands/show.py
    stacks = ("encoder", "decoder")
    embedding = "source_embedding.E"
    decodes = True
    report = "seq2seq_report"  # render.py: eval's tables
    ensembles = False

    def build(self, cfg, data_meta, rng, V, dtype):
        attention = None if cfg.attention in (None, "none") else cfg.attention
        model = Seq2Seq(V, len(data_meta["target_vocab"]), rng, embed=cfg.embed, hidden=cfg.hidden, cell=cfg.cell,
                        layers=cfg.layers, bidirectional=cfg.bidirectional is not False, dropout=cfg.dropout,
                        attention=attention, dtype=dtype, activation=cfg.activation, reset_after=cfg.reset_after,
                        frame_dim=data_meta.get("frame_dim"), input_projection=cfg.input_projection,
                        stack_frames=cfg.stack_frames, pyramid=cfg.pyramid, decoder_layers=cfg.decoder_layers,
                        input_feeding=cfg.input_feeding, decoder_hidden=cfg.decoder_hidden)
        return self._decoding_attributes(model, data_meta)

    @staticmethod
    def _decoding_attributes(model, data_meta):
        """What decoding and scoring read of a built model: its target tokens, level and length limit."""
        model.target_tokens, model.target_level = data_meta["target_vocab"], data_meta["target_level"]
        model.lower = data_meta["lower"]
        model.max_target_ratio = data_meta.get("max_target_ratio", DEFAULT_TARGET_RATIO)
        model.label_names = None
        return model

    def names_needed(self, cfg):
        return {"target_vocab": 1}

    def check_data(self, check, data):
        check.string("data.target_level", data.get("target_level"), ("char", "word"))
        check.number("data.max_target_ratio", data.get("max_target_ratio"), low=0)

    def make_batch(self, split, index, char_features=False):
        from rnncli.text.batching import paired_batch

        return paired_batch(split, index)

    def step(self, model, batch, carry, rng):
        if batch is None:
            return 0.0, None, carry, 0, 0
        loss, grads = model.loss_and_grads(*batch, rng=rng)
        tokens = int(batch[-1].sum())  # the target tokens: the batch's last array is their mask
        return loss, grads, carry, tokens, tokens

    def synthetic_names(self, vocab, K):
        return {"target_vocab": vocab[:9], "target_level": "word"}

    def random_batch(self, meta, cfg, rng, T=5, B=3):
        # a speech encoder joins stack_frames x 2^pyramid frames into a step: lengths in whole steps
        step = cfg.stack_frames * 2**cfg.pyramid if meta.get("input") == "frames" else 1
        inputs, mask = random_inputs(meta, rng, T, B, step)
        Vt = len(meta["target_vocab"])
        tmask = np.ones((4, mask.shape[1]))
        tmask[3:, 1:] = 0
        return (inputs, mask, np.where(tmask > 0, rng.integers(2, Vt, tmask.shape), 0),
                np.where(tmask > 0, rng.integers(3, Vt, tmask.shape), 0), tmask)

    def prediction_text(self, record, names, proba=False, as_json=False):
        """A line per source: the best hypothesis; under --json also its score, log-probability and
        the n best (a speech model names its output a transcript)."""
        hyps = record["hypotheses"]
        if as_json:
            best, key = hyps[0] if hyps else ("", None, None), record.get("key", "translation")
            return json.dumps({"source": record["source"], key: best[0], "score": best[1], "log_prob": best[2],
                               "n_best": [{key: t, "score": s, "log_prob": lp} for t, s, lp in hyps]},
                              ensure_ascii=False) + "\n"
        return (hyps[0][0] if hyps else "") + "\n"

    def output_name(self, data_meta):
        """What predict --json calls an output: a speech model's a transcript, else a translation."""
        return "transcript" if data_meta.get("input") == "frames" else "translation"

    def decoding(self, cfg, beam=None, length_penalty=None):
        from rnncli.decode import decoding

        beam, length_penalty = decoding(cfg, beam, length_penalty)
        return {"beam": beam, "length_penalty": length_penalty}

    def evaluate(self, model, split, fmt, char_features=False, world=None, decode_sample=None, references=None,
                 beam=0, length_penalty=0.0):
        """Task.evaluate, decoding with a beam (0: greedy) and a length penalty."""
        from rnncli.evaluate import evaluate_seq2seq

        if split is None or split.num_sequences == 0:
            return None
        return evaluate_seq2seq(model, split, references if references is not None else split.target_texts,
                                beam=beam, length_penalty=length_penalty, world=world, decode_sample=decode_sample)
