"""Training and prediction speed of the models users train, against the same models in PyTorch.

    python bench/task_speed.py [--only ner,sentiment,ptb] [--steps 40] [--rounds 5] [--no-profile]

ner        configs/ner.yaml's tagger on WikiANN English (train.conll, --min-freq 2): word embedding
           100, character CNN (24-d characters, 64 filters of width 3, max-pooled), BiLSTM 128,
           dropout 0.5, word dropout 0.05, CRF with the IOB2 moves forbidden, batch 32.
sentiment  configs/sentiment.yaml's classifier on SST-2 (train.tsv, lower-cased, --min-freq 2):
           embedding 128, BiLSTM 128, max pool, dropout 0.4, word dropout 0.1, one sigmoid output,
           batch 64.
ptb        a word-level language model on ../shared/data/ptb (V = 10,000): Zaremba et al.'s "small"
           model, embedding 200, 2 x LSTM 200, truncated BPTT 35, batch 20; here the softmax head
           over 10,000 words is most of the arithmetic.

Both sides: Adam (lr of the config), global-norm clipping at 5, and for the taggers and classifiers
the weight average (decay 0.999) the configs keep. The batches are rnncli's (the same bucketed
batches, characters and masks), made inside the timed step on both sides; the PyTorch side packs
its padded batches (pack_padded_sequence), as a PyTorch user writes a masked BiLSTM. Threads:
NumPy's BLAS and torch both use every core (2 on the CI machines).

Training: one round = --steps steps of one side, then of the other (after warm-up steps); the
median over --rounds rounds, as tokens/s, and the ratio. Prediction: the valid (ner: test) split,
batch 64, eval mode: tags by Viterbi (ner) or class probabilities (sentiment), sentences/s.
Profile (unless --no-profile): where one training step's time goes on each side, by phase.
PyTorch code lives only in this benchmark (the `bench` extra installs torch).
"""

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from rnncli.config import make_config  # noqa: E402
from rnncli.nn.optim import Optimizer, clip_global_norm  # noqa: E402
from rnncli.tasks.build import build_model  # noqa: E402
from rnncli.tasks.registry import task_named  # noqa: E402
from rnncli.text.batching import (  # noqa: E402
    SequenceBatches,
    StreamBatches,
    bucketed_batches,
    labelled_batch,
    tagged_batch,
)
from rnncli.text.encode import tokenize  # noqa: E402
from rnncli.text.vocab import SPECIALS, UNK  # noqa: E402

DATA = os.path.join(ROOT, "..", "shared", "data")
PTB = dict(task="lm", cell="lstm", layers=2, hidden=200, embed=200, dropout=0.0, seq_len=35, batch_size=20,
           optimizer="adam", lr=1e-3, clip=5.0)


# ---------------------------------------------------------------- the two sides of one task


class Side:
    """One side of a comparison: step() trains on the next batch; phases (when profiling) maps a
    phase name to the seconds it took."""

    phases = None

    def endless(self, batches):
        epoch = 0
        while True:
            for _, batch in batches.epoch(epoch, 0):
                yield batch
            epoch += 1


