"""Generation conditioned on a label, measured (issue: one-to-many).

    python bench/conditional.py [--budget 600] [--seeds 3] [--only music|sentiment] [--samples 100]

music (../shared/data/nottingham, configs/music.yaml):
  1. valid bits per character: the conditional LM against an unconditional one of the same size,
     config and budget (--condition none: the labels ignored, the texts read as one stream; its
     evaluation carries the state from tune to tune, which can only help it). For each seed the
     two train side by side, one process and one thread each, so they get the same machine.
     Also the conditional model's own marginal over labels, p(x) = sum_c prior(c) p(x | c), with
     the training prior: the same weights without being told the label, so the difference is
     what the label is worth to that model, free of the run-to-run noise between two trainings;
  2. meter fidelity: --samples tunes per label (from each seed's model) at temperature 0.8; the
     share whose first M: field is the label's meter (waltz 3/4, jig 6/8, slip jig 9/8, reel and
     hornpipe 4/4, C or 2/4);
  3. bar fidelity: the share of counted bars whose notes add up to the meter (bench/abc_bars.py),
     in the samples and in the real valid tunes.
  --label-dropout P trains the conditional models with label dropout; --guidance G [G ...] then
  also samples with classifier-free guidance at each G (2 and 3 reported beside 1, "as trained").
sentiment (../shared/data/sst2, word level, lower-cased):
  4. a conditional LM of SST-2 sentences and a classifier (configs/sentiment.yaml), each trained for
     --sentiment-budget; 2 x --samples sentences per label at temperature 0.8 scored by the classifier: the share
     it assigns to the requested label (and its accuracy on SST-2 valid, for scale).
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from abc_bars import bar_fidelity, meter_field  # noqa: E402

from rnncli.config import make_config  # noqa: E402
from rnncli.evaluate import predict_classes  # noqa: E402
from rnncli.models import load_model  # noqa: E402
from rnncli.sample import sample_batch  # noqa: E402
from rnncli.tasks.registry import task_named  # noqa: E402
from rnncli.text.batching import bucketed_batches, framed_texts  # noqa: E402
from rnncli.text.encode import encode_words, tokenize  # noqa: E402
from rnncli.text.store import load_dataset  # noqa: E402
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


def train_side_by_side(runs, budget):
    """Train each (out, extra arguments) in its own `rnncli train` process with one thread, all at
    once; -> the summaries."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "rnncli", "train", "-o", out, "--max-time", f"{budget}s",
                               "--json", "--force", *extra], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True) for out, extra in runs]
    outputs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit(f"a training run failed: {[p.returncode for p in procs]}")
    return [json.loads(o) for o in outputs]


def marginal_bits(model, split, prior, batch_size=32):
    """Bits per token of the conditional model without the label: -log2 sum_c prior(c) p(x | c)
    per text, summed over the split, over its tokens (each text's and its <eos>)."""
    total, tokens = 0.0, 0
    for index in bucketed_batches(split.lengths(), batch_size):
        inputs, mask, _, targets = framed_texts(split, index)
        per_label = np.stack([model.token_nll(inputs, mask, np.full(len(index), k), targets).sum(axis=0)
                              for k in range(len(prior))])  # (K, B) nats
        logp = np.log(prior)[:, None] - per_label
        top = logp.max(axis=0)
        total -= float(np.sum(top + np.log(np.exp(logp - top).sum(axis=0))))
        tokens += int(mask.sum())
    return total / tokens / np.log(2)


def run_music(args, keep):
    folder = os.path.join(DATA, "nottingham")
    data = os.path.join(keep, "tunes.npz")
    subprocess.run([sys.executable, "-m", "rnncli", "tokenize", os.path.join(folder, "train.jsonl"), "--valid",
                    os.path.join(folder, "valid.jsonl"), "-o", data, "--force"], cwd=ROOT, check=True,
                   stderr=subprocess.DEVNULL)
    cfg = os.path.join(ROOT, "configs", "music.yaml")
    rows, models = [], []
    for seed in range(args.seeds):
        cond_out, unc_out = (os.path.join(keep, f"music_{kind}_s{seed}.npz") for kind in ("cond", "uncond"))
        common = ["-d", data, "--config", cfg, "--seed", str(seed)]
        cond_args = [*common, *(["--label-dropout", str(args.label_dropout)] if args.label_dropout else [])]
        unc_args = [*common, "--condition", "none", "--label-dropout", "0"]
        s_cond, s_unc = train_side_by_side([(cond_out, cond_args), (unc_out, unc_args)], args.budget)
        cond, meta, _ = load_model(cond_out)
        uncond, _, _ = load_model(unc_out)
        ds = load_dataset(data)
        m_cond = task_named("clm").evaluate(cond, ds.valid, "tsv")
        m_unc = task_named("lm").evaluate(uncond, ds.valid, "tsv")
        counts = meta["data"]["label_counts"]
        prior = np.array([counts[n] for n in meta["data"]["labels"]], float)
        marginal = marginal_bits(cond, ds.valid, prior / prior.sum())
        rows.append((m_cond["bits_per_token"], marginal, m_unc["bits_per_token"]))
        models.append((cond, meta))
        print(f"music seed {seed}: conditional {s_cond['steps']:,} steps, valid bits/char "
              f"{m_cond['bits_per_token']:.4f} (without its label: {marginal:.4f}); unconditional "
              f"{s_unc['steps']:,} steps, {m_unc['bits_per_token']:.4f}", flush=True)
        print("  per label: " + ", ".join(f"{name} {x['bits_per_token']:.3f}" for name, x in m_cond["labels"].items()))
    c, g, u = np.array(rows).T
    print(f"music bits/char, mean (sd) over {args.seeds} seeds: conditional {c.mean():.4f} ({c.std():.4f}), "
          f"the same models without the label {g.mean():.4f}, unconditional {u.mean():.4f} ({u.std():.4f}); "
          f"ratio conditional/unconditional {c.mean() / u.mean():.3f}; conditional lower in "
          f"{int(np.sum(c < u))} of {args.seeds}")
    real = [json.loads(line)["text"] for line in open(os.path.join(folder, "valid.jsonl"), encoding="utf-8")]
    share_r, n_r = bar_fidelity(real)
    for guidance in sorted({1.0, *args.guidance}):
        print(f"music samples at guidance {guidance:g}:")
        all_samples = fidelity(args, models, guidance, share_r, n_r)
        with open(os.path.join(keep, f"music_samples_g{guidance:g}.abc"), "w", encoding="utf-8") as f:
            f.write("\n\n".join(all_samples) + "\n")


