"""What differs from task to task, asked of one object instead of compared as a name.

Each task's module (lm.py, conditional_lm.py, classify.py, tag.py, regress.py, seq2seq.py) holds
its model and its Task: how a training step reads its batch and what the loss averages over,
which batches training draws, how a split is evaluated and which figure selects the best weights,
which recurrent stacks and input table its checkpoint stores. registry.py maps the names that
checkpoints and commands carry ("lm", "clm", "classify", "tag", "regress", "seq2seq") to them.

The defaults here are those of the sequence tasks (classify, tag, regress, seq2seq): a batch of
whole sequences, bucketed by length, whose loss is a mean over its tokens.
"""

import numpy as np

from rnncli.text.vocab import SPECIALS, split_words


class GradcheckBatches:
    """What `gradcheck` (commands/gradcheck.py) needs of a task: a made-up model's names and a small
    padded batch of random inputs and outputs for it, or a data set's first examples."""

    def synthetic_names(self, vocab, K):
        """The data meta's names for a made-up model of this task (besides its vocabulary)."""
        return {}

    def random_batch(self, meta, cfg, rng, T=5, B=3):
        """The loss arguments of a small padded batch for a model of `meta`: sequences of lengths T,
        T - 2 and 1 (in steps of the encoder's reduction, for speech), random inputs and outputs."""
        inputs, mask = random_inputs(meta, rng, T, B)
        return self.random_outputs(meta, cfg, rng, inputs, mask)

    def random_outputs(self, meta, cfg, rng, inputs, mask):
        raise NotImplementedError

    def first_examples(self, ds, cfg, B=3, T=6):
        """The first examples of a data set as the model's loss arguments."""
        index = np.arange(min(B, ds.train.num_sequences))
        return self.make_batch(ds.train, index, cfg.char_features)

    def check_loss(self, model, batch, rng):
        """(loss, grads) of a batch as random_batch or first_examples made it."""
        return model.loss_and_grads(*batch, rng=rng)[:2]


class Task(GradcheckBatches):
    name = ""  # as checkpoints store it
    format = "tsv"  # the data format that trains it by default (gradcheck's made-up data)
    title = ""  # as messages name a model of it: "a {title}"
    score_name = "loss"  # what its selection score is, as the training summary names it
    metric, metric_title = "loss", "loss"  # the validation figure inspect draws, and its name
    conditioned = False  # it reads a label beside its text (sample --label, show --label)
    ensembles = True  # models of it average their answers (predict and eval -m a -m b)
    generates = False  # `sample` writes text from it (a language model)
    maximizes = False  # its selection figure (accuracy, entity F1) is better higher; stored negated
    many_to_one = False  # the loss is a mean over the batch's sequences, not over its tokens
    stacks = ("rnn",)  # the recurrent stacks its checkpoint stores, by name prefix
    embedding = "embedding.E"  # the table of input word vectors (pretrained vectors fill it)
    pretrained_rows = True  # the table keeps rows for pretrained words the training data lacks
    decodes = False  # predictions are decoded sequences (decode.py); validation decodes a sample (--decode-valid)
    one_way = False  # never bidirectional (a language model would see the future)
    input_field = "tokens"  # the field predict reads of a JSON lines record
    # functions named by the modules that hold them: export/onnx_graph.py's that writes its ONNX graph,
    # commands/show.py's that draw what a model makes of a text and of frames, render.py's eval tables
    graph = text_picture = frames_picture = report = ""

    # ---------------------------------------------------------------- what a checkpoint must hold

    def names_needed(self, cfg):
        """{data meta key: the fewest names in it} that the model is built from (checkpoint_checks)."""
        return {}

    def check_data(self, check, data):
        """The task's own meta fields, checked before anything is built (check: checkpoint_checks's)."""

    def stacks_of(self, cfg):
        """The recurrent stacks a model of this configuration stores (checkpoint_checks)."""
        return self.stacks

    def build(self, cfg, data_meta, rng, V, dtype):
        """The model a config and a data set describe, V input rows (tasks/build.py has checked and
        sized them): its parameters drawn from rng, in dtype."""
        raise NotImplementedError

    # ---------------------------------------------------------------- training and evaluation

    def evaluation_part(self, cfg, split, train, fmt):
        """The part of the validation split that every validation during training reads, the same at
        each (one yardstick for the best weights) -> (that part, what it is: {"tokens", "sequences",
        "sample", and for a sample the split's "of_tokens", "of_sequences"}). All of it when it holds
        no more than the budget (--eval-tokens; by default evaluation_budget's, about a tenth of the
        time between two validations); else a fixed, seeded sample of whole sequences."""
        if split is None or split.num_sequences == 0:
            return split, None
        return sample_of(split, self.evaluation_budget(cfg, train), cfg.seed)

    # the share of the tokens trained between two validations that one reads by default: they read
    # batched and forward only, about a third of a training token's cost, so about a tenth of the time
    evaluation_share = 0.3

    def evaluation_budget(self, cfg, train):
        """--eval-tokens, or its default: evaluation_share of the tokens of eval_every batches of
        sequence_tokens each (0: no limit)."""
        if cfg.eval_tokens is not None:
            return cfg.eval_tokens
        return max(int(self.evaluation_share * cfg.eval_every * cfg.batch_size * self.sequence_tokens(cfg, train)), 1)

    def sequence_tokens(self, cfg, train):
        """The tokens of one sequence of a training batch: the training split's mean length."""
        if train is None or not train.num_sequences:
            return 1.0
        return float(int(train.offsets[-1]) - int(train.offsets[0])) / train.num_sequences  # (their mean length)

    def validation_sample(self, cfg, split):
        """The sequences of the validation split that validation decodes (a fixed, seeded sample of
        --decode-valid of them, sorted), or None: all of them, or no decoding."""
        n = 0 if split is None else split.num_sequences
        if not self.decodes or n <= cfg.decode_valid:
            return None
        return np.sort(np.random.default_rng([cfg.seed, 3]).choice(n, cfg.decode_valid, replace=False))

    def selection_score(self, metrics):
        """Lower is better: the validation loss, unless the task maximizes a figure."""
        return metrics["loss"]

    def described(self, cfg):
        """What `inspect` calls a model of this task with the configuration cfg (a dict)."""
        return f"{self.name} model"

    def reported_score(self, score):
        """A stored selection score as users read it: accuracy and F1 positive again."""
        return -score if self.maximizes else score

    def training_batches(self, cfg, ds, split, model, world):
        """The training batches: bucketed whole sequences, this worker's share of each; frames
        augmented when the configuration asks (frames/augment.py)."""
        from rnncli.frames.augment import Augmentation, FrameAugmenter
        from rnncli.text.batching import SequenceBatches

        augmentation = Augmentation.of(cfg) if ds.meta.get("input") == "frames" else None
        return SequenceBatches(split, cfg.batch_size, cfg.seed,
                               lambda s, index: self.make_batch(s, index, cfg.char_features), world.deal,
                               augment=augmentation and FrameAugmenter(augmentation, ds.meta, cfg.seed))

    def make_batch(self, split, index, char_features=False):
        """The sequences `index` of a split as its model's loss takes them (text/batching.py)."""
        raise NotImplementedError

    def step(self, model, batch, carry, rng):
        """One batch's loss and gradients -> (loss, grads, carry for the next batch, tokens read,
        what the loss is a mean over). batch None: this worker has no share of the batch."""
        if batch is None:
            return 0.0, None, carry, 0, 0
        loss, grads = model.loss_and_grads(*batch, rng=rng)
        tokens = int(batch[1].sum())  # the words (or frames) of the sequences
        return loss, grads, carry, tokens, batch[1].shape[1] if self.many_to_one else tokens

    def evaluate(self, model, split, fmt, char_features=False, world=None, decode_sample=None, references=None):
        """The metrics of one split as a dict (None for no split). fmt: the data's format; world:
        the workers sharing the work during training; decode_sample: the sequences an
        encoder-decoder decodes; references: the raw target lines where the split was read from a
        file."""
        if split is None or split.num_sequences == 0:
            return None
        return self.scores(model, split, fmt, char_features, world, decode_sample, references)

    def scores(self, model, split, fmt, char_features, world, decode_sample, references):
        raise NotImplementedError

    def decoding(self, cfg, beam=None, length_penalty=None):
        """The decoding options evaluate() takes (an encoder-decoder's beam and length penalty: the
        model's own defaults where None); {} for a task that does not decode."""
        return {}

    # ---------------------------------------------------------------- predict

    def input_tokens(self, item, data):
        """What predict reads of an input line (or a record's field) -> the model's tokens: the
        words of a sentence (a list of words stays one)."""
        return item if isinstance(item, list) else split_words(item or "")

    def predict(self, model, split, char_features=False, proba=False):
        """(predictions, probabilities or None) for every sequence of the split, in its order."""
        raise NotImplementedError

    def answer(self, prediction):
        """One sequence's prediction as its predict record's fields."""
        raise NotImplementedError

    def answer_names(self, model):
        """The names of what an answer holds: the model's labels or tags (None: no names)."""
        return getattr(model, "label_names", None)

    def prediction_text(self, record, names, proba=False, as_json=False):
        """One predict record as the text written to stdout; names: answer_names'."""
        raise NotImplementedError


