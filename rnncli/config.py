"""Training configuration: one default per field, with the reason for it, its help text and
its allowed values, in one place. The command line's help and choices, the YAML checks and
`validate` all read them from here.

Precedence: these defaults < a YAML file (--config) < command-line flags. Unknown YAML keys
and wrong types are errors that name the key and the file.
"""

import dataclasses
import math
import os
import re
import typing
from dataclasses import dataclass, field, fields

from rnncli.errors import RnncliError, UsageError


def option(default, help, choices=None, at_least=None, low=None, high=None, low_open=False, high_open=False):
    """A config field: its default, help text, and what values it allows (choices, an integer
    minimum, or a float range [low, high] whose ends may be open)."""
    return field(default=default, metadata={"help": help, "choices": choices, "at_least": at_least,
                                            "range": None if low is None else (low, high, low_open, high_open)})


@dataclass
class TrainConfig:
    # lm, classify or tag; None = from the data set's format
    task: str | None = option(None, "What to train: a language model, a classifier, a tagger, an encoder-decoder, "
                              "a regression or an image captioner.",
                              choices=("lm", "classify", "tag", "seq2seq", "regress", "caption"))
    # the gated cells learn long dependencies that a vanilla RNN forgets
    cell: str = option("lstm", "Recurrent cell.", choices=("rnn", "gru", "lstm"))
    # two layers beat one at equal parameters on character text (char-rnn's finding)
    layers: int = option(2, "Stacked layers.", at_least=1)
    # large enough for Shakespeare-like text, fast enough on a laptop CPU
    hidden: int = option(256, "Hidden units per layer.", at_least=1)
    # characters need little; words get more from tasks' configs
    embed: int = option(64, "Embedding size.", at_least=1)
    # None: on for tagging, classification and a seq2seq encoder; off for lm (which must not see the future)
    bidirectional: bool | None = option(None, "Read each sequence both ways (classify, tag, the seq2seq encoder).")
    # light regularisation between layers; small corpora overfit quickly
    dropout: float = option(0.1, "Dropout between layers.", low=0.0, high=1.0, high_open=True)
    # rnn only; relu trains faster but explodes more easily
    activation: str = option("tanh", "rnn cell only: the nonlinearity.", choices=("tanh", "relu"))
    # gru: the cuDNN/PyTorch form, so weights exchange directly
    reset_after: bool = option(True, "gru: reset gate after the recurrent product (PyTorch) or before (lecture).")
    # tag: a character encoder per word, for unknown words
    char_features: bool = option(False, "tag: character features per word.")
    # tag: a BiRNN of `cell`, or a CNN (no loop over characters, faster)
    char_encoder: str = option("rnn", "tag: char features by a BiRNN or a CNN.", choices=("rnn", "cnn"))
    # a few dozen symbols need little
    char_embed: int = option(24, "tag: character embedding size.", at_least=1)
    # the CNN has twice as many filters, so both give the same feature size
    char_hidden: int = option(32, "tag: char RNN units per direction (CNN: half its filters).", at_least=1)
    # tag: score whole tag sequences instead of one softmax per token
    crf: bool = option(False, "tag: CRF output layer over the tags.")
    # so that the <unk> embedding is learnt
    word_dropout: float = option(0.0, "classify/tag/regress: share of words read as <unk> in training.",
                                 low=0.0, high=1.0, high_open=True)
    pool: str = option("last", "classify, regress: pool the states by last, mean or max.",
                       choices=("last", "mean", "max"))
    # seq2seq: none is the lecture's plain encoder-decoder; attention lets long sources through
    attention: str | None = option(None, "seq2seq: attention over the encoder's outputs.",
                                   choices=("none", "dot", "general", "additive"))
    # Luong's input feeding: each step knows what it attended to before (OpenNMT's RNN default)
    input_feeding: bool = option(False, "seq2seq: the decoder reads its previous attentional state beside each word "
                                 "(needs attention).")
    # lm on labelled data: the lecture's one-to-many draws the label into a<0>; input also feeds it at every step
    condition: str = option("state", "lm on label+text data: the label sets a<0> (state), joins every input, both, "
                            "or none (labels ignored).", choices=("none", "state", "input", "both"))
    # a conditional lm that also learns p(x) without its label: against label-specific habits, and for --guidance
    label_dropout: float = option(0.0, "conditional lm: share of texts read with a 'no label' row instead of "
                                  "their label (enables sample --guidance).", low=0.0, high=1.0, high_open=True)
    # pretrained vectors carry what a small training set cannot: meaning learnt from billions of words
    embeddings: str | None = option(None, "Word vectors to start from (GloVe/word2vec/fastText text, .gz too); "
                                    "the embedding size becomes theirs. In a config file, relative to it.")
    freeze_embeddings: bool = option(False, "Keep the pretrained vectors fixed (default: fine-tune them).")
    # frames (audio, sensors): a learned W x<t> + b of this size before the recurrent stack, as words get embeddings
    input_projection: int | None = option(None, "Frame input: project each frame to this size (0: read the frames "
                                          "as they are; default: --embed).", at_least=0)
    # the model's own decoding: what predict and eval use unless told otherwise (decode.decoding)
    beam: int = option(0, "seq2seq: the beam width predict and eval use by default (0: greedy).", at_least=0)
    length_penalty: float | None = option(None, "seq2seq: the length penalty predict and eval use by default "
                                          "(log p / length^α; default: 1 for a beam, the mean per token).", low=0.0)
    # speech: 100 frames a second is long for an encoder and for attention; joining steps shortens it (nn/reduce.py)
    stack_frames: int = option(1, "Speech: join this many neighbouring frames into one encoder step.", at_least=1)
    pyramid: int = option(0, "Speech: halve the encoder's steps between its first N+1 layers (a pyramidal encoder, "
                          "as Listen, Attend and Spell).", at_least=0)
    # a deep encoder reads; one decoder layer writes a few words fast
    decoder_layers: int | None = option(None, "seq2seq: the decoder's layers, started from the encoder's top ones "
                                        "(default: --layers).", at_least=1)
    decoder_hidden: int | None = option(None, "seq2seq: the decoder's units (default: --hidden), e.g. twice --hidden "
                                        "beside a bidirectional encoder.", at_least=1)
    # long enough for words and short phrases
    seq_len: int = option(64, "Truncated BPTT length (lm; a conditional lm reads longer texts in such chunks).",
                          at_least=1)
    # 32 streams fill a CPU well
    batch_size: int = option(32, "Sequences per batch.", at_least=1)
    # None: no limit (a given --max-steps alone lifts this default)
    epochs: int | None = option(10, "Passes over the data (unlimited when --max-steps is given alone).", at_least=1)
    max_steps: int | None = option(None, "Stop after this many steps.", at_least=1)
    max_time: str | None = option(None, "Wall-clock budget, e.g. 90s, 10m, 1h.")
    # robust to the learning rate; the usual choice for RNNs
    optimizer: str = option("adam", "Update rule.", choices=("sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw"))
    # char-rnn's default for Adam/RMSprop
    lr: float = option(2e-3, "Learning rate.", low=0.0, low_open=True)
    lr_decay: float = option(1.0, "Learning-rate factor per epoch.", low=0.0, high=1.0, low_open=True)
    # linear/cosine: decay to 0 by the end of the run, as far as its step limit or its time budget
    # says (whichever is nearer); what budgeted training wants, as the run ends at its best
    lr_schedule: str = option("constant", "Learning rate over the run: constant, or decayed to 0 by the end of its "
                              "steps or --max-time (linear, cosine).", choices=("constant", "linear", "cosine"))
    warmup: int = option(0, "Steps of linear warm-up from 0 to --lr.", at_least=0)
    # against exploding gradients
    clip: float = option(5.0, "Global gradient-norm clip (0: none).", low=0.0)
    weight_decay: float = option(0.0, "Weight decay (L2; decoupled for adamw).", low=0.0)
    # a softmax trained towards certainty grows overconfident; 0.1 is the usual value for translation
    label_smoothing: float = option(0.0, "Train softmax outputs towards (1 - ε) on the target and ε spread over all "
                                    "classes (lm, seq2seq, tagger without CRF, classifier of 3+ labels).",
                                    low=0.0, high=1.0, high_open=True)
    # >0: evaluate and save a moving average of the weights, e.g. 0.999
    average: float = option(0.0, "Evaluate and keep a moving average of the weights with this decay, e.g. 0.999.",
                            low=0.0, high=1.0, high_open=True)
    # decoding the whole of a large valid set at every evaluation ate a fifth of translation's budget
    decode_valid: int = option(1000, "seq2seq: validations during training decode a fixed sample of this many "
                               "pairs (BLEU, WER); the loss reads them all, eval decodes all.", at_least=1)
    eval_every: int = option(200, "Steps between validations (and checkpoints).", at_least=1)
    # reading all of a large validation split took longer than the training between two validations
    eval_tokens: int | None = option(None, "Validations during training read a fixed, seeded sample of about this "
                                     "many tokens of the validation split (0: all of it); by default what takes "
                                     "about a tenth of the time between two validations (30 % of the tokens "
                                     "trained between them, 3.5 % for a language model, which reads its stream "
                                     "token by token). A smaller split is read whole; eval reads everything.",
                                     at_least=0)
    patience: int | None = option(None, "Early stop after N x eval-every steps without gain.", at_least=1)
    # frames, training only (frames/augment.py): off, so that older configs train as before;
    # configs/asr.yaml and configs/digits.yaml turn noise, gain and masks on
    noise_db: float | None = option(None, "Audio, training only: add white noise to each recording at a level drawn "
                                    "between -80 dB under full scale and this (e.g. -30).", low=-80.0, high=0.0)
    gain_db: float = option(0.0, "Audio, training only: make each recording louder or softer by up to this many dB.",
                            low=0.0, high=40.0)
    time_masks: int = option(0, "Frames, training only: SpecAugment time masks per sequence.", at_least=0)
    time_mask: int = option(10, "Frames: the widest time mask, in frames.", at_least=1)
    freq_masks: int = option(0, "Frames, training only: SpecAugment frequency masks per sequence.", at_least=0)
    freq_mask: int = option(8, "Frames: the widest frequency mask, in bands (dimensions).", at_least=1)
    seed: int = option(0, "Seed of initialisation, dropout and batch order.", at_least=0)
    # the global batch stays batch_size at any number of workers, so a config means one model
    workers: int = option(1, "Processes training together over MPI (docs/scaling.md).", at_least=1)
    # twice the speed of float64 and plenty for training
    dtype: str = option("float32", "Floating-point type of the weights.", choices=("float32", "float64"))

    @classmethod
    def field_names(cls):
        return [f.name for f in fields(cls)]


