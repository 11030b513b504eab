"""Speech recognition on connected spoken digits: rnncli with configs/asr.yaml against a PyTorch model
of the same architecture, trained for the same wall time on the same features, then both decoded.

    python bench/asr.py [--minutes 20] [--threads 2] [--seed 0] [--skip-torch] [--keep DIR] [--conditions]
        [--augment "--noise-db -30 --gain-db 10 --time-masks 2 --freq-masks 2"]

Data: sample_data/make_connected_digits.py over ../shared/data/fsdd with its defaults (3,000
training utterances from the training recordings; 300 valid utterances from the valid recordings;
300 test utterances that join the valid recordings in other combinations, FSDD's own test takes
being hidden). Both models read the frames `rnncli tokenize` wrote (40 log-mel bands every 10 ms,
normalised with the training split's statistics) and train on the same length-bucketed batches.

The PyTorch twin is configs/asr.yaml's model written the way a PyTorch user writes Listen, Attend
and Spell: two frames stacked, Linear(80, 64); three bidirectional nn.LSTM(128) layers over packed
sequences, neighbouring outputs joined in pairs between them (the pyramid); the top layer's final
states bridged to the decoder by tanh(W [h_fwd; h_bwd]) (and W' for the cell); one nn.LSTM(128)
decoder layer over 64-d word embeddings; Luong general attention, h~ = tanh(W_c [c; h]); dropout
0.1; Adam 2e-3, gradient norm clipped at 5, batches of 32; the weights of its best validation
loss kept, validated as often as rnncli (every 500 steps and at each epoch's end). Both decode
with rnncli's decode.py (greedy, beam 5), so the decoders differ only in who computes a step.

Reported: WER, CER and sentence accuracy on valid and test for greedy and beam 5; steps; and the
real-time factor of decoding (seconds of computation per second of audio, one batch of 64 valid
utterances, median of 3) for both.

--augment: training options of rnncli's frames/augment.py added to the config's; the twin's batches
are augmented by the same code, so both train on the same augmented frames. --conditions: the same
300 valid utterances (the same words, speakers, takes and pause draws) made again under each
condition of CONDITIONS by the generator, and both models' WER with beam 5 on each.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from rnncli.decode import beam_search, greedy  # noqa: E402
from rnncli.metrics import error_rates  # noqa: E402
from rnncli.text.batching import SequenceBatches, bucketed_batches, padded_inputs, paired_batch  # noqa: E402
from rnncli.text.vocab import PAD, join_tokens  # noqa: E402

FSDD = os.path.join(HERE, "..", "..", "shared", "data", "fsdd")
CONFIG = os.path.join(HERE, "..", "configs", "asr.yaml")
GENERATOR = os.path.join(HERE, "..", "sample_data", "make_connected_digits.py")
QUIET, LEVEL = ["--noise-db", "-70", "--gain-db", "0", "0"], ["--gain-db", "0", "0"]
CONDITIONS = {  # name -> the generator's options for the valid utterances
    "digital silence": ["--clean"],
    **{f"floor {db} dBFS": ["--noise-db", str(db), *LEVEL] for db in (-70, -60, -50, -40, -30)},
    **{f"gain {g:+d} dB": ["--noise-db", "-70", "--gain-db", str(g), str(g)] for g in (-12, 0, 12)},
    "pauses 20-80 ms": ["--pause-ms", "20", "80", *QUIET],
    "pauses 300-800 ms": ["--pause-ms", "300", "800", *QUIET],
    "0.5 s of silence at both ends": ["--clean", "--ends-ms", "500", "500"],
    "0.5 s of noise at both ends (-50 dBFS)": ["--noise-db", "-50", *LEVEL, "--ends-ms", "500", "500"],
}


def run(args, cwd, env, capture=False):
    out = subprocess.run([sys.executable, "-m", "rnncli", *args], cwd=cwd, check=True, env=env,
                         capture_output=capture, text=True)
    return out.stdout


def ours(minutes, seed, tmp, env, augment=()):
    start = time.perf_counter()
    run(["train", "-d", "asr.npz", "-o", "asr_model.npz", "--config", CONFIG, "--max-time", f"{minutes}m",
         "--seed", str(seed), *augment, "-q"], tmp, env)
    seconds = time.perf_counter() - start
    scores = {}
    for split in ("valid", "test"):
        for beam in (0, 5):
            m = json.loads(run(["eval", "-m", "asr_model.npz", f"seq/{split}.jsonl", "--beam", str(beam), "--json",
                                "-q"], tmp, env, capture=True))
            scores[split, beam] = m
    info = json.loads(run(["inspect", "asr_model.npz", "--json"], tmp, env, capture=True))
    return scores, seconds, info


# ---------------------------------------------------------------- the PyTorch twin


def torch_twin(frame_dim, vocab, cfg):
    import torch
    from torch import nn

    H, E, k = cfg["hidden"], cfg["embed"], cfg["stack_frames"]

    def join(h, lengths, n):
        """(B, T, F) with lengths -> (B, ceil(T/n), n F): neighbouring steps side by side, zeros past the end."""
        B, T, F = h.shape
        steps = -(-T // n)
        real = (torch.arange(T)[None, :] < lengths[:, None]).unsqueeze(-1)
        h = nn.functional.pad(h * real, (0, 0, 0, steps * n - T))
        return h.reshape(B, steps, n * F), (lengths + n - 1) // n

    class Twin(nn.Module):
        def __init__(self):
            super().__init__()
            self.project = nn.Linear(frame_dim * k, E)
            self.encoder = nn.ModuleList([nn.LSTM(E if i == 0 else 4 * H, H, batch_first=True, bidirectional=True)
                                          for i in range(cfg["layers"])])
            self.bridge_h, self.bridge_c = nn.Linear(2 * H, H), nn.Linear(2 * H, H)
            self.embedding = nn.Embedding(len(vocab), E, padding_idx=PAD)
            self.decoder = nn.LSTM(E, H, batch_first=True)
            self.W_a = nn.Linear(2 * H, H, bias=False)
            self.W_c = nn.Linear(3 * H, H)
            self.head = nn.Linear(H, len(vocab))
            self.drop = nn.Dropout(cfg["dropout"])

        def encode(self, x, lengths):
            """x (B, S, D) frames, lengths (B,) -> memory (B, S', 2H), its lengths, decoder (h0, c0)."""
            x, lengths = join(x, lengths, k)
            h = self.project(x)
            for i, lstm in enumerate(self.encoder):
                if i > 0:  # the pyramid: pairs of the layer below's outputs, then dropout as between layers
                    h, lengths = join(h, lengths, 2)
                    h = self.drop(h)
                packed = nn.utils.rnn.pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False)
                out, (h_n, c_n) = lstm(packed)
                h = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=h.shape[1])[0]
            h0 = torch.tanh(self.bridge_h(torch.cat([h_n[0], h_n[1]], -1)))[None]
            c0 = self.bridge_c(torch.cat([c_n[0], c_n[1]], -1))[None]
            return h, lengths, (h0, c0)

        def attend(self, h, memory, lengths):
            scores = h @ self.W_a(memory).transpose(1, 2)  # (B, T, S')
            real = torch.arange(memory.shape[1])[None, None, :] < lengths[:, None, None]
            alpha = torch.softmax(scores.masked_fill(~real, -math.inf), -1)
            return torch.tanh(self.W_c(torch.cat([alpha @ memory, h], -1)))

        def forward(self, x, lengths, target_in):
            memory, m_lengths, state = self.encode(x, lengths)
            h, _ = self.decoder(self.embedding(target_in), state)
            return self.head(self.drop(self.attend(h, memory, m_lengths)))

    return Twin()


