"""Decoding an encoder-decoder: greedy, sampling and beam search over a batch of sources at once.

Every method starts from the encoded sources (model.start) and feeds the model its own previous
token (model.step), beginning with <bos>, until it emits <eos> or reaches the length limit
max_len(S) = floor(R S) + 10 tokens for a source of S tokens (text/targets.py; R = 2 unless
`tokenize --max-target-ratio` said otherwise). <pad>, <unk> and <bos> are never produced.

Beam search keeps the K best prefixes of each source (B sources -> B*K rows, one batched step
each), scores hypotheses by their total log-probability divided by length^alpha (alpha =
--length-penalty; 0 is the raw score, which favours short outputs; 1, the default for a beam,
is the mean log-probability per token, <eos> included), and finishes a source when it holds max(K, n_best)
finished hypotheses. The greedy hypothesis is always among the candidates, so beam search never
returns a lower model score than greedy; beam 1 is greedy exactly.
"""

import numpy as np

from rnncli.nn.functional import log_softmax
from rnncli.text.targets import DEFAULT_TARGET_RATIO, target_limit
from rnncli.text.vocab import BOS, EOS, NEVER_GENERATED

DEFAULT_LENGTH_PENALTY = 1.0  # a beam ranks by the mean log-probability per token unless told otherwise


def decoding(config, beam=None, length_penalty=None, sampling=False):
    """The beam width and length penalty predict and eval use: what the command line says, else the
    model's own defaults (config keys `beam` and `length_penalty`, set at training), else greedy;
    a beam's length penalty defaults to DEFAULT_LENGTH_PENALTY. sampling (--temp, --greedy) turns
    the model's default beam off."""
    if beam is None:
        beam = 0 if sampling else int(config.get("beam") or 0)
    if length_penalty is None:
        length_penalty = config.get("length_penalty")
    if length_penalty is None:
        length_penalty = DEFAULT_LENGTH_PENALTY if beam > 1 else 0.0
    return beam, float(length_penalty)


def describe_decoding(beam, length_penalty):
    """How outputs were decoded, in the words eval reports."""
    return f"beam {beam}, length penalty {length_penalty:g}" if beam else "greedy"


def max_lengths(model, source_mask):
    """(B,) the longest output allowed for each source."""
    return target_limit(source_mask.sum(axis=0), getattr(model, "max_target_ratio", DEFAULT_TARGET_RATIO))


def memory_mask(model, source_mask):
    """The mask attention reads: the encoder's outputs', which a model that shortens its source in
    time (stacked frames, a pyramid) has fewer of than the source has steps."""
    return model.memory_mask(source_mask) if hasattr(model, "memory_mask") else source_mask


def _log_probs(logits):
    logp = log_softmax(logits.astype(np.float64))
    logp[:, NEVER_GENERATED] = -np.inf
    return logp


def greedy(model, source, source_mask, temperature=0.0, top_k=None, top_p=None, rng=None, encoded=None):
    """-> list of B token-id lists (without <eos>) and their log-probabilities (B,).
    temperature 0 takes the likeliest token; above 0 it samples (with optional top-k / top-p).
    encoded: model.start(source, source_mask), when the caller has it already."""
    from rnncli.sample import next_token

    memory, states = encoded if encoded is not None else model.start(source, source_mask)
    attended = memory_mask(model, source_mask)
    B = source.shape[1]
    limit = max_lengths(model, source_mask)
    prev = np.full(B, BOS, np.int64)
    done = np.zeros(B, bool)
    out, score = [[] for _ in range(B)], np.zeros(B)
    for t in range(int(limit.max())):
        logits, states = model.step(prev, states, memory, attended)
        logp = _log_probs(logits)
        if temperature == 0:
            choice = logp.argmax(axis=1)
        else:
            choice = np.array([next_token(logits[b], rng, temperature, top_k, top_p) for b in range(B)])
        live = ~done
        score[live] += logp[np.arange(B), choice][live]
        for b in np.flatnonzero(live & (choice != EOS) & (t < limit)):
            out[b].append(int(choice[b]))
        done |= (choice == EOS) | (t + 1 >= limit)
        if done.all():
            break
        prev = np.where(done, EOS, choice)
    return out, score


