"""Data-parallel training (`train --workers N`, parallel.py): two workers against one process on this
machine, same global batch, same configs, both sides in one run of this script.

    python bench/parallel.py [--only char-lm,sentiment,ner,translate] [--seconds 120] [--rounds 2]
                             [--torch] [--quality] [--predict]

For each shipped config, on its data in ../shared/data:
  speed      `rnncli train --config configs/X.yaml --max-time S --workers 1` and `--workers 2`, in
             alternating rounds (median of --rounds): steps/s and target tokens/s of the training
             steps (evaluation left out), and the share of a 2-worker step spent in the sum over
             workers (time in MPI / step time: the figure that decides scaling over machines).
             --torch adds PyTorch on 2 threads at the same shapes (the twins of bench/task_speed.py;
             for translate, bench/seq2seq.py's OpenNMT-py recipe at the config's widths: one process,
             as a PyTorch user runs it on one machine).
  quality    (--quality) the config's own time budget, 1 worker against 2, seed 0: the validation
             score each reaches (loss for language models and translation, accuracy, entity F1).
  predict    (--predict) the speed-up on N machines of 1, 10 and 100 Gb/s at 2, 8 and 32 workers,
             from the measured step time at the per-worker batch (less the share of the optimizer
             step the other workers take) and a model of the step's exchanges (class Exchange); and
             a check of that model here: 2 workers whose every step is delayed by what a slow link
             would cost, measured against the prediction.

The throughput runs use the first 200 validation examples only (their end-of-run evaluation is not
what is measured); the quality runs use the full validation split.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
DATA = os.path.join(ROOT, "..", "shared", "data")
sys.path.insert(0, ROOT)

# config -> (tokenize arguments, train file, valid file, what the score is)
TASKS = {
    "char-lm": (["--level", "char"], "tinyshakespeare/train.txt", "tinyshakespeare/valid.txt", "valid loss"),
    "sentiment": (["--lower", "--min-freq", "2"], "sst2/train.tsv", "sst2/valid.tsv", "valid accuracy"),
    "ner": (["--min-freq", "2"], "wikiann-en/train.conll", "wikiann-en/valid.conll", "valid entity F1"),
    "translate": (["--min-freq", "2"], "eng-fra/train.tsv", "eng-fra/valid.tsv", "valid loss"),
}
RNNCLI = [sys.executable, "-m", "rnncli"]


def head(src, dst, n, conll=False):
    """The first n examples of a file (lines, or CoNLL sentences)."""
    with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as out:
        if conll:
            blocks = f.read().split("\n\n")[:n]
            out.write("\n\n".join(blocks) + "\n")
        else:
            for k, line in enumerate(f):
                if k >= n:
                    break
                out.write(line)


def prepare(name, tmp, small_valid):
    args, train, valid, _ = TASKS[name]
    valid = os.path.join(DATA, valid)
    out = os.path.join(tmp, f"{name}{'_small' if small_valid else ''}.npz")
    if small_valid:
        small = os.path.join(tmp, f"{name}_valid_small{os.path.splitext(valid)[1]}")
        head(valid, small, 200, conll=valid.endswith(".conll"))
        valid = small
    if not os.path.exists(out):
        subprocess.run([*RNNCLI, "tokenize", os.path.join(DATA, train), "--valid", valid, *args, "-o", out, "-q",
                        "--force"], check=True)
    return out


def run_training(name, data, tmp, workers, extra, env=None, launcher=None):
    """One training run -> its summary (with tokens/s read from its checkpoint's history)."""
    from rnncli.checkpoint import load_checkpoint

    out = os.path.join(tmp, f"{name}_{workers}.npz")
    config = os.path.join(ROOT, "configs", f"{name}.yaml")
    command = [*(launcher or RNNCLI), "train", "-d", data, "-o", out, "--config", config, "--force", "--json", "-q",
               *extra]
    if not launcher:
        command += ["--workers", str(workers)]
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    env = {"OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, **os.environ, **(env or {})}
    r = subprocess.run(command, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"{name}, {workers} workers: {r.stderr.strip()}")
    summary = json.loads(r.stdout)
    meta, _ = load_checkpoint(out)
    summary["tokens_per_s"] = meta["history"][-1]["tokens_per_s"]
    return summary


def speed(name, args, tmp):
    data = prepare(name, tmp, small_valid=True)
    extra = ["--max-time", f"{args.seconds}s", "--eval-every", "1000000", "--epochs", "1000", "--patience", "1000"]
    runs = {1: [], 2: []}
    for _ in range(args.rounds):
        for workers in (1, 2):
            runs[workers].append(run_training(name, data, tmp, workers, extra))
    row = {}
    for workers, summaries in runs.items():
        row[workers] = {
            "steps_per_s": statistics.median(s["steps"] / s["step_seconds"] for s in summaries),
            "tokens_per_s": statistics.median(s["tokens_per_s"] for s in summaries),
            "reduce_share": statistics.median(s["reduce_seconds"] / s["step_seconds"] for s in summaries),
            "steps": [s["steps"] for s in summaries],
        }
    return row


def torch_speed(name, seconds):
    """PyTorch on this machine's threads at the config's shapes: steps/s and target tokens/s."""
    import time

    import torch

    from rnncli.config import make_config
    from rnncli.text.batching import SequenceBatches, paired_batch
    from rnncli.text.store import load_dataset

    torch.set_num_threads(os.cpu_count() or 1)
    tmp = tempfile.mkdtemp()
    ds = load_dataset(prepare(name, tmp, small_valid=True))
    cfg = make_config(os.path.join(ROOT, "configs", f"{name}.yaml"))
    if name == "translate":
        sys.path.insert(0, HERE)
        from seq2seq import opennmt_model

        from rnncli.text.vocab import PAD

        # OpenNMT-py's recipe at the config's widths: a bidirectional encoder of hidden/2 per direction
        # and a decoder of `hidden`, with input feeding (rnncli's config has neither)
        twin = opennmt_model(len(ds.meta["vocab"]), len(ds.meta["target_vocab"]), cfg.embed, cfg.hidden // 2,
                             cfg.dropout)
        opt = torch.optim.Adam(twin.parameters(), lr=cfg.lr)
        loss_fn = torch.nn.CrossEntropyLoss(ignore_index=PAD)
        batches = SequenceBatches(ds.train, cfg.batch_size, cfg.seed, paired_batch)

        def steps():
            for epoch in range(10**6):
                for _, (source, mask, target_in, target_out, target_mask) in batches.epoch(epoch, 0):
                    logits = twin(torch.from_numpy(source).long(), torch.from_numpy(mask),
                                  torch.from_numpy(target_in).long())
                    loss = loss_fn(logits.reshape(-1, logits.shape[-1]),
                                   torch.from_numpy(target_out).long().reshape(-1))
                    opt.zero_grad()
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(twin.parameters(), cfg.clip)
                    opt.step()
                    yield int(target_mask.sum())
        step = steps().__next__
    else:
        sys.path.insert(0, HERE)
        from task_speed import torch_side

        side = torch_side(cfg.task or "lm", cfg, ds)
        step = side.step
    for _ in range(3):  # warm-up
        step()
    n, tokens, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        tokens += step()
        n += 1
    elapsed = time.perf_counter() - start
    return {"steps_per_s": n / elapsed, "tokens_per_s": tokens / elapsed}


def quality(name, tmp):
    data = prepare(name, tmp, small_valid=False)
    out = {}
    for workers in (1, 2):
        s = run_training(name, data, tmp, workers, ["--seed", "0"])
        best = s["best_score"]
        score = best if s["task"] in ("lm", "seq2seq") else -best
        out[workers] = {"score": score, "steps": s["steps"], "elapsed": s["elapsed"]}
    return out


# ---------------------------------------------------------------- predicting many machines

DELAY_WRAPPER = """
import sys, time
from rnncli.parallel import world as parallel
delay = float(sys.argv.pop(1))
original = parallel.MpiWorld.reduce_step
def slow(self, *args, **kwargs):
    time.sleep(delay)  # what the link would add to this sum
    return original(self, *args, **kwargs)
parallel.MpiWorld.reduce_step = slow
sys.argv[0] = "rnncli"
from rnncli.cli import main
main()
"""


class Exchange:
    """What one step of N workers exchanges, from the model's shapes and the data (parallel.py):
      - the dense gradients (every array but the embedding tables): a ring reduce-scatter, each
        worker sending and receiving (N-1)/N of them in N-1 messages;
      - the tables' rows each worker's share of the batch touched: an Allgather, each worker
        receiving the other N-1 workers' rows (a row is its id and its D numbers), plus one small
        Allreduce of the row counts;
      - the gradient norm's squares: one small Allreduce;
      - the parameters after the shared-out update: an Allgather, each worker receiving (N-1)/N of
        them (one exchange for the arrays under 65,536 numbers, one per larger array).
    Also the optimizer step's time on one process, of which a worker of N runs 1/N."""

    def __init__(self, name, tmp):
        import time

        import numpy as np

        from rnncli.config import make_config
        from rnncli.nn.optim import Optimizer
        from rnncli.parallel import IN_PLACE_FROM
        from rnncli.tasks.build import build_model
        from rnncli.text.store import load_dataset

        self.ds = load_dataset(prepare(name, tmp, small_valid=True))
        self.cfg = cfg = make_config(os.path.join(ROOT, "configs", f"{name}.yaml"))
        params = build_model(cfg, self.ds.meta).params
        self.tables = {k: p.shape[1] for k, p in params.items() if k.endswith(".E")}
        self.parameters = sum(p.size for p in params.values())
        self.dense = sum(p.size for k, p in params.items() if k not in self.tables)
        self.large = sum(p.size >= IN_PLACE_FROM for p in params.values())
        opt = Optimizer(cfg.optimizer, lr=cfg.lr, weight_decay=cfg.weight_decay, average=cfg.average)
        grads = {k: np.random.default_rng(0).standard_normal(p.shape).astype(p.dtype) * 1e-3 for k, p in params.items()}
        times = []
        for _ in range(30):
            t = time.perf_counter()
            opt.step(params, grads)
            times.append(time.perf_counter() - t)
        self.optimizer_seconds = statistics.median(times[5:])  # once the moments exist

    def rows_per_worker(self, share, draws=20):
        """Numbers (ids and gradients) of the table rows one worker's share of a batch touches."""
        import numpy as np

        rng, split, total = np.random.default_rng(0), self.ds.train, 0.0
        reads = {"embedding.E": (split.ids, split.offsets), "source_embedding.E": (split.ids, split.offsets),
                 "target_embedding.E": (split.targets, split.target_offsets),
                 "char_embedding.E": (split.chars, split.char_offsets)}
        for _ in range(draws):
            for table, width in self.tables.items():
                flat, offsets = reads.get(table, (None, None))
                if flat is None:
                    continue
                if self.cfg.task in (None, "lm") and table == "embedding.E":  # share streams of seq_len tokens
                    starts = rng.integers(0, len(flat) - self.cfg.seq_len, share)
                    ids = flat[starts[:, None] + np.arange(self.cfg.seq_len)]
                else:
                    n = len(offsets) - 1
                    picked = rng.integers(0, n, share)
                    ids = np.concatenate([flat[offsets[i] : offsets[i + 1]] for i in picked])
                total += len(np.unique(ids)) * (1 + width)
        return total / draws

    def seconds(self, workers, gbits, latency=50e-6):
        """The exchanges of one step over a link of `gbits` Gb/s with `latency` per message."""
        if workers == 1:
            return 0.0
        n = workers
        share = max(1, -(-self.cfg.batch_size // n))
        numbers = (n - 1) / n * self.dense + (n - 1) * self.rows_per_worker(share) + (n - 1) / n * self.parameters
        messages = (n - 1) + (n - 1) + 2 * (n - 1) + 2 * (n - 1) + (n - 1) * (1 + self.large)
        return numbers * 4 * 8 / (gbits * 1e9) + messages * latency


def predict(name, args, tmp):
    """Step time at the per-worker batch (one process, this machine's threads, as one machine of a
    cluster would run it), less the optimizer's share other workers take, plus the exchanges; ->
    rows for docs/scaling.md."""
    data = prepare(name, tmp, small_valid=True)
    exchange = Exchange(name, tmp)
    batch = exchange.cfg.batch_size
    extra = ["--max-time", f"{args.seconds}s", "--eval-every", "1000000", "--epochs", "1000", "--patience", "1000"]
    compute = {}
    for workers in (1, 2, 8, 32):
        share = max(1, -(-batch // workers))  # the largest share
        s = run_training(name, data, tmp, 1, [*extra, "--batch-size", str(share)])
        compute[workers] = s["step_seconds"] / s["steps"] - exchange.optimizer_seconds * (1 - 1 / workers)
    rows = []
    for workers in (2, 8, 32):
        for gbits in (1, 10, 100):
            step = compute[workers] + exchange.seconds(workers, gbits)
            rows.append((workers, gbits, compute[workers], step, compute[1] / step))
    return exchange, compute, rows


def check_prediction(name, args, tmp, gbits=1.0):
    """Two workers here, each sum delayed by what a `gbits` link adds for this model: measured step
    time against the prediction (the undelayed 2-worker step + the delay)."""
    data = prepare(name, tmp, small_valid=True)
    delay = Exchange(name, tmp).seconds(2, gbits)
    extra = ["--max-time", f"{args.seconds}s", "--eval-every", "1000000", "--epochs", "1000", "--patience", "1000"]
    from rnncli.parallel import find_mpiexec

    plain = run_training(name, data, tmp, 2, extra)
    launcher = [find_mpiexec(), "-n", "2", sys.executable, "-c", DELAY_WRAPPER, str(delay)]
    slow = run_training(name, data, tmp, 2, extra, launcher=launcher)
    predicted = plain["step_seconds"] / plain["steps"] + delay
    measured = slow["step_seconds"] / slow["steps"]
    return delay, predicted, measured


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default="char-lm,sentiment,ner,translate")
    p.add_argument("--seconds", type=float, default=120, help="length of each throughput run")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--torch", action="store_true")
    p.add_argument("--quality", action="store_true")
    p.add_argument("--predict", action="store_true")
    p.add_argument("--skip-speed", action="store_true")
    args = p.parse_args()
    names = args.only.split(",")
    tmp = tempfile.mkdtemp(prefix="rnncli-parallel-")
    print(f"{os.cpu_count()} cores; throughput runs of {args.seconds:g} s, median of {args.rounds} rounds", flush=True)
    if not args.skip_speed:
        print(f"{'config':<10} {'steps/s 1w':>10} {'steps/s 2w':>10} {'ratio':>6} {'tok/s 1w':>9} {'tok/s 2w':>9} "
              f"{'ratio':>6} {'sum share 2w':>12} {'torch steps/s':>13} {'torch tok/s':>11}", flush=True)
        for name in names:
            row = speed(name, args, tmp)
            one, two = row[1], row[2]
            t = torch_speed(name, args.seconds) if args.torch else None
            print(f"{name:<10} {one['steps_per_s']:>10.2f} {two['steps_per_s']:>10.2f} "
                  f"{two['steps_per_s'] / one['steps_per_s']:>5.2f}x {one['tokens_per_s']:>9,.0f} "
                  f"{two['tokens_per_s']:>9,.0f} {two['tokens_per_s'] / one['tokens_per_s']:>5.2f}x "
                  f"{100 * two['reduce_share']:>11.1f}% "
                  f"{t['steps_per_s'] if t else float('nan'):>13.2f} {t['tokens_per_s'] if t else float('nan'):>11,.0f}"
                  f"   (steps per run: 1w {one['steps']}, 2w {two['steps']})", flush=True)
    if args.quality:
        for name in names:
            q = quality(name, tmp)
            what = TASKS[name][3]
            print(f"{name}: {what} after the config's budget, seed 0: 1 worker {q[1]['score']:.4f} "
                  f"({q[1]['steps']:,} steps), 2 workers {q[2]['score']:.4f} ({q[2]['steps']:,} steps)", flush=True)
    if args.predict:
        for name in names:
            exchange, compute, rows = predict(name, args, tmp)
            share = max(1, exchange.cfg.batch_size // 2)
            steps = ", ".join(f"{w} workers {1e3 * c:.1f} ms" for w, c in compute.items())
            print(f"{name}: {exchange.parameters:,} parameters, {exchange.dense:,} outside the tables; 2 workers' "
                  f"rows: {exchange.rows_per_worker(share):,.0f} numbers each; optimizer step "
                  f"{1e3 * exchange.optimizer_seconds:.1f} ms on one process; step time at the per-worker batch, "
                  f"its share of the optimizer: {steps}", flush=True)
            for workers, gbits, c, step, speedup in rows:
                print(f"  {workers:>2} workers, {gbits:>3} Gb/s: compute {1e3 * c:7.1f} ms + sum "
                      f"{1e3 * (step - c):7.1f} ms -> speed-up {speedup:5.2f}x", flush=True)
            delay, predicted, measured = check_prediction(name, args, tmp)
            print(f"  check here: 2 workers with each sum delayed {1e3 * delay:.1f} ms (a 1 Gb/s link): "
                  f"predicted {1e3 * predicted:.1f} ms per step, measured {1e3 * measured:.1f} ms "
                  f"({measured / predicted:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
