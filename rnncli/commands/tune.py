"""rnncli tune: hyperparameter search with Optuna, each trial an ordinary `rnncli train` process.

    the study     Optuna's TPE sampler (seeded) and a pruner, in an RDB storage: an SQLite file in
                  the output folder by default (the same command resumes an interrupted study), or
                  any Optuna RDB URL, so that the same command on several machines shares one study
    the start     a new study's first trial is the base config as it is (where the space allows its values)
    a trial       a config = the base config + the trial's values (trials/NNNN/config.yaml), trained
                  by `rnncli train` in its own process with cores // jobs threads, or with --workers W
                  on W MPI workers of cores // (jobs W) threads each (parallel/); this process reads
                  the trial's metrics log as it grows and reports each validation score to Optuna,
                  which may prune the trial (it is stopped with SIGTERM, its checkpoint kept)
    failures      a trial whose process fails (a diverging learning rate, a kill) is recorded FAIL;
                  the study goes on. Trials left RUNNING by an interrupted run are marked FAIL when
                  the study is opened again: none is run twice
    the end       best.yaml (the best trial's config, for train --config), best.npz, trials.jsonl,
                  and with --seeds K the best config trained with K seeds, listed in ensemble.txt
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

from rnncli import console
from rnncli.commands.common import lock_output
from rnncli.config import load_config_file, make_config, parse_duration
from rnncli.errors import EXIT_INTERRUPTED, RnncliError, UsageError, mask_credentials
from rnncli.parallel import require_mpi
from rnncli.search_space import read_space, suggest, within
from rnncli.tasks.build import task_of
from rnncli.tasks.registry import task_named

MIN_BUDGET = 30  # seconds: a trial needs its start-up and at least one evaluation


def _optuna():
    try:
        import optuna
    except ImportError:
        raise RnncliError("tune needs Optuna: pip install 'rnncli[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def maximizes(task):
    return task_named(task).maximizes


def score_of(task, metrics):
    """The study's objective from a validation record: accuracy or entity F1 (higher is better),
    else the loss (lower is better)."""
    return task_named(task).reported_score(task_named(task).selection_score(metrics))


def check_tune_options(budget, trials, pruner, config, space):
    """The study's options, before anything starts -> the budget in seconds (None: none)."""
    if pruner not in ("median", "halving", "none"):
        raise UsageError(f"--pruner {pruner!r} is not one of median, halving, none")
    seconds = check_budget(budget)
    if seconds is None and trials is None:
        raise UsageError("give --budget, --trials or both")
    for path, what in ((config, "--config"), (space, "--space")):
        if not os.path.exists(path):
            raise UsageError(f"{path}: no such file ({what})")
    return seconds


def run_study(tuner, seconds, trials, title, seeds=0):
    """Run the study to its budget or trial count, then finish it (Tuner.finish) -> the summary.
    Ctrl-C or SIGTERM stops the running trials (each saves a checkpoint), writes the results so
    far and ends with EXIT_INTERRUPTED: the same command resumes the study."""

    def interrupted(signum, frame):
        tuner.stop()
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, interrupted)
    try:
        tuner.run(seconds, trials, callback=lambda st, t: leaderboard(st, tuner.task, f"after trial {t.number}"))
    except KeyboardInterrupt:
        tuner.stop()
        try:
            write_results(tuner.study, tuner.task, tuner.out)
        finally:
            tuner.close()
        raise RnncliError(f"interrupted; the same command resumes the study in {tuner.out}", EXIT_INTERRUPTED) from None
    finally:
        signal.signal(signal.SIGTERM, old)
    return tuner.finish(title, seeds)


