"""Image captioning (one-to-many): an image in, a sentence out, the lectures' captioning RNN.

Two readings of the image, both built from nn/ pieces:

  the whole image at once (--attention none, the lectures' diagram):
    image (H x W) -> its columns as frames, normalised (frames/images.py) -> flattened: v in R^(W*H*C)
    v -> per decoder layer: a<0> = tanh(W_a v + b_a), an LSTM's c<0> = W_c v + b_c   (nn/image_vector.py,
         nn/bridge.py)
    <bos> y<1..T-1> -> embedding -> decoder stack -> head -> softmax, predicting y<1..T> <eos>

  the image as a sequence ("show, attend and tell", --attention dot|general|additive):
    its columns x<1..W> -> the encoder of tasks/seq2seq.py (bidirectional) -> m<1..W>, and each word
    attends over the columns: the encoder-decoder, frames in, unchanged.

Everything after the start is the encoder-decoder's: teacher forcing, greedy and beam decoding
(decode.py), predict and eval. Evaluation adds what a caption of digits is judged by: exact match,
BLEU, and per-object accuracy (metrics.scene_accuracy: each "<object> <row> <column>" phrase of the
reference found in the hypothesis).
"""

import numpy as np

from rnncli.nn.bridge import Bridge
from rnncli.nn.decoder import AttentiveDecoder
from rnncli.nn.image_vector import ImageVector
from rnncli.nn.layers import Embedding, Linear
from rnncli.nn.names import prefixed
from rnncli.nn.stack import RecurrentStack
from rnncli.tasks.seq2seq import EncoderDecoderTask, Seq2Seq


class Captioner(Seq2Seq):
    """The one-to-many captioner: Seq2Seq's decoder, started from the image's vector instead of an
    encoder's final states (and nothing to attend to). Training, loss and step() are Seq2Seq's."""

    def __init__(self, image_steps, frame_dim, target_vocab_size, rng, embed=64, hidden=256, cell="lstm",
                 layers=1, dropout=0.0, dtype=np.float32, activation="tanh", reset_after=True):
        self.dtype, self.dropout = np.dtype(dtype), dropout
        self.frames, self.stack_frames = True, 1
        common = dict(dropout=dropout, dtype=dtype, activation=activation, reset_after=reset_after)
        self.target_embedding = Embedding(target_vocab_size, embed, rng, dtype)
        self.decoder = RecurrentStack(cell, embed, hidden, rng, num_layers=layers, bidirectional=False, **common)
        self.n_states = self.decoder.layers[0][0].n_states
        self.source = ImageVector(image_steps, frame_dim, layers, self.n_states)
        self.encoder, self.directions = None, 1
        # each decoder layer's own map from v (projected=True: even where the widths happen to agree)
        self.bridge = Bridge(layers, layers, 1, self.source.size, hidden, self.n_states, rng, dtype, projected=True)
        self.attention = self.feeding = None
        self.reader = AttentiveDecoder(self.decoder, None, dropout)
        self.head = Linear(hidden, target_vocab_size, rng, dtype, init="fan_in")
        self.params = {"target_embedding.E": self.target_embedding.params["E"]}
        self.params.update(prefixed("decoder", self.decoder.params))
        self.params.update(prefixed("bridge", self.bridge.params))
        self.params.update(prefixed("head", self.head.params))
        self._prepared = (None, None)


class CaptionTask(EncoderDecoderTask):
    """Images in, captions out: the image read whole (Captioner) or as columns with attention."""

    name, title = "caption", "image captioner"
    # a caption is right or wrong as a whole: the weights kept are those that caption the most valid
    # images exactly (on the digit scenes the lowest loss came at step 4,500 with 88.2 % exact, and
    # 90.4 % came at step 7,125 with a higher loss: bench/HISTORY.md)
    score_name, metric, metric_title, maximizes = "exact match %", "exact_match", "exact match", True
    report = "caption_report"  # render.py: eval's tables
    frames_picture = "caption_frames"  # commands/show.py
    graph = "caption_graph"  # export/onnx_graph.py

    def output_name(self, data_meta):
        return "caption"

    def selection_score(self, metrics):
        return -metrics["exact_match"]

    def stacks_of(self, cfg):
        return ("encoder", "decoder") if _attends(cfg) else ("decoder",)

    def build(self, cfg, data_meta, rng, V, dtype):
        if _attends(cfg):  # show, attend and tell: the encoder-decoder over the image's columns
            return super().build(cfg, data_meta, rng, V, dtype)
        height, width, channels = data_meta["image"]
        model = Captioner(width, height * channels, len(data_meta["target_vocab"]), rng, embed=cfg.embed,
                          hidden=cfg.hidden, cell=cfg.cell, layers=cfg.layers, dropout=cfg.dropout, dtype=dtype,
                          activation=cfg.activation, reset_after=cfg.reset_after)
        return self._decoding_attributes(model, data_meta)

    def check_data(self, check, data):
        super().check_data(check, data)
        image = data.get("image")
        if not (isinstance(image, list) and len(image) == 3 and all(isinstance(v, int) and v > 0 for v in image)
                and image[2] in (1, 3) and image[0] * image[1] <= 4096 * 4096):
            check.fail("data.image", "must be [height, width, channels] (1 or 3 channels)")
        elif data.get("frame_dim") != image[0] * image[2]:
            check.fail("data.frame_dim", f"is {data.get('frame_dim')}, but images of {image} have columns of "
                       f"{image[0] * image[2]} numbers")

    def synthetic_names(self, vocab, K):
        """A made-up model's data (gradcheck --task caption): images of 3 x 4 grey pixels."""
        return {**super().synthetic_names(vocab, K), "input": "frames", "image": [3, 4, 1], "frame_dim": 3,
                "frame_mean": [0.0] * 3, "frame_std": [1.0] * 3}

    def random_batch(self, meta, cfg, rng, T=5, B=3):
        """Whole images (every column there: an image has no padding), captions of unequal lengths."""
        inputs, mask, t_in, t_out, t_mask = super().random_batch(meta, cfg, rng, T, B)
        steps = meta["image"][1]
        inputs = rng.normal(size=(steps, inputs.shape[1], meta["frame_dim"]))
        return inputs, np.ones((steps, inputs.shape[1])), t_in, t_out, t_mask

    def evaluate(self, model, split, fmt, char_features=False, world=None, decode_sample=None, references=None,
                 beam=0, length_penalty=0.0):
        """The encoder-decoder's figures, and a caption's: exact match, BLEU and per-object accuracy."""
        from rnncli.bleu import corpus_bleu
        from rnncli.evaluate import evaluate_seq2seq
        from rnncli.metrics import scene_accuracy

        if split is None or split.num_sequences == 0:
            return None
        out = evaluate_seq2seq(model, split, references if references is not None else split.target_texts,
                               beam=beam, length_penalty=length_penalty, world=world, decode_sample=decode_sample,
                               keep_outputs=True)
        hyps, refs = out.pop("outputs")
        out.update(exact_match=out["sentence_accuracy"], bleu=corpus_bleu(hyps, refs)["bleu"])
        known = set(model.target_tokens)
        unseen = sorted({w for r in refs for w in (r.split() if model.target_level == "word" else r)} - known)
        if unseen:  # such a caption can never be matched: said, not hidden in a low score
            out["unseen_words"] = unseen
        per_object = scene_accuracy(hyps, refs)
        if per_object is not None:
            out["object_accuracy"] = per_object
        return out


def _attends(cfg):
    return cfg.attention not in (None, "none")
