"""Scores for generated text against one reference per sentence: corpus BLEU and chrF, computed
as sacreBLEU computes them with its defaults, so the figures compare with published ones
(tests/tasks/test_bleu.py checks equality with the sacrebleu package).

BLEU (Papineni et al. 2002), corpus level:
    both sides tokenised by mteval-v13a's rules; for n = 1..4, matches_n = sum over sentences of
    the clipped n-gram matches, total_n = the hypothesis n-grams; p_n = matches_n / total_n, except
    that an order with no match gets 1 / (2^k total_n) for the k-th such order (mteval's "exp"
    smoothing); BP = exp(1 - r/c) when the hypotheses are shorter (c < r) else 1;
    BLEU = 100 * BP * exp(mean of log p_n); 0 when nothing matches at all.
chrF (Popovic 2015), corpus level: character n-grams n = 1..6 with whitespace removed; for each n
    precision and recall of the summed matches (a sentence whose reference is shorter than n adds
    none of its hypothesis n-grams); averaged over the orders both sides have; then
    F_beta with beta = 2 (recall weighs more).
"""

import math
import re
from collections import Counter

# mteval-v13a: pad every ASCII symbol except the apostrophe, hyphen, period and comma (and the
# space itself, which also belongs to the set and is harmless); periods and commas are split
# off unless they sit between digits; a hyphen is split off after a digit.
_SYMBOLS = re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])")
_SEPARATOR_AFTER_NON_DIGIT = re.compile(r"([^0-9])([\.,])")
_SEPARATOR_BEFORE_NON_DIGIT = re.compile(r"([\.,])([^0-9])")
_DASH_AFTER_DIGIT = re.compile(r"([0-9])(-)")
_ENTITIES = (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">"))


def tokenize_13a(line):
    """A sentence -> its tokens as mteval-v13a (and sacreBLEU's default) cuts them."""
    line = line.rstrip().replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        for entity, char in _ENTITIES:
            line = line.replace(entity, char)
    line = _SYMBOLS.sub(r" \1 ", f" {line} ")
    line = _SEPARATOR_AFTER_NON_DIGIT.sub(r"\1 \2 ", line)
    line = _SEPARATOR_BEFORE_NON_DIGIT.sub(r" \1 \2", line)
    line = _DASH_AFTER_DIGIT.sub(r"\1 \2 ", line)
    return line.split()


def _ngrams(tokens, n):
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def corpus_bleu(hypotheses, references, max_order=4):
    """-> {"bleu", "precisions" (%), "brevity_penalty", "hyp_len", "ref_len"} for parallel lists."""
    if len(hypotheses) != len(references):
        raise ValueError("one reference per hypothesis")
    matches, totals = [0] * max_order, [0] * max_order
    hyp_len = ref_len = 0
    for hyp, ref in zip(hypotheses, references, strict=True):
        h, r = tokenize_13a(hyp), tokenize_13a(ref)
        hyp_len, ref_len = hyp_len + len(h), ref_len + len(r)
        for n in range(1, max_order + 1):
            hn, rn = _ngrams(h, n), _ngrams(r, n)
            matches[n - 1] += sum(min(c, rn[g]) for g, c in hn.items())
            totals[n - 1] += max(0, len(h) - n + 1)
    bp = 1.0 if hyp_len >= ref_len else (math.exp(1 - ref_len / hyp_len) if hyp_len > 0 else 0.0)
    precisions = [0.0] * max_order
    result = {"precisions": precisions, "brevity_penalty": bp, "hyp_len": hyp_len, "ref_len": ref_len}
    if not any(matches):
        return {"bleu": 0.0, **result}
    halvings = 1.0
    for n in range(max_order):
        if totals[n] == 0:  # no hypothesis this long: the higher orders stay 0
            break
        if matches[n] == 0:
            halvings *= 2
            precisions[n] = 100.0 / (halvings * totals[n])
        else:
            precisions[n] = 100.0 * matches[n] / totals[n]
    log_mean = sum(math.log(p) if p > 0 else -9999999999 for p in precisions) / max_order
    return {"bleu": bp * math.exp(log_mean), **result}


def _char_ngrams(text, n):
    text = "".join(text.split())
    return Counter(text[i : i + n] for i in range(len(text) - n + 1))


def corpus_chrf(hypotheses, references, order=6, beta=2.0):
    """chrF of parallel lists of sentences, in [0, 100]."""
    stats = [[0, 0, 0] for _ in range(order)]  # hypothesis n-grams, reference n-grams, matches
    for hyp, ref in zip(hypotheses, references, strict=True):
        for n in range(1, order + 1):
            hn, rn = _char_ngrams(hyp, n), _char_ngrams(ref, n)
            s = stats[n - 1]
            s[0] += sum(hn.values()) if rn else 0  # a reference too short for order n: not counted
            s[1] += sum(rn.values())
            s[2] += sum(min(c, rn[g]) for g, c in hn.items())
    precision = recall = 0.0
    orders = 0
    for n_hyp, n_ref, n_match in stats:
        if n_hyp > 0 and n_ref > 0:
            precision += n_match / n_hyp
            recall += n_match / n_ref
            orders += 1
    if orders:
        precision, recall = precision / orders, recall / orders
    if precision + recall == 0:
        return 0.0
    b2 = beta * beta
    f = (1 + b2) * precision * recall  # in sacreBLEU's order of operations, to the last bit
    f /= b2 * precision + recall
    return 100 * f