def random_mask(T, B, step=1):
    """(T * step, B) float64 mask of sequences of T, T - 2 and 1 steps of `step` frames each."""
    lengths = np.array([T, max(T - 2, 1), 1][:B]) * step
    return (np.arange(T * step)[:, None] < lengths[None]).astype(np.float64)


def random_inputs(meta, rng, T, B, step=1):
    """Padded random inputs: ids (T, B) of the vocabulary's own words, or frames (T, B, D) of N(0, 1)
    numbers; and their mask."""
    mask = random_mask(T, B, step)
    if meta.get("input") == "frames":
        return rng.normal(size=(*mask.shape, meta["frame_dim"])) * mask[:, :, None], mask
    return np.where(mask > 0, rng.integers(len(SPECIALS), len(meta["vocab"]), mask.shape), 0), mask


def reader_options(cfg, data_meta, dtype):
    """What a classifier, a regression and a tagger read their inputs with: the recurrent stack
    (bidirectional unless told not to) over embedded words, or over frames projected to a width."""
    return dict(embed=cfg.embed, hidden=cfg.hidden, cell=cfg.cell, layers=cfg.layers,
                bidirectional=cfg.bidirectional is not False, dropout=cfg.dropout, dtype=dtype,
                activation=cfg.activation, reset_after=cfg.reset_after, frame_dim=data_meta.get("frame_dim"),
                input_projection=cfg.input_projection)


def sample_of(split, budget, seed):
    """A split's sequences in a seeded order, kept until they hold `budget` tokens, in the split's own
    order -> (the sample, what it read); the split itself when it is no larger (or budget is 0)."""
    n, total = split.num_sequences, int(split.offsets[-1])
    if budget == 0 or total <= budget:
        return split, {"tokens": total, "sequences": n, "sample": False}
    order = np.random.default_rng([seed, 4]).permutation(n)
    k = min(int(np.searchsorted(np.cumsum(split.lengths()[order]), budget)) + 1, n)
    part = split.take(np.sort(order[:k]))
    return part, {"tokens": int(part.offsets[-1]), "sequences": k, "sample": True, "of_tokens": total,
                  "of_sequences": n}
