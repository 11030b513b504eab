"""A checkpoint is untrusted input, like a safetensors header: someone else may have made it.

Before any model is built, every meta field that rnncli reads is checked (its type, the range
`train` enforces, the size of its strings), and the sizes the stored configuration implies
(layers, hidden units, embedding width, vocabularies, label sets, character features) are
compared with the shapes of the arrays actually stored. A model is built only from a
configuration its arrays already prove: so a crafted `layers: 1000000` or `hidden: 200000`
is refused in milliseconds, naming the field, instead of allocating gigabytes.
"""

import re

from rnncli.checkpoint import check_names
from rnncli.config import config_from_meta
from rnncli.errors import RnncliError, UsageError
from rnncli.nn.recurrent import N_GATES
from rnncli.tasks.build import parameter_shapes, task_of
from rnncli.tasks.registry import TASKS, task_named
from rnncli.text.readers import is_number

MAX_STRING = 10_000  # characters in one vocabulary entry, label, tag or name
MAX_HISTORY = 1_000_000  # evaluations in a history (one per --eval-every steps)
FORMATS = ("text", "tsv", "conll", "pairs", "scores")
# the validation figures render.describe and the pictures read from a history entry
# the data's name lists whose lengths size a model (inputs, outputs, characters)
NAMES = ("vocab", "pretrained_vocab", "labels", "tags", "chars", "target_vocab", "score_names")
METRICS = ("loss", "perplexity", "bits_per_token", "exact_match", "bleu", "chrf", "accuracy", "macro_f1", "f1",
           "precision", "recall", "mse", "rmse", "mae", "r2", "pearson", "spearman")


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


class _Checker:
    def __init__(self, path):
        self.path = path

    def fail(self, field, problem):
        raise RnncliError(f"{self.path}: damaged model: {field} {problem}")

    def string(self, field, v, choices=None, optional=False):
        if v is None and optional:
            return
        if not isinstance(v, str):
            self.fail(field, f"should be a string, found {type(v).__name__}")
        if len(v) > MAX_STRING:
            self.fail(field, f"is a string of {len(v):,} characters (at most {MAX_STRING:,})")
        if choices and v not in choices:
            self.fail(field, f"is {v[:40]!r}, not one of {', '.join(choices)}")

    def strings(self, field, v, at_least=0, distinct=True):
        if not isinstance(v, list):
            self.fail(field, f"should be a list of strings, found {type(v).__name__}")
        if len(v) < at_least:
            self.fail(field, f"holds {len(v)} entries, fewer than {at_least}")
        for k, s in enumerate(v):
            self.string(f"{field}[{k}]", s)
        if distinct and len(set(v)) != len(v):
            self.fail(field, "holds the same entry twice")

    def number(self, field, v, optional=True, low=None):
        if v is None and optional:
            return
        if not is_number(v) or (low is not None and v < low):
            self.fail(field, f"should be a finite number{f' >= {low}' if low is not None else ''}, found {v!r:.40}")

    def mean_and_sd(self, data, what, size):
        """data[what_mean] and data[what_std]: `size` finite numbers each, every sd positive."""
        for key, low in ((f"{what}_mean", None), (f"{what}_std", 1e-300)):
            values = data.get(key)
            if not isinstance(values, list) or len(values) != size:
                self.fail(f"data.{key}", f"should be a list of {size} numbers")
            for k, v in enumerate(values):
                self.number(f"data.{key}[{k}]", v, optional=False, low=low)

    def integer(self, field, v, optional=True, low=0):
        if v is None and optional:
            return
        if not is_int(v) or v < low:
            self.fail(field, f"should be a whole number >= {low}, found {v!r:.40}")


