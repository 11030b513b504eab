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


@dataclasses.dataclass
class TrainingState:
    """Where a run is: what the checkpoint's meta saves beside the weights, the optimizer's state and
    the random generators, so that --resume continues at the same batch."""

    step: int = 0
    epoch: int = 0
    chunk: int = 0  # batches of this epoch done
    history: list = dataclasses.field(default_factory=list)  # a record per evaluation
    best_score: float | None = None
    best_step: int | None = None
    elapsed: float = 0.0  # seconds of training and evaluation

    @classmethod
    def from_meta(cls, meta):
        return cls(**{f.name: meta[f.name] for f in dataclasses.fields(cls) if f.name in meta})


@dataclasses.dataclass(frozen=True)
class Stop:
    """Why a run stops. interrupted: a signal (Ctrl-C, SIGTERM): the checkpoint is saved and the run
    ends with EXIT_INTERRUPTED, to be resumed."""

    reason: str
    interrupted: bool = False


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
    with _Stopper() as stopper, MetricsLog(log_path, run.st.step if resume else None) as log:
        while run.stop is None and not run.finished():
            for k, batch in run.batches_from_here():
                lr = run.learning_rate()
                # forward, backward (through time), sum over workers, clip the global norm, update
                run.step(k, batch, lr, stopper)
                callback(run.progress(lr))
                if run.time_to_evaluate():
                    metrics = run.evaluate_and_save(lr, log)
                    callback(Progress(run.st.step, run.st.epoch, run.last_train_loss, lr, 0.0, metrics, "eval"))
                if run.stop is not None:
                    break
    if run.stop is not None and run.stop.interrupted:
        raise everywhere(RnncliError(f"{run.stop.reason}: saved a resumable checkpoint at step {run.st.step} "
                                     f"to {out}; continue with --resume {out}", EXIT_INTERRUPTED))
    return _summary(run)


