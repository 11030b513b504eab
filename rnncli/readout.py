"""How a model reads a text, token by token: what `rnncli show` draws.

    language model   the top layer's hidden unit (--unit) or gate (--gate) at every token, as
                     Karpathy et al. (2015) coloured them; --top ranks the units that track
                     something simple (position in the line, inside quotes, inside brackets);
                     the five likeliest next tokens at each position
    tagger           each token's tag and its marginal probability given the sentence
    classifier       each token's share of the decision: the features it wins under max pooling,
                     else gradient x input of the chosen class's logit
    encoder-decoder  the greedy translation and its attention weights (target x source)
Results are plain data (lists and arrays); render.py and charts.py draw them.
"""

import numpy as np

from rnncli.errors import RnncliError, UsageError
from rnncli.nn.functional import sigmoid, softmax
from rnncli.tasks.registry import task_named
from rnncli.text.encode import encode_words, side_tokens
from rnncli.text.vocab import EOS, Vocab, split_words

GATES = {"lstm": ("i", "f", "o"), "gru": ("r", "u"), "rnn": ()}


def tokens_of(text, data):
    level = data.get("level", "word")
    return list(text) if level == "char" else side_tokens(text, level, data.get("lower", False))


def gates_of(cell, kind, x, state):
    """A cell's gate activations for input x (B, D) from state: {"i": (B, H), ...} (rnncli's gate
    order: LSTM i, f, g, o; GRU r, u, n; u is the lecture's update gate)."""
    p, H = cell.params, cell.hidden_size
    z = x @ p["W_ax"].T + state[0] @ p["W_aa"].T + p["b"]
    if kind == "lstm":
        return {"i": sigmoid(z[:, :H]), "f": sigmoid(z[:, H : 2 * H]), "o": sigmoid(z[:, 3 * H :])}
    if kind == "gru":
        return {"r": sigmoid(z[:, :H]), "u": sigmoid(z[:, H : 2 * H])}
    return {}


def read_lm(model, meta, text, label=None):
    """-> {"tokens", "hidden" (n, H), "gates" {g: (n, H)}, "next" [[(token, p) x 5] per position]}:
    the model reads <eos>, then the text (teacher forcing, one forward pass, as eval does); a
    conditional model starts from the state of `label` (its name) and reads it beside every token.
    The gates are recomputed from what the top layer's forward pass kept: its inputs and states."""
    data, kind = meta["data"], meta["config"]["cell"]
    tokens = tokens_of(text, data)
    if not tokens:
        raise UsageError("nothing to show: the text is empty")
    ids = np.concatenate([[EOS], Vocab(data["vocab"]).encode(tokens)])[:, None]  # (n + 1, 1)
    if task_named(meta["task"]).conditioned:
        names = data["labels"]
        if label not in names:
            raise UsageError(f"a conditional model reads a text for a label: --label one of {', '.join(names)}")
        logits, _, (_, _, rnn_cache, _, h) = model.forward(ids, np.ones(ids.shape, model.dtype),
                                                           np.array([names.index(label)]))
    else:
        logits, _, (_, rnn_cache, _, h) = model.forward(ids)
    top = rnn_cache["layers"][-1][1][0]  # the top layer's cell: its inputs x<t> and states a<t>
    x, a_prev = top["x"][1:, 0], top["states"][0][1:-1, :, 0]  # the steps that read the text
    p = softmax(logits[1:, 0].astype(np.float64))  # after each token: what it expects next
    nexts = [[(data["vocab"][i], float(row[i])) for i in np.argsort(-row)[:5]] for row in p]
    gates = gates_of(model.rnn.layers[-1][0], kind, x, (a_prev,))
    return {"tokens": tokens, "hidden": h[1:, 0], "gates": gates, "next": nexts}


def simple_features(tokens):
    """What a unit might track, per token: position in the line, inside "quotes", inside (brackets)."""
    pos, quote, depth, out = 0, False, 0, {"position in line": [], "inside quotes": [], "inside brackets": []}
    for tok in tokens:
        pos = 0 if tok == "\n" else pos + 1
        if tok == '"':
            quote = not quote
        depth = max(0, depth + (tok in "([{") - (tok in ")]}")) if len(tok) == 1 else depth
        out["position in line"].append(pos)
        out["inside quotes"].append(float(quote))
        out["inside brackets"].append(float(depth > 0))
    return {k: np.array(v, float) for k, v in out.items()}


def top_units(hidden, tokens, n=3):
    """-> [(feature, unit, correlation)]: for each simple feature the units whose activation
    correlates with it most (|Pearson r|), best first; features that never vary are skipped."""
    out = []
    H = hidden - hidden.mean(axis=0)
    for name, f in simple_features(tokens).items():
        if f.std() == 0:
            continue
        fc = f - f.mean()
        r = (H * fc[:, None]).sum(axis=0) / np.maximum(np.sqrt((H**2).sum(axis=0) * (fc**2).sum()), 1e-12)
        for unit in np.argsort(-np.abs(r))[:n]:
            out.append((name, int(unit), float(r[unit])))
    return out


def read_tagger(model, meta, text):
    from rnncli.evaluate import predict_tags

    words = split_words(text)
    if not words:
        raise UsageError("nothing to show: the text is empty")
    split = encode_words(meta["data"], [words])
    pred, probs = predict_tags(model, split, char_features=meta["config"].get("char_features"), proba=True)
    names = meta["data"]["tags"]
    return {"tokens": words, "tags": [names[t] for t in pred[0]], "probabilities": [float(p) for p in probs[0]]}


def _encoded(model, meta, text):
    tokens = tokens_of(text, meta["data"])
    if not tokens:
        raise UsageError("nothing to show: the text is empty")
    ids = encode_words(meta["data"], [tokens]).ids[:, None]
    return tokens, ids, np.ones(ids.shape, model.dtype)


