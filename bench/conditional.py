"""Generation conditioned on a label, measured (issue: one-to-many).

    python bench/conditional.py [--budget 600] [--only music|sentiment] [--samples 100]

music (../shared/data/nottingham, configs/music.yaml):
  1. valid bits per character: the conditional LM against an unconditional one of the same size,
     config and budget (--condition none: the labels ignored, the texts read as one stream; its
     evaluation carries the state from tune to tune, which can only help it);
  2. meter fidelity: --samples tunes per label at temperature 0.8; the share whose first M: field
     is the label's meter (waltz 3/4, jig 6/8, slip jig 9/8, reel and hornpipe 4/4, C or 2/4);
  3. bar fidelity: the share of counted bars whose notes add up to the meter (bench/abc_bars.py),
     in the samples and in the real valid tunes.
sentiment (../shared/data/sst2, word level, lower-cased):
  4. a conditional LM of SST-2 sentences and a classifier (configs/sentiment.yaml), each trained for
     --sentiment-budget; 2 x --samples sentences per label at temperature 0.8 scored by the classifier: the share
     it assigns to the requested label (and its accuracy on SST-2 valid, for scale).
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from abc_bars import bar_fidelity, meter_field  # noqa: E402

from rnncli.config import make_config  # noqa: E402
from rnncli.evaluate import evaluate_split, predict_split  # noqa: E402
from rnncli.models import load_model  # noqa: E402
from rnncli.sample import sample_batch  # noqa: E402
from rnncli.tasks.build import task_of  # noqa: E402
from rnncli.text.encode import encode_words, tokenize  # noqa: E402
from rnncli.text.vocab import join_tokens, split_words  # noqa: E402
from rnncli.train import train  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..")
DATA = os.path.join(ROOT, "..", "shared", "data")
METERS = {"waltz": {"3/4"}, "jig": {"6/8"}, "slip jig": {"9/8"}, "reel": {"4/4", "C", "2/4", "C|"},
          "hornpipe": {"4/4", "C", "2/4", "C|"}}


def fit(cfg_path, ds, out, budget, **overrides):
    cfg = make_config(cfg_path, {"max_time": f"{budget}s", **overrides})
    t = time.perf_counter()
    summary = train(cfg, ds, out, callback=None)
    model, meta, _ = load_model(out)
    return model, meta, summary, time.perf_counter() - t


def texts_of(model, meta, ids_lists):
    vocab = meta["data"]["vocab"]
    return [join_tokens([vocab[i] for i in ids], meta["data"]["level"]) for ids in ids_lists]


def run_music(args, keep):
    folder = os.path.join(DATA, "nottingham")
    ds = tokenize([os.path.join(folder, "train.jsonl")], valid_path=os.path.join(folder, "valid.jsonl"))
    cfg = os.path.join(ROOT, "configs", "music.yaml")
    cond, meta, s_cond, t_cond = fit(cfg, ds, os.path.join(keep, "music_cond.npz"), args.budget)
    uncond, meta_u, s_unc, t_unc = fit(cfg, ds, os.path.join(keep, "music_uncond.npz"), args.budget,
                                       condition="none")
    fmt = ds.meta["format"]
    m_cond = evaluate_split(cond, task_of(make_config(cfg), ds.meta), ds.valid, fmt)
    m_unc = evaluate_split(uncond, "lm", ds.valid, fmt)
    print(f"music: conditional {s_cond['steps']:,} steps in {t_cond:.0f} s, valid bits/char "
          f"{m_cond['bits_per_token']:.4f}; unconditional {s_unc['steps']:,} steps in {t_unc:.0f} s, valid "
          f"bits/char {m_unc['bits_per_token']:.4f}; ratio {m_cond['bits_per_token'] / m_unc['bits_per_token']:.3f}")
    for name, x in m_cond["labels"].items():
        print(f"  valid bits/char for {name}: {x['bits_per_token']:.4f} ({x['tokens']:,} chars)")
    names = meta["data"]["labels"]
    rng = np.random.default_rng(args.seed)
    all_samples, hits = [], {}
    t = time.perf_counter()
    for k, name in enumerate(names):
        ids = sample_batch(cond, args.samples, labels=np.full(args.samples, k), temperature=0.8, max_len=2000,
                           rng=rng)
        tunes = texts_of(cond, meta, ids)
        all_samples += tunes
        hits[name] = sum(meter_field(t) in METERS[name] for t in tunes) / len(tunes)
        share, n = bar_fidelity(tunes)
        print(f"  {name}: meter fidelity {100 * hits[name]:.1f} % of {len(tunes)}; bars adding up "
              f"{100 * share:.1f} % of {n:,}; e.g. {tunes[0][:80]!r}", flush=True)
    seconds = time.perf_counter() - t
    real = [json.loads(line)["text"] for line in open(os.path.join(folder, "valid.jsonl"), encoding="utf-8")]
    share_s, n_s = bar_fidelity(all_samples)
    share_r, n_r = bar_fidelity(real)
    overall = sum(hits.values()) / len(hits)
    print(f"music: meter fidelity {100 * overall:.1f} % (mean over labels, {args.samples} samples each, "
          f"{len(all_samples) / seconds:.1f} tunes/s sampled); bar fidelity {100 * share_s:.1f} % of {n_s:,} bars "
          f"in samples vs {100 * share_r:.1f} % of {n_r:,} in real valid tunes ({100 * (share_r - share_s):.1f} "
          "points apart)")
    with open(os.path.join(keep, "music_samples.abc"), "w", encoding="utf-8") as f:
        f.write("\n\n".join(all_samples) + "\n")


def run_sentiment(args, keep):
    folder = os.path.join(DATA, "sst2")
    train_path, valid_path = os.path.join(folder, "train.tsv"), os.path.join(folder, "valid.tsv")
    ds = tokenize([train_path], valid_path=valid_path, lower=True, min_freq=2)
    clm_cfg = os.path.join(ROOT, "configs", "sentiment-lm.yaml")
    budget = args.sentiment_budget or args.budget
    lm, meta, s_lm, _ = fit(clm_cfg, ds, os.path.join(keep, "sst_clm.npz"), budget)
    m_lm = evaluate_split(lm, "clm", ds.valid, "tsv")
    cls, meta_c, s_cls, _ = fit(os.path.join(ROOT, "configs", "sentiment.yaml"), ds,
                                os.path.join(keep, "sst_cls.npz"), budget)
    m_cls = evaluate_split(cls, "classify", ds.valid, "tsv")
    print(f"sentiment: conditional LM {s_lm['steps']:,} steps, valid perplexity {m_lm['perplexity']:.1f}; "
          f"classifier {s_cls['steps']:,} steps, valid accuracy {100 * m_cls['accuracy']:.2f} %")
    names = meta["data"]["labels"]
    rng = np.random.default_rng(args.seed)
    n = 2 * args.samples
    shares = {}
    for k, name in enumerate(names):
        ids = sample_batch(lm, n, labels=np.full(n, k), temperature=0.8, max_len=60, rng=rng)
        sentences = texts_of(lm, meta, ids)
        split = encode_words(meta_c["data"], [split_words(s, True) or ["<unk>"] for s in sentences])
        pred, _ = predict_split(cls, "classify", split)
        shares[name] = float(np.mean(pred == meta_c["data"]["labels"].index(name)))
        print(f"  {name}: {100 * shares[name]:.1f} % of {n} samples classified {name}; e.g. {sentences[:2]}")
    print(f"sentiment fidelity {100 * np.mean(list(shares.values())):.1f} % (mean over labels)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=600, help="training seconds per model")
    ap.add_argument("--sentiment-budget", type=float, default=None, help="training seconds per SST-2 model "
                    "(default: --budget)")
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--only", choices=("music", "sentiment"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", default="/tmp", help="folder for the models and samples")
    args = ap.parse_args()
    if args.only in (None, "music"):
        run_music(args, args.keep)
    if args.only in (None, "sentiment"):
        run_sentiment(args, args.keep)


if __name__ == "__main__":
    main()
