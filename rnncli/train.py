"""The training loop: batches, step, clip, evaluate, early stop, checkpoint.

Written out plainly (no trainer framework). Progress goes to a callback so that this module
prints nothing; the command line turns it into a progress bar.

Language models are batched as char-rnn does it: the training stream is cut into
`batch_size` contiguous streams, each read in chunks of `seq_len` steps; the hidden state is
carried from one chunk to the next but not back-propagated through (truncated BPTT).
Classification and tagging use bucketed batches of whole sequences (text/batching.py).
Every random choice (dropout, batch order) comes from generators whose state the checkpoint
keeps, so a resumed run repeats an uninterrupted one bit for bit.
"""

import dataclasses
import json
import math
import os
import signal
import time

import numpy as np

from rnncli.checkpoint import assign_params, save_checkpoint
from rnncli.config import parse_duration
from rnncli.errors import EXIT_INTERRUPTED, RnncliError
from rnncli.evaluate import evaluate_split
from rnncli.nn.optim import Optimizer, clip_global_norm, decayed_lr
from rnncli.tasks.build import build_model, task_of
from rnncli.text.batching import bucketed_batches, char_batch, pad_batch


def lm_streams(ids, batch_size):
    """ids (N,) -> inputs and targets (B, n): B contiguous streams, targets shifted by one."""
    n = (len(ids) - 1) // batch_size
    if n < 1:
        raise RnncliError(f"the data ({len(ids)} tokens) is too small for --batch-size {batch_size}")
    x = ids[: n * batch_size].reshape(batch_size, n)
    y = ids[1 : n * batch_size + 1].reshape(batch_size, n)
    return x, y


def lm_chunks(x, y, seq_len, start=0):
    """Yield (chunk number, inputs (T, B), targets (T, B)), time-major, from chunk `start` on."""
    n = x.shape[1]
    for k in range(start, math.ceil(n / seq_len)):
        a, b = k * seq_len, min((k + 1) * seq_len, n)
        yield k, np.ascontiguousarray(x[:, a:b].T), np.ascontiguousarray(y[:, a:b].T)


class LMBatches:
    """Chunks of contiguous streams; the state is carried between chunks of an epoch."""

    def __init__(self, split, cfg):
        self.x, self.y = lm_streams(split.ids, cfg.batch_size)
        self.seq_len = cfg.seq_len
        self.per_epoch = math.ceil(self.x.shape[1] / cfg.seq_len)

    def epoch(self, epoch, start):
        for k, x, y in lm_chunks(self.x, self.y, self.seq_len, start):
            yield k, (x, y)

    @staticmethod
    def step(model, batch, carry, rng):
        x, y = batch
        loss, grads, finals = model.loss_and_grads(x, y, carry, train=True, rng=rng)
        return loss, grads, [tuple(s.copy() for s in f) for f in finals], x.size


class SequenceBatches:
    """Bucketed batches of whole sequences; the order of epoch e comes from seed and e alone."""

    def __init__(self, split, cfg, task):
        self.split, self.cfg, self.task = split, cfg, task
        self.lengths = split.lengths()
        self.per_epoch = math.ceil(split.num_sequences / cfg.batch_size)

    def epoch(self, epoch, start):
        order = bucketed_batches(self.lengths, self.cfg.batch_size, np.random.default_rng([self.cfg.seed, epoch]))
        for k in range(start, len(order)):
            yield k, make_batch(self.split, order[k], self.task, self.cfg.char_features)

    @staticmethod
    def step(model, batch, carry, rng):
        loss, grads = model.loss_and_grads(*batch, rng=rng)
        return loss, grads, None, int(batch[1].sum())


def make_batch(split, index, task, char_features=False):
    """The arguments of the task model's loss: (ids, mask, labels) or (ids, mask, tags, chars, char_mask)."""
    ids, mask, tags, _, pos = pad_batch(split, index)
    if task == "classify":
        return ids, mask, None if split.labels is None else split.labels[index]
    chars, cmask = char_batch(split, pos, mask) if char_features else (None, None)
    return ids, mask, tags, chars, cmask


@dataclasses.dataclass
class Progress:
    """What the callback sees after each step (and at each evaluation)."""

    step: int
    epoch: int
    loss: float
    lr: float
    tokens_per_s: float
    metrics: dict | None = None
    event: str = "step"
    total: int | None = None  # the step limit, for an ETA


class _Stopper:
    """Turns SIGINT/SIGTERM into a flag checked between steps, so a step is never cut in half;
    a second Ctrl-C interrupts at once."""

    def __init__(self):
        self.requested = None
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, frame):
        if self.requested is not None:
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def metrics_path(out):
    root, _ = os.path.splitext(str(out))
    return root + ".metrics.jsonl"


def selection_score(task, metrics):
    """Lower is better: validation loss for language models, minus accuracy or entity F1 otherwise."""
    if task == "lm":
        return metrics["loss"]
    return -(metrics["accuracy"] if task == "classify" else metrics["f1"])


def _swap_in(params, new):
    """Copy `new` into the model's arrays in place; returns copies of what they held."""
    old = {name: p.copy() for name, p in params.items()}
    for name, p in params.items():
        p[...] = new[name]
    return old


