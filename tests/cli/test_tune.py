"""rnncli tune: a tiny study on sample data (trials run, a hopeless learning rate is pruned, best.yaml
retrains to the reported score, the ensemble list feeds eval), an interrupted study resumes without
running a trial twice, two workers share one study in a real PostgreSQL server, bad input is one line."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
from cli_runner import cli

optuna = pytest.importorskip("optuna", reason="the tune extra (pip install -e '.[tune]') is not installed")

SAMPLES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "sample_data"))
PG_BIN = "/usr/lib/postgresql/15/bin"
BASE = "hidden: 12\nembed: 8\nmax_steps: 40\neval_every: 5\nepochs: null\n"
SPACE = "lr: [0.01, 0.00001]\ndropout: {uniform: [0.0, 0.3]}\n"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("tune")
    assert cli("tokenize", f"{SAMPLES}/reviews.tsv", "-o", "r.npz", cwd=d).returncode == 0
    (d / "base.yaml").write_text(BASE)
    (d / "space.yaml").write_text(SPACE)
    return d


def states(study):
    return [t.state.name for t in study.get_trials(deepcopy=False)]


def test_a_small_study_prunes_retrains_and_ensembles(folder):
    d = folder
    r = cli("tune", "-d", "r.npz", "--config", "base.yaml", "--space", "space.yaml", "-o", "out", "--trials", "6",
            "--seeds", "2", "--json", cwd=d)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["trials"] == 6 and summary["states"]["COMPLETE"] >= 2 and summary["states"]["PRUNED"] >= 1
    lines = [json.loads(x) for x in (d / "out" / "trials.jsonl").read_text().splitlines()]
    assert sorted(t["trial"] for t in lines) == list(range(6))
    assert "trial" in r.stderr and "pruned" in r.stderr  # the leaderboard
    again = cli("train", "-d", "r.npz", "-o", "again.npz", "--config", "out/best.yaml", "--json", cwd=d)
    assert -json.loads(again.stdout)["best_score"] == pytest.approx(summary["best_value"])
    listed = (d / "out" / "ensemble.txt").read_text().split()
    assert listed == ["ensemble/seed0.npz", "ensemble/seed1.npz"]
    r = cli("eval", "-m", "@out/ensemble.txt", f"{SAMPLES}/reviews.tsv", "--json", cwd=d)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["examples"] > 0
    r = cli("predict", "-m", "out/ensemble.txt", cwd=d, stdin="a warm and funny film\n")
    assert r.returncode == 0 and r.stdout.strip() in ("positive", "negative")


@pytest.mark.slow  # about 8 s: python -m pytest -m slow
def test_an_interrupted_study_resumes_and_runs_no_trial_twice(folder):
    d = folder
    (d / "slow.yaml").write_text(BASE.replace("max_steps: 40", "max_steps: 400").replace("eval_every: 5",
                                                                                          "eval_every: 50"))
    args = [sys.executable, "-m", "rnncli", "tune", "-d", "r.npz", "--config", "slow.yaml", "--space", "space.yaml",
            "-o", "resumed", "--trials", "5", "--pruner", "none"]
    proc = subprocess.Popen(args, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db = f"sqlite:///{d / 'resumed' / 'study.db'}"
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.5)
        try:
            study = optuna.load_study(study_name="rnncli", storage=db)
        except Exception:  # not created yet
            continue
        if states(study).count("COMPLETE") >= 1 and "RUNNING" in states(study):
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "resumes the study" in err
    done_before = [t.number for t in optuna.load_study(study_name="rnncli", storage=db).get_trials()
                   if t.state.name == "COMPLETE"]
    r = subprocess.run(args, cwd=d, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    trials = optuna.load_study(study_name="rnncli", storage=db).get_trials()
    assert sorted(t.number for t in trials) == list(range(5))
    assert "RUNNING" not in [t.state.name for t in trials] and [t.state.name for t in trials].count("FAIL") <= 1
    logs = {t.number: (d / "resumed" / "trials" / f"{t.number:04d}" / "model.metrics.jsonl") for t in trials}
    for n in done_before:  # finished before the interruption, not trained again after it
        first_steps = [json.loads(x)["step"] for x in logs[n].read_text().splitlines()]
        assert first_steps == sorted(set(first_steps))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres():
    """A throw-away PostgreSQL 15 server on a free local port (as the postgres user when root)."""
    if not os.path.exists(f"{PG_BIN}/initdb"):
        pytest.skip(f"no PostgreSQL server binaries in {PG_BIN}")
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = tempfile.mkdtemp(prefix="rnncli-pg-")
    if as_user:
        shutil.chown(data, "postgres")
    port = _free_port()
    subprocess.run([*as_user, f"{PG_BIN}/initdb", "-D", data, "--auth=trust", "-U", "postgres"], check=True,
                   capture_output=True)
    subprocess.run([*as_user, f"{PG_BIN}/pg_ctl", "-D", data, "-l", f"{data}/log", "-w", "-o",
                    f"-p {port} -k {data} -h 127.0.0.1", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, f"{PG_BIN}/pg_ctl", "-D", data, "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


def test_two_workers_share_one_postgresql_study(folder, postgres):
    pytest.importorskip("psycopg")
    d = folder
    workers = [subprocess.Popen([sys.executable, "-m", "rnncli", "tune", "-d", "r.npz", "--config", "base.yaml",
                                 "--space", "space.yaml", "-o", f"worker{k}", "--trials", "8", "--storage", postgres,
                                 "--study", "shared", "--seed", str(k)], cwd=d, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for k in range(2)]
    for w in workers:
        _, err = w.communicate(timeout=300)
        assert w.returncode == 0, err
    trials = optuna.load_study(study_name="shared", storage=postgres).get_trials()
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)) and 8 <= len(numbers) <= 9  # the last two may start together
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both machines (processes) contributed


@pytest.mark.parametrize("space,extra,code,message", [
    ("lrate: [0.1]\n", [], 2, "space.yaml: unknown key 'lrate'"),
    ("lr: {uniform: [0.1]}\n", [], 2, "key 'lr': uniform needs [low, high] with low < high"),
    ("lr: {log_uniform: [0, 0.1]}\n", [], 2, "log_uniform needs low > 0"),
    ("dropout: [0.5, 1.5]\n", [], 2, "key 'dropout' allows 1.5"),
    ("lr: [0.1]\n", ["--storage", "postgresql://nobody@127.0.0.1:1/none"], 1, "cannot open the study storage"),
    ("lr: [0.1]\n", ["--budget", "5s"], 2, "--budget 5s is shorter than one trial"),
])
def test_bad_input_is_one_line(folder, space, extra, code, message):
    d = folder
    (d / "bad_space.yaml").write_text(space)
    t = time.time()
    r = cli("tune", "-d", "r.npz", "--config", "base.yaml", "--space", "bad_space.yaml", "-o", "bad", "--trials", "1",
            *extra, cwd=d)
    assert r.returncode == code and message in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and time.time() - t < 30


@pytest.mark.parametrize("name", ["ner", "ner-glove", "sentiment"])
def test_the_shipped_search_spaces_are_valid(name):
    from rnncli.search_space import read_space

    root = os.path.join(os.path.dirname(__file__), "..", "..", "configs")
    space = read_space(os.path.join(root, f"{name}.space.yaml"), os.path.join(root, f"{name}.yaml"))
    assert "lr" in space and space["lr"][0] == "log_uniform"


@pytest.mark.slow  # about 8 s: python -m pytest -m slow
def test_the_same_seed_suggests_the_same_trials(folder):
    """--jobs 1 and a given --seed: a new study proposes the same values in the same order."""
    d = folder
    runs = []
    for out in ("same_a", "same_b"):
        r = cli("tune", "-d", "r.npz", "--config", "base.yaml", "--space", "space.yaml", "-o", out, "--trials", "4",
                "--seed", "7", cwd=d)
        assert r.returncode == 0, r.stderr
        lines = (d / out / "trials.jsonl").read_text().splitlines()
        runs.append([(t["params"], t["state"]) for t in map(json.loads, lines)])
    assert runs[0] == runs[1]


def test_a_new_study_starts_from_the_config(folder):
    """Trial 0 is the base config itself wherever the space allows its values (lr 0.002 is not one of
    the space's two choices, so the sampler draws it); the same values are not enqueued again on resume."""
    from rnncli.search_space import within

    space = {"lr": ("choice", [0.01, 1e-05]), "dropout": ("uniform", 0.0, 0.3), "hidden": ("int", 8, 16),
             "pool": ("choice", ["max", "last"])}
    assert within(space, {"lr": 0.002, "dropout": 0.1, "hidden": 12, "pool": "mean"}) == {"dropout": 0.1,
                                                                                          "hidden": 12}
    assert within(space, {"dropout": 0.5, "hidden": 12.5, "lr": 0.01}) == {"lr": 0.01}
    # a yes/no choice keeps the config's answer; a boolean is no number for a range
    assert within({"crf": ("choice", [True, False]), "hidden": ("int", 0, 2)}, {"crf": False, "hidden": True}) == {
        "crf": False}
    d = folder
    r = cli("tune", "-d", "r.npz", "--config", "base.yaml", "--space", "space.yaml", "-o", "start", "--trials", "2",
            "--seed", "3", cwd=d)
    assert r.returncode == 0, r.stderr
    first = [json.loads(x) for x in (d / "start" / "trials.jsonl").read_text().splitlines()]
    assert first[0]["params"]["dropout"] == 0.1  # the config's default dropout, not a draw
    assert first[1]["params"]["dropout"] != 0.1
    r = cli("tune", "-d", "r.npz", "--config", "base.yaml", "--space", "space.yaml", "-o", "start", "--trials", "3",
            "--seed", "3", cwd=d)
    assert r.returncode == 0, r.stderr
    again = [json.loads(x) for x in (d / "start" / "trials.jsonl").read_text().splitlines()]
    assert len(again) == 3 and again[2]["params"]["dropout"] != 0.1


@pytest.mark.slow  # about 8 s: python -m pytest -m slow
def test_a_budget_ends_without_empty_trials(folder, monkeypatch):
    """When less time is left than a trial needs, the study stops: every recorded trial trained."""
    from rnncli.commands import tune

    monkeypatch.setattr(tune, "MIN_BUDGET", 4)
    d = folder
    tuner = tune.Tuner(str(d / "r.npz"), str(d / "base.yaml"), str(d / "space.yaml"), str(d / "timed"), seed=1)
    start = time.monotonic()
    tuner.run(budget=12)
    assert time.monotonic() - start < 40
    trials = tuner.study.get_trials(deepcopy=False)
    assert len(trials) >= 2
    for t in trials:
        assert (d / "timed" / "trials" / f"{t.number:04d}" / "model.metrics.jsonl").exists(), t.number


@pytest.mark.mpi  # the dev extra's MPICH: python -m pytest -m mpi
def test_trials_train_on_workers_and_a_pruned_trial_stops_all_of_them(folder):
    """tune --workers 2: every trial and the ensemble's member are 2-worker runs (their checkpoints say
    so); the pruner stops a hopeless trial's workers together, and none is left running."""
    from rnncli.checkpoint import load_checkpoint

    d = folder
    r = cli("tune", "-d", "r.npz", "--config", "base.yaml", "--space", "space.yaml", "-o", "on_workers",
            "--trials", "6", "--workers", "2", "--seeds", "1", "--json", cwd=d)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["states"]["COMPLETE"] >= 2 and summary["states"]["PRUNED"] >= 1, summary
    for line in (d / "on_workers" / "trials.jsonl").read_text().splitlines():
        trial = json.loads(line)
        meta, _ = load_checkpoint(str(d / "on_workers" / "trials" / f"{trial['trial']:04d}" / "model.npz"))
        assert meta["workers"] == 2, trial
    assert load_checkpoint(str(d / "on_workers" / "ensemble" / "seed0.npz"))[0]["workers"] == 2
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                left += [pid] if b"on_workers" in f.read() else []
        except OSError:  # ended while we looked
            pass
    assert not left




def test_a_storage_password_is_never_printed_or_written(models):
    pytest.importorskip("optuna")
    pytest.importorskip("psycopg")
    d = models
    (d / "cfg.yaml").write_text("hidden: 8\nembed: 4\nmax_steps: 2\n")
    (d / "space.yaml").write_text("lr: {log_uniform: [0.001, 0.01]}\n")
    r = cli("tune", "-d", "rev.npz", "--config", "cfg.yaml", "--space", "space.yaml", "-o", "study",
            "--storage", "postgresql://someone:s3cretpass@127.0.0.1:1/db", "--budget", "1m", cwd=d, timeout=120)
    assert r.returncode == 1 and "postgresql://someone:***@127.0.0.1:1/db" in r.stderr, r.stderr
    assert "s3cretpass" not in r.stderr + r.stdout
    for root, _, files in os.walk(d / "study"):
        for f in files:
            assert b"s3cretpass" not in open(os.path.join(root, f), "rb").read()


def test_mask_credentials():
    from rnncli.errors import mask_credentials

    assert mask_credentials("at postgresql://u:p%40ss@h:5432/db now") == "at postgresql://u:***@h:5432/db now"
    assert mask_credentials("dsn host=h password=hunter2 user=u") == "dsn host=h password=*** user=u"
    assert mask_credentials("sqlite:////tmp/study.db") == "sqlite:////tmp/study.db"