class Ours(Side):
    def __init__(self, cfg, ds):
        self.cfg, self.task = cfg, "lm" if cfg.task == "lm" else cfg.task
        self.model = build_model(cfg, ds.meta)
        self.opt = Optimizer(cfg.optimizer, lr=cfg.lr, weight_decay=cfg.weight_decay, average=cfg.average)
        self.rng = np.random.default_rng(1)
        if self.task == "lm":
            from rnncli.text.batching import stream_ids

            self.batches = self.endless(StreamBatches(stream_ids(ds.train, ds.meta["format"]), cfg.batch_size,
                                                      cfg.seq_len))
        else:
            task = task_named(self.task)
            self.batches = self.endless(SequenceBatches(ds.train, cfg.batch_size, cfg.seed,
                                                        lambda s, i: task.make_batch(s, i, cfg.char_features)))
        self.carry, self.clip = None, clip_global_norm

    def step(self):
        batch = next(self.batches)
        if self.task == "lm":
            x, y = batch
            loss, grads, finals = self.model.loss_and_grads(x, y, self.carry, train=True, rng=self.rng)
            self.carry = finals
            tokens = x.size
        else:
            loss, grads = self.model.loss_and_grads(*batch, rng=self.rng)
            tokens = int(batch[1].sum())
        self.clip(grads, self.cfg.clip)
        self.opt.step(self.model.params, grads, self.cfg.lr)
        return tokens

    def predict(self, split):
        task_named(self.task).predict(self.model, split, char_features=self.cfg.char_features)

    def profile(self):
        """Time each phase by wrapping the model's parts (instance attributes, this process only)."""
        self.phases = defaultdict(float)
        m = self.model

        def timed(obj, name, phase):
            inner = getattr(obj, name)

            def wrapper(*a, **k):
                t = time.perf_counter()
                try:
                    return inner(*a, **k)
                finally:
                    self.phases[phase] += time.perf_counter() - t

            setattr(obj, name, wrapper)

        timed(m.embedding, "forward", "embedding")
        timed(m.embedding, "backward", "embedding")
        timed(m.rnn, "forward", "recurrent forward")
        timed(m.rnn, "backward", "recurrent backward")
        timed(m.head, "forward", "output layer")
        timed(m.head, "backward", "output layer")
        if getattr(m, "char_encoder", None):
            timed(m, "_char_features", "character features")
            timed(m, "_char_backward", "character features")
        if getattr(m, "crf", False):
            import rnncli.tasks.tag as tag

            inner = tag.crf_nll
            tag.crf_nll = lambda *a, **k: self._time("CRF", inner, *a, **k)
        if self.task == "lm":
            import rnncli.tasks.lm as lm

            inner_ce = lm.softmax_cross_entropy
            lm.softmax_cross_entropy = lambda *a, **k: self._time("softmax + loss", inner_ce, *a, **k)
        timed(self.opt, "step", "optimizer (+ average)")
        batches = self.batches
        self.batches = (self._time("batching", next, batches) for _ in iter(int, 1))
        clip = self.clip
        self.clip = lambda *a: self._time("clipping", clip, *a)

    def _time(self, phase, f, *a, **k):
        t = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            self.phases[phase] += time.perf_counter() - t


def torch_side(task, cfg, ds):
    import torch

    torch.manual_seed(0)
    return {"tag": TorchTagger, "classify": TorchClassifier, "lm": TorchLM}[task](cfg, ds)


class Theirs(Side):
    """The PyTorch twins share this loop: next batch, forward, backward, clip, Adam, average."""

    def setup(self, cfg, ds, net, batches):
        import torch

        self.torch, self.cfg, self.net = torch, cfg, net
        self.params = list(net.parameters())
        self.opt = torch.optim.Adam(self.params, lr=cfg.lr)
        self.average = [p.detach().clone() for p in self.params] if cfg.average else None
        self.batches = batches

    def mark(self, phase, t0):
        """Add the time since t0 to phase (when profiling); -> now."""
        now = time.perf_counter()
        if self.phases is not None:
            self.phases[phase] += now - t0
        return now

    def step(self):
        torch = self.torch
        t = time.perf_counter()
        batch = next(self.batches)
        t = self.mark("batching", t)
        self.net.train()
        loss, tokens = self.loss(batch)
        t = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        t = self.mark("backward (all parts, autograd)", t)
        torch.nn.utils.clip_grad_norm_(self.params, self.cfg.clip)
        t = self.mark("clipping", t)
        self.opt.step()
        if self.average is not None:
            with torch.no_grad():
                torch._foreach_lerp_(self.average, self.params, 1 - self.cfg.average)
        self.mark("optimizer (+ average)", t)
        return tokens

    def profile(self):
        self.phases = defaultdict(float)