class Tuner:
    def __init__(self, data, config, space, out, storage=None, study=None, jobs=1, seed=0, pruner="median",
                 workers=None):
        from rnncli.text.store import load_dataset

        self.optuna = _optuna()
        self.data, self.config, self.out, self.jobs, self.seed = str(data), str(config), str(out), jobs, seed
        self.base = load_config_file(config)
        self.space = read_space(space, config)
        cfg = make_config(config)
        if "workers" in self.space:  # it changes how fast a trial runs, not the model it trains
            raise UsageError(f"{space}: `workers` is not a hyperparameter; give tune --workers N "
                             "to train each trial on N workers")
        self.workers = workers or cfg.workers
        cores = os.cpu_count() or 1
        if jobs * self.workers > cores:  # MPI's workers wait for each other by spinning: never more than the cores
            raise UsageError(f"--jobs {jobs} trials of {self.workers} workers each need {jobs * self.workers} "
                             f"cores; this machine has {cores}")
        if self.workers > 1:
            require_mpi(self.workers)
        self.task = task_of(cfg, load_dataset(self.data).meta)
        os.makedirs(os.path.join(self.out, "trials"), exist_ok=True)
        lock_output(self.out)  # one tune per folder on this machine (other machines share the study, not it)
        threads = str(max(1, cores // (jobs * self.workers)))  # BLAS threads of each worker of each trial
        self.env = {**os.environ, **dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"),
                                                  threads)}
        own = f"sqlite:///{os.path.abspath(os.path.join(self.out, 'study.db'))}"
        self.storage = open_storage(self.optuna, storage or own)
        self.study = self.optuna.create_study(
            storage=self.storage, study_name=study or "rnncli", load_if_exists=True,
            direction="maximize" if maximizes(self.task) else "minimize",
            sampler=self.optuna.samplers.TPESampler(seed=seed), pruner=make_pruner(self.optuna, pruner, cfg.eval_every))
        fail_stale(self.optuna, self.study, self.storage)
        self._start_from_the_config(cfg)
        self.live, self.lock, self.stopping = {}, threading.Lock(), False
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def _start_from_the_config(self, cfg):
        """A new study's first trial is the base config itself (its values the space could suggest; the
        sampler draws the rest), so the best trial is never worse on valid than where the user started."""
        if self.study.get_trials(deepcopy=False):
            return
        values = within(self.space, {key: getattr(cfg, key, None) for key in self.space})
        if values:
            self.study.enqueue_trial(values, skip_if_exists=True)

    # ------------------------------------------------------------ one trial

    def objective(self, trial, deadline):
        values = suggest(trial, self.space)
        trial.set_user_attr("worker", self.worker)
        left = deadline - time.monotonic()
        if left < MIN_BUDGET:  # a trial another job began as time ran out (the callback stops the rest)
            self.study.stop()
            raise self.optuna.TrialPruned()
        folder = os.path.join(self.out, "trials", f"{trial.number:04d}")
        os.makedirs(folder, exist_ok=True)
        cfg_path, model = os.path.join(folder, "config.yaml"), os.path.join(folder, "model.npz")
        _write_yaml(cfg_path, {**self.base, **values})
        own = parse_duration(self.base["max_time"]) if self.base.get("max_time") else left
        cmd = [sys.executable, "-m", "rnncli", "train", "-d", self.data, "-o", model, "--config", cfg_path,
               "--max-time", f"{int(min(left, own))}s", "--workers", str(self.workers), "--force", "--json", "-q"]
        log = os.path.join(folder, "model.metrics.jsonl")
        with open(os.path.join(folder, "train.log"), "w") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=self.env)
        with self.lock:
            self.live[trial.number] = proc
        pruned, seen = False, 0
        try:
            while proc.poll() is None:
                time.sleep(0.2)
                seen, pruned = self._report(trial, log, seen)
                if pruned:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait()
                    break
            stdout = proc.stdout.read()
        finally:
            proc.stdout.close()
            with self.lock:
                self.live.pop(trial.number, None)
        if pruned:
            raise self.optuna.TrialPruned()
        if self.stopping:
            raise RuntimeError("interrupted")
        if proc.returncode != 0:
            raise RuntimeError(_last_line(os.path.join(folder, "train.log")) or f"exit code {proc.returncode}")
        self._report(trial, log, seen)
        summary = json.loads(stdout)
        trial.set_user_attr("steps", summary["steps"])
        best = max if maximizes(self.task) else min
        return best(score_of(self.task, h["valid"]) for h in _records(log) if h.get("valid"))

    def _report(self, trial, log, seen):
        """Report the new validation records to Optuna; -> (records seen, whether to prune)."""
        records = _records(log)
        for rec in records[seen:]:
            if rec.get("valid"):
                trial.report(score_of(self.task, rec["valid"]), rec["step"])
                if trial.should_prune():
                    return len(records), True
        return len(records), False

    def stop(self):
        """Interrupted: stop the running trials (they save their checkpoints)."""
        self.stopping = True
        with self.lock:
            for proc in self.live.values():
                proc.send_signal(signal.SIGTERM)

    # ------------------------------------------------------------ the whole study

    def close(self):
        """Let go of the study's database connections (the storage's pool)."""
        self.storage.engine.dispose()

    def finish(self, title, seeds=0):
        """The study's results written, its leaderboard shown, and with seeds the best config's
        ensemble trained; the storage let go. -> the summary dict."""
        try:
            summary, best = write_results(self.study, self.task, self.out)
            leaderboard(self.study, self.task, f"{title}: {summary['trials']} trials")
            if seeds and best is not None and "best_config" in summary:
                summary["ensemble"] = train_ensemble(self.data, self.out, seeds, self.jobs, self.workers, self.env)
            return summary
        finally:
            self.close()

    def run(self, budget=None, trials=None, callback=None):
        TrialState = self.optuna.trial.TrialState
        deadline = time.monotonic() + (budget or 10**9)
        stop_at = None
        if trials is not None:
            stop_at = self.optuna.study.MaxTrialsCallback(
                trials, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING))
            if len(self.study.get_trials(deepcopy=False)) >= trials:
                return

        def out_of_time(study, trial):
            # no new trial when less time is left than a useful run needs: Optuna's own timeout
            # would go on starting trials that end at once, each recorded as pruned
            if deadline - time.monotonic() < MIN_BUDGET:
                study.stop()

        callbacks = [c for c in (stop_at, callback, out_of_time) if c is not None]
        self.study.optimize(lambda t: self.objective(t, deadline), timeout=budget, n_jobs=self.jobs,
                            catch=(RuntimeError, ValueError, KeyError), callbacks=callbacks)

