"""Encoder-decoders measured: English -> French (../shared/data/eng-fra) for rnncli with
configs/translate.yaml against the standard PyTorch recipe trained for the same wall time, and the
dates task (sample_data/) to 99 % exact match.

    python bench/seq2seq.py [--budget 1200] [--only enfr|dates] [--limit-valid N]
    python bench/seq2seq.py --only enfr --set average=0.999 --no-twin   # try a setting, rnncli alone
    python bench/seq2seq.py --against DIR     # eng-fra training steps: this tree vs another checkout

eng-fra: tokenized as configs/translate.yaml's header says (word level, cased, min-freq 2). rnncli
trains configs/translate.yaml and is decoded greedily and as its config says (`beam`,
`length_penalty`: what `rnncli eval` uses). The PyTorch peer is the model a PyTorch user would
write, OpenNMT-py's RNN default (opennmt_model below: about 16 M parameters with this data):
embeddings 256, a bidirectional GRU encoder of 256 per direction, h0 = tanh(W [h_fwd; h_bwd]), a
GRU decoder of 512 with input feeding, Luong general attention, dropout 0.2 on the embeddings and
h~, uniform(+-0.1) initialisation, Adam 1e-3, clip 5, batches of 64 bucketed by length, training
pairs over 30 tokens left out; decoded greedily and with a beam of 5 under GNMT's length penalty
(alpha 0.6). Neither side validates inside its budget. Both are decoded by rnncli's decode.py (the
PyTorch model through a step adapter), so the search code is shared. BLEU, chrF and the brevity
penalty: rnncli.bleu (equal to sacreBLEU, 13a, cased) against the raw French lines of all of
valid.tsv. PyTorch is optional (pip install torch==2.13.0); without it only rnncli's side is printed.
"""

import argparse
import dataclasses
import os
import sys
import time

import numpy as np
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from ab import alternate, other_tree  # noqa: E402

from rnncli.bleu import corpus_bleu, corpus_chrf  # noqa: E402
from rnncli.config import make_config  # noqa: E402
from rnncli.decode import beam_search, decoding, greedy  # noqa: E402
from rnncli.evaluate import evaluate_seq2seq  # noqa: E402
from rnncli.models import load_model  # noqa: E402
from rnncli.text.batching import SequenceBatches, bucketed_batches, paired_batch  # noqa: E402
from rnncli.text.encode import tokenize  # noqa: E402
from rnncli.text.vocab import PAD, join_tokens  # noqa: E402
from rnncli.train import train  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..")
DATA = os.path.join(ROOT, "..", "shared", "data")


def gnmt(alpha):
    """GNMT's length normaliser ((5 + |y|) / 6)^alpha, the PyTorch recipe's beam (OpenNMT's default)."""
    return lambda n: ((5.0 + n) / 6.0) ** alpha


def decode_all(model, split, beam, length_penalty=0.0, normaliser=None):
    """The best hypothesis of every source of the split, in its order, and the seconds it took."""
    out = [None] * split.num_sequences
    t = time.perf_counter()
    for index in bucketed_batches(split.lengths(), 64):
        source, mask, *_ = paired_batch(split, index)
        if beam:
            hyps = [h[0][0] for h in beam_search(model, source, mask, beam, length_penalty, normaliser=normaliser)]
        else:
            hyps = greedy(model, source, mask)[0]
        for s, h in zip(index, hyps, strict=True):
            out[s] = h
    return out, time.perf_counter() - t


def score(model, split, references, beam, length_penalty=0.0, normaliser=None):
    decoded, seconds = decode_all(model, split, beam, length_penalty, normaliser)
    hyps = [join_tokens([model.target_tokens[i] for i in h], model.target_level) for h in decoded]
    bleu = corpus_bleu(hyps, references)
    return {"bleu": bleu["bleu"], "bp": bleu["brevity_penalty"], "chrf": corpus_chrf(hyps, references),
            "sentences_per_s": len(hyps) / seconds, "sample": hyps[:3]}


# ---------------------------------------------------------------- the PyTorch recipe


