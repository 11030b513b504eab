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

import numpy as np

from rnncli.nn.attention import Attention
from rnncli.nn.input_feeding import InputFeedingDecoder
from rnncli.nn.layers import Embedding, FrameInput, InitialState, Linear, dropout_mask
from rnncli.nn.losses import softmax_cross_entropy
from rnncli.nn.reduce import join_steps, reduced_mask
from rnncli.nn.stack import RecurrentStack
from rnncli.tasks.task import Task, random_inputs


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
        if self.frames:
            self.source_input = FrameInput(frame_dim * stack_frames, embed if input_projection is None
                                           else input_projection, rng, dtype)
            width = self.source_input.width
        else:
            self.source_embedding = Embedding(source_vocab_size, embed, rng, dtype)
            width = embed
        self.target_embedding = Embedding(target_vocab_size, embed, rng, dtype)
        common = dict(dropout=dropout, dtype=dtype, activation=activation, reset_after=reset_after)
        self.encoder = RecurrentStack(cell, width, hidden, rng, num_layers=layers, bidirectional=bidirectional,
                                      pyramid=pyramid, **common)
        # with input feeding the first decoder layer reads [E y<t-1>; h~<t-1>]
        self.decoder = RecurrentStack(cell, embed + (Hd if input_feeding else 0), Hd, rng,
                                      num_layers=decoder_layers, bidirectional=False, **common)
        self.n_states = len(self.decoder.initial_state(1)[0])
        # one per decoder layer, for a bidirectional encoder or a decoder of its own width only
        self.directions = 2 if bidirectional else 1
        self.bridge = [InitialState(self.directions * hidden, Hd, self.n_states, rng, dtype, init="fan_in")
                       for _ in range(decoder_layers)] if bidirectional or Hd != hidden else []
        self.attention = Attention(attention, Hd, self.encoder.output_size, rng, dtype) if attention else None
        self.feeding = InputFeedingDecoder(self.decoder, self.attention, dropout) if input_feeding else None
        # fan-in init (nn/init.py): from Glorot's, 3x smaller for 15,000 words, it learnt far less per step
        self.head = Linear(Hd, target_vocab_size, rng, dtype, init="fan_in")
        self.params = ({f"input.{k}": v for k, v in self.source_input.params.items()} if self.frames
                       else {"source_embedding.E": self.source_embedding.params["E"]})
        self.params["target_embedding.E"] = self.target_embedding.params["E"]
        self.params.update({f"encoder.{k}": v for k, v in self.encoder.params.items()})
        self.params.update({f"decoder.{k}": v for k, v in self.decoder.params.items()})
        for k, bridge in enumerate(self.bridge):
            self.params.update({f"bridge.l{k}.{n}": v for n, v in bridge.params.items()})
        if self.attention:
            self.params.update({f"attention.{k}": v for k, v in self.attention.params.items()})
        self.params.update({f"head.{k}": v for k, v in self.head.params.items()})
        self._prepared = (None, None)  # step(): the memory last read and attention.prepare of it

    # ------------------------------------------------------------ the bridge

    def _bridge(self, finals):
        """Encoder final states (one tuple per layer and direction) -> decoder initial states
        (one tuple per decoder layer, from the encoder's top layers), and what the backward pass needs."""
        below = self.encoder.num_layers - self.decoder.num_layers  # encoder layers that feed no decoder layer
        if not self.bridge:
            return [tuple(s) for s in finals[below:]], None
        init, cache, dirs = [], [], self.directions
        for k, bridge in enumerate(self.bridge):
            ways = finals[dirs * (below + k) : dirs * (below + k + 1)]  # the layer's forward (and backward) states
            joined = [np.concatenate(arrays, axis=-1) for arrays in zip(*ways, strict=True)]
            init.append(bridge.forward(joined))  # each state array from its (B, dirs H) [forward; backward]
            cache.append((joined, init[-1]))
        return init, cache

    def _bridge_backward(self, d_init, cache):
        """d_init (one tuple per decoder layer) -> d of the encoder finals (None for the layers that
        feed no decoder layer), bridge grads."""
        below = self.encoder.num_layers - self.decoder.num_layers
        if cache is None:
            return [None] * below + list(d_init), {}
        H, dirs = self.encoder.hidden_size, self.directions
        d_finals, grads = [None] * (dirs * self.encoder.num_layers), {}
        for k, (bridge, (joined, state)) in enumerate(zip(self.bridge, cache, strict=True)):
            d_joined, g = bridge.backward(d_init[k], joined, state)
            grads.update({f"bridge.l{k}.{n}": v for n, v in g.items()})
            for way in range(dirs):
                d_finals[dirs * (below + k) + way] = tuple(d[:, way * H : (way + 1) * H] for d in d_joined)
        return d_finals, grads

    # ------------------------------------------------------------ the encoder

    @property
    def reduction(self):
        """How many source steps (frames) one step of the encoder's top layer stands for."""
        return (self.stack_frames if self.frames else 1) * 2**self.encoder.pyramid

    def memory_mask(self, source_mask):
        """source mask (S, B) -> the mask of the encoder's outputs, which attention reads: as it is
        for words; for frames shortened by stacking and the pyramid."""
        mask = reduced_mask(source_mask, self.stack_frames) if self.frames and self.stack_frames > 1 else source_mask
        return self.encoder.output_mask(mask)

    def _encode(self, source, source_mask, train=False, rng=None):
        """source ids (S, B) or frames (S, B, D) -> memory (S', B, He), final states, what backward needs."""
        if not self.frames:
            read = source
            x = self.source_embedding.forward(source)  # (S, B, E)
            mask = source_mask
        else:
            read, mask = source, source_mask
            if self.stack_frames > 1:
                read, mask = join_steps(source, source_mask, self.stack_frames)  # (S/k, B, k D)
            x = self.source_input.forward(read)  # (S/k, B, E)
        memory, finals, enc_cache = self.encoder.forward(x, None, mask, train=train, rng=rng)
        return memory, finals, (read, enc_cache)

    def _encode_backward(self, d_memory, d_finals, cache):
        read, enc_cache = cache
        dx, _, grads = self.encoder.backward(d_memory, d_finals, enc_cache)
        grads = {f"encoder.{k}": v for k, v in grads.items()}
        if self.frames:
            grads.update({f"input.{k}": v for k, v in self.source_input.backward(dx, read).items()})
        else:
            grads["source_embedding.E"] = self.source_embedding.backward(dx, read)["E"]
        return grads

    # ------------------------------------------------------------ teacher-forced training

    def forward(self, source, source_mask, target_in, target_mask, train=False, rng=None):
        """source (S, B) (frames: (S, B, D)), target_in (T, B), masks alike -> logits (T, B, V_target), cache."""
        h_in, cache = self.read_targets(source, source_mask, target_in, target_mask, train, rng)
        return self.head.forward(h_in), cache

    def read_targets(self, source, source_mask, target_in, target_mask, train=False, rng=None):
        """Everything but the head: -> h_in (T, B, H), what the head reads at each target step, and
        the cache backward needs (the head's input is h_in itself)."""
        memory, finals, enc_cache = self._encode(source, source_mask, train, rng)
        init, bridge_cache = self._bridge(finals)
        y = self.target_embedding.forward(target_in)  # (T, B, E)
        if self.feeding:  # step by step: h~ (T, B, H) already dropped out, as each next step read it
            h_in, _, _, dec_cache = self.feeding.forward(y, init, target_mask, memory, self.memory_mask(source_mask),
                                                         train, rng)
            return h_in, (enc_cache, bridge_cache, dec_cache, None, None)
        h, _, dec_cache = self.decoder.forward(y, init, target_mask, train=train, rng=rng)  # (T, B, H)
        att_cache = None
        if self.attention:
            h, _, att_cache = self.attention.forward(h, memory, self.memory_mask(source_mask))
        drop = dropout_mask(rng, h.shape, self.dropout, self.dtype) if train else None
        h_in = h * drop if drop is not None else h
        return h_in, (enc_cache, bridge_cache, dec_cache, att_cache, drop)

    @staticmethod
    def real_positions(h_in, target_mask):
        """The target steps that are words, not padding: -> their flat indices (N,) into T * B and
        their h_in (N, H). The head and the loss read only these: a batch's padding (a third of
        its target positions on eng-fra) would otherwise cost the largest product of the step."""
        real = np.flatnonzero(target_mask.reshape(-1))
        return real, h_in.reshape(-1, h_in.shape[-1])[real]

    def loss_and_grads(self, source, source_mask, target_in, target_out, target_mask, train=True, rng=None):
        """Mean cross-entropy over the real target tokens and its gradients by parameter name."""
        h_in, (enc_cache, bridge_cache, dec_cache, att_cache, drop) = self.read_targets(
            source, source_mask, target_in, target_mask, train, rng)
        real, h_real = self.real_positions(h_in, target_mask)  # (N,), (N, H)
        loss, d_logits = softmax_cross_entropy(self.head.forward(h_real), target_out.reshape(-1)[real],
                                               None, self.label_smoothing)
        dh_real, grads = self.head.backward(d_logits, h_real)
        grads = {f"head.{k}": v for k, v in grads.items()}
        dh = np.zeros(h_in.shape, h_in.dtype)  # C order, so the flat view below writes into it; padding's 0
        dh.reshape(-1, dh.shape[-1])[real] = dh_real
        if self.feeding:
            dy, d_init, d_memory, dec_grads = self.feeding.backward(dh, dec_cache)
            grads.update(dec_grads)  # decoder.* and attention.*, by their full names
        else:
            if drop is not None:
                dh *= drop
            d_memory = None
            if self.attention:
                dh, d_memory, att_grads = self.attention.backward(dh, att_cache)
                grads.update({f"attention.{k}": v for k, v in att_grads.items()})
            dy, d_init, dec_grads = self.decoder.backward(dh, None, dec_cache)
            grads.update({f"decoder.{k}": v for k, v in dec_grads.items()})
        d_finals, bridge_grads = self._bridge_backward(d_init, bridge_cache)
        grads.update(bridge_grads)
        grads.update(self._encode_backward(d_memory, d_finals, enc_cache))
        grads["target_embedding.E"] = self.target_embedding.backward(dy, target_in)["E"]
        return loss, grads

    def attention_weights(self, source, source_mask, target_in):
        """alpha (B, T, S'): each target step's attention over the encoder's outputs, the previous
        tokens target_in (T, B) given (readout.py draws them)."""
        memory, init = self.start(source, source_mask)
        y = self.target_embedding.forward(target_in)
        mask = np.ones(target_in.shape, self.dtype)
        if self.feeding:
            return self.feeding.forward(y, init[:-1], mask, memory, self.memory_mask(source_mask))[2]
        h, _, _ = self.decoder.forward(y, init, mask)
        return self.attention.forward(h, memory, self.memory_mask(source_mask))[1]

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
        memory, finals, _ = self._encode(source, source_mask)
        states = self._bridge(finals)[0]
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
        h, states = self.decoder.step(y_t, states)
        if self.attention:
            h = self.attention.forward(h[None], memory, source_mask, self._prepared[1])[0][0]
        return self.head.forward(h), states


class EncoderDecoderTask(Task):
    """Tx != Ty: sources (words, characters or frames) in, target tokens out."""

    name, title, format = "seq2seq", "encoder-decoder", "pairs"
    graph = "seq2seq_graph"  # export/onnx_graph.py
    text_picture, frames_picture = "translation_picture", "speech_frames"  # commands/show.py
    stacks = ("encoder", "decoder")
    embedding = "source_embedding.E"
    validation_decodes = True

    def names_needed(self, cfg):
        return {"target_vocab": 1}

    def check_data(self, check, data):
        check.string("data.target_level", data.get("target_level"), ("char", "word"))
        check.number("data.max_target_ratio", data.get("max_target_ratio"), low=0)

    def check_head(self, cfg, data, shape, agree):
        agree("data.target_vocab", len(data["target_vocab"]), shape("head.W")[0], "head.W (target tokens)")
        agree("data.target_vocab", len(data["target_vocab"]), shape("target_embedding.E")[0],
              "target_embedding.E (rows)")

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