def train(cfg, ds, out, resume=None, callback=None):
    """Fit a model; writes `out` (model.npz) at every evaluation and at the end.

    resume: (meta, groups) of a checkpoint to continue from, exactly where it stopped.
    Returns a summary dict.
    """
    task = task_of(cfg, ds.meta)
    callback = callback or (lambda p: None)
    model = build_model(cfg, ds.meta)
    opt = Optimizer(cfg.optimizer, lr=cfg.lr, weight_decay=cfg.weight_decay, average=cfg.average)
    rng = np.random.default_rng([cfg.seed, 1])  # dropout masks
    batches = LMBatches(ds.train, cfg) if task == "lm" else SequenceBatches(ds.train, cfg, task)
    st = {"step": 0, "epoch": 0, "chunk": 0, "history": [], "best_score": None, "best_step": None,
          "elapsed": 0.0}
    best, carry = None, None
    if resume is not None:
        meta, groups = resume
        assign_params(out, model.params, groups["param"], model.dtype)
        opt.state = {k: v.astype(model.dtype) for k, v in groups["opt"].items()}
        opt.t = meta["opt_t"]
        rng.bit_generator.state = meta["rng"]
        st.update({k: meta[k] for k in st if k in meta})
        best = {k: v.astype(model.dtype) for k, v in groups["best"].items()} or None
        if groups["carry"]:
            carry = [tuple(groups["carry"][f"{i}.{j}"] for j in range(len(s)))
                     for i, s in enumerate(model.initial_state(cfg.batch_size))]
    budget = parse_duration(cfg.max_time) if cfg.max_time else None
    max_steps = cfg.max_steps or cfg.epochs * batches.per_epoch
    data_meta = {k: v for k, v in ds.meta.items() if k != "sources"}

    def checkpoint():
        meta = {"config": dataclasses.asdict(cfg), "data": data_meta, "task": task, "opt_t": opt.t,
                "rng": rng.bit_generator.state, **st}
        save_checkpoint(out, meta, model.params, best, opt.state, carry)

    log_file = open(metrics_path(out), "a", encoding="utf-8")
    t_start = time.perf_counter()
    stop_reason, recent, tokens, t_window = "finished", [], 0, time.perf_counter()
    try:
        with _Stopper() as stopper:
            while st["step"] < max_steps and st["epoch"] < cfg.epochs:
                lr = decayed_lr(cfg.lr, cfg.lr_decay, st["epoch"])
                if st["chunk"] == 0:
                    carry = None  # each epoch starts the streams afresh
                done = False
                for k, batch in batches.epoch(st["epoch"], st["chunk"]):
                    loss, grads, new_carry, n_tokens = batches.step(model, batch, carry, rng)
                    if not math.isfinite(loss):
                        raise RnncliError(f"loss became {loss} at step {st['step'] + 1}; stopped. "
                                          f"{out} keeps the last good checkpoint (try a lower --lr or --clip)")
                    clip_global_norm(grads, cfg.clip)
                    opt.step(model.params, grads, lr)
                    carry = new_carry
                    st["step"] += 1
                    st["chunk"] = k + 1
                    recent.append(loss)
                    tokens += n_tokens
                    now = time.perf_counter()
                    callback(Progress(st["step"], st["epoch"], float(np.mean(recent[-50:])), lr,
                                      tokens / max(now - t_window, 1e-9), total=max_steps))
                    out_of_time = budget is not None and st["elapsed"] + now - t_start >= budget
                    epoch_end = st["chunk"] == batches.per_epoch
                    done = bool(st["step"] >= max_steps or out_of_time or stopper.requested)
                    if st["step"] % cfg.eval_every == 0 or done or epoch_end:
                        live = _swap_in(model.params, opt.averaged(model.params)) if cfg.average else None
                        metrics = evaluate_split(model, task, ds.valid, cfg) if ds.valid is not None else None
                        train_loss = float(np.mean(recent))
                        score = selection_score(task, metrics) if metrics else train_loss
                        st["elapsed"] += now - t_start
                        t_start = now
                        record = {"step": st["step"], "epoch": st["epoch"], "train_loss": train_loss,
                                  "valid": metrics, "lr": lr, "elapsed": round(st["elapsed"], 3)}
                        recent = []
                        st["history"].append(record)
                        log_file.write(json.dumps(record) + "\n")
                        log_file.flush()
                        if st["best_score"] is None or score < st["best_score"]:
                            st["best_score"], st["best_step"] = score, st["step"]
                            best = {name: v.copy() for name, v in model.params.items()}
                        if live is not None:  # back to the live weights, which training continues from
                            _swap_in(model.params, live)
                        if epoch_end:
                            st["epoch"], st["chunk"] = st["epoch"] + 1, 0
                        checkpoint()
                        callback(Progress(st["step"], st["epoch"], train_loss, lr, 0.0, metrics, "eval"))
                        tokens, t_window = 0, time.perf_counter()
                        # patience counts eval_every-step intervals, not evaluations: the extra ones
                        # at epoch ends would otherwise cut the wait short on small data sets
                        if cfg.patience and st["step"] - st["best_step"] >= cfg.patience * cfg.eval_every:
                            stop_reason = (f"early stop: no improvement in {st['step'] - st['best_step']} steps "
                                           f"(patience {cfg.patience} x {cfg.eval_every})")
                            done = True
                    if stopper.requested:
                        raise RnncliError(f"{stopper.requested.lower()} received: saved a resumable checkpoint "
                                          f"at step {st['step']} to {out}; continue with --resume {out}",
                                          EXIT_INTERRUPTED)
                    if out_of_time:
                        stop_reason = f"time budget of {cfg.max_time} reached"
                    if done:
                        break
                if done:
                    break
    finally:
        log_file.close()
    if st["step"] >= max_steps and stop_reason == "finished" and cfg.max_steps:
        stop_reason = "step limit reached"
    last = st["history"][-1] if st["history"] else {}
    return {"task": task, "steps": st["step"], "epochs": st["epoch"], "stop": stop_reason,
            "elapsed": st["elapsed"], "train_loss": last.get("train_loss"), "valid": last.get("valid"),
            "best_score": st["best_score"], "best_step": st["best_step"], "level": ds.meta["level"],
            "out": str(out)}
