"""Sentiment (SST-2) and NER (WikiANN English, WNUT-17) quality, beside the usual non-neural peers.

    python bench/tasks.py [--only sst2|wikiann|wikiann+valid|wnut17] [--budget-scale 1.0] [--members 4]
                          [--keep DIR]

rnncli trains with configs/sentiment.yaml (SST-2 train.tsv, selected and scored on valid.tsv,
as GLUE's test labels are not public) and configs/ner.yaml (train.conll, selected on valid.conll,
scored on test.conll; the same config for both NER sets); each config sets its own wall-clock
budget. For each task four models (seeds 0 to 3) train two at a time, one per core, and are scored
alone, as the pair trained side by side and as an ensemble of four (eval -m a.npz -m b.npz ...).
The whole ensemble keeps to the config's budget: with W waves of two, each member may train for
1/W of it (most stop early well before).
`wikiann+valid` repeats WikiANN the way final NER models are often trained: on train.conll plus
9,000 of the 10,000 valid sentences, with early stopping on the other 1,000 (the CRF gets the same
29,000 sentences); test.conll is untouched.
Peers, when the optional `bench` extra is installed (pip install -e '.[bench]'):
  fastText supervised, word bigrams, on the same SST-2 files;
  a CRF (python-crfsuite) with word, affix and shape features in a +-2 window on the NER sets.
Entity F1 is computed by rnncli.metrics for everyone (tests check it equals seqeval's).
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from rnncli.config import make_config, parse_duration  # noqa: E402
from rnncli.metrics import entity_scores  # noqa: E402
from rnncli.tasks.registry import task_named  # noqa: E402
from rnncli.text.encode import tokenize  # noqa: E402
from rnncli.text.readers import parse_conll, parse_tsv, read_text  # noqa: E402

DATA = os.path.join(ROOT, "..", "shared", "data")


def workdir(keep):
    """A temporary directory, or `keep` (created) when the files should outlive the run."""
    if keep:
        os.makedirs(keep, exist_ok=True)
        return contextlib.nullcontext(keep)
    return tempfile.TemporaryDirectory()


def ours_ensemble(train_file, valid_file, test_file, config, scale, seeds=(0, 1, 2, 3), min_freq=1, cores=2,
                  keep=None):
    """Train one model per seed through the command line, `cores` at a time, each on one core (the
    small matrices of a tagger gain nothing from a second BLAS thread); score each member, the
    ensemble of the first `cores` (trained side by side) and the ensemble of all.
    Returns ([(scores, steps)] per member, first-wave ensemble scores, first-wave seconds,
    all-member ensemble scores, total seconds)."""
    from rnncli.models import load_models

    env = {**os.environ, "PYTHONPATH": ROOT,
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    rnncli = [sys.executable, "-m", "rnncli"]
    with workdir(keep) as tmp:
        data = os.path.join(tmp, "data.npz")
        subprocess.run([*rnncli, "tokenize", train_file, "--valid", valid_file, "--min-freq", str(min_freq),
                        "-o", data, "-q"], check=True, env=env)
        # W waves of `cores` members share the config's budget: the ensemble, not each member, gets it
        waves = -(-len(seeds) // cores)
        member_seconds = parse_duration(make_config(config).max_time) * scale / waves
        budget = ["--max-time", f"{member_seconds:.0f}s"]
        paths = [os.path.join(tmp, f"model{seed}.npz") for seed in seeds]
        summaries, wave_seconds = [], []
        for w in range(0, len(seeds), cores):
            t = time.perf_counter()
            runs = [subprocess.Popen([*rnncli, "train", "-d", data, "-o", path, "--config", config,
                                      "--seed", str(seed), *budget, "--json", "-q"],
                                     env=env, stdout=subprocess.PIPE, text=True)
                    for seed, path in zip(seeds[w:w + cores], paths[w:w + cores], strict=True)]
            summaries += [json.loads(r.communicate()[0]) for r in runs]
            wave_seconds.append(time.perf_counter() - t)
            if any(r.returncode for r in runs):
                sys.exit("training failed")

        def score(members):
            model, meta = load_models(members)
            test = tokenize([test_file], valid_frac=0, reuse=meta["data"]).train
            return task_named(meta["task"]).evaluate(model, test, meta["data"]["format"],
                                  meta["config"].get("char_features"))

        members = [(score([p]), s["steps"]) for p, s in zip(paths, summaries, strict=True)]
        return members, score(paths[:cores]), wave_seconds[0], score(paths), sum(wave_seconds)


def fasttext_sst(train_file, valid_file):
    import fasttext

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "train.ft")
        labels, texts = parse_tsv(read_text(train_file), train_file)
        with open(path, "w", encoding="utf-8") as f:
            for lab, text in zip(labels, texts, strict=True):
                f.write(f"__label__{lab} {text}\n")
        t = time.perf_counter()
        model = fasttext.train_supervised(path, wordNgrams=2, epoch=5, lr=0.5, verbose=0)
        seconds = time.perf_counter() - t
    labels, texts = parse_tsv(read_text(valid_file), valid_file)
    right = sum(model.predict(text)[0][0] == f"__label__{lab}" for lab, text in zip(labels, texts, strict=True))
    return right / len(labels), seconds


def word_features(sent, i):
    def feats(w, prefix):
        shape = "".join("X" if c.isupper() else "x" if c.islower() else "d" if c.isdigit() else c for c in w)
        return {f"{prefix}w": w.lower(), f"{prefix}s3": w[-3:].lower(), f"{prefix}p3": w[:3].lower(),
                f"{prefix}shape": shape[:6], f"{prefix}title": str(w.istitle()), f"{prefix}upper": str(w.isupper())}

    out = {"bias": "1"}
    for off in (-2, -1, 0, 1, 2):
        j = i + off
        if 0 <= j < len(sent):
            out.update(feats(sent[j], f"{off}:"))
        else:
            out[f"{off}:pad"] = "1"
    return [f"{k}={v}" for k, v in out.items()]


def crf_ner(train_file, test_file):
    import pycrfsuite

    sents, tags = parse_conll(read_text(train_file), train_file)
    trainer = pycrfsuite.Trainer(verbose=False)
    for s, t in zip(sents, tags, strict=True):
        trainer.append([word_features(s, i) for i in range(len(s))], t)
    trainer.set_params({"c1": 0.1, "c2": 0.01, "max_iterations": 100})
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "crf.model")
        t = time.perf_counter()
        trainer.train(path)
        seconds = time.perf_counter() - t
        tagger = pycrfsuite.Tagger()
        tagger.open(path)
        sents, tags = parse_conll(read_text(test_file), test_file)
        pred = [tagger.tag([word_features(s, i) for i in range(len(s))]) for s in sents]
    return entity_scores(tags, pred)["overall"]["f1"], seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["sst2", "wikiann", "wikiann+valid", "wnut17"])
    ap.add_argument("--budget-scale", type=float, default=1.0, help="multiply the configs' time budgets")
    ap.add_argument("--members", type=int, default=4, help="models to train per task (seeds 0..N-1), two at a time")
    ap.add_argument("--keep", metavar="DIR", help="keep the NER data, held-out split and models in DIR")
    args = ap.parse_args()
    if not os.path.isdir(DATA):
        sys.exit(f"no data at {DATA}")
    if args.keep and os.path.isdir(args.keep) and os.listdir(args.keep):
        sys.exit(f"{args.keep}: not empty; --keep wants a new or empty directory")
    if args.only in (None, "sst2"):
        d = os.path.join(DATA, "sst2")
        print("SST-2 sentiment, accuracy on valid.tsv (872 sentences)", flush=True)
        result = ours_ensemble(
            f"{d}/train.tsv", f"{d}/valid.tsv", f"{d}/valid.tsv", os.path.join(ROOT, "configs", "sentiment.yaml"),
            args.budget_scale, seeds=tuple(range(args.members)))
        print_ours("configs/sentiment.yaml", result, lambda s: (f"{100 * s['accuracy']:.2f} %", []))
        try:
            acc, secs = fasttext_sst(f"{d}/train.tsv", f"{d}/valid.tsv")
            print(f"  fastText supervised, bigrams:    {100 * acc:.2f} %  ({secs:.1f} s)", flush=True)
        except ImportError:
            print("  fastText: not installed (pip install -e '.[bench]')")
    if args.only in (None, "wikiann"):
        ner_report("WikiANN English NER, entity F1 on test.conll (10,000 sentences)",
                   os.path.join(DATA, "wikiann-en"), args.budget_scale, args.members, keep=args.keep)
    if args.only in (None, "wikiann+valid"):
        ner_report("WikiANN English NER trained on train + 9,000 valid sentences, entity F1 on test.conll",
                   os.path.join(DATA, "wikiann-en"), args.budget_scale, args.members, held_out=1000, keep=args.keep)
    if args.only in (None, "wnut17"):  # the same config on other NER data: noisy user text, 6 types
        ner_report("WNUT-17 emerging entities, entity F1 on test.conll (1,287 sentences)",
                   os.path.join(DATA, "wnut17"), args.budget_scale, args.members, keep=args.keep)


def fold_in_valid(d, tmp, held_out):
    """Write train.conll + all valid sentences but the last `held_out`, and those last ones, into tmp;
    returns the two paths."""
    blocks = {name: read_text(f"{d}/{name}.conll").rstrip("\n").split("\n\n") for name in ("train", "valid")}
    train_file, held_file = os.path.join(tmp, "train.conll"), os.path.join(tmp, "held.conll")
    with open(train_file, "w", encoding="utf-8") as f:
        f.write("\n\n".join(blocks["train"] + blocks["valid"][:-held_out]) + "\n")
    with open(held_file, "w", encoding="utf-8") as f:
        f.write("\n\n".join(blocks["valid"][-held_out:]) + "\n")
    return train_file, held_file


def print_ours(config, result, show):
    """Print ours_ensemble's result: each member, the first pair and all members, with show(scores)
    -> (main figure, [details])."""
    members, pair, pair_secs, ens, secs = result

    def line(label, scores, note):
        figure, details = show(scores)
        print(f"  {label:<42}{figure}  ({', '.join([*details, note])})", flush=True)

    for k, (scores, steps) in enumerate(members):
        line(f"rnncli ({config}), seed {k}:", scores, f"{steps} steps")
    line("rnncli, ensemble of seeds 0, 1:", pair, f"trained side by side in {pair_secs:.0f} s")
    if len(members) > 2:
        line(f"rnncli, ensemble of all {len(members)}:", ens, f"two at a time, {secs:.0f} s in all")


def ner_report(title, d, scale, n_members, held_out=0, keep=None):
    print(title, flush=True)
    keep = keep and os.path.join(keep, os.path.basename(d) + ("+valid" if held_out else ""))
    with workdir(keep) as tmp:
        train_file, valid_file = f"{d}/train.conll", f"{d}/valid.conll"
        if held_out:
            train_file, valid_file = fold_in_valid(d, tmp, held_out)
        # tokenized as configs/ner.yaml's header says: words seen once are left to the characters
        result = ours_ensemble(
            train_file, valid_file, f"{d}/test.conll", os.path.join(ROOT, "configs", "ner.yaml"), scale,
            seeds=tuple(range(n_members)), min_freq=2, keep=keep)
        print_ours("configs/ner.yaml", result, lambda s: (
            f"{100 * s['f1']:.2f}", [f"P {100 * s['precision']:.2f}", f"R {100 * s['recall']:.2f}"]))
        try:
            f1, secs = crf_ner(train_file, f"{d}/test.conll")
            print(f"  CRF (python-crfsuite), features: {100 * f1:.2f}  ({secs:.1f} s)", flush=True)
        except ImportError:
            print("  CRF: not installed (pip install -e '.[bench]')")


if __name__ == "__main__":
    main()