class TwinDecoder:
    """The twin behind decode.py's start()/step()/memory_mask() (NumPy in, NumPy out, time-major)."""

    def __init__(self, twin, max_target_ratio, reduction):
        import torch

        self.torch, self.twin, self.max_target_ratio, self.reduction = torch, twin.eval(), max_target_ratio, reduction
        self._memory = (None, None)

    def memory_mask(self, mask):
        lengths = -(-mask.sum(axis=0).astype(np.int64) // self.reduction)
        return (np.arange(-(-mask.shape[0] // self.reduction))[:, None] < lengths[None]).astype(np.float32)

    def start(self, source, mask):
        t = self.torch
        with t.no_grad():
            x = t.from_numpy(np.ascontiguousarray(source.transpose(1, 0, 2))).float()
            memory, _, (h0, c0) = self.twin.encode(x, t.from_numpy(mask.sum(axis=0).astype(np.int64)))
        return np.ascontiguousarray(memory.numpy().transpose(1, 0, 2)), [(h0[0].numpy(), c0[0].numpy())]  # (S', B, 2H)

    def step(self, ids, states, memory, mask):
        t = self.torch
        if self._memory[0] is not memory:  # beam search repeats the memory once per batch
            lengths = t.from_numpy(mask.sum(axis=0).astype(np.int64))
            self._memory = (memory, (t.from_numpy(memory).transpose(0, 1), lengths))
        mem, lengths = self._memory[1]
        with t.no_grad():
            h, (h_n, c_n) = self.twin.decoder(self.twin.embedding(t.from_numpy(ids).long())[:, None],
                                              (t.from_numpy(states[0][0])[None], t.from_numpy(states[0][1])[None]))
            logits = self.twin.head(self.twin.attend(h, mem, lengths))[:, 0]
        return logits.numpy(), [(h_n[0].numpy(), c_n[0].numpy())]


def twin_loss(twin, split, loss_fn):
    import torch

    total = count = 0.0
    twin.eval()
    with torch.no_grad():
        for index in bucketed_batches(split.lengths(), 64):
            x, lengths, t_in, t_out, t_mask = torch_batch(paired_batch(split, index))
            logits = twin(x, lengths, t_in)
            n = float(t_mask.sum())
            total += float(loss_fn(logits.reshape(-1, logits.shape[-1]), t_out.reshape(-1))) * n
            count += n
    twin.train()
    return total / count


def torch_batch(batch):
    """rnncli's time-major batch -> batch-first torch tensors."""
    import torch

    source, mask, t_in, t_out, t_mask = batch
    return (torch.from_numpy(np.ascontiguousarray(source.transpose(1, 0, 2))).float(),
            torch.from_numpy(mask.sum(axis=0).astype(np.int64)), torch.from_numpy(t_in.T.astype(np.int64)),
            torch.from_numpy(t_out.T.astype(np.int64)), t_mask.T)


def train_twin(ds, cfg, minutes, seed, eval_every):
    import torch

    from rnncli.config import TrainConfig
    from rnncli.frames.augment import Augmentation, FrameAugmenter

    torch.manual_seed(seed)
    twin = torch_twin(ds.meta["frame_dim"], ds.meta["target_vocab"], cfg)
    opt = torch.optim.Adam(twin.parameters(), lr=cfg["lr"])
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=PAD)
    augmentation = Augmentation.of(TrainConfig(**cfg))  # rnncli's own, drawn alike
    batches = SequenceBatches(ds.train, cfg["batch_size"], seed, paired_batch,
                              augment=augmentation and FrameAugmenter(augmentation, ds.meta, seed))
    best, best_state, steps, epoch = math.inf, None, 0, 0
    start = time.perf_counter()

    def validate():
        nonlocal best, best_state
        loss = twin_loss(twin, ds.valid, loss_fn)
        if loss < best:
            best, best_state = loss, {k: v.clone() for k, v in twin.state_dict().items()}

    while time.perf_counter() - start < minutes * 60:
        for _, batch in batches.epoch(epoch, 0):
            x, lengths, t_in, t_out, _ = torch_batch(batch)
            logits = twin(x, lengths, t_in)
            loss = loss_fn(logits.reshape(-1, logits.shape[-1]), t_out.reshape(-1))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(twin.parameters(), cfg["clip"])
            opt.step()
            steps += 1
            if steps % eval_every == 0:
                validate()
            if time.perf_counter() - start >= minutes * 60:
                break
        else:
            validate()  # each epoch's end, as rnncli
        epoch += 1
    validate()
    twin.load_state_dict(best_state)
    return twin.eval(), steps, time.perf_counter() - start, best


def decode_all(model, split, beam):
    out = [None] * split.num_sequences
    for index in bucketed_batches(split.lengths(), 64):
        source, mask = padded_inputs(split, index)
        if beam:
            hyps = [h[0][0] for h in beam_search(model, source, mask, beam)]
        else:
            hyps = greedy(model, source, mask)[0]
        for s, h in zip(index, hyps, strict=True):
            out[s] = h
    return out


def real_time_factor(model, split, beam, repeats=3):
    """Seconds of computation per second of audio: one batch of the first 64 utterances."""
    index = np.arange(min(64, split.num_sequences))
    source, mask = padded_inputs(split, index)
    audio = float(mask.sum()) / 100.0  # 100 frames a second
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        beam_search(model, source, mask, beam) if beam else greedy(model, source, mask)
        times.append(time.perf_counter() - t)
    return float(np.median(times)) / audio


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-torch", action="store_true")
    p.add_argument("--keep", help="write the data and the model here instead of a temporary folder")
    p.add_argument("--augment", default="", help="rnncli training options that augment the frames (both models)")
    p.add_argument("--conditions", action="store_true", help="score both models on the valid utterances remade "
                   "under each condition")
    args = p.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "OPENBLAS_NUM_THREADS": str(args.threads)}
    tmp = args.keep or tempfile.mkdtemp(prefix="asr_bench_")
    os.makedirs(tmp, exist_ok=True)
    subprocess.run([sys.executable, os.path.join(HERE, "..", "sample_data", "make_connected_digits.py"), FSDD,
                    "-o", os.path.join(tmp, "seq")], check=True)
    run(["tokenize", "seq/train.jsonl", "--valid", "seq/valid.jsonl", "-o", "asr.npz", "-q"], tmp, env)
    print(f"connected digits from {os.path.abspath(FSDD)}; {args.minutes:g} min of training each on "
          f"{args.threads} threads, seed {args.seed}; data and models in {tmp}", flush=True)
    scores, seconds, info = ours(args.minutes, args.seed, tmp, env, args.augment.split())
    rows = []
    for split in ("valid", "test"):
        for beam in (0, 5):
            m = scores[split, beam]
            rows.append(("rnncli", split, beam, m["wer"], m["cer"], m["sentence_accuracy"]))
    steps = info["history"][-1]["step"] if info.get("history") else None
    print(f"rnncli configs/asr.yaml: {steps} steps in {seconds:.0f} s (train + startup)", flush=True)

    from rnncli.models import load_model
    from rnncli.text.encode import tokenize
    from rnncli.text.store import load_dataset

    model, meta, _ = load_model(os.path.join(tmp, "asr_model.npz"))
    ds = load_dataset(os.path.join(tmp, "asr.npz"))
    test = tokenize([os.path.join(tmp, "seq", "test.jsonl")], valid_frac=0, reuse=ds.meta).train
    splits = {"valid": ds.valid, "test": test}
    rtf = {("rnncli", beam): real_time_factor(model, ds.valid, beam) for beam in (0, 5)}
    matrix = {}
    if args.conditions:
        for k, (name, options) in enumerate(CONDITIONS.items()):
            folder = f"cond{k}"
            subprocess.run([sys.executable, GENERATOR, FSDD, "-o", os.path.join(tmp, folder), "--train", "0",
                            "--valid", "300", "--test", "0", *options], check=True, capture_output=True)
            m = json.loads(run(["eval", "-m", "asr_model.npz", f"{folder}/valid.jsonl", "--beam", "5", "--json",
                                "-q"], tmp, env, capture=True))
            matrix[name] = {"rnncli": m["wer"], "folder": folder}
            print(f"  {name}: rnncli WER {100 * m['wer']:.2f} %", flush=True)
    if not args.skip_torch:
        import torch

        torch.set_num_threads(args.threads)
        cfg = meta["config"]
        twin, t_steps, t_seconds, t_loss = train_twin(ds, cfg, args.minutes, args.seed, cfg["eval_every"])
        print(f"PyTorch twin: {t_steps} steps in {t_seconds:.0f} s, best valid loss {t_loss:.4f}", flush=True)
        decoder = TwinDecoder(twin, ds.meta["max_target_ratio"], model.reduction)
        for split in ("valid", "test"):
            refs = [join_tokens([ds.meta["target_vocab"][i] for i in splits[split].targets[a:b]], "word")
                    for a, b in zip(splits[split].target_offsets[:-1], splits[split].target_offsets[1:], strict=True)]
            for beam in (0, 5):
                hyps = [join_tokens([ds.meta["target_vocab"][i] for i in h], "word")
                        for h in decode_all(decoder, splits[split], beam)]
                e = error_rates(hyps, refs)
                rows.append(("PyTorch", split, beam, e["wer"], e["cer"],
                             float(np.mean([h == r for h, r in zip(hyps, refs, strict=True)]))))
        for beam in (0, 5):
            rtf["PyTorch", beam] = real_time_factor(decoder, ds.valid, beam)
        for row in matrix.values():
            split = tokenize([os.path.join(tmp, row["folder"], "valid.jsonl")], valid_frac=0, reuse=ds.meta).train
            refs = [join_tokens([ds.meta["target_vocab"][i] for i in split.targets[a:b]], "word")
                    for a, b in zip(split.target_offsets[:-1], split.target_offsets[1:], strict=True)]
            hyps = [join_tokens([ds.meta["target_vocab"][i] for i in h], "word") for h in decode_all(decoder, split, 5)]
            row["PyTorch"] = error_rates(hyps, refs)["wer"]
    print("\n| model | split | decoding | WER % | CER % | sentences right % |\n|---|---|---|---|---|---|")
    for who, split, beam, wer, cer, acc in rows:
        print(f"| {who} | {split} | {'beam 5' if beam else 'greedy'} | {100 * wer:.2f} | {100 * cer:.2f} | "
              f"{100 * acc:.2f} |")
    if matrix:
        print("\n| valid utterances (300), remade with | rnncli WER % | PyTorch WER % |\n|---|---|---|")
        for name, row in matrix.items():
            theirs = f"{100 * row['PyTorch']:.2f}" if "PyTorch" in row else "-"
            print(f"| {name} | {100 * row['rnncli']:.2f} | {theirs} |")
    print("\nreal-time factor (s of computation per s of audio, 64 valid utterances in one batch, median of 3):")
    for beam in (0, 5):
        line = f"  {'beam 5' if beam else 'greedy'}: rnncli {rtf['rnncli', beam]:.4f}"
        if ("PyTorch", beam) in rtf:
            line += (f", PyTorch {rtf['PyTorch', beam]:.4f}; PyTorch / rnncli "
                     f"{rtf['PyTorch', beam] / rtf['rnncli', beam]:.2f}")
        print(line)


if __name__ == "__main__":
    main()
