"""Regression on E. coli promoters (../shared/data/ecoli-promoters): a DNA sequence in, its measured
transcription rate out. rnncli with configs/dna.yaml against the standard PyTorch recipe for the
task, each for the same wall time on the same cores, scored on the valid split.

    python bench/regress.py [--minutes 10] [--threads 2] [--config configs/dna.yaml] [--seed 0]
                            [--peers standard,twin]

The PyTorch peer is what a PyTorch user writes for sequence regression: one-hot A/C/G/T input, a
bidirectional LSTM of 64 units, mean and max pooling of its states, a linear output, Adam 1e-3,
batches of 32, the mean squared error of standardised targets; it keeps the weights of its best
validation MSE, as rnncli does (needs `pip install torch`). The twin (`--peers twin`) is PyTorch
running rnncli's own architecture from configs/dna.yaml: letters embedded in 16 dimensions, a 2-layer
BiLSTM of 96 with dropout 0.1 between layers and before the output, max pooling, Adam 2e-3 decayed by
0.95 per epoch, batches of 32, selected on valid every 200 steps. Every side sees train.jsonl only,
selects on valid.jsonl and is scored there (the data's test split is held out of ../shared). Prints
Pearson r, Spearman rho, MSE, R², and the ratios.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from rnncli.metrics import regression_scores  # noqa: E402

DATA = os.path.join(HERE, "..", "..", "shared", "data", "ecoli-promoters")


def read(path):
    records = [json.loads(line) for line in open(path, encoding="utf-8")]
    return [r["text"] for r in records], np.array([[r["target"]] for r in records])


def ours(config, minutes, threads, seed, tmp):
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
    run = [sys.executable, "-m", "rnncli"]
    subprocess.run([*run, "tokenize", f"{DATA}/train.jsonl", "--valid", f"{DATA}/valid.jsonl", "-o", "dna.npz",
                    "-q"], cwd=tmp, check=True, env=env)
    start = time.perf_counter()
    subprocess.run([*run, "train", "-d", "dna.npz", "-o", "dna_model.npz", "--config", config, "--max-time",
                    f"{minutes}m", "--seed", str(seed), "-q"], cwd=tmp, check=True, env=env)
    seconds = time.perf_counter() - start
    out = subprocess.run([*run, "eval", "-m", "dna_model.npz", f"{DATA}/valid.jsonl", "--json", "-q"], cwd=tmp,
                         check=True, env=env, capture_output=True, text=True).stdout
    return json.loads(out), seconds


def torch_peer(minutes, threads, seed, twin=False):
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    texts, y = read(f"{DATA}/train.jsonl")
    v_texts, v_y = read(f"{DATA}/valid.jsonl")
    mean, sd = y.mean(), y.std()

    def one_hot(batch):
        T = max(len(t) for t in batch)
        x = torch.zeros(len(batch), T, 4)
        lengths = torch.tensor([len(t) for t in batch])
        for b, t in enumerate(batch):
            x[b, torch.arange(len(t)), torch.tensor(["ACGT".index(c) for c in t])] = 1.0
        return x, lengths

    class Net(torch.nn.Module):
        """The standard recipe (twin=False) or rnncli's configs/dna.yaml architecture (twin=True)."""

        def __init__(self, twin):
            super().__init__()
            self.twin = twin
            width = 96 if twin else 64
            self.embed = torch.nn.Linear(4, 16, bias=False) if twin else None  # one-hot @ E = an embedding
            self.lstm = torch.nn.LSTM(16 if twin else 4, width, num_layers=2 if twin else 1, batch_first=True,
                                      bidirectional=True, dropout=0.1 if twin else 0.0)
            self.drop = torch.nn.Dropout(0.1 if twin else 0.0)
            self.out = torch.nn.Linear(2 * width if twin else 4 * width, 1)

        def forward(self, x, lengths):
            if self.twin:
                x = self.embed(x)
            packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            h, _ = torch.nn.utils.rnn.pad_packed_sequence(self.lstm(packed)[0], batch_first=True)
            real = (torch.arange(h.shape[1])[None, :] < lengths[:, None]).unsqueeze(-1)
            max_pool = h.masked_fill(~real, -1e9).max(1).values
            if self.twin:
                return self.out(self.drop(max_pool))
            mean_pool = (h * real).sum(1) / lengths[:, None]
            return self.out(torch.cat([mean_pool, max_pool], -1))

    net = Net(twin)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3 if twin else 1e-3)
    decay = torch.optim.lr_scheduler.ExponentialLR(opt, 0.95 if twin else 1.0)
    target = torch.tensor((y - mean) / sd, dtype=torch.float32)
    vx, vl = one_hot(v_texts)

    def predict():
        net.eval()
        with torch.no_grad():
            z = net(vx, vl).numpy()
        net.train()
        return z * sd + mean

    rng = np.random.default_rng(seed)
    best, best_pred, start, steps = np.inf, None, time.perf_counter(), 0

    def select():
        nonlocal best, best_pred
        pred = predict()
        mse = float(np.mean((pred - v_y) ** 2))
        if mse < best:
            best, best_pred = mse, pred

    while time.perf_counter() - start < minutes * 60:
        for k in np.array_split(rng.permutation(len(texts)), len(texts) // 32):
            x, lengths = one_hot([texts[i] for i in k])
            loss = torch.nn.functional.mse_loss(net(x, lengths), target[k])
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            if twin and steps % 200 == 0:  # rnncli's eval_every
                select()
            if time.perf_counter() - start >= minutes * 60:
                break
        decay.step()
        select()  # and at every epoch's end, as rnncli does
    return regression_scores(v_y, best_pred, ["target"]), time.perf_counter() - start, steps


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--config", default=os.path.join(HERE, "..", "configs", "dna.yaml"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--peers", default="standard", help="comma-separated: standard, twin (or none)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        m, seconds = ours(os.path.abspath(args.config), args.minutes, args.threads, args.seed, tmp)
    rows = [("rnncli " + os.path.basename(args.config), m, seconds)]
    names = {"standard": "PyTorch BiLSTM 64, mean+max", "twin": "PyTorch twin of configs/dna.yaml"}
    for peer in [p for p in args.peers.split(",") if p in names]:
        t, t_seconds, steps = torch_peer(args.minutes, args.threads, args.seed, twin=peer == "twin")
        rows.append((f"{names[peer]} ({steps:,} steps)", t, t_seconds))
    print(f"ecoli-promoters valid (532 promoters), {args.minutes:g} min on {args.threads} threads, seed {args.seed}")
    print(f"{'model':<48} {'Pearson r':>9} {'Spearman':>9} {'MSE':>7} {'R²':>7} {'seconds':>8}")
    for name, s, sec in rows:
        print(f"{name:<48} {s['pearson']:>9.4f} {s['spearman']:>9.4f} {s['mse']:>7.4f} {s['r2']:>7.4f} {sec:>8.0f}")
    a = rows[0][1]
    for name, b, _ in rows[1:]:
        print(f"ratio rnncli / {name}: Pearson r {a['pearson'] / b['pearson']:.3f}, MSE {a['mse'] / b['mse']:.3f}")


if __name__ == "__main__":
    main()
