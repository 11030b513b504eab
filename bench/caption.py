"""Image captioning on real handwritten digits (issue 47): rnncli's two readings of an image beside
the PyTorch model a user would write for it, on the same scenes and the same minutes.

    python bench/caption.py [--minutes 10] [--keep DIR] [--skip-torch] [--variants whole,attending]

Data: sample_data/make_digit_scenes.py on ../shared/data/optdigits (12,000 train scenes, 1,000 valid,
1,000 test; the three splits use different rows of the digits file, so no digit image is shared).
rnncli trains with configs/caption.yaml for --minutes (its max_time), once as the config says and
once with the other reading of the image (--attention none / general); valid selects the weights.
PyTorch: a small CNN (two 3x3 convolutions of 32 and 64 channels, each with a ReLU and a 2x2 max
pool) whose flattened features set an LSTM decoder's h0 and c0 through a linear layer; embedding
32, hidden 256, teacher forcing, Adam 2e-3, batches of 64, greedy decoding; the weights of its best
valid loss, checked every epoch; 2 threads, the same minutes. Everyone is scored by the same code:
exact match, BLEU (rnncli.bleu, tested equal to sacreBLEU) and per-digit accuracy (each "<digit>
<row> <column>" phrase of the reference found in the output: rnncli.metrics.scene_accuracy).
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
ROOT = os.path.join(HERE, "..")
OPTDIGITS = os.path.join(ROOT, "..", "shared", "data", "optdigits")
sys.path.insert(0, ROOT)


def rnncli(*args, cwd):
    r = subprocess.run([sys.executable, "-m", "rnncli", *map(str, args)], cwd=cwd, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"rnncli {' '.join(map(str, args))}: {r.stderr.strip()[-800:]}")
    return r.stdout


def scenes(folder):
    out = os.path.join(folder, "scenes")
    if not os.path.exists(os.path.join(out, "test.jsonl")):
        subprocess.run([sys.executable, os.path.join(ROOT, "sample_data", "make_digit_scenes.py"), OPTDIGITS, "-o",
                        out], check=True)
    return out


def run_rnncli(folder, data, variant, minutes):
    attention = {"whole": "none", "attending": "general"}[variant]
    model = f"caption_{variant}.npz"
    started = time.perf_counter()
    summary = json.loads(rnncli("train", "-d", data, "-o", model, "--config", os.path.join(ROOT, "configs",
                                "caption.yaml"), "--attention", attention, "--max-time", f"{minutes}m", "--force",
                                "--quiet", "--json", cwd=folder))
    seconds = time.perf_counter() - started
    scores = {split: json.loads(rnncli("eval", "-m", model, f"scenes/{split}.jsonl", "--json", cwd=folder))
              for split in ("valid", "test")}
    return {"seconds": seconds, "steps": summary.get("steps"), **{
        split: {k: s.get(k) for k in ("exact_match", "bleu", "object_accuracy")} for split, s in scores.items()}}


def read_split(folder, split):
    from rnncli.frames.images import read_image

    records = [json.loads(line) for line in open(os.path.join(folder, f"{split}.jsonl"), encoding="utf-8")]
    images = np.stack([read_image(os.path.join(folder, r["image"]))[:, :, 0] for r in records]).astype(np.float32)
    return images, [r["text"] for r in records]


def run_torch(folder, minutes, seed=0):
    import torch
    from torch import nn

    from rnncli.bleu import corpus_bleu
    from rnncli.metrics import scene_accuracy

    torch.manual_seed(seed)
    torch.set_num_threads(2)
    train_x, train_y = read_split(folder, "train")
    words = ["<pad>", "<bos>", "<eos>"] + sorted({w for t in train_y for w in t.split()})
    index = {w: k for k, w in enumerate(words)}

    def encode(texts):
        ids = [[1] + [index[w] for w in t.split()] + [2] for t in texts]
        width = max(map(len, ids))
        return torch.tensor([row + [0] * (width - len(row)) for row in ids])

    class Captioner(nn.Module):
        def __init__(self):
            super().__init__()
            self.cnn = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                     nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
            self.h0, self.c0 = nn.Linear(64 * 16, 256), nn.Linear(64 * 16, 256)
            self.embed = nn.Embedding(len(words), 32)
            self.lstm = nn.LSTM(32, 256)
            self.head = nn.Linear(256, len(words))

        def start(self, x):
            f = self.cnn(x[:, None])
            return torch.tanh(self.h0(f))[None], self.c0(f)[None]

        def forward(self, x, y_in):  # y_in (T, B)
            h, _ = self.lstm(self.embed(y_in), self.start(x))
            return self.head(h)

        @torch.no_grad()
        def greedy(self, x, limit=40):
            state, prev, out = self.start(x), torch.full((x.shape[0],), 1), []
            for _ in range(limit):
                h, state = self.lstm(self.embed(prev)[None], state)
                prev = self.head(h[0]).argmax(-1)
                out.append(prev)
            ids = torch.stack(out, 1).tolist()
            return [" ".join(words[i] for i in row[:row.index(2)] if i > 2) if 2 in row else
                    " ".join(words[i] for i in row if i > 2) for row in ids]

    model = Captioner()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss(ignore_index=0)
    X, Y = torch.from_numpy(train_x), encode(train_y)
    valid_x, valid_y = read_split(folder, "valid")
    VX, VY = torch.from_numpy(valid_x), encode(valid_y)
    best, best_state, steps, started = float("inf"), None, 0, time.perf_counter()
    while time.perf_counter() - started < 60 * minutes:
        order = torch.randperm(len(X))
        for k in range(0, len(X), 64):
            if time.perf_counter() - started >= 60 * minutes:
                break
            b = order[k:k + 64]
            y = Y[b].T  # (T, B)
            logits = model(X[b], y[:-1])
            loss = loss_fn(logits.reshape(-1, len(words)), y[1:].reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
        with torch.no_grad():
            vy = VY.T
            valid_loss = float(loss_fn(model(VX, vy[:-1]).reshape(-1, len(words)), vy[1:].reshape(-1)))
        if valid_loss < best:
            best, best_state = valid_loss, {k: v.clone() for k, v in model.state_dict().items()}
    seconds = time.perf_counter() - started
    model.load_state_dict(best_state)
    out = {"seconds": seconds, "steps": steps}
    for split in ("valid", "test"):
        x, refs = read_split(folder, split)
        hyps = model.greedy(torch.from_numpy(x))
        out[split] = {"exact_match": float(np.mean([h == r for h, r in zip(hyps, refs, strict=True)])),
                      "bleu": corpus_bleu(hyps, refs)["bleu"], "object_accuracy": scene_accuracy(hyps, refs)}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--keep", help="a folder for the scenes and models (scenes reused)")
    ap.add_argument("--skip-torch", action="store_true")
    ap.add_argument("--variants", default="whole,attending")
    args = ap.parse_args()
    folder = args.keep or tempfile.mkdtemp(prefix="rnncli-caption-")
    os.makedirs(folder, exist_ok=True)
    scene_dir = scenes(folder)
    rnncli("tokenize", "scenes/train.jsonl", "--valid", "scenes/valid.jsonl", "-o", "scenes.npz", "--target-level",
           "word", "--force", "--quiet", cwd=folder)
    rows = {}
    for variant in args.variants.split(","):
        rows[f"rnncli, {variant}"] = run_rnncli(folder, "scenes.npz", variant, args.minutes)
        print(f"rnncli, {variant}: {json.dumps(rows[f'rnncli, {variant}'])}", flush=True)
    if not args.skip_torch:
        rows["PyTorch, CNN + LSTM"] = run_torch(scene_dir, args.minutes)
        print(f"PyTorch: {json.dumps(rows['PyTorch, CNN + LSTM'])}", flush=True)
    print(f"\n{'':24} {'minutes':>7} {'steps':>7} | valid: {'exact %':>8} {'BLEU':>6} {'digits %':>8} | "
          f"test: {'exact %':>8} {'BLEU':>6} {'digits %':>8}")
    for name, r in rows.items():
        cells = " | ".join(f"{split}: {100 * r[split]['exact_match']:>8.2f} {r[split]['bleu']:>6.2f} "
                           f"{100 * r[split]['object_accuracy']:>8.2f}" for split in ("valid", "test"))
        print(f"{name:24} {r['seconds'] / 60:>7.2f} {r['steps'] or 0:>7} | {cells}")


if __name__ == "__main__":
    main()
