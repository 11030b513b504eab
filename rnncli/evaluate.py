"""Run a model over a data split and return metric dicts (metrics.py computes the scores).

During training on several workers (parallel/) each worker runs every world.size-th batch and
the workers pool what they found (world.sum, world.fill) before scoring, so each gets the
metrics one process would. A language model's stream is read in one pass by every worker.
"""

import math

import numpy as np

from rnncli.bleu import corpus_bleu, corpus_chrf
from rnncli.decode import describe_decoding
from rnncli.metrics import classification_scores, entity_scores, error_rates, event_scores, regression_scores
from rnncli.parallel import Solo
from rnncli.text.batching import (
    bucketed_batches,
    framed_texts,
    labelled_batch,
    padded_inputs,
    paired_batch,
    tagged_batch,
)
from rnncli.text.vocab import EOS, join_tokens


def evaluate_lm(model, ids, chunk=256):
    """Loss (nats per token), perplexity and bits per token of one pass over the stream `ids`.

    The framing: the model starts from a zero state, reads <eos> (the start symbol, as in
    generation) and then the text in order, carrying its state across the whole text; every
    token, the first included, is predicted once from all the tokens before it. So the figure
    does not depend on the batch size or the BPTT length of training. Chunks of `chunk` steps
    only bound the memory; the state flows through them unchanged.
    """
    inputs = np.r_[EOS, ids[:-1]].astype(np.int32)
    states, total = None, 0.0
    for a in range(0, len(ids), chunk):
        x, y = inputs[a : a + chunk, None], ids[a : a + chunk, None]  # (T, 1)
        nll, _, states = model.loss(x, y, states)
        total += nll
    loss = total / len(ids)
    return {"loss": loss, "perplexity": math.exp(min(loss, 50)), "bits_per_token": loss / math.log(2),
            "tokens": int(len(ids))}


def per_sequence(predict, split, width, batch_size=64, world=None):
    """A many-to-one model's outputs, predict(ids, mask) -> (B, width), for every sequence of the
    split in its order: (S, width)."""
    world = world or Solo()
    out = np.zeros((split.num_sequences, width))
    for index in world.mine(bucketed_batches(split.lengths(), batch_size)):
        ids, mask, _ = labelled_batch(split, index)  # (the labels, or a regression's scores, are not read)
        out[index] = predict(ids, mask)
    return world.sum(out)  # each row was filled by one worker, zero on the others


def predict_scores(model, split, world=None):
    """A regression's scores for every sequence, in the split's order: (S, K) in their own units."""
    return per_sequence(model.predict, split, model.num_scores, world=world)


def predict_classes(model, split, world=None):
    """A classifier's class ids (S,) and probabilities (S, C), in the split's order."""
    probs = per_sequence(model.predict_proba, split, model.num_classes, world=world)
    return probs.argmax(axis=1), probs


def predict_tags(model, split, batch_size=64, char_features=False, proba=False, world=None):
    """A tagger's tag ids for every sequence, in the split's order (a list of arrays), and with
    proba each chosen tag's marginal probability p(y_t = tag | sentence) (else None)."""
    world = world or Solo()
    out = [None] * split.num_sequences
    probs = [None] * split.num_sequences if proba else None
    for index in world.mine(bucketed_batches(split.lengths(), batch_size)):
        ids, mask, _, chars, cmask = tagged_batch(split, index, char_features)
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
    return world.fill(out), None if probs is None else world.fill(probs)


def translate_split(model, split, batch_size=64, beam=0, length_penalty=0.0, n_best=1, temperature=0.0,
                    top_k=None, top_p=None, rng=None, world=None):
    """Decode every source of the split, in its order: a list with, per source, the n-best
    list of (target tokens as strings, normalised score, log-probability). beam 0 is greedy, or
    sampling with temperature > 0."""
    from rnncli.decode import beam_search, greedy

    world = world or Solo()
    out = [None] * split.num_sequences
    for index in world.mine(bucketed_batches(split.lengths(), batch_size)):
        source, mask = padded_inputs(split, index)
        if beam:
            results = beam_search(model, source, mask, beam, length_penalty, n_best)
        else:
            tokens, logp = greedy(model, source, mask, temperature, top_k, top_p, rng)
            results = [[(t, lp, lp)] for t, lp in zip(tokens, logp, strict=True)]
        for s, hyps in zip(index, results, strict=True):
            out[s] = [([model.target_tokens[i] for i in t], score, lp) for t, score, lp in hyps]
    return world.fill(out)


