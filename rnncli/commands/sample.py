"""rnncli sample: texts from a language model (conditional or not), as pieces to write as they come."""

import itertools

import numpy as np

from rnncli.errors import UsageError
from rnncli.models import load_model
from rnncli.sample import check_sampling_options
from rnncli.tasks.options import check_options
from rnncli.tasks.registry import task_named
from rnncli.text.vocab import Vocab

ANY_LABEL = "*"  # --label '*': draw each sample's label as often as training saw it
# a model that knows "no label" follows its label this much harder than as trained, unless told:
# on Nottingham, 2 is where the tunes keep their type's meter (bench/RESULTS.md)
DEFAULT_GUIDANCE = 2.0


def open_sampler(model_path, temperature=1.0, top_k=None, top_p=None, max_len=1000, guidance=None, given=()):
    """-> (model, meta, guidance): a model that generates text, with the options checked first;
    guidance None becomes DEFAULT_GUIDANCE for a model trained with label dropout, else 1.
    given: the options the user gave, checked against the model's task (tasks/options.py)."""
    check_sampling_options(temperature, top_k, top_p, max_len, 1.0 if guidance is None else guidance)
    model, meta, _ = load_model(model_path)
    if not task_named(meta["task"]).generates:
        raise UsageError(f"{model_path}: a {meta.get('task')} model does not generate text; use predict")
    check_options("sample", meta["task"], given)
    knows_no_label = getattr(model, "no_label", None) is not None
    if guidance is None:
        guidance = DEFAULT_GUIDANCE if knows_no_label else 1.0
    elif guidance != 1 and not knows_no_label:
        raise UsageError(f"{model_path}: --guidance needs a conditional language model trained with "
                         "--label-dropout (it compares the label with 'no label')")
    return model, meta, guidance


LABEL_DRAWS = 10_000  # labels drawn at once for --label '*'


def resolve_labels(model_path, meta, labels, n, rng):
    """--label names (repeatable, n samples each) -> label ids, one per sample; None entries for
    an unconditional model. A conditional model needs --label: a label it was not trained on is
    a usage error listing the known ones; '*' draws from the training data's label frequencies.
    The ids come as an iterator, a few thousand at a time: -n may be as large as one likes."""
    if not task_named(meta["task"]).conditioned:
        if labels:
            raise UsageError(f"{model_path}: --label needs a conditional language model (trained with --task lm "
                             "on label+text data); this one was trained without labels")
        return itertools.repeat(None, n)
    names = meta["data"]["labels"]
    if not labels:
        raise UsageError(f"{model_path} is conditional: choose --label ({', '.join(names)}), or --label '*' "
                         "to draw labels as often as training saw them")
    unknown = next((name for name in labels if name != ANY_LABEL and name not in names), None)
    if unknown is not None:
        raise UsageError(f"unknown --label {unknown!r}; {model_path} knows: {', '.join(names)}")
    counts = np.array([meta["data"].get("label_counts", {}).get(name, 1) for name in names], np.float64)

    def ids():
        for name in labels:
            if name != ANY_LABEL:
                yield from itertools.repeat(names.index(name), n)
                continue
            for start in range(0, n, LABEL_DRAWS):
                size = min(LABEL_DRAWS, n - start)
                yield from (int(k) for k in rng.choice(len(names), size=size, p=counts / counts.sum()))

    return ids()


def sample_pieces(model, meta, prime, label, temperature, top_k, top_p, max_len, rng, one_line=False, guidance=1.0,
                  with_probability=False):
    """Yield the pieces of one sample: the prime, then each generated token (no final newline).
    one_line: newlines inside the sample become spaces. with_probability: each piece as (text, the
    probability the model gave that token; None for the prime), as `serve` streams them."""
    from rnncli.sample import generated_steps

    data = meta["data"]
    vocab, level, lower = Vocab(data["vocab"]), data["level"], bool(data.get("lower"))
    flat = (lambda s: s.replace("\n", " ")) if one_line else (lambda s: s)
    if prime:
        yield (flat(prime), None) if with_probability else flat(prime)
    for token, p in generated_steps(model, vocab, level, prime, temperature, top_k, top_p, max_len, rng, lower=lower,
                                    label=label, guidance=guidance):
        yield (flat(token), p) if with_probability else flat(token)


def samples(model, meta, model_path, primes, labels, n, seed, one_line, with_probability=False, **decoding):
    """Every sample asked for: n per label (or labels drawn; one per line of primes with one_line),
    for each prime -> yields (label name, prime, the sample's pieces as they are generated)."""
    rng = np.random.default_rng(seed)
    chosen = resolve_labels(model_path, meta, labels, 1 if one_line else n, rng)
    if one_line:  # the same labels for every prime line
        chosen = list(chosen)
    for prime in primes:
        for label in chosen:
            d = decoding
            pieces = sample_pieces(model, meta, prime, label, d["temperature"], d["top_k"], d["top_p"], d["max_len"],
                                   rng, one_line, d["guidance"], with_probability)
            yield label_name(meta, label), prime, pieces


def label_name(meta, label):
    return None if label is None else meta["data"]["labels"][label]