def fail_stale(optuna, study, storage):
    """Trials a killed run left RUNNING: FAIL now (they are not run again). Only in a storage of
    our own: a shared one has other machines' running trials in it."""
    if not storage.url.startswith("sqlite"):
        return
    TrialState = optuna.trial.TrialState
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(t.number, state=TrialState.FAIL)


def make_pruner(optuna, name, eval_every):
    """Optuna's pruner by its name. The median pruner prunes nothing before a trial's second
    evaluation: the first is noisy (every trial starts poorly)."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2 * eval_every - 1)
    return optuna.pruners.SuccessiveHalvingPruner() if name == "halving" else optuna.pruners.NopPruner()


def open_storage(optuna, url):
    """An RDB storage, refused in one line (within seconds) when it cannot be reached."""
    kwargs = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        kwargs["connect_args"] = {"connect_timeout": 5}
    for attempt in range(4):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except Exception as e:  # sqlalchemy and drivers raise their own kinds
            error = e
            # workers started together race to create the tables: the loser tries again
            if "refused" in str(e) or "timeout" in str(e).lower():
                break
            time.sleep(0.5 + attempt)
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    raise RnncliError(mask_credentials(f"cannot open the study storage {url}: {first[:160]}")) from None


def write_results(study, task, out):
    """Write a study's trials.jsonl, best.yaml and best.npz into out; -> (summary dict, the best
    trial or None)."""
    trials = study.get_trials(deepcopy=False)
    with open(os.path.join(out, "trials.jsonl"), "w", encoding="utf-8") as f:
        for t in trials:
            f.write(json.dumps({"trial": t.number, "state": t.state.name, "value": t.value, "params": t.params,
                                "steps": t.user_attrs.get("steps"), "worker": t.user_attrs.get("worker")}) + "\n")
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    best = study.best_trial if complete else None
    summary = {"study": study.study_name, "task": task,
               "direction": "maximize" if maximizes(task) else "minimize",
               "trials": len(trials), "states": {s: sum(t.state.name == s for t in trials)
                                                 for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")}}
    if best is not None:
        folder = os.path.join(out, "trials", f"{best.number:04d}")
        summary.update(best_trial=best.number, best_value=best.value, best_params=best.params)
        if os.path.exists(os.path.join(folder, "config.yaml")):  # trained here, not on another machine
            shutil.copyfile(os.path.join(folder, "config.yaml"), os.path.join(out, "best.yaml"))
            shutil.copyfile(os.path.join(folder, "model.npz"), os.path.join(out, "best.npz"))
            summary["best_config"] = os.path.join(out, "best.yaml")
    return summary, best


def train_ensemble(data, out, seeds, jobs, workers, env):
    """The best config (out/best.yaml) trained with seeds 0..K-1, `jobs` at a time; -> ensemble.txt's path."""
    folder = os.path.join(out, "ensemble")
    os.makedirs(folder, exist_ok=True)
    cfg = os.path.join(out, "best.yaml")
    paths = [os.path.join(folder, f"seed{k}.npz") for k in range(seeds)]
    for w in range(0, seeds, jobs):
        procs = [subprocess.Popen([sys.executable, "-m", "rnncli", "train", "-d", data, "-o", p, "--config",
                                   cfg, "--seed", str(k), "--workers", str(workers), "--force", "-q"],
                                  env=env, stdout=subprocess.DEVNULL)
                 for k, p in list(enumerate(paths))[w : w + jobs]]
        if any(p.wait() for p in procs):
            raise RnncliError("a member of the ensemble failed to train")
    listing = os.path.join(out, "ensemble.txt")
    with open(listing, "w", encoding="utf-8") as f:
        f.write("".join(os.path.relpath(p, out) + "\n" for p in paths))
    return listing


def _records(log):
    try:
        with open(log, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except (ValueError, RecursionError):  # a line being written
            break
    return out


def _last_line(path):
    try:
        lines = [ln for ln in open(path, encoding="utf-8").read().splitlines() if ln.strip()]
    except OSError:
        return None
    return lines[-1][:200] if lines else None


def _write_yaml(path, values):
    import yaml

    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(values, f, sort_keys=False)


def check_budget(budget):
    seconds = parse_duration(budget) if budget else None
    if seconds is not None and seconds < MIN_BUDGET:
        raise UsageError(f"--budget {budget} is shorter than one trial's start-up and first evaluation "
                         f"(at least {MIN_BUDGET}s)")
    return seconds


def leaderboard(study, task, title):
    """The trials as a Rich table, best first (on stderr)."""
    rows = []
    trials = sorted(study.get_trials(deepcopy=False),
                    key=lambda t: (t.value is None, -(t.value or 0) if maximizes(task) else (t.value or 0)))
    for t in trials:
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in t.params.items())
        value = "-" if t.value is None else f"{t.value:.4f}"
        last = max(t.intermediate_values) if t.intermediate_values else "-"
        rows.append((str(t.number), params, value, str(t.user_attrs.get("steps", last)), t.state.name.lower()))
    console.show(console.table(title, ["trial", "params", "score:", "steps:", "state"], rows))