FIELDS = {f.name: f for f in fields(TrainConfig)}
CHOICES = {name: f.metadata["choices"] for name, f in FIELDS.items() if f.metadata["choices"]}


def flag(name):
    return "--" + name.replace("_", "-")


def help_text(name):
    """A field's help with its default, as --help shows it."""
    f = FIELDS[name]
    default = f.default
    shown = "off" if default is None or default is False else ("on" if default is True else default)
    shown = {"bidirectional": "on for classify/tag/seq2seq", "task": "from the data's format",
             "attention": "none"}.get(name, shown)
    return f"{f.metadata['help']} [default: {shown}]"


def parse_duration(text):
    """'90s', '10m', '1.5h', '600' (seconds) -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text))
    if not m:
        raise UsageError(f"--max-time: cannot read {text!r}; use e.g. 90s, 10m or 1h")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def _range_words(low, high, low_open, high_open):
    if high is None:
        return "positive" if low_open else "non-negative"
    return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def validate(cfg):
    """Every field against its metadata; one UsageError naming the option."""
    for name, f in FIELDS.items():
        value, meta = getattr(cfg, name), f.metadata
        if value is None:
            continue
        if meta["choices"] and value not in meta["choices"]:
            raise UsageError(f"{flag(name)}: {value!r} is not one of {', '.join(meta['choices'])}")
        if meta["at_least"] is not None and value < meta["at_least"]:
            raise UsageError(f"{flag(name)} must be at least {meta['at_least']}, not {value}")
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"{flag(name)} must be a finite number, not {value}")
        if meta["range"]:
            low, high, low_open, high_open = meta["range"]
            if (value < low or (low_open and value == low) or
                    (high is not None and (value > high or (high_open and value == high)))):
                words = _range_words(low, high, low_open, high_open)
                raise UsageError(f"{flag(name)} must be {words}, not {value:g}")
    if cfg.max_time is not None:
        parse_duration(cfg.max_time)
    if cfg.epochs is None and cfg.max_steps is None and cfg.max_time is None:
        raise UsageError("with no --epochs limit, give --max-steps or --max-time")
    return cfg


def check_type(key, value, source):
    ftype = FIELDS[key].type
    args = [a for a in typing.get_args(ftype) if a is not type(None)] or [ftype]
    base = args[0] if isinstance(args[0], str) else args[0].__name__
    if value is None and "None" in str(ftype):
        return value
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
    }
    if base in ok and not ok[base]:
        raise UsageError(f"{source}: key '{key}' should be {base}, found {value!r}")
    return float(value) if base == "float" else value


def read_yaml(path):
    """A YAML file's data, with numbers read as YAML 1.2 reads them (yamlfile.py)."""
    from rnncli.yamlfile import load_yaml

    return load_yaml(path)


