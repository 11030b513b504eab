"""Pretrained word vectors (train --embeddings), measured: the accuracy they buy and what they cost.

    python bench/vectors.py [--only sst2|wikiann|wikiann+valid|wnut17|cost] [--seeds 0 1] [--budget-scale 1.0]
                            [--config-glove FILE] [--keep DIR]

For each task and seed, the shipped config trains twice side by side, one process and one core
each, for the config's own budget: as it is, and with GloVe 6B 50-d (../shared/data/glove, 100,000
words) through --embeddings (the embedding size then becomes 50). Same data, same seed.
  sst2     configs/sentiment.yaml, accuracy on SST-2 valid.tsv (the GLUE test labels are not public)
  wikiann  configs/ner.yaml, tokenize --min-freq 2, entity F1 on test.conll
  wikiann+valid  the same trained on train.conll plus 9,000 of the 10,000 valid sentences, early stopping
         on the other 1,000, as bench/tasks.py's wikiann+valid (the setting of the earlier NER figures)
  wnut17   the same on WNUT-17, with the CRF peer (python-crfsuite, in the `bench` extra) beside it
The scores come from the checkpoints, evaluated on the raw test file as `rnncli eval` reads it (so
test words the training data lacks reach their vectors). Also shown: how much of the training and
test tokens the model's table knows, with and without the vectors. --config-glove trains the GloVe
side with another config (e.g. configs/ner-glove.yaml with its own settings) instead of the shipped
one plus --embeddings.
cost     the price of the 100,000-row table: median seconds per training step of configs/ner.yaml's
         tagger with embeddings of 50 on WikiANN batches, with the training vocabulary only, with the
         table grown by GloVe's rows and the sparse row update rnncli uses, and with that table
         updated densely (what a plain optimizer would do), one thread, the three interleaved.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tasks import crf_ner, fold_in_valid, workdir  # noqa: E402

from rnncli.config import make_config, parse_duration  # noqa: E402
from rnncli.models import load_model  # noqa: E402
from rnncli.tasks.registry import task_named  # noqa: E402
from rnncli.text.encode import tokenize  # noqa: E402
from rnncli.text.vocab import UNK  # noqa: E402

DATA = os.path.join(ROOT, "..", "shared", "data")
GLOVE = os.path.join(DATA, "glove", "glove.6B.50d.top100k.txt")
ENV = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
RNNCLI = [sys.executable, "-m", "rnncli"]
TASKS = {  # name: (folder, train, valid, test, config, tokenize options, what is scored,
    #          valid sentences kept for early stopping when the others join the training data, or 0)
    "sst2": ("sst2", "train.tsv", "valid.tsv", "valid.tsv", "sentiment.yaml", [], "accuracy", 0),
    "wikiann": ("wikiann-en", "train.conll", "valid.conll", "test.conll", "ner.yaml", ["--min-freq", "2"], "f1", 0),
    "wnut17": ("wnut17", "train.conll", "valid.conll", "test.conll", "ner.yaml", ["--min-freq", "2"], "f1", 0),
}
TASKS["wikiann+valid"] = (*TASKS["wikiann"][:-1], 1000)  # as bench/tasks.py's wikiann+valid


def known_share(split):
    """The share of a split's tokens that are not <unk>."""
    return float(np.mean(split.ids != UNK))