def check_meta(path, meta):
    """Every meta field rnncli reads, checked; -> the TrainConfig it stores."""
    c = _Checker(path)
    cfg = config_from_meta(path, meta["config"])
    c.string("task", meta.get("task"), tuple(TASKS))
    data = meta["data"]
    c.string("data.format", data.get("format"), FORMATS)
    c.string("data.level", data.get("level"), ("char", "word", "frame"))
    if not isinstance(data.get("lower", False), bool):
        c.fail("data.lower", "should be true or false")
    c.strings("data.vocab", data.get("vocab"), at_least=4)
    task = task_named(meta["task"])
    needed = task.names_needed(cfg)  # {key: the fewest names the model can be built from}
    for key in ("labels", "tags", "chars", "target_vocab", "pretrained_vocab", "score_names"):
        if key in needed:
            c.strings(f"data.{key}", data.get(key), at_least=needed[key])
        elif data.get(key) is not None:
            c.strings(f"data.{key}", data[key])
    task.check_data(c, data)
    c.string("data.tag_scheme", data.get("tag_scheme"), optional=True)
    if data.get("input") == "frames":
        c.integer("data.frame_dim", data.get("frame_dim"), optional=False, low=1)
        c.mean_and_sd(data, "frame", data["frame_dim"])
        audio = data.get("audio")
        if audio is not None:
            if not isinstance(audio, dict):
                c.fail("data.audio", "should be a mapping")
            c.integer("data.audio.sample_rate", audio.get("sample_rate"), optional=False, low=1)
            c.integer("data.audio.bands", audio.get("bands"), optional=False, low=1)
            for key in ("window_ms", "hop_ms"):
                c.number(f"data.audio.{key}", audio.get(key), optional=False, low=1e-3)
            if not isinstance(audio.get("deltas"), bool):
                c.fail("data.audio.deltas", "should be true or false")
            c.number("data.audio.top_db", audio.get("top_db"), optional=True, low=1e-3)
    counts = data.get("label_counts")
    if counts is not None and (not isinstance(counts, dict) or not all(is_number(v) for v in counts.values())):
        c.fail("data.label_counts", "should map labels to counts")
    pretrained = data.get("pretrained")
    if pretrained is not None:
        if not isinstance(pretrained, dict):
            c.fail("data.pretrained", "should be a mapping")
        c.integer("data.pretrained.dim", pretrained.get("dim"), optional=False, low=1)
        c.string("data.pretrained.file", pretrained.get("file"), optional=True)
    for key in ("step", "epoch", "chunk", "opt_t", "best_step"):
        c.integer(key, meta.get(key))
    for key in ("best_score", "elapsed"):
        c.number(key, meta.get(key))
    if "rng" in meta and not isinstance(meta["rng"], dict):
        c.fail("rng", "should be a generator state (a mapping)")
    c.integer("workers", meta.get("workers"), low=1)
    states = meta.get("rng_workers")
    if states is not None and (not isinstance(states, list) or len(states) > 100_000
                               or not all(isinstance(st, dict) for st in states)):
        c.fail("rng_workers", "should be a list of generator states (one per worker)")
    _check_history(c, meta.get("history", []))
    return cfg


def _check_history(c, history):
    if not isinstance(history, list) or len(history) > MAX_HISTORY:
        c.fail("history", "should be a list of evaluations")
    for k, h in enumerate(history):
        field = f"history[{k}]"
        if not isinstance(h, dict):
            c.fail(field, "should be a mapping")
        c.integer(f"{field}.step", h.get("step"), optional=False)
        c.integer(f"{field}.epoch", h.get("epoch"))
        for key in ("train_loss", "elapsed", "lr", "tokens_per_s", "valid_seconds"):
            c.number(f"{field}.{key}", h.get(key))
        valid = h.get("valid")
        if valid is None:
            continue
        if not isinstance(valid, dict):
            c.fail(f"{field}.valid", "should be a mapping of figures")
        for key in METRICS:
            c.number(f"{field}.valid.{key}", valid.get(key))


def _layers(params, prefix):
    """-> ({layer index: directions}, hidden sizes seen, gate rows) of the stack stored under prefix."""
    layers, hidden, rows = {}, set(), set()
    for name, arr in params.items():
        m = re.fullmatch(rf"{re.escape(prefix)}\.l(\d+)(_reverse)?\.W_aa", name)
        if m is None:
            continue
        if arr.ndim != 2:
            return None
        layers.setdefault(int(m.group(1)), set()).add(bool(m.group(2)))
        hidden.add(arr.shape[1])
        rows.add(arr.shape[0])
    return layers, hidden, rows


