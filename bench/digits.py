"""Spoken digits (../shared/data/fsdd): rnncli with configs/digits.yaml against the standard PyTorch
recipe on the same log-mel features for the same wall time, and the speed of the features
themselves against librosa.

    python bench/digits.py [--minutes 5] [--threads 2] [--seed 0] [--skip-torch] [--only features]
        [--augment "--noise-db -30 --gain-db 10 --time-masks 2 --freq-masks 2"] [--conditions]

The PyTorch peer is what the issue names as the standard recipe: a 2-layer bidirectional LSTM of
128 units over the 40 log-mel bands (25 ms windows every 10 ms, normalised with the training
split's statistics, as rnncli's), masked mean pooling, a linear layer, Adam 2e-3, batches of 32,
keeping the weights of its best validation accuracy (needs `pip install torch`). Both train on
train.jsonl, select and are scored on valid.jsonl (FSDD's official test takes are not in ../shared).

--augment: rnncli training options of frames/augment.py, added to the config's; the PyTorch peer's
batches are augmented by the same code (FrameAugmenter, drawn per recording and epoch). --conditions:
300 single digits made from the valid recordings by sample_data/make_connected_digits.py under each
condition of bench/asr.py's CONDITIONS that applies to one digit (not the pauses between digits), and
both models' accuracy on each.
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
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def conditions(tmp):
    """{condition: its manifest of 300 labelled single digits}, made from the valid recordings."""
    from asr import CONDITIONS

    out = {}
    for k, (name, options) in enumerate(CONDITIONS.items()):
        if name.startswith("pauses"):
            continue
        folder = os.path.join(tmp, f"cond{k}")
        subprocess.run([sys.executable, os.path.join(HERE, "..", "sample_data", "make_connected_digits.py"), DATA,
                        "-o", folder, "--train", "0", "--valid", "300", "--test", "0", "--max-digits", "1",
                        *options], check=True, capture_output=True)
        records = [json.loads(line) for line in open(os.path.join(folder, "valid.jsonl"), encoding="utf-8")]
        with open(os.path.join(folder, "labelled.jsonl"), "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps({"audio": r["audio"], "label": str(WORDS.index(r["text"]))}) + "\n")
        out[name] = os.path.join(folder, "labelled.jsonl")
    return out


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


def ours(minutes, threads, seed, tmp, augment=(), matrix=None):
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
    run = [sys.executable, "-m", "rnncli"]
    subprocess.run([*run, "tokenize", f"{DATA}/train.jsonl", "--valid", f"{DATA}/valid.jsonl", "-o", "d.npz", "-q"],
                   cwd=tmp, check=True, env=env)
    start = time.perf_counter()
    subprocess.run([*run, "train", "-d", "d.npz", "-o", "m.npz", "--config", os.path.join(HERE, "..", "configs",
                    "digits.yaml"), "--max-time", f"{minutes}m", "--seed", str(seed), *augment, "-q"], cwd=tmp,
                   check=True, env=env)
    seconds = time.perf_counter() - start
    scored = {}
    for name, path in {"valid": f"{DATA}/valid.jsonl", **(matrix or {})}.items():
        out = subprocess.run([*run, "eval", "-m", "m.npz", path, "--json", "-q"], cwd=tmp, check=True, env=env,
                             capture_output=True, text=True).stdout
        scored[name] = json.loads(out)["accuracy"]
    return scored, seconds


def torch_peer(minutes, threads, seed, augment=(), matrix=None):
    import torch

    from rnncli.config import TrainConfig
    from rnncli.frames.augment import Augmentation, FrameAugmenter

    torch.manual_seed(seed)
    torch.set_num_threads(threads)

    def load(name):
        paths, labels = manifest(name)
        return [log_mel(*read_audio(p), top_db=DEFAULTS["top_db"]) for p in paths], np.array(labels)  # as tokenize

    xs, y = load("train.jsonl")
    vxs, vy = load("valid.jsonl")
    total = np.concatenate(xs)
    mean, sd = total.mean(0), total.std(0)
    flags = dict(zip([a.lstrip("-").replace("-", "_") for a in augment[::2]], map(float, augment[1::2]), strict=True))
    augmentation = Augmentation.of(TrainConfig(**{k: int(v) if k.startswith(("time_mask", "freq_mask")) else v
                                                  for k, v in flags.items()}))
    rate = read_audio(manifest("train.jsonl")[0][0])[1]
    augmenter = augmentation and FrameAugmenter(augmentation, {"frame_mean": mean.tolist(), "frame_std": sd.tolist(),
                                                               "audio": {**DEFAULTS, "sample_rate": rate}}, seed)

    def batch(frames, index=None, epoch=0):
        lengths = torch.tensor([len(f) for f in frames])
        x = np.zeros((len(frames), int(lengths.max()), frames[0].shape[1]), np.float32)
        for b, f in enumerate(frames):
            x[b, : len(f)] = (f - mean) / sd
        if index is not None and augmenter is not None:  # rnncli's augmentation, time-major
            mask = (np.arange(x.shape[1])[:, None] < lengths.numpy()[None, :]).astype(np.float32)
            x = augmenter(x.transpose(1, 0, 2), mask, index, epoch).transpose(1, 0, 2)
        return torch.from_numpy(np.ascontiguousarray(x)), lengths

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
    best, best_state, start, steps, epoch = 0.0, None, time.perf_counter(), 0, 0
    while time.perf_counter() - start < minutes * 60:
        for k in np.array_split(rng.permutation(len(xs)), len(xs) // 32):
            x, lengths = batch([xs[i] for i in k], k, epoch)
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
        if accuracy > best:
            best, best_state = accuracy, {k: v.clone() for k, v in net.state_dict().items()}
        epoch += 1
    seconds = time.perf_counter() - start
    net.load_state_dict(best_state)
    net.eval()
    scored = {"valid": best}
    for name, path in (matrix or {}).items():
        records = [json.loads(line) for line in open(path, encoding="utf-8")]
        folder = os.path.dirname(path)
        x, lengths = batch([log_mel(*read_audio(os.path.join(folder, r["audio"])), top_db=DEFAULTS["top_db"])
                            for r in records])
        with torch.no_grad():
            scored[name] = float((net(x, lengths).argmax(1).numpy() == np.array([int(r["label"]) for r in records]))
                                 .mean())
    return scored, seconds, steps


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-torch", action="store_true")
    p.add_argument("--only", choices=("features", "train"))
    p.add_argument("--augment", default="", help="rnncli training options that augment the frames (both models)")
    p.add_argument("--conditions", action="store_true", help="score both models on digits remade under conditions")
    args = p.parse_args()
    augment = args.augment.split()
    if args.only != "train":
        speed, seconds = features_speed()
        print(f"log-mel features of {seconds:.0f} s of FSDD audio: rnncli {speed['rnncli']:,.0f} s of audio per "
              f"second, librosa {speed['librosa']:,.0f}; ratio {speed['rnncli'] / speed['librosa']:.2f}")
    if args.only == "features":
        return
    with tempfile.TemporaryDirectory() as tmp:
        matrix = conditions(tmp) if args.conditions else None
        scored, seconds = ours(args.minutes, args.threads, args.seed, tmp, augment, matrix)
        print(f"fsdd valid (300 recordings), {args.minutes:g} min on {args.threads} threads, seed {args.seed}"
              f"{', augmented: ' + args.augment if augment else ''}")
        print(f"rnncli configs/digits.yaml: accuracy {100 * scored['valid']:.2f} % ({seconds:.0f} s)")
        theirs = None
        if not args.skip_torch:
            theirs, t_seconds, steps = torch_peer(args.minutes, args.threads, args.seed, augment, matrix)
            print(f"PyTorch BiLSTM 2x128, mean pooling: accuracy {100 * theirs['valid']:.2f} % ({t_seconds:.0f} s, "
                  f"{steps:,} steps)")
            print(f"errors rnncli / PyTorch: {(1 - scored['valid']) / max(1 - theirs['valid'], 1e-9):.2f}")
    if matrix:
        print("\n| 300 single digits, remade with | rnncli accuracy % | PyTorch accuracy % |\n|---|---|---|")
        for name in matrix:
            print(f"| {name} | {100 * scored[name]:.2f} | {f'{100 * theirs[name]:.2f}' if theirs else '-'} |")


if __name__ == "__main__":
    main()
