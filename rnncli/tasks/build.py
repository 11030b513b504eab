"""Build the model a configuration and a data set describe (checkpoints: models.py)."""

import math

import numpy as np

from rnncli.errors import RnncliError, UsageError
from rnncli.nn.init import Blueprint
from rnncli.tasks.registry import task_named

# the tasks each data format can train, the detected one first: the words of labelled or
# tagged sentences also make a word-level language model
TASKS_OF_FORMAT = {"text": ("lm",), "tsv": ("classify", "lm"), "conll": ("tag", "lm"), "pairs": ("seq2seq", "caption"),
                   "scores": ("regress", "lm")}
NEEDS = {"classify": "one label per example (label<TAB>text lines)",
         "regress": 'a number per example (JSON lines {"text": ..., "target": 1.5})',
         "tag": "a tag per token (CoNLL token<TAB>tag lines)",
         "lm": "text", "seq2seq": "source<TAB>target pairs (tokenize --format pairs)",
         "caption": 'images and their captions (JSON lines {"image": "a.png", "text": ...})'}


def task_of(cfg, data_meta):
    """cfg.task (--task) where the data can train it, else the task the data's format implies;
    options the task cannot build are refused here too, before anything is shown. `--task lm` on
    label+text data is the conditional language model, "clm" inside (unless --condition none)."""
    fmt = data_meta["format"]
    task = cfg.task or ("caption" if "image" in data_meta else TASKS_OF_FORMAT[fmt][0])
    if task == "caption" and "image" not in data_meta:
        raise UsageError(f"--task caption needs {NEEDS['caption']}; this data set holds no images")
    frames = data_meta.get("input") == "frames"
    if frames and task == "lm":
        raise UsageError("frames (audio, features) cannot train a language model: it predicts tokens")
    if frames and (cfg.char_features or cfg.embeddings):
        raise UsageError(f"{'--char-features' if cfg.char_features else '--embeddings'} reads words; this data "
                         "holds frames")
    if not frames and cfg.input_projection is not None:
        raise UsageError("--input-projection is for frame input (audio, features); this data holds tokens")
    augmenting = [name for name, on in (("--noise-db", cfg.noise_db is not None), ("--gain-db", cfg.gain_db),
                                        ("--time-masks", cfg.time_masks), ("--freq-masks", cfg.freq_masks)) if on]
    if augmenting and not frames:
        raise UsageError(f"{augmenting[0]} augments frames (audio, features); this data holds tokens")
    if augmenting and augmenting[0] in ("--noise-db", "--gain-db") and not data_meta.get("audio"):
        raise UsageError(f"{augmenting[0]} changes a recording's sound; these frames are not log-mel audio "
                         "(masks apply: --time-masks, --freq-masks)")
    speech = frames and fmt == "pairs"
    if not speech and (cfg.stack_frames != 1 or cfg.pyramid):
        raise UsageError(f"--{'stack-frames' if cfg.stack_frames != 1 else 'pyramid'} shortens recordings for speech "
                         "recognition (frames in, text out); this data is not")
    if speech and cfg.pyramid >= cfg.layers:
        raise UsageError(f"--pyramid {cfg.pyramid} joins steps between encoder layers: it needs --layers "
                         f"{cfg.pyramid + 1} or more (--layers is {cfg.layers})")
    if cfg.decoder_layers is not None and (fmt != "pairs" or cfg.decoder_layers > cfg.layers):
        raise UsageError("--decoder-layers is for an encoder-decoder, at most --layers (each decoder layer starts "
                         "from an encoder layer's state)" if fmt == "pairs" else
                         "--decoder-layers is for an encoder-decoder (source<TAB>target pairs or speech)")
    if cfg.decoder_hidden is not None and fmt != "pairs":
        raise UsageError("--decoder-hidden is for an encoder-decoder (source<TAB>target pairs or speech)")
    if task not in TASKS_OF_FORMAT[fmt]:
        raise UsageError(f"--task {task} needs {NEEDS[task]}, but the data set is {fmt}; "
                         f"{fmt} data trains {' or '.join(TASKS_OF_FORMAT[fmt])}")
    if task == "lm" and fmt == "tsv" and cfg.condition != "none":
        task = "clm"  # a language model of labelled texts: conditional on the label
    if cfg.label_smoothing > 0:
        binary = task == "classify" and len(data_meta.get("labels") or ()) == 2
        if task == "regress" or binary or (task == "tag" and cfg.crf):
            what = ("a regression has no classes" if task == "regress" else
                    "two labels use one sigmoid output" if binary else "a CRF scores whole tag sequences")
            raise UsageError(f"--label-smoothing is for softmax outputs; {what}")
    if cfg.input_feeding and (task != "seq2seq" or cfg.attention in (None, "none")):
        raise UsageError("--input-feeding feeds the attentional state to an encoder-decoder's decoder: it needs "
                         "--attention" if task == "seq2seq" else "--input-feeding is for an encoder-decoder")
    outputs = cfg.hidden * (1 if cfg.bidirectional is False else 2)  # the encoder's, which dot attention reads
    if task == "seq2seq" and cfg.attention == "dot" and (cfg.decoder_hidden or cfg.hidden) != outputs:
        raise UsageError("--attention dot needs equal sizes, and a bidirectional encoder's outputs are twice the "
                         "decoder's: use general or additive, --no-bidirectional, or --decoder-hidden "
                         f"{outputs}" if cfg.decoder_hidden is None else
                         "dot attention compares the decoder's state with the encoder's outputs: --decoder-hidden "
                         f"must equal their size, {outputs} (or use general or additive attention)")
    return task


