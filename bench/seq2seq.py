"""Encoder-decoders measured: English -> French (../shared/data/eng-fra) for rnncli and a PyTorch
model of the same architecture trained for the same wall time on the same batches, and the
dates task (sample_data/) to 99 % exact match.

    python bench/seq2seq.py [--budget 1200] [--only enfr|dates] [--limit-valid N]
    python bench/seq2seq.py --against DIR     # eng-fra training steps: this tree vs another checkout

eng-fra: tokenized as configs/translate.yaml's header says (word level, cased, min-freq 2);
both models: bidirectional GRU encoder 256, bridge, GRU decoder 256 with general attention,
embeddings 128, dropout 0.1 before the output layer, Adam 2e-3, batch 64, clip 5, the same batch
order. Both are decoded by rnncli's decode.py (the PyTorch model through a step adapter), so the
search is the same and the figures compare the models. BLEU and chrF: rnncli.bleu (equal to
sacreBLEU, 13a, cased) against the raw French lines of valid.tsv. PyTorch is optional
(pip install torch==2.13.0); without it only rnncli's side is printed.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from ab import alternate, other_tree  # noqa: E402

from rnncli.bleu import corpus_bleu, corpus_chrf  # noqa: E402
from rnncli.config import make_config  # noqa: E402
from rnncli.evaluate import evaluate_seq2seq, translate_split  # noqa: E402
from rnncli.models import load_model  # noqa: E402
from rnncli.text.batching import SequenceBatches, bucketed_batches, make_batch  # noqa: E402
from rnncli.text.encode import tokenize  # noqa: E402
from rnncli.text.vocab import PAD, join_tokens  # noqa: E402
from rnncli.train import train  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..")
DATA = os.path.join(ROOT, "..", "shared", "data")


def score(model, split, references, beam):
    t = time.perf_counter()
    decoded = translate_split(model, split, beam=beam, length_penalty=0.0)
    seconds = time.perf_counter() - t
    hyps = [join_tokens(h[0][0], model.target_level) for h in decoded]
    return {"bleu": corpus_bleu(hyps, references)["bleu"], "chrf": corpus_chrf(hyps, references),
            "sentences_per_s": len(hyps) / seconds, "sample": hyps[:3]}


# ---------------------------------------------------------------- the PyTorch twin


def torch_twin(Vs, Vt, E, H, dropout):
    import torch
    from torch import nn

    class Twin(nn.Module):
        def __init__(self):
            super().__init__()
            self.source_embedding, self.target_embedding = nn.Embedding(Vs, E), nn.Embedding(Vt, E)
            self.encoder = nn.GRU(E, H, bidirectional=True)
            self.bridge = nn.Linear(2 * H, H)
            self.decoder = nn.GRU(E, H)
            self.W_a = nn.Linear(2 * H, H, bias=False)
            self.W_c = nn.Linear(3 * H, H)
            self.head = nn.Linear(H, Vt)
            self.drop = nn.Dropout(dropout)

        def encode(self, source, mask):
            lengths = mask.sum(0).long().cpu()
            packed = nn.utils.rnn.pack_padded_sequence(self.source_embedding(source), lengths, enforce_sorted=False)
            out, h = self.encoder(packed)
            memory, _ = nn.utils.rnn.pad_packed_sequence(out, total_length=source.shape[0])
            return memory, torch.tanh(self.bridge(torch.cat([h[0], h[1]], -1)))[None]

        def attend(self, h, memory, mask):
            scores = torch.einsum("tbh,sbh->bts", h, self.W_a(memory))
            scores = scores.masked_fill(~mask.T.bool()[:, None, :], float("-inf"))
            context = torch.einsum("bts,sbk->tbk", scores.softmax(-1), memory)
            return torch.tanh(self.W_c(torch.cat([context, h], -1)))

        def forward(self, source, mask, target_in):
            memory, init = self.encode(source, mask)
            h, _ = self.decoder(self.target_embedding(target_in), init)
            return self.head(self.drop(self.attend(h, memory, mask)))

    return Twin()


class TwinDecoder:
    """The twin behind decode.py's start()/step() interface (NumPy in, NumPy out)."""

    def __init__(self, twin, target_tokens, target_level):
        import torch

        self.torch, self.twin = torch, twin.eval()
        self.target_tokens, self.target_level = target_tokens, target_level
        self._memory = (None, None)

    def start(self, source, mask):
        t = self.torch
        with t.no_grad():
            memory, init = self.twin.encode(t.from_numpy(source).long(), t.from_numpy(mask))
        return memory.numpy(), [(init[0].numpy(),)]

    def step(self, ids, states, memory, mask):
        t = self.torch
        if self._memory[0] is not memory:  # beam search repeats the memory once per batch
            self._memory = (memory, (t.from_numpy(memory), t.from_numpy(mask)))
        mem, msk = self._memory[1]
        with t.no_grad():
            h, _ = self.twin.decoder(self.twin.target_embedding(t.from_numpy(ids).long())[None],
                                     t.from_numpy(states[0][0])[None])
            logits = self.twin.head(self.twin.attend(h, mem, msk))[0]
        return logits.numpy(), [(h[0].numpy(),)]