def opennmt_model(Vs, Vt, E=256, H=256, dropout=0.2):
    """OpenNMT-py's RNN default as a PyTorch user writes it: embeddings E -> a one-layer bidirectional
    GRU of H per direction; the decoder's start h0 = tanh(W [h_fwd; h_bwd]); a GRU decoder of 2H with
    input feeding ([E y<t-1>; h~<t-1>] in); Luong's general attention, h~ = tanh(W_c [c; h]); dropout
    on the embeddings and on h~; every weight uniform in +-0.1."""
    import torch
    from torch import nn

    class OpenNMT(nn.Module):
        def __init__(self):
            super().__init__()
            self.source_embedding = nn.Embedding(Vs, E, padding_idx=PAD)
            self.target_embedding = nn.Embedding(Vt, E, padding_idx=PAD)
            self.encoder = nn.GRU(E, H, bidirectional=True)
            self.bridge = nn.Linear(2 * H, 2 * H)
            self.cell = nn.GRUCell(E + 2 * H, 2 * H)
            self.W_a = nn.Linear(2 * H, 2 * H, bias=False)
            self.W_c = nn.Linear(4 * H, 2 * H, bias=False)
            self.head = nn.Linear(2 * H, Vt)
            self.drop = nn.Dropout(dropout)
            for p in self.parameters():
                nn.init.uniform_(p, -0.1, 0.1)

        def encode(self, source, mask):
            """source (S, B), mask (S, B) -> memory (S, B, 2H), h0 (B, 2H)."""
            lengths = mask.sum(0).long().cpu()
            packed = nn.utils.rnn.pack_padded_sequence(self.drop(self.source_embedding(source)), lengths,
                                                       enforce_sorted=False)
            out, h = self.encoder(packed)
            memory, _ = nn.utils.rnn.pad_packed_sequence(out, total_length=source.shape[0])
            return memory, torch.tanh(self.bridge(torch.cat([h[0], h[1]], -1)))

        def step(self, y, h, feed, memory, keys, real):
            """One decoder step: y (B,) previous tokens -> h~ (B, 2H) and the new state."""
            h = self.cell(torch.cat([self.drop(self.target_embedding(y)), feed], -1), h)
            scores = torch.einsum("bh,sbh->bs", h, keys).masked_fill(~real, float("-inf"))
            context = torch.einsum("bs,sbk->bk", scores.softmax(-1), memory)
            return self.drop(torch.tanh(self.W_c(torch.cat([context, h], -1)))), h

        def forward(self, source, mask, target_in):
            memory, h = self.encode(source, mask)
            keys, real = self.W_a(memory), mask.T.bool()  # general: h . W_a m<s>, W_a m<s> once per batch
            feed = memory.new_zeros(h.shape)
            outs = []
            for t in range(target_in.shape[0]):
                feed, h = self.step(target_in[t], h, feed, memory, keys, real)
                outs.append(feed)
            return self.head(torch.stack(outs))

    return OpenNMT()


class TwinDecoder:
    """The PyTorch model behind decode.py's start()/step() (NumPy in, NumPy out): states are
    [(h,), (h~,)], rows that beam search repeats and reorders."""

    def __init__(self, twin, target_tokens, target_level, max_target_ratio):
        import torch

        self.torch, self.twin = torch, twin.eval()
        self.target_tokens, self.target_level, self.max_target_ratio = target_tokens, target_level, max_target_ratio
        self._memory = (None, None)

    def start(self, source, mask):
        t = self.torch
        with t.no_grad():
            memory, h = self.twin.encode(t.from_numpy(source).long(), t.from_numpy(mask))
        return memory.numpy(), [(h.numpy(),), (np.zeros_like(h.numpy()),)]

    def step(self, ids, states, memory, mask):
        t = self.torch
        if self._memory[0] is not memory:  # beam search repeats the memory once per batch
            with t.no_grad():
                m = t.from_numpy(memory)
                self._memory = (memory, (m, self.twin.W_a(m), t.from_numpy(mask).T.bool()))
        m, keys, real = self._memory[1]
        with t.no_grad():
            feed, h = self.twin.step(t.from_numpy(ids).long(), t.from_numpy(states[0][0]),
                                     t.from_numpy(states[1][0]), m, keys, real)
            logits = self.twin.head(feed)
        return logits.numpy(), [(h.numpy(),), (feed.numpy(),)]


def short_pairs(split, limit=30):
    """The recipe leaves out training pairs with a side over `limit` tokens."""
    keep = np.flatnonzero((split.lengths() <= limit) & (np.diff(split.target_offsets) <= limit))
    return split.take(keep)


def train_twin(ds, budget, seed=0, lr=1e-3, batch_size=64, clip=5.0):
    import torch

    torch.manual_seed(seed)
    twin = opennmt_model(len(ds.meta["vocab"]), len(ds.meta["target_vocab"]))
    opt = torch.optim.Adam(twin.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=PAD)
    train_split = short_pairs(ds.train)
    batches = SequenceBatches(train_split, batch_size, seed, paired_batch)
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
            torch.nn.utils.clip_grad_norm_(twin.parameters(), clip)
            opt.step()
            steps, tokens = steps + 1, tokens + int(target_mask.sum())
            if time.perf_counter() - start >= budget:
                break
        epoch += 1
    seconds = time.perf_counter() - start
    params = sum(p.numel() for p in twin.parameters())
    return twin, {"steps": steps, "seconds": seconds, "target_tokens_per_s": tokens / seconds, "parameters": params,
                  "pairs": train_split.num_sequences}