class _Run:
    """One training run: the model, the optimizer, the batches, the state, and the step."""

    def __init__(self, cfg, ds, out, resume, pretrained=None, world=None):
        self.cfg, self.ds, self.out = cfg, ds, out
        self.world = world = world or Solo()
        self.task = task_named(task_of(cfg, ds.meta))
        self.data_meta = model_data_meta(ds.meta, resume[0] if resume else None, pretrained)
        self.model = build_model(cfg, self.data_meta)
        attach_vectors(self.model, self.task.name, cfg, None if resume else pretrained, self.data_meta)
        world.prepare(self.model)
        self.train_split, valid = (reach_cut_words(s, self.data_meta) for s in (ds.train, ds.valid))
        # what every validation reads: all of a small split, a fixed sample of a large one (--eval-tokens)
        self.valid_split, self.valid_read = self.task.evaluation_part(cfg, valid, self.train_split, ds.meta["format"])
        self.decode_sample = self.task.validation_sample(cfg, self.valid_split)
        self.opt = Optimizer(cfg.optimizer, lr=cfg.lr, weight_decay=cfg.weight_decay, average=cfg.average)
        # dropout masks: worker 0 draws what one process draws; the others their own
        self.rng = np.random.default_rng([cfg.seed, 1] + [world.rank] * (world.rank > 0))
        try:
            check_batch(cfg.batch_size, world.size)
        except RnncliError as e:
            raise everywhere(e) from None
        self.batches = self.task.training_batches(cfg, ds, self.train_split, self.model, world)
        self.st, self.best, self.carry = TrainingState(), None, None
        if resume is not None:
            _resume(self, *resume)
        _check_opens(self)
        self.budget = parse_duration(cfg.max_time) if cfg.max_time else None
        self.max_steps = cfg.max_steps or (self.batches.steps_for(cfg.epochs) if cfg.epochs else None)
        self.stop = None  # a Stop once the run should end
        # the share of the time budget spent, as all workers agreed it at the last step (the LR schedule's clock)
        self.time_spent = self.st.elapsed / self.budget if self.budget else 0.0
        self.recent, self.tokens = [], 0
        self.step_seconds = self.reduce_seconds = 0.0  # time in steps, and in their exchanges between workers
        self.t_start = self.t_window = time.perf_counter()
        self.last_train_loss = None

    # ------------------------------------------------------------ the step

    def finished(self):
        epochs_done = self.cfg.epochs is not None and self.st.epoch >= self.cfg.epochs
        return epochs_done or (self.max_steps is not None and self.st.step >= self.max_steps)

    def batches_from_here(self):
        if self.st.chunk == 0:
            self.carry = None  # each epoch starts the streams afresh
        return self.batches.epoch(self.st.epoch, self.st.chunk)

    def step(self, k, batch, lr, stopper):
        """Update on the epoch's batch k: forward, backward, the sum over workers, clip, optimizer step;
        the loss joins the running mean, and the run learns whether to stop. batch None: this worker
        has no share of this batch (it only adds up)."""
        started = time.perf_counter()
        # the task reads its batch: the loss, its gradients, the state the next chunk starts from (a
        # language model's), the tokens read, and what the loss is a mean over (sequences or tokens)
        loss, grads, carry, n_tokens, count = self.task.step(self.model, batch, self.carry, self.rng)
        elapsed = self.st.elapsed + time.perf_counter() - self.t_start
        flags = [float(stopper.requested is not None), float(self.budget is not None and elapsed >= self.budget),
                 elapsed / self.budget if self.budget else 0.0]
        in_mpi = self.world.mpi_seconds
        grads, loss, n_tokens, flags = self.world.reduce_step(grads, loss, count, n_tokens, flags, self.model.params)
        self.time_spent = flags[2] / self.world.size  # every worker's mean: the same number on all of them
        norm = self.world.clip(grads, self.cfg.clip)
        if not (math.isfinite(loss) and math.isfinite(norm)):
            what = f"loss became {loss}" if not math.isfinite(loss) else f"gradient norm became {norm}"
            raise everywhere(RnncliError(f"{what} at step {self.st.step + 1}; stopped. {self.out} keeps the last "
                                         "good checkpoint (try a lower --lr or --clip)"))
        self.world.update(self.opt, self.model.params, grads, lr)  # each worker updates its share
        self.reduce_seconds += self.world.mpi_seconds - in_mpi
        self.carry = carry
        self.recent.append(loss)
        self.tokens += n_tokens
        self.st.step, self.st.chunk = self.st.step + 1, k + 1
        self.step_seconds += time.perf_counter() - started
        # a stop request and the time budget as all workers agreed them at this step (reduce_step)
        self.stop = _stop(self.cfg, self.st.step, self.max_steps, flags[0] > 0, flags[1] > 0, stopper.requested)

    def learning_rate(self):
        """This step's learning rate: per-epoch decay, then the schedule over the run so far."""
        cfg, st = self.cfg, self.st
        done = self.time_spent
        if self.max_steps:
            done = max(done, st.step / self.max_steps)
        return scheduled_lr(decayed_lr(cfg.lr, cfg.lr_decay, st.epoch), cfg.lr_schedule, done, st.step, cfg.warmup)

    def progress(self, lr):
        now = time.perf_counter()
        return Progress(self.st.step, self.st.epoch, float(np.mean(self.recent[-50:])), lr,
                        self.tokens / max(now - self.t_window, 1e-9), total=self.max_steps)

    def epoch_ends(self):
        return self.st.chunk == self.batches.per_epoch

    def time_to_evaluate(self):
        return self.st.step % self.cfg.eval_every == 0 or self.epoch_ends() or self.stop is not None

    # ------------------------------------------------------------ evaluation and the checkpoint

    def evaluate_and_save(self, lr, log):
        """Validate (the weight average, if kept), record, keep the best, checkpoint; then the
        patience may stop the run."""
        cfg, st, params = self.cfg, self.st, self.model.params
        speed = self.tokens / max(time.perf_counter() - self.t_window, 1e-9)  # training only, not evaluation
        self.world.gather_state(self.opt)  # the average and the moments, whole on every worker
        live = _swap_in(params, self.opt.averaged(params)) if cfg.average else None
        began = time.perf_counter()
        metrics = self.task.evaluate(self.model, self.valid_split, self.ds.meta["format"], cfg.char_features,
                                     world=self.world, decode_sample=self.decode_sample)
        spent = time.perf_counter() - began
        self.last_train_loss = float(np.mean(self.recent))
        score = self.task.selection_score(metrics) if metrics else self.last_train_loss
        now = time.perf_counter()
        st.elapsed += now - self.t_start
        self.t_start = now
        record = {"step": st.step, "epoch": st.epoch, "train_loss": self.last_train_loss,
                  "valid": metrics, "lr": lr, "elapsed": round(st.elapsed, 3), "tokens_per_s": round(speed, 1)}
        if metrics:
            record["valid_seconds"] = round(spent, 3)  # what the validation cost, beside the training's elapsed
        if metrics and self.valid_read and self.valid_read["sample"]:
            record["valid_read"] = self.valid_read  # the metrics log says what the figures are of
        st.history.append(record)
        log.write(record)
        if st.best_score is None or score < st.best_score:
            st.best_score, st.best_step = score, st.step
            self.best = {name: v.copy() for name, v in params.items()}
        if live is not None:  # back to the live weights, which training continues from
            _swap_in(params, live)
        if self.epoch_ends():
            st.epoch, st.chunk = st.epoch + 1, 0
        self.save()
        self.recent, self.tokens, self.t_window = [], 0, time.perf_counter()
        # patience counts eval_every-step intervals, not evaluations: the extra ones at epoch
        # ends would otherwise cut the wait short on small data sets
        waited = st.step - st.best_step
        if cfg.patience and waited >= cfg.patience * cfg.eval_every and not (self.stop and self.stop.interrupted):
            self.stop = Stop(f"early stop: no improvement in {waited} steps (patience {cfg.patience} x "
                             f"{cfg.eval_every})")
        return metrics

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
                "opt_t": self.opt.t, "rng": states[0], "workers": self.world.size, "rng_workers": states,
                **dataclasses.asdict(self.st)}

