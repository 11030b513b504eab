"""Scores: accuracy, per-class precision/recall/F1 and confusion matrix for classification;
entity-level precision/recall/F1 for tagging, with chunks found exactly as conlleval finds them.

Chunk rules (conlleval, extended with IOBES as seqeval does): a chunk ends before a tag when
the previous tag closes it (B/I followed by B, S or O; E or S followed by anything; or the type
changes), and starts at a tag that opens one (B or S; I or E after O, E or S; or a type change).
So an I- tag after O starts a chunk, and IOB1 files are read correctly.
"""

import math

import numpy as np


def _split(tag):
    if tag in ("O", "."):
        return tag, ""
    return tag[0], tag[2:]


def _ends(prev, tag, prev_type, type_):
    if prev in ("E", "S"):
        return True
    if prev in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev not in ("O", ".") and prev_type != type_


def _starts(prev, tag, prev_type, type_):
    if tag in ("B", "S"):
        return True
    if prev in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag not in ("O", ".") and prev_type != type_


def chunks(tags):
    """[(type, start, end_inclusive), ...] of one sentence's tags."""
    out, prev, prev_type, begin = [], "O", "", None
    for i, tag in enumerate([*tags, "O"]):
        kind, type_ = _split(tag)
        if begin is not None and _ends(prev, kind, prev_type, type_):
            out.append((prev_type, begin, i - 1))
            begin = None
        if _starts(prev, kind, prev_type, type_):
            begin = i
        prev, prev_type = kind, type_
    return out


def _prf(correct, predicted, true):
    p = correct / predicted if predicted else 0.0
    r = correct / true if true else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def entity_scores(true_sents, pred_sents):
    """Entity-level scores over sentences of tag strings: {"overall": {...}, "types": {...}}."""
    counts = {}
    total_c = total_p = total_t = 0
    tok_right = tok_all = 0
    for t_tags, p_tags in zip(true_sents, pred_sents, strict=True):
        t_ch, p_ch = set(chunks(t_tags)), set(chunks(p_tags))
        for ch in t_ch:
            counts.setdefault(ch[0], [0, 0, 0])[2] += 1
        for ch in p_ch:
            counts.setdefault(ch[0], [0, 0, 0])[1] += 1
        for ch in t_ch & p_ch:
            counts[ch[0]][0] += 1
        total_c += len(t_ch & p_ch)
        total_p += len(p_ch)
        total_t += len(t_ch)
        tok_right += sum(a == b for a, b in zip(t_tags, p_tags, strict=True))
        tok_all += len(t_tags)
    p, r, f = _prf(total_c, total_p, total_t)
    types = {}
    for name in sorted(counts):
        c, pr, tr = counts[name]
        tp, trr, tf = _prf(c, pr, tr)
        types[name] = {"precision": tp, "recall": trr, "f1": tf, "support": tr, "predicted": pr}
    return {"overall": {"precision": p, "recall": r, "f1": f, "support": total_t, "predicted": total_p,
                        "token_accuracy": tok_right / tok_all if tok_all else 0.0},
            "types": types}


def classification_scores(true, pred, names):
    """Accuracy, per-class precision/recall/F1, macro-F1 and the confusion matrix (rows true)."""
    true, pred = np.asarray(true), np.asarray(pred)
    K = len(names)
    confusion = np.zeros((K, K), np.int64)
    np.add.at(confusion, (true, pred), 1)
    per = {}
    for k, name in enumerate(names):
        p, r, f = _prf(int(confusion[k, k]), int(confusion[:, k].sum()), int(confusion[k].sum()))
        per[name] = {"precision": p, "recall": r, "f1": f, "support": int(confusion[k].sum())}
    return {"accuracy": float((true == pred).mean()) if len(true) else 0.0,
            "macro_f1": float(np.mean([v["f1"] for v in per.values()])) if per else 0.0,
            "classes": per, "confusion": confusion.tolist(), "labels": list(names)}