def fidelity(args, models, guidance, share_r, n_r):
    """Meter and bar fidelity of --samples tunes per label from each model, sampled with `guidance`."""
    names = models[0][1]["data"]["labels"]
    rng = np.random.default_rng(args.seed)
    all_samples, hits = [], {}
    t = time.perf_counter()
    for k, name in enumerate(names):
        tunes = []
        for model, meta in models:
            ids = sample_batch(model, args.samples, labels=np.full(args.samples, k), temperature=0.8,
                               max_len=2000, rng=rng, guidance=guidance)
            tunes += texts_of(model, meta, ids)
        all_samples += tunes
        hits[name] = sum(meter_field(t) in METERS[name] for t in tunes) / len(tunes)
        share, n = bar_fidelity(tunes)
        print(f"  {name}: meter fidelity {100 * hits[name]:.1f} % of {len(tunes)}; bars adding up "
              f"{100 * share:.1f} % of {n:,}; e.g. {tunes[0][:80]!r}", flush=True)
    seconds = time.perf_counter() - t
    share_s, n_s = bar_fidelity(all_samples)
    overall = sum(hits.values()) / len(hits)
    print(f"music (guidance {guidance:g}): meter fidelity {100 * overall:.1f} % (mean over labels, {args.samples} "
          f"samples each from each of {len(models)} models, {len(all_samples) / seconds:.1f} tunes/s sampled); "
          f"bar fidelity {100 * share_s:.1f} % of {n_s:,} bars in samples vs {100 * share_r:.1f} % of {n_r:,} in "
          f"real valid tunes ({100 * (share_r - share_s):.1f} points apart)")
    return all_samples


def run_sentiment(args, keep):
    folder = os.path.join(DATA, "sst2")
    train_path, valid_path = os.path.join(folder, "train.tsv"), os.path.join(folder, "valid.tsv")
    ds = tokenize([train_path], valid_path=valid_path, lower=True, min_freq=2)
    clm_cfg = os.path.join(ROOT, "configs", "sentiment-lm.yaml")
    budget = args.sentiment_budget or args.budget
    lm, meta, s_lm, _ = fit(clm_cfg, ds, os.path.join(keep, "sst_clm.npz"), budget)
    m_lm = task_named("clm").evaluate(lm, ds.valid, "tsv")
    cls, meta_c, s_cls, _ = fit(os.path.join(ROOT, "configs", "sentiment.yaml"), ds,
                                os.path.join(keep, "sst_cls.npz"), budget)
    m_cls = task_named("classify").evaluate(cls, ds.valid, "tsv")
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
        pred, _ = predict_classes(cls, split)
        shares[name] = float(np.mean(pred == meta_c["data"]["labels"].index(name)))
        print(f"  {name}: {100 * shares[name]:.1f} % of {n} samples classified {name}; e.g. {sentences[:2]}")
    print(f"sentiment fidelity {100 * np.mean(list(shares.values())):.1f} % (mean over labels)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=600, help="training seconds per model")
    ap.add_argument("--sentiment-budget", type=float, default=None, help="training seconds per SST-2 model "
                    "(default: --budget)")
    ap.add_argument("--samples", type=int, default=100, help="samples per label (and per seed's model)")
    ap.add_argument("--seeds", type=int, default=3, help="music: seeds of each model")
    ap.add_argument("--label-dropout", type=float, default=0.0, help="music: train the conditional models with "
                    "this --label-dropout")
    ap.add_argument("--guidance", type=float, nargs="*", default=[], help="music: also sample at these --guidance "
                    "values (needs --label-dropout)")
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
