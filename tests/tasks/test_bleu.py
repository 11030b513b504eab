"""BLEU and chrF equal sacreBLEU's (the independent oracle, a dev dependency) to the last digit:
on random sentences built to hit every rule, and on real ones from ../shared/data when present."""

import os
import random

import pytest
import sacrebleu

from rnncli.bleu import corpus_bleu, corpus_chrf, tokenize_13a

WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "3.5", "1,000", "U.S.", "don't", "e-mail", "(hi)", "&amp;",
         "x&y", "2-3", "end.", "yes,", "\"quoted\"", "<skipped>", "Ça", "va", "!", "?", "--", "l'homme", "%",
         "#tag", "$5", "a.b", "é."]


def sentence(rng, max_words=12):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, max_words)))


def test_13a_tokenizer_matches_sacrebleu():
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    theirs = Tokenizer13a()
    rng = random.Random(0)
    for _ in range(2000):
        s = sentence(rng) + rng.choice(["", " ", ".", "\n", "-\nx"])
        assert tokenize_13a(s) == theirs(s.rstrip()).split(), s


@pytest.mark.parametrize("seed", range(40))
def test_bleu_and_chrf_equal_sacrebleu_on_random_corpora(seed):
    rng = random.Random(seed)
    refs = [sentence(rng) or "x" for _ in range(rng.randint(1, 30))]
    # hypotheses: copies, edits, shuffles, truncations and unrelated lines, so every rule is reached
    hyps = []
    for r in refs:
        words = r.split()
        kind = rng.random()
        if kind < 0.2:
            hyps.append(r)
        elif kind < 0.5:
            hyps.append(" ".join(w if rng.random() < 0.7 else rng.choice(WORDS) for w in words))
        elif kind < 0.7:
            hyps.append(" ".join(words[: rng.randint(0, len(words))]))
        elif kind < 0.85:
            rng.shuffle(words)
            hyps.append(" ".join(words))
        else:
            hyps.append(sentence(rng, 3))
    ours = corpus_bleu(hyps, refs)
    theirs = sacrebleu.corpus_bleu(hyps, [refs])
    assert ours["bleu"] == theirs.score, (hyps, refs)
    assert ours["precisions"] == theirs.precisions and (ours["hyp_len"], ours["ref_len"]) == (theirs.sys_len,
                                                                                             theirs.ref_len)
    assert corpus_chrf(hyps, refs) == sacrebleu.corpus_chrf(hyps, [refs]).score


def test_edge_cases_equal_sacrebleu():
    for hyps, refs in ((["a"], ["a"]), ([""], ["a b"]), (["a b c d"], ["a b c d"]), (["x y"], ["a b"]),
                       (["a b c"], ["a b c d e f"]), (["a a a a"], ["a"])):
        assert corpus_bleu(hyps, refs)["bleu"] == sacrebleu.corpus_bleu(hyps, [refs]).score, (hyps, refs)
        assert corpus_chrf(hyps, refs) == sacrebleu.corpus_chrf(hyps, [refs]).score, (hyps, refs)


def test_bleu_and_chrf_equal_sacrebleu_on_real_sentences(shared_data):
    path = os.path.join(shared_data, "eng-fra", "valid.tsv")
    pairs = [line.rstrip("\n").split("\t") for line in open(path, encoding="utf-8")][:3000]
    rng = random.Random(1)
    refs = [fr for _, fr in pairs]
    # a crude "system": each reference with a few words dropped or swapped for another sentence's
    hyps = [" ".join(w for w in fr.split() if rng.random() < 0.8) if rng.random() < 0.8 else rng.choice(refs)
            for fr in refs]
    assert corpus_bleu(hyps, refs)["bleu"] == sacrebleu.corpus_bleu(hyps, [refs]).score
    assert corpus_chrf(hyps, refs) == sacrebleu.corpus_chrf(hyps, [refs]).score
