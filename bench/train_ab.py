"""A/B of `rnncli train` as users run it: this tree against another rnncli checkout, task by task.

    git worktree add ../before 538af89
    python bench/train_ab.py --against ../before [--rounds 3] [--steps 60] [--only lm,sentiment,ner,translate]

For a restructuring that must not change speed: each round trains every task once with each tree
(`python -m rnncli train ... --json`, the other tree through PYTHONPATH), in turn reversed every
other round, so that the machine's noise falls on both. The figure is the summary's step_seconds
(time in steps, validations and start-up left out) per step; the table gives each side's median and
the ratio (this tree / the other: below 1 is faster). Data: sample_data/, tokenized once per tree.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SAMPLES = os.path.join(ROOT, "sample_data")
TASKS = {  # name: (data file, tokenize options, train options)
    "lm": ("corpus.txt", [], ["--hidden", "256", "--layers", "2", "--embed", "64", "--seq-len", "64"]),
    "sentiment": ("reviews.tsv", [], ["--hidden", "128", "--embed", "128", "--layers", "1", "--pool", "max",
                                      "--word-dropout", "0.1", "--batch-size", "64"]),
    "ner": ("ner.conll", [], ["--hidden", "128", "--embed", "100", "--layers", "1", "--char-features",
                              "--char-encoder", "cnn", "--crf", "--batch-size", "32"]),
    "translate": ("dates.tsv", ["--level", "char"], ["--hidden", "128", "--embed", "32", "--layers", "1",
                                                     "--attention", "general", "--batch-size", "64"]),
}


def rnncli(tree, args, cwd):
    env = dict(os.environ, PYTHONPATH=tree)
    r = subprocess.run([sys.executable, "-m", "rnncli", *args], cwd=cwd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"{tree}: rnncli {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def seconds_per_step(tree, task, steps, cwd):
    data, _, options = TASKS[task]
    out = rnncli(tree, ["train", "-d", f"{task}.npz", "-o", f"{task}_model.npz", "--max-steps", str(steps),
                        "--eval-every", str(10 * steps), "--seed", "0", "--force", "--json", "-q", *options], cwd)
    summary = json.loads(out)
    return summary["step_seconds"] / summary["steps"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--against", required=True, metavar="DIR", help="the other rnncli checkout")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--only", default=",".join(TASKS))
    args = ap.parse_args()
    trees = {"this": ROOT, "other": os.path.abspath(args.against)}
    tasks = args.only.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        folders = {}
        for side, tree in trees.items():
            folders[side] = os.path.join(tmp, side)
            os.makedirs(folders[side])
            for task in tasks:
                data, tok, _ = TASKS[task]
                rnncli(tree, ["tokenize", os.path.join(SAMPLES, data), "-o", f"{task}.npz", "-q", *tok],
                       folders[side])
        times = {(side, task): [] for side in trees for task in tasks}
        for r in range(args.rounds):
            order = list(trees) if r % 2 == 0 else list(reversed(trees))
            for task in tasks:
                for side in order:
                    times[side, task].append(seconds_per_step(trees[side], task, args.steps, folders[side]))
            print(f"round {r + 1} of {args.rounds} done", file=sys.stderr)
    print(f"{'task':<10} {'this ms/step':>13} {'other ms/step':>14} {'this/other':>11}")
    for task in tasks:
        a, b = (statistics.median(times[side, task]) * 1000 for side in ("this", "other"))
        print(f"{task:<10} {a:>13.2f} {b:>14.2f} {a / b:>11.3f}")


if __name__ == "__main__":
    main()