def _contributions(model, ids, mask, d_outputs):
    """Each token's share of a many-to-one model's output: with max pooling, the share of the pooled
    features its position supplies; else gradient x input of the output weighted by d_outputs (K,)."""
    _, cache = model.forward(ids, mask)
    aux = cache[5]  # max pooling: the winning position of each feature
    if model.pool == "max":
        share = np.bincount(aux[0], minlength=len(ids)) / aux.shape[1]
        return share, "share of the max-pooled features this token supplies"
    dx, _ = model.backward(np.asarray(d_outputs, model.dtype)[None], cache)
    return (dx * model.embedding.forward(ids)).sum(axis=-1)[:, 0], None


def read_classifier(model, meta, text):
    """-> tokens, the predicted label and its probability, and each token's contribution."""
    tokens, ids, mask = _encoded(model, meta, text)
    probs = model.predict_proba(ids, mask)[0]
    k = int(np.argmax(probs))
    d_logits = np.zeros(model.head.params["W"].shape[0])  # the chosen class's logit
    if model.num_classes == 2:  # two classes have one logit, signed for class 1
        d_logits[0] = 1.0 if k == 1 else -1.0
    else:
        d_logits[k] = 1.0
    share, how = _contributions(model, ids, mask, d_logits)
    return {"tokens": tokens, "label": meta["data"]["labels"][k], "probability": float(probs[k]),
            "contributions": [float(v) for v in share],
            "how": how or "gradient x input of the predicted class's score"}


def read_regression(model, meta, text):
    """-> tokens, the predicted scores in their own units, and each token's contribution to the
    first score (in that score's units)."""
    tokens, ids, mask = _encoded(model, meta, text)
    scores = model.predict(ids, mask)[0]
    names = meta["data"]["score_names"]
    d_z = np.zeros(model.num_scores)
    d_z[0] = model.score_std[0]  # the score is mean + sd * z
    share, how = _contributions(model, ids, mask, d_z)
    return {"tokens": tokens, "scores": dict(zip(names, map(float, scores), strict=True)),
            "contributions": [float(v) for v in share],
            "how": how or f"gradient x input of {names[0]} (in its units)"}


def read_frame_units(model, frames, kind, n_units=3):
    """A many-to-one model of frames (a classifier or a regression) reading frames (T, D): its top
    layer's gates, averaged over the units, frame by frame ({"i": (T,), "f": ..., "o": ...} for an
    LSTM, {"r", "u"} for a GRU, in [0, 1]), and the n_units units of its output that vary most over
    the recording ({unit: (T,) in [-1, 1]}). The gates are the forward direction's, recomputed from
    what its forward pass kept (its inputs and states), as read_lm does for text."""
    batch, mask = frames[:, None, :], np.ones((len(frames), 1), frames.dtype)
    _, (_, _, h, _, rnn_cache, _, _, _) = model.forward(batch, mask)
    top = rnn_cache["layers"][-1][1][0]  # the top layer's forward cell: its inputs x<t> and states a<t>
    x, a_prev = top["x"][:, 0], top["states"][0][:-1, :, 0]  # every step, and the state before it
    gates = {g: v.mean(axis=1) for g, v in gates_of(model.rnn.layers[-1][0], kind, x, (a_prev,)).items()}
    out = h[:, 0].astype(np.float64)  # (T, dirs * H)
    varied = np.argsort(-out.var(axis=0), kind="stable")[:n_units]
    return gates, {int(u): out[:, u] for u in varied}


def read_translation(model, meta, text):
    """-> source tokens, the greedy translation and its attention (target x source) or None."""
    from rnncli.decode import greedy
    from rnncli.text.encode import encode_pairs

    data = meta["data"]
    source = side_tokens(text, data["level"], data["lower"])
    if not source:
        raise UsageError("nothing to show: the text is empty")
    from rnncli.text.targets import source_limit

    limit = source_limit(data)
    if len(source) > limit:
        raise RnncliError(f"cannot show a source of {len(source):,} tokens: longer than this model's limit of "
                          f"{limit:,} (twice the longest training source)")
    ids = encode_pairs(data, [source]).ids[:, None]
    mask = np.ones(ids.shape, model.dtype)
    out, _ = greedy(model, ids, mask)
    target = [data["target_vocab"][i] for i in out[0]]
    weights = None
    if model.attention is not None:
        t_in = np.array([2, *out[0]])[:, None]  # <bos> and the translation: the steps it attended
        weights = model.attention_weights(ids, mask, t_in)[0]  # (T, S)
    return {"source": source, "target": target + ["<eos>"], "attention": weights}


def read_transcription(model, meta, frames):
    """A speech model on one recording's normalised frames (T, D) -> the greedy transcript (with
    <eos>), each of its tokens' attention over the encoder's steps (tokens x T') and the same
    spread over the frames (tokens x T: a step's weight on each of the frames it joined), and
    the frame each token attended most."""
    from rnncli.decode import greedy

    source, mask = frames[:, None, :], np.ones((len(frames), 1), model.dtype)
    out, _ = greedy(model, source, mask)
    target = [meta["data"]["target_vocab"][i] for i in out[0]] + ["<eos>"]
    if model.attention is None:
        return {"target": target, "attention": None, "per_frame": None, "peaks": None}
    t_in = np.array([2, *out[0]])[:, None]  # <bos> and the transcript: the steps it attended
    weights = model.attention_weights(source, mask, t_in)[0]  # (tokens, T')
    per_frame = np.repeat(weights, model.reduction, axis=1)[:, : len(frames)]  # (tokens, T)
    return {"target": target, "attention": weights, "per_frame": per_frame,
            "peaks": [int(k) for k in per_frame.argmax(axis=1)]}
