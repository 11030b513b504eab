"""Language-model quality in a fixed wall-clock budget, and sampling speed, against PyTorch.

    python bench/lm.py [--budget 600] [--config configs/char-lm.yaml] [--skip-quality] [--skip-sampling]

Quality: a character-level model on ../shared/data/tinyshakespeare (train.txt, scored on
valid.txt), trained for `--budget` seconds with rnncli and then, when PyTorch is importable,
with the same architecture, batching (contiguous streams, truncated BPTT with the state
carried), optimizer, clipping and budget in PyTorch. Both report the best validation loss
(nats per character) seen at their evaluations.

Sampling: tokens per second generating one token at a time at batch 1 (embedding, one LSTM
layer, softmax, sampling), hidden 256 and 512, for both.
"""

import argparse
import math
import os
import statistics
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from rnncli.config import make_config  # noqa: E402
from rnncli.sample import generate  # noqa: E402
from rnncli.tasks.lm import LanguageModel  # noqa: E402
from rnncli.text.batching import lm_chunks, lm_streams  # noqa: E402
from rnncli.text.encode import tokenize  # noqa: E402
from rnncli.text.vocab import EOS, Vocab  # noqa: E402
from rnncli.train import train  # noqa: E402

DATA = os.path.join(ROOT, "..", "shared", "data", "tinyshakespeare")


def ours(ds, cfg):
    with tempfile.TemporaryDirectory() as tmp:
        summary = train(cfg, ds, os.path.join(tmp, "model.npz"))
    return summary["best_score"], summary["steps"], summary["elapsed"]


def theirs(ds, cfg, budget):
    import torch

    torch.manual_seed(cfg.seed)
    V = len(ds.meta["vocab"])
    rnn_class = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cfg.cell]

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(V, cfg.embed)
            self.rnn = rnn_class(cfg.embed, cfg.hidden, cfg.layers, dropout=cfg.dropout if cfg.layers > 1 else 0)
            self.drop = torch.nn.Dropout(cfg.dropout)
            self.head = torch.nn.Linear(cfg.hidden, V)

        def forward(self, x, state):
            out, state = self.rnn(self.emb(x), state)
            return self.head(self.drop(out)), state

    model = Model()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    x, y = lm_streams(ds.train.ids, cfg.batch_size)
    vx, vy = lm_streams(ds.valid.ids, cfg.batch_size)

    def detach(s):
        return tuple(t.detach() for t in s) if isinstance(s, tuple) else s.detach()

    def evaluate():
        model.eval()
        total, count, state = 0.0, 0, None
        with torch.no_grad():
            for _, xc, yc in lm_chunks(vx, vy, cfg.seq_len):
                logits, state = model(torch.from_numpy(xc.astype(np.int64)), state)
                total += torch.nn.functional.cross_entropy(logits.reshape(-1, V), torch.from_numpy(
                    yc.astype(np.int64)).reshape(-1), reduction="sum").item()
                count += yc.size
        model.train()
        return total / count

    best, step, t0, elapsed = math.inf, 0, time.perf_counter(), 0.0
    while elapsed < budget:
        state = None
        for _, xc, yc in lm_chunks(x, y, cfg.seq_len):
            logits, state = model(torch.from_numpy(xc.astype(np.int64)), state)
            state = detach(state)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), torch.from_numpy(yc.astype(np.int64))
                                                     .reshape(-1))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()
            step += 1
            elapsed = time.perf_counter() - t0
            if step % cfg.eval_every == 0 or elapsed >= budget:
                best = min(best, evaluate())
                elapsed = time.perf_counter() - t0
            if elapsed >= budget:
                break
    return best, step, elapsed


def sampling_speed(H, n=3000, repeats=3):
    V = 65
    vocab = Vocab(["<pad>", "<unk>", "<bos>", "<eos>"] + [chr(33 + i) for i in range(V - 4)])
    model = LanguageModel(V, np.random.default_rng(0), 64, H, "lstm", 1)
    model.head.params["b"][EOS] = -1e4  # an untrained model must not stop early
    rates = []
    for r in range(repeats):
        rng = np.random.default_rng(r)
        t = time.perf_counter()
        count = sum(1 for _ in generate(model, vocab, "char", "", 1.0, max_len=n, rng=rng))
        rates.append(count / (time.perf_counter() - t))
    return statistics.median(rates)


def torch_sampling_speed(H, n=3000, repeats=3):
    import torch

    V = 65
    emb, lstm, head = torch.nn.Embedding(V, 64), torch.nn.LSTM(64, H), torch.nn.Linear(H, V)
    rates = []
    with torch.no_grad():
        for _ in range(repeats):
            x, state = torch.tensor([[EOS]]), None
            t = time.perf_counter()
            for _ in range(n):
                out, state = lstm(emb(x), state)
                p = torch.softmax(head(out[0, 0]), -1)
                x = torch.multinomial(p, 1).view(1, 1)
            rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=600, help="seconds of training for each side")
    ap.add_argument("--config", default=os.path.join(ROOT, "configs", "char-lm.yaml"))
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--skip-sampling", action="store_true")
    args = ap.parse_args()
    try:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        have_torch = True
    except ImportError:
        have_torch = False
    print(f"numpy {np.__version__}" + (f", torch {torch.__version__}" if have_torch else ", no torch"))
    if not args.skip_sampling:
        print("sampling, batch 1, one LSTM layer, 65 symbols (median tokens/s)")
        for H in (256, 512):
            a = sampling_speed(H)
            line = f"  hidden {H}: rnncli {a:8.0f}"
            if have_torch:
                b = torch_sampling_speed(H)
                line += f"   torch {b:8.0f}   ratio {a / b:.2f}x"
            print(line, flush=True)
    if not args.skip_quality:
        if not os.path.isdir(DATA):
            sys.exit(f"no data at {DATA}")
        ds = tokenize([os.path.join(DATA, "train.txt")], valid_path=os.path.join(DATA, "valid.txt"))
        cfg = make_config(args.config, {"max_time": f"{args.budget}s", "epochs": 1000})
        print(f"quality: tinyshakespeare, {cfg.cell} {cfg.layers}x{cfg.hidden}, seq {cfg.seq_len}, batch "
              f"{cfg.batch_size}, {cfg.optimizer} lr {cfg.lr}, budget {args.budget:.0f} s each", flush=True)
        loss, steps, secs = ours(ds, cfg)
        print(f"  rnncli: best valid loss {loss:.4f} nats/char ({loss / math.log(2):.3f} bpc), {steps} steps "
              f"in {secs:.0f} s ({steps / secs:.2f} steps/s)", flush=True)
        if have_torch:
            loss_t, steps_t, secs_t = theirs(ds, cfg, args.budget)
            print(f"  torch:  best valid loss {loss_t:.4f} nats/char ({loss_t / math.log(2):.3f} bpc), {steps_t} "
                  f"steps in {secs_t:.0f} s ({steps_t / secs_t:.2f} steps/s); rnncli/torch steps/s "
                  f"{(steps / secs) / (steps_t / secs_t):.2f}x", flush=True)


if __name__ == "__main__":
    main()