def compare(name, args, tmp):
    folder, train_name, valid_name, test_name, config_name, tok_args, metric, held_out = TASKS[name]
    d = os.path.join(DATA, folder)
    config = os.path.join(ROOT, "configs", config_name)
    data = os.path.join(tmp, f"{name}.npz")
    train_file, valid_file = f"{d}/{train_name}", f"{d}/{valid_name}"
    if held_out:
        train_file, valid_file = fold_in_valid(d, tmp, held_out)
    subprocess.run([*RNNCLI, "tokenize", train_file, "--valid", valid_file, *tok_args, "-o", data,
                    "-q", "--force"], check=True, env=ENV)
    glove_args = ["--config", args.config_glove] if args.config_glove else ["--config", config, "--embeddings", GLOVE]
    seconds = parse_duration(make_config(config).max_time) * args.budget_scale
    glove_side = os.path.relpath(args.config_glove) if args.config_glove else f"{config_name} --embeddings GloVe"
    print(f"{name}: {config_name} against {glove_side}, {seconds:.0f} s per model, side by side, one core each"
          + (f"; trained on train + valid but its last {held_out:,} sentences" if held_out else ""), flush=True)
    rows = []
    for seed in args.seeds:
        outs = {kind: os.path.join(tmp, f"{name}_{kind}_s{seed}.npz") for kind in ("plain", "glove")}
        runs = {kind: subprocess.Popen(
            [*RNNCLI, "train", "-d", data, "-o", out, *(glove_args if kind == "glove" else ["--config", config]),
             "--seed", str(seed), "--max-time", f"{seconds:.0f}s", "--json", "-q", "--force"],
            env=ENV, stdout=subprocess.PIPE, text=True) for kind, out in outs.items()}
        summaries = {kind: json.loads(r.communicate()[0]) for kind, r in runs.items()}
        if any(r.returncode for r in runs.values()):
            sys.exit("training failed")
        scores = {}
        for kind, out in outs.items():
            model, meta, _ = load_model(out)
            test = tokenize([f"{d}/{test_name}"], valid_frac=0, reuse=meta["data"]).train
            s = task_named(meta["task"]).evaluate(model, test, meta["data"]["format"],
                                                  meta["config"].get("char_features"))
            scores[kind] = (s, known_share(test), meta)
            summ = summaries[kind]
            extra = ""
            if kind == "glove":
                p = meta["data"]["pretrained"]
                extra = (f"; vectors found for {100 * (p['tokens_exact'] + p['tokens_lower']) / p['tokens']:.1f} % of "
                         f"training tokens ({100 * p['tokens_lower'] / p['tokens']:.1f} % by lower case), "
                         f"{p['rows_added']:,} rows added")
            print(f"  seed {seed} {kind:<5} {metric} {100 * s[metric]:.2f}  ({summ['steps']:,} steps, "
                  f"{summ['steps'] / max(summ['elapsed'], 1e-9):.2f} steps/s, best at step {summ['best_step']}; "
                  f"test tokens the table knows {100 * known_share(test):.1f} %{extra})", flush=True)
        rows.append((scores["plain"][0][metric], scores["glove"][0][metric]))
    plain, glove = np.array(rows).T
    print(f"{name}: {metric} without vectors {100 * plain.mean():.2f}, with GloVe {100 * glove.mean():.2f} "
          f"(mean of {len(rows)} seed(s); difference {100 * (glove - plain).mean():+.2f})", flush=True)
    if name == "wnut17":
        try:
            f1, secs = crf_ner(f"{d}/{train_name}", f"{d}/{test_name}")
            print(f"  CRF (python-crfsuite), features: F1 {100 * f1:.2f}  ({secs:.1f} s)", flush=True)
        except ImportError:
            print("  CRF: not installed (pip install -e '.[bench]')")


def table_cost(args, tmp):
    """Seconds per training step of one tagger with three embedding tables (see the docstring)."""
    from rnncli.nn.optim import Optimizer, clip_global_norm
    from rnncli.pretrained import Pretrained
    from rnncli.tasks.build import build_model
    from rnncli.text.batching import SequenceBatches, tagged_batch
    from rnncli.text.vectors import read_vectors

    d = os.path.join(DATA, "wikiann-en")
    ds = tokenize([f"{d}/train.conll"], valid_frac=0, min_freq=2)
    cfg = make_config(os.path.join(ROOT, "configs", "ner.yaml"), {"embed": 50})
    pre = Pretrained(read_vectors(GLOVE), ds.meta, "tag", ds.train.ids)
    epoch = SequenceBatches(ds.train, cfg.batch_size, 0, lambda s, i: tagged_batch(s, i, True)).epoch(0, 0)
    batches = [b for _, b in epoch][: args.steps]
    setups = {}
    for kind in ("training vocabulary only", "with GloVe rows, sparse update", "with GloVe rows, dense update"):
        meta = dict(ds.meta) if kind.startswith("training") else {**ds.meta, "pretrained_vocab": pre.extra}
        model = build_model(cfg, meta)
        model.embedding.sparse = "sparse" in kind
        setups[kind] = (model, Optimizer("adam", lr=cfg.lr, average=cfg.average), [])
    rng = np.random.default_rng(0)
    for batch in batches:
        for model, opt, times in setups.values():
            t = time.perf_counter()
            _, grads = model.loss_and_grads(*batch, rng=rng)
            clip_global_norm(grads, cfg.clip)
            opt.step(model.params, grads)
            times.append(time.perf_counter() - t)
    base = np.median(setups["training vocabulary only"][2][3:])
    print(f"cost of the table (configs/ner.yaml tagger, embed 50, WikiANN batches of {cfg.batch_size}, "
          f"{len(batches)} steps each, one thread, interleaved; median ms per step):")
    for kind, (model, _, times) in setups.items():
        rows = model.params["embedding.E"].shape[0]
        med = np.median(times[3:])
        print(f"  {kind:<34} {rows:>7,} rows  {1000 * med:7.1f} ms  ({med / base:.2f}x)", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=[*TASKS, "cost"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--budget-scale", type=float, default=1.0, help="multiply the configs' time budgets")
    ap.add_argument("--steps", type=int, default=60, help="cost: steps timed per table")
    ap.add_argument("--config-glove", metavar="FILE", help="the GloVe side's config (names the vectors)")
    ap.add_argument("--keep", metavar="DIR", help="keep data and models in DIR")
    args = ap.parse_args()
    if not os.path.exists(GLOVE):
        sys.exit(f"no vectors at {GLOVE}")
    if args.config_glove and not os.path.exists(args.config_glove):
        sys.exit(f"{args.config_glove}: no such file (--config-glove)")
    with workdir(args.keep) as tmp:
        if args.only in (None, "cost"):
            from threadpoolctl import threadpool_limits

            with threadpool_limits(1):
                table_cost(args, tmp)
        for name in TASKS:
            if args.only in (None, name):
                compare(name, args, tmp)


if __name__ == "__main__":
    main()