def check_shapes(path, cfg, meta, params):
    """The sizes cfg and the vocabularies imply against the stored parameter arrays; the first
    that disagrees is named. Run before the model is built."""
    c = _Checker(path)
    task, data = meta["task"], meta["data"]
    try:
        implied = task_of(cfg, data)
    except UsageError as e:
        raise RnncliError(f"{path}: damaged model configuration ({e})") from None
    if implied != task:
        c.fail("task", f"is {task} but its configuration and data make a {implied} model")

    def agree(field, said, stored, what):
        if said != stored:
            c.fail(f"config.{field}" if not field.startswith("data.") else field,
                   f"says {said:,} but the stored {what} has {stored:,}")

    task = task_named(task)
    for prefix in task.stacks_of(cfg):  # (character stacks are checked apart)
        _check_stack(c, path, cfg, params, prefix, task, agree)
    # the stored layer counts now bound the model: draw it on a blueprint and compare every parameter
    try:
        expected = parameter_shapes(cfg, data)
    except (UsageError, ValueError) as e:  # a constructor's own refusal of a combination
        raise RnncliError(f"{path}: damaged model configuration ({e})") from None
    _check_against_blueprint(c, path, expected, params, cfg, data)


def _check_against_blueprint(c, path, expected, params, cfg, data):
    """Every parameter the configuration and data make (tasks/build.parameter_shapes, read from the
    constructors themselves) stored with that shape, and nothing else stored."""
    check_names(path, expected, params)
    for name, shape in expected.items():
        if params[name].shape != shape:
            sizes = ", ".join(f"{key} {getattr(cfg, key)}" for key in ("embed", "hidden", "layers"))
            names = ", ".join(f"{len(data[key]):,} {key}" for key in NAMES if data.get(key) is not None)
            c.fail(name, f"is stored as {params[name].shape} but the configuration ({sizes}) and the data's "
                         f"names ({names}) make it {shape}")


def _check_stack(c, path, cfg, params, prefix, task, agree):
    """One recurrent stack's stored layers against the configuration: their count, numbering, size,
    gate rows and directions."""
    found = _layers(params, prefix)
    if not found or not found[0]:
        raise RnncliError(f"{path}: parameters do not fit the model's configuration (no {prefix} layers)")
    layers, hidden, rows = found
    if prefix == "decoder" and cfg.decoder_layers is not None:
        agree("decoder_layers", cfg.decoder_layers, len(layers), "decoder stack's layer count")
    else:
        agree("layers", cfg.layers, len(layers), f"{prefix} stack's layer count")
    if sorted(layers) != list(range(len(layers))):
        c.fail(prefix, "layers are not numbered 0 .. n-1")
    if len(hidden) != 1:
        c.fail(f"{prefix} stack", "has layers of different sizes")
    field, units = ("decoder_hidden", cfg.decoder_hidden) if prefix == "decoder" and cfg.decoder_hidden \
        else ("hidden", cfg.hidden)
    agree(field, units, hidden.pop(), f"{prefix}.l0.W_aa")
    agree("cell", N_GATES[cfg.cell] * units, rows.pop() if len(rows) == 1 else -1,
          f"{prefix} gate rows ({cfg.cell}: {N_GATES[cfg.cell]} per unit)")
    two_ways = any(True in d for d in layers.values())
    if prefix != "decoder" and not task.one_way:
        wanted = True if cfg.bidirectional is None else cfg.bidirectional
        if two_ways != wanted:
            c.fail("config.bidirectional", f"is {wanted} but the stored {prefix} reads "
                                           f"{'both ways' if two_ways else 'one way'}")


def check_checkpoint(path, meta, groups):
    """check_meta, then check_shapes for the latest parameters; the best ones must match them."""
    cfg = check_meta(path, meta)
    check_shapes(path, cfg, meta, groups["param"])
    for name, arr in groups["best"].items():
        if name in groups["param"] and arr.shape != groups["param"][name].shape:
            raise RnncliError(f"{path}: parameter best.{name} has shape {arr.shape}, expected "
                              f"{groups['param'][name].shape}")
    return cfg