def evaluate_seq2seq(model, split, references=None, beam=0, length_penalty=0.0, world=None, decode_sample=None,
                     keep_outputs=False):
    """Token loss and perplexity (teacher forced), and the decoded outputs scored against
    `references`: the raw target lines where the split was read from a file, else its target ids
    written out as text (<unk> where the vocabulary lacks a word). Translation: BLEU, chrF and
    exact match; speech (frames in): word and character error rates and sentence accuracy.
    decode_sample: indices of the sequences to decode and score (training validates on a fixed
    sample, evaluation.py's callers on all); the loss is always the whole split's. keep_outputs:
    also "outputs": (hypotheses, references) as they were compared."""
    world = world or Solo()
    total = count = 0.0
    for index in world.mine(bucketed_batches(split.lengths(), 64)):
        nll, n = model.loss(*paired_batch(split, index))
        total, count = total + nll, count + n
    total, count = world.sum([total, count])
    level = model.target_level
    if references is None:
        references = [join_tokens([model.target_tokens[i] for i in split.targets[a:b]], level)
                      for a, b in zip(split.target_offsets[:-1], split.target_offsets[1:], strict=True)]
    if decode_sample is not None:
        split, references = split.take(decode_sample), [references[i] for i in decode_sample]
    decoded = translate_split(model, split, beam=beam, length_penalty=length_penalty, world=world)
    hyps = [join_tokens(h[0][0], level) for h in decoded]
    loss = total / count
    out = {"loss": loss, "perplexity": math.exp(min(loss, 50)), "tokens": int(count),
           "decoding": describe_decoding(beam, length_penalty), "decoded": len(hyps)}
    if getattr(model, "frames", False):  # transcripts compared as the model writes them: its tokens, its case
        from rnncli.text.encode import side_tokens

        references = [join_tokens(side_tokens(r, level, model.lower), level) for r in references]
    right = float(np.mean([h == r for h, r in zip(hyps, references, strict=True)]))
    if getattr(model, "frames", False):
        out.update(error_rates(hyps, references), sentence_accuracy=right)
    else:
        out.update(bleu=corpus_bleu(hyps, references)["bleu"], chrf=corpus_chrf(hyps, references), exact_match=right)
    if keep_outputs:
        out["outputs"] = (hyps, references)
    return out


def evaluate_clm(model, split, batch_size=32, world=None):
    """A conditional language model: loss (nats per token), perplexity and bits per token, overall
    and per label. Each text is read on its own from its label's state, <eos> first, and every
    token of it and its closing <eos> is predicted once (text/batching.py: framed_texts)."""
    world = world or Solo()
    per_label = np.zeros((len(model.label_names), 2))  # summed nll, tokens
    for index in world.mine(bucketed_batches(split.lengths(), batch_size)):
        inputs, mask, labels, targets = framed_texts(split, index)
        nll = model.token_nll(inputs, mask, labels, targets).sum(axis=0)  # (B,)
        np.add.at(per_label, labels, np.stack([nll, mask.sum(axis=0)], axis=1))
    per_label = world.sum(per_label)

    def scores(total, count):
        loss = total / count
        return {"loss": loss, "perplexity": math.exp(min(loss, 50)), "bits_per_token": loss / math.log(2),
                "tokens": int(count)}

    out = scores(*per_label.sum(axis=0))
    out["labels"] = {name: scores(*per_label[k]) for k, name in enumerate(model.label_names) if per_label[k, 1]}
    return out


def evaluate_regression(model, split, world=None):
    """Regression scores (metrics.py) of the predictions in the scores' own units; loss: the mean
    squared error of the standardised scores, as training's."""
    pred = predict_scores(model, split, world=world)
    scores = regression_scores(split.scores, pred, model.score_names)
    scores["loss"] = float(np.mean(np.square((pred - split.scores) / model.score_std)))
    return scores


def evaluate_classifier(model, split, world=None):
    """Accuracy, per-class and macro scores and the confusion matrix; loss: the mean negative
    log-probability of the true label."""
    pred, probs = predict_classes(model, split, world=world)
    scores = classification_scores(split.labels, pred, model.label_names)
    p_true = probs[np.arange(len(pred)), split.labels]
    scores["loss"] = float(-np.mean(np.log(np.maximum(p_true, 1e-300))))
    return scores


def evaluate_tagger(model, split, char_features=False, world=None):
    """Entity scores (conlleval's) of a tagger of words; of a tagger of frames, the events (runs off
    the background tag) and the frame accuracy."""
    names = model.label_names
    pred, _ = predict_tags(model, split, char_features=char_features, world=world)
    true_tags = [[names[t] for t in split.tags[split.offsets[s] : split.offsets[s + 1]]]
                 for s in range(split.num_sequences)]
    pred_tags = [[names[t] for t in p] for p in pred]
    if split.frames is not None:
        background = next((b for b in ("0", "O") if b in names), names[0])
        scores = event_scores(true_tags, pred_tags, background)
        right = sum(a == b for t, p in zip(true_tags, pred_tags, strict=True) for a, b in zip(t, p, strict=True))
        return {**scores, "support": scores["events"], "token_accuracy": right / max(sum(map(len, true_tags)), 1),
                "types": {}, "background": background}
    scores = entity_scores(true_tags, pred_tags)
    return {**scores["overall"], "types": scores["types"]}