def config_key(key, path):
    """A key of a YAML file (config or search space) as a TrainConfig field name (dashes allowed)."""
    k = str(key).replace("-", "_")
    if k not in TrainConfig.field_names():
        raise UsageError(f"{path}: unknown key '{key}' (known: {', '.join(TrainConfig.field_names())})")
    return k


def load_config_file(path):
    """A --config file as {field: value}, every key known and every value of its field's type."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of option: value")
    out = {}
    for key, value in data.items():
        k = config_key(key, path)
        out[k] = check_type(k, value, path)
    vectors = out.get("embeddings")
    if vectors and not os.path.isabs(vectors):  # beside the config file if it is there, else from here
        beside = os.path.join(os.path.dirname(os.path.abspath(path)), vectors)
        out["embeddings"] = beside if os.path.exists(beside) else vectors
    return out


def make_config(yaml_path=None, overrides=None, base=None):
    """defaults (or `base`, e.g. a resumed run's config) < YAML < overrides (None = not given).

    A --max-steps given without --epochs runs until that step: the default epoch limit is lifted."""
    values = dataclasses.asdict(base) if base is not None else {}
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    if yaml_path:
        given = {**load_config_file(yaml_path), **given}
    values.update(given)
    if given.get("max_steps") is not None and "epochs" not in given:
        values["epochs"] = None
    return validate(TrainConfig(**values))


def config_from_meta(path, saved):
    """The TrainConfig stored in a checkpoint, or one line saying why it cannot be read."""
    if not isinstance(saved, dict):
        raise RnncliError(f"{path}: damaged model (no configuration)")
    unknown = sorted(set(saved) - set(FIELDS))
    if unknown:
        raise RnncliError(f"{path}: made by another rnncli version (unknown options {', '.join(unknown[:4])}); "
                          "upgrade rnncli")
    try:
        return validate(TrainConfig(**{k: check_type(k, v, path) for k, v in saved.items()}))
    except UsageError as e:
        raise RnncliError(f"{path}: damaged model configuration ({e})") from None
