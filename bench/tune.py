"""rnncli tune, measured: what an hour of search buys over the hand-made configs, and how many
trials per hour one and two jobs finish on this machine.

    python bench/tune.py [--only wikiann|sst2|throughput] [--budget 1h] [--seeds 4] [--keep DIR]
                          [--throughput-task sst2|wikiann] [--throughput-budget 20m]

wikiann  tokenize as configs/ner.yaml says (--min-freq 2), then
         rnncli tune --config configs/ner.yaml --space configs/ner.space.yaml --budget B --jobs 2 --seeds K;
         the entity F1 on test.conll of best.npz and of the K-seed ensemble (against configs/ner.yaml:
         79.1 single, 80.15 four-seed ensemble, bench/RESULTS.md)
sst2     the same with configs/sentiment.yaml / sentiment.space.yaml, accuracy on valid.tsv
throughput  the --throughput-task study (SST-2 unless told) run for --throughput-budget with --jobs 1,
         then with --jobs 2: trials finished per hour. SST-2's trials stop early within minutes
         (WikiANN's first, never-pruned trials would fill a 20-minute window on their own)
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

from rnncli.models import load_models  # noqa: E402
from rnncli.tasks.registry import task_named  # noqa: E402
from rnncli.text.encode import tokenize  # noqa: E402

DATA = os.path.join(ROOT, "..", "shared", "data")
RNNCLI = [sys.executable, "-m", "rnncli"]
TASKS = {"wikiann": ("wikiann-en", "train.conll", "valid.conll", "test.conll", "ner", ["--min-freq", "2"], "f1"),
         "sst2": ("sst2", "train.tsv", "valid.tsv", "valid.tsv", "sentiment", [], "accuracy")}


def score(paths, test):
    model, meta = load_models(paths)
    split = tokenize([test], valid_frac=0, reuse=meta["data"]).train
    return task_named(meta["task"]).evaluate(model, split, meta["data"]["format"], meta["config"].get("char_features"))


def study(name, tmp, budget, jobs, seeds, trials=None, tag=""):
    folder, train, valid, test, config, tok, metric = TASKS[name]
    d = os.path.join(DATA, folder)
    data = os.path.join(tmp, f"{name}.npz")
    if not os.path.exists(data):
        subprocess.run([*RNNCLI, "tokenize", f"{d}/{train}", "--valid", f"{d}/{valid}", *tok, "-o", data, "-q"],
                       check=True)
    out = os.path.join(tmp, f"{name}{tag}_tuned")
    t = time.perf_counter()
    cmd = [*RNNCLI, "tune", "-d", data, "--config", os.path.join(ROOT, "configs", f"{config}.yaml"), "--space",
           os.path.join(ROOT, "configs", f"{config}.space.yaml"), "--budget", budget, "--jobs", str(jobs), "-o", out,
           "--json", *(["--seeds", str(seeds)] if seeds else []), *(["--trials", str(trials)] if trials else [])]
    summary = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    seconds = time.perf_counter() - t
    return summary, seconds, out, f"{d}/{test}", metric


def quality(name, args, tmp):
    summary, seconds, out, test, metric = study(name, tmp, args.budget, 2, args.seeds)
    best = score([os.path.join(out, "best.npz")], test)[metric]
    line = (f"{name}: {summary['trials']} trials in {seconds:.0f} s ({summary['states']}); best trial "
            f"{summary.get('best_trial')} {summary.get('best_params')}: {metric} {100 * best:.2f}")
    start = os.path.join(out, "trials", "0000", "model.npz")  # trial 0: the config as it is (rnncli tune)
    if os.path.exists(start):
        line += f"; trial 0 (the config as shipped) {100 * score([start], test)[metric]:.2f}"
    if "ensemble" in summary:
        ens = score([f"@{summary['ensemble']}"], test)[metric]
        line += f"; its {args.seeds}-seed ensemble {100 * ens:.2f}"
    print(line, flush=True)


def throughput(args, tmp):
    for jobs in (1, 2):
        summary, seconds, _, _, _ = study(args.throughput_task, tmp, args.throughput_budget, jobs, 0,
                                          tag=f"_jobs{jobs}")
        done = sum(summary["states"][s] for s in ("COMPLETE", "PRUNED", "FAIL"))
        print(f"throughput ({args.throughput_task}), --jobs {jobs}: {done} trials finished in {seconds:.0f} s = "
              f"{3600 * done / seconds:.1f} per hour ({summary['states']})", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=[*TASKS, "throughput"])
    ap.add_argument("--budget", default="1h")
    ap.add_argument("--throughput-budget", default="20m")
    ap.add_argument("--throughput-task", choices=list(TASKS), default="sst2")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--keep", metavar="DIR")
    args = ap.parse_args()
    with (contextlib.nullcontext(args.keep) if args.keep else tempfile.TemporaryDirectory()) as tmp:
        os.makedirs(tmp, exist_ok=True)
        for name in TASKS:
            if args.only in (None, name):
                quality(name, args, tmp)
        if args.only in (None, "throughput"):
            throughput(args, tmp)


if __name__ == "__main__":
    main()