def train_twin(ds, cfg, budget):
    import torch

    torch.manual_seed(cfg.seed)
    twin = torch_twin(len(ds.meta["vocab"]), len(ds.meta["target_vocab"]), cfg.embed, cfg.hidden, cfg.dropout)
    opt = torch.optim.Adam(twin.parameters(), lr=cfg.lr)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=PAD)
    batches = SequenceBatches(ds.train, cfg.batch_size, cfg.seed, "seq2seq")
    steps = tokens = 0
    start = time.perf_counter()
    epoch = 0
    while time.perf_counter() - start < budget:
        for _, (source, mask, target_in, target_out, target_mask) in batches.epoch(epoch, 0):
            twin.train()
            logits = twin(torch.from_numpy(source).long(), torch.from_numpy(mask), torch.from_numpy(target_in).long())
            loss = loss_fn(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(target_out).long().reshape(-1))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(twin.parameters(), cfg.clip)
            opt.step()
            steps, tokens = steps + 1, tokens + int(target_mask.sum())
            if time.perf_counter() - start >= budget:
                break
        epoch += 1
    seconds = time.perf_counter() - start
    return twin, {"steps": steps, "seconds": seconds, "target_tokens_per_s": tokens / seconds}


def twin_loss(twin, split):
    import torch

    twin.eval()
    total = count = 0.0
    with torch.no_grad():
        for index in bucketed_batches(split.lengths(), 64):
            source, mask, target_in, target_out, target_mask = make_batch(split, index, "seq2seq")
            logits = twin(torch.from_numpy(source).long(), torch.from_numpy(mask), torch.from_numpy(target_in).long())
            nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                    torch.from_numpy(target_out).long().reshape(-1),
                                                    ignore_index=PAD, reduction="sum")
            total, count = total + float(nll), count + float(target_mask.sum())
    return total / count


# ---------------------------------------------------------------- runs


