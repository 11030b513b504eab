"""Spoken digits (../shared/data/fsdd): rnncli with configs/digits.yaml against the standard PyTorch
recipe on the same log-mel features for the same wall time, and the speed of the features
themselves against librosa.

    python bench/digits.py [--minutes 5] [--threads 2] [--seed 0] [--skip-torch] [--only features]

The PyTorch peer is what the issue names as the standard recipe: a 2-layer bidirectional LSTM of
128 units over the 40 log-mel bands (25 ms windows every 10 ms, normalised with the training
split's statistics, as rnncli's), masked mean pooling, a linear layer, Adam 2e-3, batches of 32,
keeping the weights of its best validation accuracy (needs `pip install torch`). Both train on
train.jsonl, select and are scored on valid.jsonl (FSDD's official test takes are not in ../shared).
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

from rnncli.frames.audio import DEFAULTS, log_mel, read_audio  # noqa: E402

DATA = os.path.join(HERE, "..", "..", "shared", "data", "fsdd")


def manifest(name):
    records = [json.loads(line) for line in open(os.path.join(DATA, name), encoding="utf-8")]
    return [os.path.join(DATA, r["audio"]) for r in records], [int(r["label"]) for r in records]


def features_speed(repeats=3):
    """Seconds of audio turned into 40 log-mel bands per second of work: rnncli against librosa
    (the same settings), over the first 300 training recordings, the median of `repeats` passes."""
    import librosa

    paths, _ = manifest("train.jsonl")
    clips = [read_audio(p) for p in paths[:300]]
    seconds = sum(len(x) / rate for x, rate in clips)

    def ours():
        for x, rate in clips:
            log_mel(x, rate)

    def theirs():
        for x, rate in clips:
            power = librosa.feature.melspectrogram(y=x, sr=rate, n_fft=256, hop_length=80, win_length=200,
                                                   window="hann", center=False, n_mels=40, htk=True, norm="slaney")
            np.log(power + 1e-10)

    out = {}
    for name, run in (("rnncli", ours), ("librosa", theirs)):
        run()  # warm up (librosa's first call compiles)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            run()
            times.append(time.perf_counter() - t)
        out[name] = seconds / float(np.median(times))
    return out, seconds


def ours(minutes, threads, seed, tmp):
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
    run = [sys.executable, "-m", "rnncli"]
    subprocess.run([*run, "tokenize", f"{DATA}/train.jsonl", "--valid", f"{DATA}/valid.jsonl", "-o", "d.npz", "-q"],
                   cwd=tmp, check=True, env=env)
    start = time.perf_counter()
    subprocess.run([*run, "train", "-d", "d.npz", "-o", "m.npz", "--config", os.path.join(HERE, "..", "configs",
                    "digits.yaml"), "--max-time", f"{minutes}m", "--seed", str(seed), "-q"], cwd=tmp, check=True,
                   env=env)
    seconds = time.perf_counter() - start
    out = subprocess.run([*run, "eval", "-m", "m.npz", f"{DATA}/valid.jsonl", "--json", "-q"], cwd=tmp, check=True,
                         env=env, capture_output=True, text=True).stdout
    return json.loads(out)["accuracy"], seconds


def torch_peer(minutes, threads, seed):
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(threads)

    def load(name):
        paths, labels = manifest(name)
        return [log_mel(*read_audio(p), top_db=DEFAULTS["top_db"]) for p in paths], np.array(labels)  # as tokenize

    xs, y = load("train.jsonl")
    vxs, vy = load("valid.jsonl")
    total = np.concatenate(xs)
    mean, sd = total.mean(0), total.std(0)

    def batch(frames):
        lengths = torch.tensor([len(f) for f in frames])
        x = torch.zeros(len(frames), int(lengths.max()), frames[0].shape[1])
        for b, f in enumerate(frames):
            x[b, : len(f)] = torch.from_numpy((f - mean) / sd)
        return x, lengths

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(40, 128, num_layers=2, batch_first=True, bidirectional=True)
            self.out = torch.nn.Linear(256, 10)

        def forward(self, x, lengths):
            packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            h, _ = torch.nn.utils.rnn.pad_packed_sequence(self.lstm(packed)[0], batch_first=True)
            real = (torch.arange(h.shape[1])[None, :] < lengths[:, None]).unsqueeze(-1)
            return self.out((h * real).sum(1) / lengths[:, None])

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    vx, vl = batch(vxs)
    rng = np.random.default_rng(seed)
    best, start, steps = 0.0, time.perf_counter(), 0
    while time.perf_counter() - start < minutes * 60:
        for k in np.array_split(rng.permutation(len(xs)), len(xs) // 32):
            x, lengths = batch([xs[i] for i in k])
            loss = torch.nn.functional.cross_entropy(net(x, lengths), torch.from_numpy(y[k]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            if time.perf_counter() - start >= minutes * 60:
                break
        net.eval()
        with torch.no_grad():
            accuracy = float((net(vx, vl).argmax(1).numpy() == vy).mean())
        net.train()
        best = max(best, accuracy)
    return best, time.perf_counter() - start, steps


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-torch", action="store_true")
    p.add_argument("--only", choices=("features", "train"))
    args = p.parse_args()
    if args.only != "train":
        speed, seconds = features_speed()
        print(f"log-mel features of {seconds:.0f} s of FSDD audio: rnncli {speed['rnncli']:,.0f} s of audio per "
              f"second, librosa {speed['librosa']:,.0f}; ratio {speed['rnncli'] / speed['librosa']:.2f}")
    if args.only == "features":
        return
    with tempfile.TemporaryDirectory() as tmp:
        accuracy, seconds = ours(args.minutes, args.threads, args.seed, tmp)
    print(f"fsdd valid (300 recordings), {args.minutes:g} min on {args.threads} threads, seed {args.seed}")
    print(f"rnncli configs/digits.yaml: accuracy {100 * accuracy:.2f} % ({seconds:.0f} s)")
    if not args.skip_torch:
        t_accuracy, t_seconds, steps = torch_peer(args.minutes, args.threads, args.seed)
        print(f"PyTorch BiLSTM 2x128, mean pooling: accuracy {100 * t_accuracy:.2f} % ({t_seconds:.0f} s, "
              f"{steps:,} steps)")
        print(f"errors rnncli / PyTorch: {(1 - accuracy) / max(1 - t_accuracy, 1e-9):.2f}")


if __name__ == "__main__":
    main()