def _ranks(x):
    """Ranks 1..n of x (n,), ties sharing their mean rank (as Spearman's rho needs)."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    values, first, counts = np.unique(x[order], return_index=True, return_counts=True)
    for start, n in zip(first, counts, strict=True):
        if n > 1:
            ranks[order[start : start + n]] = start + (n + 1) / 2
    return ranks


def _pearson(a, b):
    a, b = a - a.mean(), b - b.mean()
    denominator = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum()) / denominator if denominator > 0 else 0.0


def regression_scores(y, y_hat, names):
    """y, y_hat (N, K) in the scores' own units -> RMSE, MAE, R² (1 - residual / total sum of squares),
    Pearson r and Spearman rho (Pearson's r of the ranks) per score, and their means over the scores."""
    per = {}
    for k, name in enumerate(names):
        t, p = y[:, k].astype(np.float64), y_hat[:, k].astype(np.float64)
        residual = float(np.square(t - p).sum())
        total = float(np.square(t - t.mean()).sum())
        per[name] = {"mse": residual / len(t), "rmse": math.sqrt(residual / len(t)),
                     "mae": float(np.abs(t - p).mean()), "r2": 1.0 - residual / total if total > 0 else 0.0,
                     "pearson": _pearson(t, p), "spearman": _pearson(_ranks(t), _ranks(p)), "count": len(t)}
    mean = {key: float(np.mean([s[key] for s in per.values()])) for key in ("mse", "rmse", "mae", "r2", "pearson",
                                                                             "spearman")}
    return {**mean, "scores": per}


def events(tags, background):
    """Maximal runs of frames whose tag is not `background`: [(tag, first, last)]."""
    out, start = [], None
    for i, tag in enumerate([*tags, background]):
        if start is not None and tag != tags[start]:
            out.append((tags[start], start, i - 1))
            start = None
        if start is None and tag != background:
            start = i
    return out


def event_scores(true_seqs, pred_seqs, background="0"):
    """Event-level precision, recall and F1 of frame taggers (trigger words): an event is a run of
    frames tagged other than `background`; a predicted event is right when it overlaps a true event
    of the same tag not yet matched (each true event matches at most one prediction)."""
    correct = predicted = true = 0
    for t_tags, p_tags in zip(true_seqs, pred_seqs, strict=True):
        t_ev, p_ev = events(t_tags, background), events(p_tags, background)
        used = set()
        for tag, a, b in p_ev:
            hit = next((k for k, (t, c, d) in enumerate(t_ev) if k not in used and t == tag and a <= d and c <= b),
                       None)
            if hit is not None:
                used.add(hit)
        correct, predicted, true = correct + len(used), predicted + len(p_ev), true + len(t_ev)
    p, r, f = _prf(correct, predicted, true)
    return {"precision": p, "recall": r, "f1": f, "events": true, "predicted": predicted}


# ---------------------------------------------------------------- speech: word and character error rates


def edit_operations(reference, hypothesis):
    """(substitutions, deletions, insertions) of the cheapest alignment of two token lists, every
    operation costing 1 (Levenshtein). Among equally cheap alignments, the one with the most
    substitutions, then the fewest deletions (so that S + D + I is the distance and the parts are
    counted as the usual scoring tools count them)."""
    n, m = len(reference), len(hypothesis)
    # each cell: (cost, -substitutions, deletions, insertions); compared as tuples
    prev = [(j, 0, 0, j) for j in range(m + 1)]
    for i in range(1, n + 1):
        row = [(i, 0, i, 0)]
        for j in range(1, m + 1):
            c, s, d, k = prev[j - 1]
            same = reference[i - 1] == hypothesis[j - 1]
            diagonal = (c, s, d, k) if same else (c + 1, s - 1, d, k)
            c, s, d, k = prev[j]
            deletion = (c + 1, s, d + 1, k)
            c, s, d, k = row[j - 1]
            insertion = (c + 1, s, d, k + 1)
            row.append(min(diagonal, deletion, insertion))
        prev = row
    _, s, d, k = prev[m]
    return -s, d, k


def error_rates(hypotheses, references):
    """Corpus-level word and character error rates of texts: (S + D + I) / the reference's
    length, summed over all texts before dividing (as jiwer and sclite count). Words are split at
    whitespace; characters are the text's own with one space between words (a run of spaces
    counts as one; the ends are stripped)."""
    out = {}
    for unit, split in (("word", str.split), ("char", lambda t: list(" ".join(t.split())))):
        totals = np.zeros(4, np.int64)  # substitutions, deletions, insertions, reference length
        for h, r in zip(hypotheses, references, strict=True):
            ref = split(r)
            totals += (*edit_operations(ref, split(h)), len(ref))
        s, d, i, n = (int(v) for v in totals)
        rate = (s + d + i) / n if n else float(s + d + i > 0)
        out[unit] = {"rate": rate, "substitutions": s, "deletions": d, "insertions": i, "reference": n}
    return {"wer": out["word"]["rate"], "cer": out["char"]["rate"], "word_errors": out["word"],
            "char_errors": out["char"]}


def scene_accuracy(hypotheses, references):
    """Per-object accuracy of captions that place objects: a caption is phrases joined by " and ",
    each "<object> <row> <column>" ("seven top left"). Each phrase of a reference is right when the
    hypothesis names the same object at that place. -> right / reference phrases, or None when a
    reference is not in that form (the figure would mean nothing)."""
    right = total = 0
    for hyp, ref in zip(hypotheses, references, strict=True):
        wanted = _places(ref)
        if wanted is None:
            return None
        said = _places(hyp, lenient=True)
        total += len(wanted)
        right += sum(said.get(place) == thing for place, thing in wanted.items())
    return right / total if total else None


def _places(caption, lenient=False):
    """{"top left": "seven", ...} of a caption; None where a phrase has fewer than three words (a
    hypothesis, lenient: such phrases are left out)."""
    out = {}
    for phrase in caption.split(" and "):
        words = phrase.split()
        if len(words) < 3:
            if lenient:
                continue
            return None
        out.setdefault(" ".join(words[-2:]), " ".join(words[:-2]))  # a place said twice: its first object
    return out