def twin_loss(twin, split):
    import torch

    twin.eval()
    total = count = 0.0
    with torch.no_grad():
        for index in bucketed_batches(split.lengths(), 64):
            source, mask, target_in, target_out, target_mask = paired_batch(split, index)
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
        valid = valid.take(keep)
    references = valid.target_texts
    overrides = {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in args.set)}
    cfg = make_config(os.path.join(ROOT, "configs", "translate.yaml"),
                      {**overrides, "max_time": f"{args.budget}s", "eval_every": 10**9})
    if overrides:
        print(f"rnncli: configs/translate.yaml with {overrides}", flush=True)
    out = os.path.join(args.keep or "/tmp", "bench_enfr.npz")
    ds.valid = None  # no validation inside the timed run: both sides spend the budget on training
    t = time.perf_counter()
    summary = train(cfg, ds, out, callback=None)
    ours_seconds = time.perf_counter() - t
    model, _, _ = load_model(out, which="param")
    ours = {"steps": summary["steps"], "seconds": ours_seconds}
    tokens = sum(int(paired_batch(ds.train, i)[4].sum()) for i in bucketed_batches(ds.train.lengths(), 64))
    epochs_done = summary["steps"] / -(-ds.train.num_sequences // cfg.batch_size)
    ours["target_tokens_per_s"] = tokens * epochs_done / summary["elapsed"]
    ours["loss"] = evaluate_seq2seq(model, valid, references)["loss"]
    beam, alpha = decoding(dataclasses.asdict(cfg), None, None)  # the config's own decoding, as eval uses it
    ours["beam0"] = score(model, valid, references, 0)
    ours["beam"] = score(model, valid, references, beam or 5, alpha)
    ours["beam_how"] = f"beam {beam or 5}, mean per token^{alpha:g}"
    ours["parameters"] = sum(p.size for p in model.params.values())
    print_side("rnncli", ours)
    if cfg.average:  # the same run's weight average: what a validated run would keep
        averaged, _, _ = load_model(out, which="best")
        ours.update(loss=evaluate_seq2seq(averaged, valid, references)["loss"],
                    beam0=score(averaged, valid, references, 0),
                    beam=score(averaged, valid, references, beam or 5, alpha))
        print_side(f"rnncli, its weight average ({cfg.average:g})", ours)
    if args.no_twin:
        return
    try:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
    except ImportError:
        print("torch is not installed: no PyTorch model")
        return
    twin, theirs = train_twin(ds, args.budget)
    theirs["loss"] = twin_loss(twin, valid)
    adapter = TwinDecoder(twin, ds.meta["target_vocab"], ds.meta["target_level"], ds.meta["max_target_ratio"])
    theirs["beam0"] = score(adapter, valid, references, 0)
    theirs["beam"] = score(adapter, valid, references, 5, normaliser=gnmt(0.6))
    theirs["beam_how"] = "beam 5, GNMT alpha 0.6"
    print_side(f"PyTorch {torch.__version__} (OpenNMT-py's RNN recipe, {theirs['pairs']:,} pairs of <= 30 tokens)",
               theirs)
    print(f"ratios rnncli/PyTorch: BLEU beam {ours['beam']['bleu'] / max(theirs['beam']['bleu'], 1e-9):.2f}, "
          f"training tokens/s {ours['target_tokens_per_s'] / theirs['target_tokens_per_s']:.2f}, "
          f"greedy sentences/s {ours['beam0']['sentences_per_s'] / theirs['beam0']['sentences_per_s']:.2f}, "
          f"beam sentences/s {ours['beam']['sentences_per_s'] / theirs['beam']['sentences_per_s']:.2f}")


def print_side(name, r):
    g, b = r["beam0"], r["beam"]
    print(f"{name}: {r['parameters']:,} parameters; {r['steps']:,} steps in {r['seconds']:.0f} s, "
          f"{r['target_tokens_per_s']:,.0f} target tokens/s; valid loss {r['loss']:.3f}; greedy BLEU {g['bleu']:.2f} "
          f"chrF {g['chrf']:.2f} BP {g['bp']:.3f} ({g['sentences_per_s']:.0f} sentences/s); {r['beam_how']}: BLEU "
          f"{b['bleu']:.2f} chrF {b['chrf']:.2f} BP {b['bp']:.3f} ({b['sentences_per_s']:.0f} sentences/s)", flush=True)
    print(f"  first outputs: {b['sample']}", flush=True)


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
    epoch = SequenceBatches(ds.train, 64, 0, paired_batch).epoch(0, 0)
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
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="eng-fra: a change to configs/translate.yaml for rnncli's side (repeatable)")
    ap.add_argument("--no-twin", action="store_true", help="eng-fra: rnncli's side only")
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