def _stop(cfg, step, max_steps, requested, time_up, signal_name):
    """After a step: why the run stops (a Stop), or None. requested, time_up: a stop request and the
    time budget as all workers agreed them at this step; signal_name: this worker's signal, if any."""
    if requested:
        return Stop(f"{signal_name.lower()} received" if signal_name else "stopped by another worker", interrupted=True)
    if max_steps is not None and step >= max_steps:
        return Stop("step limit reached" if cfg.max_steps else "finished")
    if time_up:
        return Stop(f"time budget of {cfg.max_time} reached")
    return None


def _resume(run, meta, groups):
    """Put a checkpoint's weights, optimizer state, random state, training state and carried
    states into a new run."""
    assign_params(run.out, run.model.params, groups["param"], run.model.dtype)
    # moments and averages in the weights' type; the lazy average's sums of log decays stay float64
    run.opt.state = {k: v if k.startswith("avgc") or k == "avgC." else v.astype(run.model.dtype)
                     for k, v in groups["opt"].items()}
    run.opt.t = meta["opt_t"]
    states = meta.get("rng_workers") or [meta["rng"]]
    if run.world.rank < len(states):  # the same workers as before: each continues its own draws
        run.rng.bit_generator.state = states[run.world.rank]
    run.st = TrainingState.from_meta(meta)
    run.best = {k: v.astype(run.model.dtype) for k, v in groups["best"].items()} or None
    if groups["carry"]:  # every worker's rows, in order: this worker's streams or texts are its share
        rows = next(iter(groups["carry"].values())).shape[0]
        mine = run.world.share(rows)
        run.carry = [tuple(groups["carry"][f"{i}.{j}"][mine] for j in range(len(s)))
                     for i, s in enumerate(run.model.initial_state(1))]


def _check_opens(run):
    """Before the first step: the checkpoint this run will write passes the checks every command
    that opens a model runs (checkpoint_checks.py), so no run trains for hours to write a file
    that nothing opens. A refusal here is rnncli's own fault, and says so."""
    from rnncli.checkpoint_checks import check_meta, check_shapes

    try:
        meta = json.loads(json.dumps(run.checkpoint_meta([run.rng.bit_generator.state])))  # as it is stored
        check_shapes(run.out, check_meta(run.out, meta), meta, run.model.params)
    except RnncliError as e:
        raise everywhere(RnncliError(f"this run would write a model that rnncli could not open again, so it "
                                     f"stopped before training (please report it): {e}")) from None


def _summary(run):
    """What the run did, for the command's table and --json."""
    st = run.st
    last = st.history[-1] if st.history else {}
    validation = run.ds.meta.get("validation", "none") if run.ds.valid is not None else "none"
    return {"task": run.task.name, "steps": st.step, "epochs": st.epoch,
            "stop": run.stop.reason if run.stop else "finished", "elapsed": st.elapsed,
            "train_loss": last.get("train_loss"), "valid": last.get("valid"),
            "best_score": st.best_score, "best_step": st.best_step,
            "selected_on": "validation" if run.ds.valid is not None else "training loss",
            "validation": validation, "validation_read": run.valid_read if run.ds.valid is not None else None,
            "level": run.ds.meta["level"], "out": str(run.out),
            "workers": run.world.size, "step_seconds": round(run.step_seconds, 3),
            "reduce_seconds": round(run.reduce_seconds, 3)}


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
