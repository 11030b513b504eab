"""Run a model over a data split and return metric dicts (metrics.py computes the scores)."""

import math

import numpy as np

from rnncli.metrics import classification_scores, entity_scores


def evaluate_lm(model, ids, batch_size, seq_len):
    """Loss (nats per token), perplexity and bits per token of predicting every next token of `ids`."""
    from rnncli.train import lm_chunks, lm_streams

    batch_size = max(1, min(batch_size, (len(ids) - 1) // seq_len or 1))
    x, y = lm_streams(ids, batch_size)
    states, total, count = None, 0.0, 0
    for _, xc, yc in lm_chunks(x, y, seq_len):
        nll, n, states = model.loss(xc, yc, states)
        total += nll
        count += n
    loss = total / count
    return {"loss": loss, "perplexity": math.exp(min(loss, 50)), "bits_per_token": loss / math.log(2),
            "tokens": int(count)}


def predict_split(model, task, split, batch_size=64, char_features=False, proba=False):
    """Predictions for every sequence, in the split's order: class ids (S,) and probabilities
    (S, C), or a list of tag-id arrays and, with proba, a list of each tag's marginal probability
    p(y_t = tag | sentence) (else None)."""
    from rnncli.text.batching import bucketed_batches
    from rnncli.train import make_batch

    order = bucketed_batches(split.lengths(), batch_size)
    if task == "classify":
        probs = np.zeros((split.num_sequences, model.num_classes))
        for index in order:
            ids, mask, _ = make_batch(split, index, task)
            probs[index] = model.predict_proba(ids, mask)
        return probs.argmax(axis=1), probs
    out = [None] * split.num_sequences
    probs = [None] * split.num_sequences if proba else None
    for index in order:
        ids, mask, _, chars, cmask = make_batch(split, index, task, char_features)
        if proba:
            pred, marginals = model.predict_with_marginals(ids, mask, chars, cmask)
            p_pred = np.take_along_axis(marginals, pred[:, :, None], axis=2)[:, :, 0]
        else:
            pred = model.predict(ids, mask, chars, cmask)
        for j, s in enumerate(index):
            n = int(mask[:, j].sum())
            out[s] = pred[:n, j]
            if proba:
                probs[s] = p_pred[:n, j]
    return out, probs


def evaluate_split(model, task, split, cfg, names=None):
    """The validation metrics of one split as a dict."""
    if split is None or split.num_sequences == 0:
        return None
    if task == "lm":
        return evaluate_lm(model, split.ids, cfg.batch_size, cfg.seq_len)
    names = names or model.label_names
    if task == "classify":
        pred, probs = predict_split(model, task, split, char_features=cfg.char_features)
        scores = classification_scores(split.labels, pred, names)
        p_true = probs[np.arange(len(pred)), split.labels]
        scores["loss"] = float(-np.mean(np.log(np.maximum(p_true, 1e-300))))
        return scores
    pred, _ = predict_split(model, task, split, char_features=cfg.char_features)
    true_tags = [[names[t] for t in split.tags[split.offsets[s] : split.offsets[s + 1]]]
                 for s in range(split.num_sequences)]
    pred_tags = [[names[t] for t in p] for p in pred]
    scores = entity_scores(true_tags, pred_tags)
    return {**scores["overall"], "types": scores["types"]}