def run_enfr(args):
    folder = os.path.join(DATA, "eng-fra")
    ds = tokenize([os.path.join(folder, "train.tsv")], valid_path=os.path.join(folder, "valid.tsv"), min_freq=2)
    valid = ds.valid
    if args.limit_valid:
        keep = np.arange(min(args.limit_valid, valid.num_sequences))
        valid = _subset(valid, keep)
    references = valid.target_texts
    cfg = make_config(os.path.join(ROOT, "configs", "translate.yaml"),
                      {"max_time": f"{args.budget}s", "eval_every": 10**9})
    out = os.path.join(args.keep or "/tmp", "bench_enfr.npz")
    ds.valid = None  # no validation inside the timed run: both sides spend the budget on training
    t = time.perf_counter()
    summary = train(cfg, ds, out, callback=None)
    ours_seconds = time.perf_counter() - t
    model, _, _ = load_model(out, which="param")
    ours = {"steps": summary["steps"], "seconds": ours_seconds}
    tokens = sum(int(make_batch(ds.train, i, "seq2seq")[4].sum()) for i in bucketed_batches(ds.train.lengths(), 64))
    epochs_done = summary["steps"] / -(-ds.train.num_sequences // cfg.batch_size)
    ours["target_tokens_per_s"] = tokens * epochs_done / summary["elapsed"]
    ours["loss"] = evaluate_seq2seq(model, valid, references)["loss"]
    for beam in (0, 5):
        ours[f"beam{beam}"] = score(model, valid, references, beam)
    print_side("rnncli", ours)
    try:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
    except ImportError:
        print("torch is not installed: no PyTorch twin")
        return
    twin, theirs = train_twin(ds, cfg, args.budget)
    theirs["loss"] = twin_loss(twin, valid)
    adapter = TwinDecoder(twin, ds.meta["target_vocab"], ds.meta["target_level"])
    for beam in (0, 5):
        theirs[f"beam{beam}"] = score(adapter, valid, references, beam)
    print_side(f"PyTorch {torch.__version__}", theirs)
    print(f"ratios rnncli/PyTorch: BLEU beam 5 {ours['beam5']['bleu'] / max(theirs['beam5']['bleu'], 1e-9):.2f}, "
          f"training tokens/s {ours['target_tokens_per_s'] / theirs['target_tokens_per_s']:.2f}, "
          f"greedy sentences/s {ours['beam0']['sentences_per_s'] / theirs['beam0']['sentences_per_s']:.2f}, "
          f"beam-5 sentences/s {ours['beam5']['sentences_per_s'] / theirs['beam5']['sentences_per_s']:.2f}")


def _subset(split, keep):
    from rnncli.text.dataset import Split

    src = [split.ids[split.offsets[i] : split.offsets[i + 1]] for i in keep]
    tgt = [split.targets[split.target_offsets[i] : split.target_offsets[i + 1]] for i in keep]
    return Split(np.concatenate(src).astype(np.int32), np.r_[0, np.cumsum([len(s) for s in src])].astype(np.int64),
                 targets=np.concatenate(tgt).astype(np.int32),
                 target_offsets=np.r_[0, np.cumsum([len(t) for t in tgt])].astype(np.int64),
                 target_texts=[split.target_texts[i] for i in keep])


def print_side(name, r):
    print(f"{name}: {r['steps']:,} steps in {r['seconds']:.0f} s, {r['target_tokens_per_s']:,.0f} target tokens/s; "
          f"valid loss {r['loss']:.3f}; greedy BLEU {r['beam0']['bleu']:.2f} chrF {r['beam0']['chrf']:.2f} "
          f"({r['beam0']['sentences_per_s']:.0f} sentences/s); beam 5 BLEU {r['beam5']['bleu']:.2f} "
          f"chrF {r['beam5']['chrf']:.2f} ({r['beam5']['sentences_per_s']:.0f} sentences/s)", flush=True)
    print(f"  first outputs: {r['beam5']['sample']}", flush=True)


def run_dates(args):
    samples = os.path.join(ROOT, "sample_data")
    ds = tokenize([os.path.join(samples, "dates.tsv")], valid_path=os.path.join(samples, "dates_valid.tsv"),
                  level="char")
    cfg = make_config(os.path.join(ROOT, "configs", "dates.yaml"))
    reached = {}

    def watch(p):
        if p.event == "eval" and p.metrics and p.metrics["exact_match"] >= 0.99 and "step" not in reached:
            reached.update(step=p.step, seconds=time.perf_counter() - t0, exact=p.metrics["exact_match"])

    t0 = time.perf_counter()
    summary = train(cfg, ds, os.path.join(args.keep or "/tmp", "bench_dates.npz"), callback=watch)
    print(f"dates: {summary['steps']:,} steps, {summary['elapsed']:.0f} s ({summary['stop']}); last exact match "
          f"{100 * summary['valid']['exact_match']:.2f} %; first reached 99 % at step {reached.get('step')} after "
          f"{reached.get('seconds', float('nan')):.0f} s (exact match {100 * reached.get('exact', 0):.2f} %)")


def _side(cfg_path, meta):
    """A model, its optimizer and the clipping function, from whatever rnncli is importable now."""
    from rnncli.config import make_config
    from rnncli.nn.optim import Optimizer, clip_global_norm
    from rnncli.tasks.build import build_model

    cfg = make_config(cfg_path)
    model, opt, rng = build_model(cfg, meta), Optimizer("adam", lr=cfg.lr), np.random.default_rng(0)
    return model, opt, clip_global_norm, rng


def run_against(args, steps=30):
    """Median training-step time on the same eng-fra batches, the two trees alternating."""
    folder = os.path.join(DATA, "eng-fra")
    ds = tokenize([os.path.join(folder, "train.tsv")], min_freq=2, valid_frac=0)
    config = os.path.join(ROOT, "configs", "translate.yaml")
    epoch = SequenceBatches(ds.train, 64, 0, "seq2seq").epoch(0, 0)
    batches = [next(epoch)[1] for _ in range(steps + 2)]
    sides = [_side(config, ds.meta)]
    with other_tree(args.against):
        sides.append(_side(config, ds.meta))

    def stepper(side):
        """Each side steps through its own copy of the same batch sequence."""
        (model, opt, clip, rng), own = side, iter(batches)

        def step():
            loss, grads = model.loss_and_grads(*next(own), rng=rng)
            clip(grads, 5.0)
            opt.step(model.params, grads)
        return step

    ours, theirs = alternate([stepper(side) for side in sides], steps)
    print(f"eng-fra training step (batch 64, configs/translate.yaml), median of {steps}: this tree "
          f"{1e3 * ours:.0f} ms, {args.against} {1e3 * theirs:.0f} ms: {theirs / ours:.2f}x")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=1200, help="seconds of training per model (eng-fra)")
    ap.add_argument("--only", choices=["enfr", "dates"])
    ap.add_argument("--limit-valid", type=int, default=0, help="score only the first N valid pairs (a quick look)")
    ap.add_argument("--keep", help="a folder for the checkpoints")
    ap.add_argument("--against", metavar="DIR", help="time eng-fra training steps against another checkout")
    args = ap.parse_args()
    if args.against:
        run_against(args)
        return
    if args.only in (None, "dates"):
        run_dates(args)
    if args.only in (None, "enfr"):
        run_enfr(args)


if __name__ == "__main__":
    main()
