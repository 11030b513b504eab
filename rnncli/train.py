"""The training loop: batches, step, clip, evaluate, early stop, checkpoint.

Written out plainly (no trainer framework): `train` reads as the lecture's loop, and the
bookkeeping (evaluation, checkpoints, the metrics log, stopping) sits in small helpers below.
Progress goes to a callback so that this module prints nothing.

Language models read contiguous streams in chunks (text/batching.py), carrying the hidden
state from one chunk to the next without back-propagating through it (truncated BPTT);
conditional language models read bucketed batches of texts in such chunks, each batch starting
from its labels. Classification and tagging use bucketed batches of whole sequences. Every random choice
(dropout, batch order) comes from generators whose state the checkpoint keeps, so a resumed
run repeats an uninterrupted one bit for bit.

On several workers (parallel/, MPI) the loop is the same: each worker reads its share of every
global batch (its streams, or its sequences), `world.reduce_step` sums the gradients, and every
worker takes the same step; the lead worker alone writes checkpoints and logs and reports progress.
"""

import dataclasses
import json
import math
import os
import signal
import stat
import time

import numpy as np

from rnncli.checkpoint import assign_params, save_checkpoint
from rnncli.config import parse_duration
from rnncli.errors import EXIT_INTERRUPTED, RnncliError
from rnncli.memory import keep_freed_memory
from rnncli.metrics_log import MetricsLog
from rnncli.nn.optim import Optimizer, decayed_lr, scheduled_lr
from rnncli.parallel import Solo, check_batch, everywhere
from rnncli.pretrained import attach_vectors, model_data_meta, reach_cut_words
from rnncli.tasks.build import build_model, task_of
from rnncli.tasks.registry import task_named


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


def train(cfg, ds, out, resume=None, callback=None, pretrained=None, world=None):
    """Fit a model; writes `out` (model.npz) at every evaluation and at the end.

    resume: (meta, groups) of a checkpoint to continue from, exactly where it stopped.
    pretrained: word vectors to start from (pretrained.py), for a fresh run with cfg.embeddings.
    world: the workers training together (parallel/); one process by default.
    Returns a summary dict.
    """
    world = world or Solo()
    callback = callback if callback and world.lead else (lambda p: None)
    keep_freed_memory()  # the steps' arrays reuse their pages (memory.py)
    run = _Run(cfg, ds, out, resume, pretrained, world)
    log_path = metrics_path(out) if world.lead else None
    with _Stopper() as stopper, MetricsLog(log_path, run.st["step"] if resume else None) as log:
        while not run.finished():
            for k, batch in run.batches_from_here():
                lr = run.learning_rate()
                # forward, backward (through time), sum over workers, clip the global norm, update
                run.step(batch, lr, stopper)
                run.st["step"] += 1
                run.st["chunk"] = k + 1
                callback(run.progress(lr))
                run.check_limits()
                if run.time_to_evaluate():
                    metrics = run.evaluate_and_save(lr, log)
                    callback(Progress(run.st["step"], run.st["epoch"], run.last_train_loss, lr, 0.0, metrics, "eval"))
                    run.check_patience()
                if run.interrupted:
                    what = f"{stopper.requested.lower()} received" if stopper.requested else "stopped by another worker"
                    raise everywhere(RnncliError(f"{what}: saved a resumable checkpoint at step {run.st['step']} "
                                                  f"to {out}; continue with --resume {out}", EXIT_INTERRUPTED))
                if run.stop_reason:
                    break
            if run.stop_reason:
                break
    return run.summary()