def beam_search(model, source, source_mask, beam=5, length_penalty=0.0, n_best=1, normaliser=None):
    """-> for each of the B sources, a list of up to n_best (tokens, normalised score, log-prob),
    best first. normaliser: length -> the divisor of a hypothesis's log-probability (default
    length^length_penalty; bench/seq2seq.py passes GNMT's ((5 + length) / 6)^alpha)."""
    norm = normaliser or (lambda n: n**length_penalty)
    B = source.shape[1]
    K = beam
    keep = max(K, n_best)
    encoded = memory, states = model.start(source, source_mask)
    # every source's rows side by side: source b owns rows b*K .. b*K+K-1
    memory = np.repeat(memory, K, axis=1)
    mask = np.repeat(memory_mask(model, source_mask), K, axis=1)
    states = [tuple(np.repeat(s, K, axis=0) for s in layer) for layer in states]
    limit = max_lengths(model, source_mask)
    scores = np.full((B, K), -np.inf)
    scores[:, 0] = 0.0  # one live prefix at first, so the first step does not pick K copies of it
    prefixes = np.zeros((B, K, 0), np.int64)
    prev = np.full(B * K, BOS, np.int64)
    finished = [[] for _ in range(B)]
    active = np.ones(B, bool)
    rows = np.arange(B)[:, None]
    for t in range(int(limit.max())):
        logits, states = model.step(prev, states, memory, mask)
        V = logits.shape[1]
        candidates = (scores[:, :, None] + _log_probs(logits).reshape(B, K, V)).reshape(B, K * V)
        top, top_scores = _best_two_beams(candidates, K)
        from_beam, token = top // V, top % V
        ends = (token == EOS) & np.isfinite(top_scores)
        length = t + 1
        # an <eos> finishes a hypothesis when it ranks among the K best (so beam 1 is greedy)
        finishing = ends & (np.arange(top.shape[1]) < K)[None, :] & active[:, None]
        for b, j in zip(*np.nonzero(finishing), strict=True):
            finished[b].append((prefixes[b, from_beam[b, j]].tolist(), top_scores[b, j] / norm(length),
                                top_scores[b, j]))
        # the K best that go on: non-<eos> candidates in score order
        order = np.argsort(ends, axis=1, kind="stable")[:, :K]
        from_beam = np.take_along_axis(from_beam, order, 1)
        token = np.take_along_axis(token, order, 1)
        scores = np.take_along_axis(top_scores, order, 1)
        prefixes = np.concatenate([prefixes[rows, from_beam], token[:, :, None]], axis=2)
        pick = (np.arange(B)[:, None] * K + from_beam).reshape(-1)
        states = [tuple(s[pick] for s in layer) for layer in states]
        prev = token.reshape(-1)
        over = t + 1 >= limit
        for b in np.flatnonzero(active & over):  # out of room: the live prefixes count as they are
            for j in range(K):
                if np.isfinite(scores[b, j]):
                    finished[b].append((prefixes[b, j].tolist(), scores[b, j] / norm(length), scores[b, j]))
        active &= ~over & np.array([len(f) < keep for f in finished])
        if not active.any():
            break
        scores[~active] = -np.inf
    # the greedy hypothesis joins the candidates (a beam can prune the path greedy takes)
    tokens, logp = greedy(model, source, source_mask, encoded=encoded)
    for b in range(B):
        n = len(tokens[b]) + (1 if len(tokens[b]) < limit[b] else 0)  # <eos> counts as a token
        if all(f[0] != tokens[b] for f in finished[b]):
            finished[b].append((tokens[b], logp[b] / norm(max(n, 1)), logp[b]))
    return [sorted(f, key=lambda h: -h[1])[:n_best] for f in finished]


def _best_two_beams(candidates, K):
    """candidates (B, K V): each source's scores of every extension -> the 2K best of each, best
    first: (their indices, their scores). At most K of them end in <eos>, so K others stay alive."""
    B, KV = candidates.shape
    top = np.argpartition(-candidates, 2 * K - 1, axis=1)[:, : 2 * K] if KV > 2 * K else \
        np.broadcast_to(np.arange(KV), (B, KV))
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(candidates, top, 1), 1, kind="stable"), 1)
    return top, np.take_along_axis(candidates, top, 1)