def word_dropout(torch, ids, rate):
    if rate <= 0:
        return ids
    drop = (torch.rand(ids.shape) < rate) & (ids >= len(SPECIALS))
    return torch.where(drop, UNK, ids)


def packed_bilstm(torch, rnn, x, mask):
    """x (T, B, D) padded, mask (T, B) -> outputs (T, B, 2H), zeros at padding."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    lengths = mask.sum(0).long()
    out, _ = rnn(pack_padded_sequence(x, lengths, enforce_sorted=False))
    return pad_packed_sequence(out, total_length=x.shape[0])[0]


class TorchTagger(Theirs):
    def __init__(self, cfg, ds):
        import torch
        from torch import nn

        from rnncli.tasks.tag import bio_transitions

        V, C, K = len(ds.meta["vocab"]), len(ds.meta["chars"]), len(ds.meta["tags"])
        F = 2 * cfg.char_hidden
        net = nn.ModuleDict({"emb": nn.Embedding(V, cfg.embed), "cemb": nn.Embedding(C, cfg.char_embed),
                             "conv": nn.Conv1d(cfg.char_embed, F, 3, padding=1),
                             "rnn": nn.LSTM(cfg.embed + F, cfg.hidden, bidirectional=True),
                             "head": nn.Linear(2 * cfg.hidden, K)})
        net.crf = nn.ParameterDict({k: nn.Parameter(torch.zeros(s)) for k, s in
                                    (("start", K), ("trans", (K, K)), ("end", K))})
        may_start, may_follow = bio_transitions(ds.meta["tags"])
        self.forbid_start, self.forbid = torch.from_numpy(~may_start), torch.from_numpy(~may_follow)
        self.drop = nn.Dropout(cfg.dropout)
        tagged = self.endless(SequenceBatches(ds.train, cfg.batch_size, cfg.seed,
                                              lambda s, i: tagged_batch(s, i, True)))
        self.setup(cfg, ds, net, tagged)

    def emissions(self, ids, mask, chars, cmask):
        torch, n = self.torch, self.net
        T, B = ids.shape
        t = time.perf_counter()
        x = n["emb"](ids)
        t = self.mark("embedding", t)
        c = n["cemb"](chars) * cmask[:, :, None]  # (Lc, N, C): past a word's end, zeros
        z = n["conv"](c.permute(1, 2, 0))  # (N, F, Lc)
        z = z.masked_fill(~cmask.T.bool()[:, None, :], float("-inf"))
        has = cmask.bool().any(0)[:, None]
        feats = torch.where(has, torch.tanh(z.max(dim=2).values), 0.0)
        x = self.drop(torch.cat([x, feats.reshape(T, B, -1)], dim=-1))
        t = self.mark("character features", t)
        h = self.drop(packed_bilstm(torch, n["rnn"], x, mask))
        t = self.mark("recurrent forward", t)
        out = n["head"](h)
        self.mark("output layer", t)
        return out

    def scores(self):
        crf = self.net.crf
        return (crf["start"].masked_fill(self.forbid_start, float("-inf")),
                crf["trans"].masked_fill(self.forbid, float("-inf")), crf["end"])

    def loss(self, batch):
        torch = self.torch
        ids, mask, tags, chars, cmask = (torch.from_numpy(np.asarray(a)) for a in batch)
        ids = word_dropout(torch, ids.long(), self.cfg.word_dropout)
        E = self.emissions(ids, mask, chars.long(), cmask)
        t = time.perf_counter()
        start, trans, end = self.scores()
        m, tags = mask.bool(), tags.long()
        # log Z by the forward recursion; a padded step carries alpha unchanged
        alpha = start + E[0]
        for s in range(1, E.shape[0]):
            nxt = torch.logsumexp(alpha[:, :, None] + trans, dim=1) + E[s]
            alpha = torch.where(m[s, :, None], nxt, alpha)
        log_z = torch.logsumexp(alpha + end, dim=1)
        # the gold path's score
        B = ids.shape[1]
        emit = E.gather(2, tags[:, :, None])[:, :, 0]
        gold = start[tags[0]] + (emit * mask).sum(0)
        gold = gold + (trans[tags[:-1], tags[1:]] * mask[1:]).sum(0)
        last = tags[mask.sum(0).long() - 1, torch.arange(B)]
        loss = (log_z - gold - end[last]).mean()
        self.mark("CRF", t)
        return loss, int(mask.sum())

    def predict(self, split):
        torch = self.torch
        self.net.eval()
        with torch.no_grad():
            start, trans, end = self.scores()
            for index in bucketed_batches(split.lengths(), 64):
                ids, mask, _, chars, cmask = (torch.from_numpy(np.asarray(a)) for a in
                                              tagged_batch(split, index, True))
                E = self.emissions(ids.long(), mask, chars.long(), cmask)
                m = mask.bool()
                score, back = start + E[0], []
                for s in range(1, E.shape[0]):  # Viterbi
                    best, arg = (score[:, :, None] + trans).max(dim=1)
                    back.append(arg)
                    score = torch.where(m[s, :, None], best + E[s], score)
                score = score + end
                path = [score.argmax(1)]
                for s in range(E.shape[0] - 1, 0, -1):
                    prev = back[s - 1].gather(1, path[-1][:, None])[:, 0]
                    path.append(torch.where(m[s], prev, path[-1]))
                path.reverse()


class TorchClassifier(Theirs):
    def __init__(self, cfg, ds):
        from torch import nn

        V = len(ds.meta["vocab"])
        net = nn.ModuleDict({"emb": nn.Embedding(V, cfg.embed),
                             "rnn": nn.LSTM(cfg.embed, cfg.hidden, bidirectional=True),
                             "head": nn.Linear(2 * cfg.hidden, 1)})
        self.drop = nn.Dropout(cfg.dropout)
        self.setup(cfg, ds, net, self.endless(SequenceBatches(ds.train, cfg.batch_size, cfg.seed, labelled_batch)))

    def logits(self, ids, mask):
        torch, n = self.torch, self.net
        t = time.perf_counter()
        x = n["emb"](ids)
        t = self.mark("embedding", t)
        h = packed_bilstm(torch, n["rnn"], x, mask)
        t = self.mark("recurrent forward", t)
        pooled = h.masked_fill(~mask.bool()[:, :, None], float("-inf")).max(dim=0).values
        out = n["head"](self.drop(pooled))[:, 0]
        self.mark("output layer", t)
        return out

    def loss(self, batch):
        torch = self.torch
        ids, mask, labels = (torch.from_numpy(np.asarray(a)) for a in batch)
        ids = word_dropout(torch, ids.long(), self.cfg.word_dropout)
        logits = self.logits(ids, mask)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels.float()), int(mask.sum())

    def predict(self, split):
        torch = self.torch
        self.net.eval()
        with torch.no_grad():
            for index in bucketed_batches(split.lengths(), 64):
                ids, mask, _ = (torch.from_numpy(np.asarray(a)) for a in labelled_batch(split, index))
                torch.sigmoid(self.logits(ids.long(), mask))


class TorchLM(Theirs):
    def __init__(self, cfg, ds):
        from torch import nn

        from rnncli.text.batching import stream_ids

        V = len(ds.meta["vocab"])
        net = nn.ModuleDict({"emb": nn.Embedding(V, cfg.embed),
                             "rnn": nn.LSTM(cfg.embed, cfg.hidden, num_layers=cfg.layers),
                             "head": nn.Linear(cfg.hidden, V)})
        self.state = None
        batches = StreamBatches(stream_ids(ds.train, ds.meta["format"]), cfg.batch_size, cfg.seq_len)
        self.setup(cfg, ds, net, self.endless(batches))

    def loss(self, batch):
        torch, n = self.torch, self.net
        x, y = (torch.from_numpy(np.asarray(a)).long() for a in batch)
        t = time.perf_counter()
        e = n["emb"](x)
        t = self.mark("embedding", t)
        state = None if self.state is None else tuple(s.detach() for s in self.state)
        h, self.state = n["rnn"](e, state)
        t = self.mark("recurrent forward", t)
        logits = n["head"](h)
        t = self.mark("output layer", t)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        self.mark("softmax + loss", t)
        return loss, x.numel()


# ---------------------------------------------------------------- data and measurement


def load(task):
    """-> (config, data set, the split prediction is timed on)."""
    if task == "ner":
        d = os.path.join(DATA, "wikiann-en")
        ds = tokenize([os.path.join(d, "train.conll")], valid_path=os.path.join(d, "test.conll"), min_freq=2)
        return make_config(os.path.join(ROOT, "configs", "ner.yaml")), ds
    if task == "sentiment":
        d = os.path.join(DATA, "sst2")
        ds = tokenize([os.path.join(d, "train.tsv")], valid_path=os.path.join(d, "valid.tsv"), lower=True,
                      min_freq=2)
        return make_config(os.path.join(ROOT, "configs", "sentiment.yaml")), ds
    d = os.path.join(DATA, "ptb")
    ds = tokenize([os.path.join(d, "train.txt")], valid_path=os.path.join(d, "valid.txt"), level="word")
    return make_config(None, {**PTB, "max_steps": 1}), ds


def timed_steps(side, steps):
    t, tokens = time.perf_counter(), 0
    for _ in range(steps):
        tokens += side.step()
    return tokens / (time.perf_counter() - t)


def compare(task, args):
    cfg, ds = load(task)
    ours, theirs = Ours(cfg, ds), torch_side(cfg.task, cfg, ds)
    for side in (ours, theirs):  # warm-up
        timed_steps(side, 3)
    rates = {"ours": [], "theirs": []}
    for _ in range(args.rounds):
        rates["ours"].append(timed_steps(ours, args.steps))
        rates["theirs"].append(timed_steps(theirs, args.steps))
    a, b = statistics.median(rates["ours"]), statistics.median(rates["theirs"])
    print(f"{task}: training tokens/s, median of {args.rounds} rounds of {args.steps} steps: rnncli {a:,.0f}, "
          f"PyTorch {b:,.0f}, ratio {a / b:.2f}x  (rounds: rnncli {[round(r) for r in rates['ours']]}, "
          f"PyTorch {[round(r) for r in rates['theirs']]})", flush=True)
    if task != "ptb":
        split = ds.valid
        speeds = {"ours": [], "theirs": []}
        for _ in range(3):
            for name, side in (("ours", ours), ("theirs", theirs)):
                t = time.perf_counter()
                side.predict(split)
                speeds[name].append(split.num_sequences / (time.perf_counter() - t))
        a, b = statistics.median(speeds["ours"]), statistics.median(speeds["theirs"])
        print(f"{task}: prediction of {split.num_sequences:,} sentences, sentences/s (median of 3): rnncli {a:,.0f}, "
              f"PyTorch {b:,.0f}, ratio {a / b:.2f}x", flush=True)
    if not args.no_profile:
        for name, side in (("rnncli", ours), ("PyTorch", theirs)):
            side.profile()
            t = time.perf_counter()
            n = args.steps
            for _ in range(n):
                side.step()
            total = time.perf_counter() - t
            shown = dict(side.phases)
            shown["the rest (dropout, joins, Python)"] = total - sum(shown.values())
            parts = ", ".join(f"{k} {100 * v / total:.0f} %" for k, v in sorted(shown.items(), key=lambda kv: -kv[1]))
            print(f"{task} profile, {name}: {1e3 * total / n:.1f} ms per step: {parts}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="ner,sentiment,ptb")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-profile", action="store_true")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    print(f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads)")
    for task in args.only.split(","):
        compare(task, args)


if __name__ == "__main__":
    main()