class _Run:
    """The state of one training run and the helpers that keep its books."""

    def __init__(self, cfg, ds, out, resume, pretrained=None, world=None):
        self.cfg, self.ds, self.out = cfg, ds, out
        self.world = world = world or Solo()
        self.task = task_named(task_of(cfg, ds.meta))
        self.data_meta = model_data_meta(ds.meta, resume[0] if resume else None, pretrained)
        self.model = build_model(cfg, self.data_meta)
        attach_vectors(self.model, self.task.name, cfg, None if resume else pretrained, self.data_meta)
        world.prepare(self.model)
        self.train_split, self.valid_split = (reach_cut_words(s, self.data_meta) for s in (ds.train, ds.valid))
        self.decode_sample = None  # an encoder-decoder decodes this fixed sample of the valid split at validation
        n_valid = 0 if self.valid_split is None else self.valid_split.num_sequences
        if self.task.validation_decodes and n_valid > cfg.decode_valid:
            self.decode_sample = np.sort(np.random.default_rng([cfg.seed, 3]).choice(n_valid, cfg.decode_valid,
                                                                                     replace=False))
        self.opt = Optimizer(cfg.optimizer, lr=cfg.lr, weight_decay=cfg.weight_decay, average=cfg.average)
        # dropout masks: worker 0 draws what one process draws; the others their own
        self.rng = np.random.default_rng([cfg.seed, 1] + [world.rank] * (world.rank > 0))
        try:
            check_batch(cfg.batch_size, world.size)
        except RnncliError as e:
            raise everywhere(e) from None
        self.batches = self.task.training_batches(cfg, ds, self.train_split, self.model, world)
        self.st = {"step": 0, "epoch": 0, "chunk": 0, "history": [], "best_score": None, "best_step": None,
                   "elapsed": 0.0}
        self.best, self.carry = None, None
        if resume is not None:
            self._restore(*resume)
        self.check_opens()
        self.budget = parse_duration(cfg.max_time) if cfg.max_time else None
        per_run = self.batches.steps_for(cfg.epochs) if cfg.epochs else None
        self.max_steps = cfg.max_steps or per_run
        self.stop_reason, self.out_of_time, self.interrupted = None, False, False
        self.time_up = self.stop_requested = False  # what all workers agreed at the last step
        # the share of the time budget spent, as all workers agreed it at the last step (the LR schedule's clock)
        self.time_spent = self.st["elapsed"] / self.budget if self.budget else 0.0
        self.recent, self.tokens = [], 0
        self.step_seconds = self.reduce_seconds = 0.0  # time in steps, and in their exchanges between workers
        self.t_start = self.t_window = time.perf_counter()
        self.last_train_loss = None

    def _restore(self, meta, groups):
        assign_params(self.out, self.model.params, groups["param"], self.model.dtype)
        # moments and averages in the weights' type; the lazy average's sums of log decays stay float64
        self.opt.state = {k: v if k.startswith("avgc") or k == "avgC." else v.astype(self.model.dtype)
                          for k, v in groups["opt"].items()}
        self.opt.t = meta["opt_t"]
        states = meta.get("rng_workers") or [meta["rng"]]
        if self.world.rank < len(states):  # the same workers as before: each continues its own draws
            self.rng.bit_generator.state = states[self.world.rank]
        self.st.update({k: meta[k] for k in self.st if k in meta})
        self.best = {k: v.astype(self.model.dtype) for k, v in groups["best"].items()} or None
        if groups["carry"]:  # every worker's rows, in order: this worker's streams or texts are its share
            rows = next(iter(groups["carry"].values())).shape[0]
            mine = self.world.share(rows)
            self.carry = [tuple(groups["carry"][f"{i}.{j}"][mine] for j in range(len(s)))
                          for i, s in enumerate(self.model.initial_state(1))]

    # ------------------------------------------------------------ the loop's steps

    def finished(self):
        epochs_done = self.cfg.epochs is not None and self.st["epoch"] >= self.cfg.epochs
        return epochs_done or (self.max_steps is not None and self.st["step"] >= self.max_steps)

    def batches_from_here(self):
        if self.st["chunk"] == 0:
            self.carry = None  # each epoch starts the streams afresh
        return self.batches.epoch(self.st["epoch"], self.st["chunk"])

    def step(self, batch, lr, stopper):
        """One update: forward, backward, the sum over workers, clip, optimizer step; the loss joins
        the running mean. batch None: this worker has no share of this batch (it only adds up)."""
        started = time.perf_counter()
        # the task reads its batch: the loss, its gradients, the state the next chunk starts from (a
        # language model's), the tokens read, and what the loss is a mean over (sequences or tokens)
        loss, grads, carry, n_tokens, count = self.task.step(self.model, batch, self.carry, self.rng)
        elapsed = self.st["elapsed"] + time.perf_counter() - self.t_start
        flags = [float(stopper.requested is not None), float(self.budget is not None and elapsed >= self.budget),
                 elapsed / self.budget if self.budget else 0.0]
        in_mpi = self.world.mpi_seconds
        grads, loss, n_tokens, flags = self.world.reduce_step(grads, loss, count, n_tokens, flags, self.model.params)
        self.stop_requested, self.time_up = flags[0] > 0, flags[1] > 0
        self.time_spent = flags[2] / self.world.size  # every worker's mean: the same number on all of them
        norm = self.world.clip(grads, self.cfg.clip)
        if not (math.isfinite(loss) and math.isfinite(norm)):
            what = f"loss became {loss}" if not math.isfinite(loss) else f"gradient norm became {norm}"
            raise everywhere(RnncliError(f"{what} at step {self.st['step'] + 1}; stopped. {self.out} keeps the last "
                                         "good checkpoint (try a lower --lr or --clip)"))
        self.world.update(self.opt, self.model.params, grads, lr)  # each worker updates its share
        self.reduce_seconds += self.world.mpi_seconds - in_mpi
        self.carry = carry
        self.recent.append(loss)
        self.tokens += n_tokens
        self.step_seconds += time.perf_counter() - started

    def learning_rate(self):
        """This step's learning rate: per-epoch decay, then the schedule over the run so far."""
        cfg, st = self.cfg, self.st
        done = self.time_spent
        if self.max_steps:
            done = max(done, st["step"] / self.max_steps)
        return scheduled_lr(decayed_lr(cfg.lr, cfg.lr_decay, st["epoch"]), cfg.lr_schedule, done, st["step"],
                            cfg.warmup)

    def progress(self, lr):
        now = time.perf_counter()
        return Progress(self.st["step"], self.st["epoch"], float(np.mean(self.recent[-50:])), lr,
                        self.tokens / max(now - self.t_window, 1e-9), total=self.max_steps)

    def check_limits(self):
        # the time budget and a stop request as all workers agreed at this step (reduce_step)
        self.out_of_time = self.time_up
        if self.max_steps is not None and self.st["step"] >= self.max_steps:
            self.stop_reason = "step limit reached" if self.cfg.max_steps else "finished"
        elif self.out_of_time:
            self.stop_reason = f"time budget of {self.cfg.max_time} reached"
        self.interrupted = self.stop_requested

    def epoch_ends(self):
        return self.st["chunk"] == self.batches.per_epoch

    def time_to_evaluate(self):
        return (self.st["step"] % self.cfg.eval_every == 0 or self.epoch_ends() or self.stop_reason is not None
                or self.interrupted)

    # ------------------------------------------------------------ bookkeeping

    def evaluate_and_save(self, lr, log):
        """Validate (the weight average, if kept), record, keep the best, checkpoint."""
        cfg, st, params = self.cfg, self.st, self.model.params
        speed = self.tokens / max(time.perf_counter() - self.t_window, 1e-9)  # training only, not evaluation
        self.world.gather_state(self.opt)  # the average and the moments, whole on every worker
        live = _swap_in(params, self.opt.averaged(params)) if cfg.average else None
        metrics = self.task.evaluate(self.model, self.valid_split, self.ds.meta["format"], cfg.char_features,
                                     world=self.world, decode_sample=self.decode_sample)
        self.last_train_loss = float(np.mean(self.recent))
        score = self.task.selection_score(metrics) if metrics else self.last_train_loss
        now = time.perf_counter()
        st["elapsed"] += now - self.t_start
        self.t_start = now
        record = {"step": st["step"], "epoch": st["epoch"], "train_loss": self.last_train_loss,
                  "valid": metrics, "lr": lr, "elapsed": round(st["elapsed"], 3),
                  "tokens_per_s": round(speed, 1)}
        st["history"].append(record)
        log.write(record)
        if st["best_score"] is None or score < st["best_score"]:
            st["best_score"], st["best_step"] = score, st["step"]
            self.best = {name: v.copy() for name, v in params.items()}
        if live is not None:  # back to the live weights, which training continues from
            _swap_in(params, live)
        if self.epoch_ends():
            st["epoch"], st["chunk"] = st["epoch"] + 1, 0
        self.save()
        self.recent, self.tokens, self.t_window = [], 0, time.perf_counter()
        return metrics

    def check_patience(self):
        # patience counts eval_every-step intervals, not evaluations: the extra ones at epoch
        # ends would otherwise cut the wait short on small data sets
        cfg, st = self.cfg, self.st
        if cfg.patience and st["step"] - st["best_step"] >= cfg.patience * cfg.eval_every:
            self.stop_reason = (f"early stop: no improvement in {st['step'] - st['best_step']} steps "
                                f"(patience {cfg.patience} x {cfg.eval_every})")

    def save(self):
        """The lead worker writes the checkpoint, with every worker's carried states and random state."""
        carries = self.world.gather(self.carry)
        states = self.world.gather(self.rng.bit_generator.state)
        if not self.world.lead:
            return
        save_checkpoint(self.out, self.checkpoint_meta(states), self.model.params, self.best, self.opt.state,
                        _join_rows(carries))

    def checkpoint_meta(self, states):
        return {"config": dataclasses.asdict(self.cfg), "data": self.data_meta, "task": self.task.name,
                "opt_t": self.opt.t, "rng": states[0], "workers": self.world.size, "rng_workers": states, **self.st}

    def check_opens(self):
        """Before the first step: the checkpoint this run will write passes the checks every command
        that opens a model runs (checkpoint_checks.py), so no run trains for hours to write a file
        that nothing opens. A refusal here is rnncli's own fault, and says so."""
        from rnncli.checkpoint_checks import check_meta, check_shapes

        try:
            meta = json.loads(json.dumps(self.checkpoint_meta([self.rng.bit_generator.state])))  # as it is stored
            check_shapes(self.out, check_meta(self.out, meta), meta, self.model.params)
        except RnncliError as e:
            raise everywhere(RnncliError(f"this run would write a model that rnncli could not open again, so it "
                                         f"stopped before training (please report it): {e}")) from None

    def summary(self):
        st = self.st
        last = st["history"][-1] if st["history"] else {}
        validation = self.ds.meta.get("validation", "none") if self.ds.valid is not None else "none"
        return {"task": self.task.name, "steps": st["step"], "epochs": st["epoch"],
                "stop": self.stop_reason or "finished", "elapsed": st["elapsed"],
                "train_loss": last.get("train_loss"), "valid": last.get("valid"),
                "best_score": st["best_score"], "best_step": st["best_step"],
                "selected_on": "validation" if self.ds.valid is not None else "training loss",
                "validation": validation, "level": self.ds.meta["level"], "out": str(self.out),
                "workers": self.world.size, "step_seconds": round(self.step_seconds, 3),
                "reduce_seconds": round(self.reduce_seconds, 3)}


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
    """model.npz -> model.metrics.jsonl beside it; None when the checkpoint is not a regular
    file (say /dev/null), which has no folder of its own to log into."""
    try:
        if not stat.S_ISREG(os.stat(out).st_mode):
            return None
    except FileNotFoundError:
        pass
    root, _ = os.path.splitext(str(out))
    return root + ".metrics.jsonl"


def _join_rows(carries):
    """The workers' carried states [(per layer, a tuple of (B_i, H) arrays) or None] -> one list
    with every worker's rows in order (a worker without rows in this batch gave None)."""
    have = [c for c in carries if c is not None]
    if len(have) <= 1:
        return have[0] if have else None
    return [tuple(np.concatenate(parts) for parts in zip(*layer, strict=True)) for layer in zip(*have, strict=True)]


def _swap_in(params, new):
    """Copy `new` into the model's arrays in place; returns copies of what they held."""
    old = {name: p.copy() for name, p in params.items()}
    for name, p in params.items():
        p[...] = new[name]
    return old
