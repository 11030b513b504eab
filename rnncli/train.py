"""The training loop: batches, step, clip, evaluate, early stop, checkpoint.

Written out plainly (no trainer framework). Progress goes to a callback so that this module
prints nothing; the command line turns it into a progress bar.

Language models are batched as char-rnn does it: the training stream is cut into
`batch_size` contiguous streams, each read in chunks of `seq_len` steps; the hidden state is
carried from one chunk to the next but not back-propagated through (truncated BPTT).
"""

import dataclasses
import json
import math
import os
import signal
import time

import numpy as np

from rnncli.checkpoint import save_checkpoint
from rnncli.config import parse_duration
from rnncli.errors import EXIT_INTERRUPTED, RnncliError
from rnncli.nn.optim import Optimizer, clip_global_norm, decayed_lr
from rnncli.tasks.build import build_model, task_of


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


def evaluate_lm(model, ids, batch_size, seq_len):
    """Mean cross-entropy (nats per token) of predicting every next token of `ids`."""
    batch_size = max(1, min(batch_size, (len(ids) - 1) // seq_len or 1))
    x, y = lm_streams(ids, batch_size)
    states, total, count = None, 0.0, 0
    for _, xc, yc in lm_chunks(x, y, seq_len):
        nll, n, states = model.loss(xc, yc, states)
        total += nll
        count += n
    return total / count


@dataclasses.dataclass
class Progress:
    """What the callback sees after each step (and at each evaluation)."""

    step: int
    epoch: int
    loss: float
    lr: float
    tokens_per_s: float
    valid_loss: float | None = None
    event: str = "step"


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
            except ValueError:  # not the main thread (e.g. inside some test runners)
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


def train(cfg, ds, out, resume=None, callback=None):
    """Fit a model; writes `out` (model.npz) at every evaluation and at the end.

    resume: (meta, groups) of a checkpoint to continue from, exactly where it stopped.
    Returns a summary dict.
    """
    task = task_of(cfg, ds.meta)
    if task != "lm":
        from rnncli.tasks.supervised import train_supervised

        return train_supervised(cfg, ds, out, resume, callback)
    callback = callback or (lambda p: None)
    model = build_model(cfg, ds.meta)
    opt = Optimizer(cfg.optimizer, lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed + 1)  # dropout masks
    x, y = lm_streams(ds.train.ids, cfg.batch_size)
    chunks_per_epoch = math.ceil(x.shape[1] / cfg.seq_len)
    st = {"step": 0, "epoch": 0, "chunk": 0, "history": [], "best_loss": None, "best_step": None,
          "bad_evals": 0, "elapsed": 0.0}
    best = None
    carry = None
    if resume is not None:
        meta, groups = resume
        from rnncli.checkpoint import assign_params

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
    max_steps = cfg.max_steps or cfg.epochs * chunks_per_epoch
    data_meta = {k: v for k, v in ds.meta.items() if k != "sources"}

    def checkpoint():
        meta = {"config": dataclasses.asdict(cfg), "data": data_meta, "task": "lm", "opt_t": opt.t,
                "rng": rng.bit_generator.state, **{k: st[k] for k in st}}
        save_checkpoint(out, meta, model.params, best, opt.state, carry)

    def validate():
        if ds.valid is None or len(ds.valid.ids) < 2:
            return None
        return evaluate_lm(model, ds.valid.ids, cfg.batch_size, cfg.seq_len)

    log_file = open(metrics_path(out), "a", encoding="utf-8")
    t_start = time.perf_counter()
    stop_reason, recent, tokens, t_window = "finished", [], 0, time.perf_counter()
    try:
        with _Stopper() as stopper:
            while st["step"] < max_steps and st["epoch"] < cfg.epochs:
                lr = decayed_lr(cfg.lr, cfg.lr_decay, st["epoch"])
                if st["chunk"] == 0:
                    carry = None  # each epoch starts the streams afresh
                for k, xc, yc in lm_chunks(x, y, cfg.seq_len, st["chunk"]):
                    loss, grads, finals = model.loss_and_grads(xc, yc, carry, train=True, rng=rng)
                    if not math.isfinite(loss):
                        raise RnncliError(f"loss became {loss} at step {st['step'] + 1}; stopped. "
                                          f"{out} keeps the last good checkpoint (try a lower --lr or --clip)")
                    clip_global_norm(grads, cfg.clip)
                    opt.step(model.params, grads, lr)
                    carry = [tuple(s.copy() for s in f) for f in finals]
                    st["step"] += 1
                    st["chunk"] = k + 1
                    recent.append(loss)
                    tokens += xc.size
                    now = time.perf_counter()
                    callback(Progress(st["step"], st["epoch"], float(np.mean(recent[-50:])), lr,
                                      tokens / max(now - t_window, 1e-9)))
                    elapsed = st["elapsed"] + now - t_start
                    out_of_time = budget is not None and now - t_start >= budget
                    done = st["step"] >= max_steps or out_of_time or stopper.requested
                    if st["step"] % cfg.eval_every == 0 or done or st["chunk"] == chunks_per_epoch:
                        v = validate()
                        score = v if v is not None else float(np.mean(recent[-50:]))
                        record = {"step": st["step"], "epoch": st["epoch"], "train_loss": float(np.mean(recent)),
                                  "valid_loss": v, "lr": lr, "elapsed": round(elapsed, 3)}
                        recent = []
                        st["history"].append(record)
                        log_file.write(json.dumps(record) + "\n")
                        log_file.flush()
                        if st["best_loss"] is None or score < st["best_loss"]:
                            st["best_loss"], st["best_step"], st["bad_evals"] = score, st["step"], 0
                            best = {k2: v2.copy() for k2, v2 in model.params.items()}
                        else:
                            st["bad_evals"] += 1
                        st["elapsed"], t_start = elapsed, now
                        if st["chunk"] == chunks_per_epoch:
                            st["epoch"], st["chunk"] = st["epoch"] + 1, 0
                        checkpoint()
                        callback(Progress(st["step"], st["epoch"], record["train_loss"], lr, 0.0, v, "eval"))
                        tokens, t_window = 0, time.perf_counter()
                        if cfg.patience and st["bad_evals"] >= cfg.patience:
                            stop_reason = f"early stop: no improvement in {cfg.patience} evaluations"
                            done = True
                    if stopper.requested:
                        raise RnncliError(f"{stopper.requested.lower()} received: saved a resumable checkpoint "
                                          f"at step {st['step']} to {out}; continue with --resume {out}",
                                          EXIT_INTERRUPTED)
                    if out_of_time:
                        stop_reason = f"time budget of {cfg.max_time} reached"
                    if done:
                        break
                else:
                    continue
                break
    finally:
        log_file.close()
    if st["step"] >= max_steps and stop_reason == "finished":
        stop_reason = "step limit reached" if cfg.max_steps else "finished"
    last = st["history"][-1] if st["history"] else {}
    return {"task": "lm", "steps": st["step"], "epochs": st["epoch"], "stop": stop_reason,
            "elapsed": st["elapsed"], "train_loss": last.get("train_loss"), "valid_loss": last.get("valid_loss"),
            "best_loss": st["best_loss"], "best_step": st["best_step"], "level": ds.meta["level"],
            "out": str(out)}