COPIES = 6  # parameters, gradients, two Adam moments, the best weights, an average: what training holds


def parameter_shapes(cfg, data_meta):
    """{name: shape} of every parameter the model holds, read from its constructor run on a Blueprint
    (nn/init.py): the constructors are the one place where shapes are written, and this allocates
    nothing, whatever sizes the configuration claims."""
    return {name: arr.shape for name, arr in _construct(cfg, data_meta, Blueprint()).params.items()}


def parameter_count(cfg, data_meta):
    """How many numbers the model holds, exactly."""
    return sum(math.prod(shape) for shape in parameter_shapes(cfg, data_meta).values())


def reduction(cfg):
    """How many input frames a speech encoder joins into one of its top layer's steps."""
    return cfg.stack_frames * 2**cfg.pyramid


def check_reduction(cfg, ds, task):
    """A speech encoder that joins k frames into one step needs recordings of k frames or more."""
    if task != "seq2seq" or ds.meta.get("input") != "frames":
        return
    for name, split in (("training", ds.train), ("validation", ds.valid)):
        if split is not None and split.num_sequences and (shortest := int(split.lengths().min())) < reduction(cfg):
            raise RnncliError(f"the shortest {name} recording has {shortest:,} frames, fewer than the encoder joins "
                              f"into one step ({reduction(cfg):,}: --stack-frames x 2^--pyramid); lower them or "
                              "leave such recordings out")


def check_fits_in_memory(cfg, data_meta):
    """Refuse, before anything is allocated, a model that training could not hold in this machine's memory."""
    import os

    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    per_number = np.dtype(cfg.dtype).itemsize * COPIES
    # every recurrent layer holds at least its H x H recurrent weights: a bound that refuses an absurd
    # depth before the blueprint is drawn layer by layer
    count, bound = cfg.layers * cfg.hidden**2, "at least "
    if count * per_number <= memory:
        count, bound = parameter_count(cfg, data_meta), ""
    need = count * per_number
    if need > memory:
        raise UsageError(f"the model would hold {bound}{count:,} parameters ({need / 2**30:,.1f} GiB with what "
                         f"training keeps beside them), more than this machine's {memory / 2**30:,.1f} GiB of memory; "
                         "lower --layers, --hidden or --embed")


def build_model(cfg, data_meta, rng=None):
    model = _build(cfg, data_meta, rng)
    model.label_smoothing = cfg.label_smoothing
    return model


def _build(cfg, data_meta, rng):
    check_fits_in_memory(cfg, data_meta)
    return _construct(cfg, data_meta, np.random.default_rng(cfg.seed) if rng is None else rng)


def _construct(cfg, data_meta, rng):
    task = task_named(task_of(cfg, data_meta))
    V = len(data_meta["vocab"])
    if task.pretrained_rows:  # rows for pretrained words after the training vocabulary
        V += len(data_meta.get("pretrained_vocab") or ())
    return task.build(cfg, data_meta, rng, V, np.dtype(cfg.dtype))
