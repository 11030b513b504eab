"""Generation from a language model, one token at a time, with no recomputation of the prefix:
the prime is read step by step into the state, then each sampled token is fed back in.

Every sequence in training is followed by <eos>, so <eos> also serves as the start symbol
when there is no prime: the model has learnt what follows it (the start of a new sequence).
"""

import numpy as np

from rnncli.errors import UsageError
from rnncli.nn.functional import log_softmax, softmax
from rnncli.text.vocab import EOS, NEVER_GENERATED, UNK, encode_chars, split_words


def check_sampling_options(temperature, top_k, top_p, max_len, guidance=1.0):
    for name, value in (("--temp", temperature), ("--top-p", top_p), ("--guidance", guidance)):
        if value is not None and not np.isfinite(value):
            raise UsageError(f"{name} must be a finite number, not {value}")
    if temperature < 0:
        raise UsageError(f"--temp must be >= 0 (0 means greedy), not {temperature}")
    if top_k is not None and top_k < 1:
        raise UsageError(f"--top-k must be at least 1, not {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise UsageError(f"--top-p must be in (0, 1], not {top_p}")
    if guidance < 0:
        raise UsageError(f"--guidance must be >= 0 (1: the label as trained, 0: ignore it), not {guidance}")
    if max_len < 1:
        raise UsageError(f"--max-len must be at least 1, not {max_len}")


def next_token(logits, rng, temperature=1.0, top_k=None, top_p=None):
    """Pick one id from logits (V,). Temperature 0 is argmax; top-k keeps the k likeliest;
    top-p keeps the smallest set whose probability reaches p (nucleus sampling)."""
    logits = logits.astype(np.float64)  # a copy
    logits[NEVER_GENERATED] = -np.inf
    if temperature == 0:
        return int(np.argmax(logits))
    logits = logits / temperature
    if top_k is not None and top_k < len(logits):
        cut = np.partition(logits, -top_k)[-top_k]
        logits = np.where(logits < cut, -np.inf, logits)
    p = softmax(logits)
    if top_p is not None and top_p < 1:
        order = np.argsort(-p, kind="stable")
        cum = np.cumsum(p[order])
        keep = order[: int(np.searchsorted(cum, top_p)) + 1]
        mask = np.zeros_like(p)
        mask[keep] = 1
        p = p * mask
        p /= p.sum()
    return int(rng.choice(len(p), p=p))


def encode_prime(prime, vocab, level, lower=False):
    """The prime's ids, normalised as the model's training text was (--lower)."""
    if level == "char":
        return encode_chars(vocab, prime.lower() if lower else prime)
    return vocab.encode(split_words(prime, lower))


def _stepper(model, batch, labels=None, guidance=1.0):
    """-> (initial states, step(ids, states) -> (logits, states)) for `batch` texts: a language
    model's zero state, or a conditional model's state from each text's label.

    guidance g != 1 (classifier-free guidance; a model trained with label dropout): each text is
    also read with the "no label" row, and the scores are log p(. | c) + (g - 1) (log p(. | c) -
    log p(. | no label)): g > 1 leans away from what every label would write, towards what this
    label writes; g = 0 ignores the label."""
    if labels is None:
        return model.initial_state(batch), model.step
    labels = np.asarray(labels)
    if guidance == 1:
        states, l = model.start(labels)
        return states, lambda ids, s: model.step(ids, s, l)
    states, l = model.start(np.concatenate([labels, np.full(batch, model.no_label)]))

    def step(ids, s):
        logits, s = model.step(np.concatenate([ids, ids]), s, l)
        logp = log_softmax(logits.astype(np.float64))
        with_label, without = logp[:batch], logp[batch:]
        return without + guidance * (with_label - without), s

    return states, step


def generate(model, vocab, level, prime="", temperature=1.0, top_k=None, top_p=None, max_len=1000,
             rng=None, lower=False, label=None, guidance=1.0):
    """Yield the text of each generated token until <eos> or max_len tokens.
    lower: the model was trained on lower-cased text, so the prime is read lower-cased.
    label: a conditional model's label id, whose state the text starts from (tasks/conditional_lm.py);
    guidance: how strongly to follow it (_stepper)."""
    for text, _ in generated_steps(model, vocab, level, prime, temperature, top_k, top_p, max_len, rng, lower, label,
                                   guidance):
        yield text


def generated_steps(model, vocab, level, prime="", temperature=1.0, top_k=None, top_p=None, max_len=1000,
                    rng=None, lower=False, label=None, guidance=1.0):
    """generate(), each token with the probability the model gave it: (text, p) where p is the
    softmax of the model's scores at temperature 1 (before top-k, top-p), what a reader would ask
    of a step ("how sure was it?"). The draws are generate()'s own, so a seed gives the same text."""
    rng = rng or np.random.default_rng()
    states, step = _stepper(model, 1, None if label is None else [label], guidance)
    ids = [EOS, *encode_prime(prime, vocab, level, lower).tolist()]
    logits = None
    for i in ids:  # read the prime into the state
        logits, states = step(np.array([i]), states)
    sep = "" if level == "char" else " "
    for n in range(max_len):
        i = next_token(logits[0], rng, temperature, top_k, top_p)
        if i == EOS:
            return
        token = vocab.tokens[i] if i != UNK else "<unk>"
        p = float(softmax(logits[0].astype(np.float64))[i])
        yield (token if (level == "char" or (n == 0 and not prime)) else sep + token), p
        logits, states = step(np.array([i]), states)


def sample_batch(model, count, labels=None, temperature=1.0, max_len=1000, rng=None, guidance=1.0):
    """count samples at once, each from <eos> (and its label's state, for a conditional model):
    one batched step per position instead of one model call per token. -> list of id lists
    (without the closing <eos>). Temperature 0 is greedy; used where many samples are scored."""
    rng = rng or np.random.default_rng()
    states, step = _stepper(model, count, labels, guidance)
    prev = np.full(count, EOS, np.int64)
    done, columns = np.zeros(count, bool), []
    for _ in range(max_len):
        logits, states = step(prev, states)
        logits = logits.astype(np.float64)
        logits[:, NEVER_GENERATED] = -np.inf
        if temperature == 0:
            choice = logits.argmax(axis=1)
        else:  # the Gumbel-max trick: argmax(z / T + g) is a draw from softmax(z / T)
            choice = (logits / temperature + rng.gumbel(size=logits.shape)).argmax(axis=1)
        done |= choice == EOS
        prev = np.where(done, EOS, choice)  # a finished text goes on reading <eos>
        columns.append(prev)
        if done.all():
            break
    ids = np.stack(columns, axis=1) if columns else np.zeros((count, 0), np.int64)
    # each text ends before its first <eos>
    ends = np.where((ids == EOS).any(axis=1), (ids == EOS).argmax(axis=1), ids.shape[1])
    return [row[:end].tolist() for row, end in zip(ids, ends, strict=True)]
