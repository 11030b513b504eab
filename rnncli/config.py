"""Training configuration: one default per field, with the reason for it.

Precedence: these defaults < a YAML file (--config) < command-line flags. Unknown YAML keys
and wrong types are errors that name the key and the file.
"""

import dataclasses
import re
import typing
from dataclasses import dataclass, fields

from rnncli.errors import UsageError


@dataclass
class TrainConfig:
    task: str | None = None  # lm, classify or tag; None = from the data set's format
    cell: str = "lstm"  # the gated cells learn long dependencies that a vanilla RNN forgets
    layers: int = 2  # two layers beat one at equal parameters on character text (char-rnn's finding)
    hidden: int = 256  # large enough for Shakespeare-like text, fast enough on a laptop CPU
    embed: int = 64  # characters need little; words get more from tasks' configs
    bidirectional: bool | None = None  # None: on for tagging and classification, off for lm
    dropout: float = 0.1  # light regularisation between layers; small corpora overfit quickly
    activation: str = "tanh"  # rnn only; relu trains faster but explodes more easily
    reset_after: bool = True  # gru: the cuDNN/PyTorch form, so weights exchange directly
    char_features: bool = False  # tag: a character RNN per word, for unknown words
    char_encoder: str = "rnn"  # tag: how char features read a word: a BiRNN of `cell`, or a CNN (faster)
    char_embed: int = 24  # tag: size of a character's embedding (a few dozen symbols need little)
    char_hidden: int = 32  # tag: char RNN state per direction; the CNN has twice as many filters
    crf: bool = False  # tag: score whole tag sequences with a CRF instead of one softmax per token
    word_dropout: float = 0.0  # classify/tag: share of words read as <unk> in training, so <unk> is learnt
    pool: str = "last"  # classify: last, mean or max over time
    seq_len: int = 64  # truncated BPTT length: long enough for words and short phrases
    batch_size: int = 32  # the three-size benchmark's middle size; 32 streams fill a CPU well
    epochs: int = 10
    max_steps: int | None = None
    max_time: str | None = None  # wall-clock budget such as 90s, 10m or 1h
    optimizer: str = "adam"  # robust to the learning rate; the usual choice for RNNs
    lr: float = 2e-3  # char-rnn's default for Adam/RMSprop
    lr_decay: float = 1.0  # multiplied in once per epoch
    clip: float = 5.0  # global-norm clipping against exploding gradients
    weight_decay: float = 0.0
    average: float = 0.0  # >0: evaluate and save a moving average of the weights with this decay (0.999)
    eval_every: int = 200  # steps between validations (and checkpoints)
    patience: int | None = None  # stop after patience * eval_every steps without improvement
    seed: int = 0
    dtype: str = "float32"  # twice the speed of float64 and plenty for training

    @classmethod
    def field_names(cls):
        return [f.name for f in fields(cls)]


CHOICES = {
    "task": (None, "lm", "classify", "tag"),
    "cell": ("rnn", "gru", "lstm"),
    "activation": ("tanh", "relu"),
    "pool": ("last", "mean", "max"),
    "char_encoder": ("rnn", "cnn"),
    "optimizer": ("sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw"),
    "dtype": ("float32", "float64"),
}


def parse_duration(text):
    """'90s', '10m', '1.5h', '600' (seconds) -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text))
    if not m:
        raise UsageError(f"--max-time: cannot read {text!r}; use e.g. 90s, 10m or 1h")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def validate(cfg):
    for key, allowed in CHOICES.items():
        if getattr(cfg, key) not in allowed:
            raise UsageError(f"--{key.replace('_', '-')}: {getattr(cfg, key)!r} is not one of "
                             f"{', '.join(a for a in allowed if a)}")
    for key in ("layers", "hidden", "embed", "char_embed", "char_hidden", "seq_len", "batch_size", "epochs",
                "eval_every"):
        if getattr(cfg, key) < 1:
            raise UsageError(f"--{key.replace('_', '-')} must be at least 1, not {getattr(cfg, key)}")
    for key in ("max_steps", "patience"):
        if getattr(cfg, key) is not None and getattr(cfg, key) < 1:
            raise UsageError(f"--{key.replace('_', '-')} must be at least 1")
    if not 0.0 <= cfg.dropout < 1.0:
        raise UsageError(f"--dropout must be in [0, 1), not {cfg.dropout}")
    if not 0.0 <= cfg.word_dropout < 1.0:
        raise UsageError(f"--word-dropout must be in [0, 1), not {cfg.word_dropout}")
    if cfg.lr <= 0:
        raise UsageError(f"--lr must be positive, not {cfg.lr}")
    if not 0 <= cfg.average < 1:
        raise UsageError(f"--average must be in [0, 1), not {cfg.average}")
    if not 0 < cfg.lr_decay <= 1:
        raise UsageError(f"--lr-decay must be in (0, 1], not {cfg.lr_decay}")
    if cfg.clip < 0 or cfg.weight_decay < 0:
        raise UsageError("--clip and --weight-decay cannot be negative")
    if cfg.max_time is not None:
        parse_duration(cfg.max_time)
    return cfg


def _check_type(key, value, default_type, source):
    ftype = {f.name: f.type for f in fields(TrainConfig)}[key]
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
    }
    args = [a for a in typing.get_args(ftype) if a is not type(None)] or [ftype]
    base = args[0].__name__
    if value is None and "None" in str(ftype):
        return value
    if base in ok and not ok[base]:
        raise UsageError(f"{source}: key '{key}' should be {base}, found {value!r}")
    return float(value) if base == "float" else value


def load_yaml(path):
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise UsageError(f"{path}: no such config file") from None
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        raise UsageError(f"{path}{'' if line is None else f':{line + 1}'}: not valid YAML") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of option: value")
    names = TrainConfig.field_names()
    out = {}
    for key, value in data.items():
        k = str(key).replace("-", "_")
        if k not in names:
            raise UsageError(f"{path}: unknown key '{key}' (known: {', '.join(names)})")
        out[k] = _check_type(k, value, None, path)
    return out


def make_config(yaml_path=None, overrides=None, base=None):
    """defaults (or `base`, e.g. a resumed run's config) < YAML < overrides (None = not given)."""
    values = dataclasses.asdict(base) if base is not None else {}
    if yaml_path:
        values.update(load_yaml(yaml_path))
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return validate(TrainConfig(**values))
