"""Data-parallel training over MPI (parallel/): two workers on a global batch B end where one
process with batch B ends (float64, no dropout), for every task; runs with dropout repeat bit for
bit at the same number of workers, also across a kill and --resume; a dead worker ends the run
on the others; two ranks over TCP on 127.0.0.1, as a second machine would talk.

The tests start their own ranks (`train --workers 2` runs MPICH's mpiexec from the mpich wheel
in the dev extra; one test calls mpiexec itself, as a cluster user does).
"""

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from cli_runner import cli

pytestmark = pytest.mark.mpi  # about 40 s: run with `python -m pytest -m mpi` (.ci/run does)

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "sample_data")
MPIEXEC = os.path.join(os.path.dirname(sys.executable), "mpiexec")
SMALL = ["--dtype", "float64", "--dropout", "0", "--hidden", "12", "--embed", "8", "--layers", "1",
         "--max-steps", "20", "--eval-every", "7", "--lr", "0.01", "-q"]


def groups(path):
    """{name: array} of a checkpoint's parameters, best weights and optimizer state."""
    with np.load(path) as z:
        return {k: z[k] for k in z.files if k.split(".")[0] in ("param", "best", "opt")}


def relative_difference(a, b):
    assert a.keys() == b.keys()
    return max(float(np.abs(a[k] - b[k]).max() / max(np.abs(a[k]).max(), 1e-300)) for k in a)


def meta_of(path):
    from rnncli.checkpoint import load_checkpoint

    return load_checkpoint(str(path))[0]


def train(cwd, out, *args):
    r = cli("train", "-o", out, *args, cwd=cwd, timeout=240)
    assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A data set of each kind, made small."""
    d = tmp_path_factory.mktemp("parallel")
    rng = random.Random(0)
    for name, n in (("tunes.jsonl", 60), ("tunes_valid.jsonl", 10)):
        with open(d / name, "w") as f:
            for _ in range(n):
                label = rng.choice(["waltz", "jig"])
                body = "".join(rng.choice("ABCDEFG|") for _ in range(rng.randint(5, 40)))
                f.write(json.dumps({"label": label, "text": body}) + "\n")
    made = {"lm": ("tokenize", f"{SAMPLES}/corpus.txt", "-o", "lm.npz"),
            "clm": ("tokenize", "tunes.jsonl", "--valid", "tunes_valid.jsonl", "-o", "clm.npz"),
            "classify": ("tokenize", f"{SAMPLES}/reviews.tsv", "-o", "classify.npz"),
            "tag": ("tokenize", f"{SAMPLES}/ner.conll", "-o", "tag.npz"),
            "seq2seq": ("tokenize", f"{SAMPLES}/dates.tsv", "--valid", f"{SAMPLES}/dates_valid.tsv", "--level",
                        "char", "-o", "seq2seq.npz")}
    subprocess.run([sys.executable, f"{SAMPLES}/make_tones.py", str(d / "tones"), "--per-digit", "3"], check=True,
                   capture_output=True)
    made["tones"] = ("tokenize", "tones/train.jsonl", "-o", "tones.npz")
    for args in made.values():
        r = cli(*args, "-q", cwd=d)
        assert r.returncode == 0, r.stderr
    # 8-d vectors for the review words (and one the data lacks): their table's gradients are sparse rows
    words = sorted({w for line in open(f"{SAMPLES}/reviews.tsv") for w in line.split("\t")[-1].split()})[:300]
    vectors = np.random.default_rng(0).normal(size=(len(words) + 1, 8)).round(4)
    rows = zip([*words, "zzz"], vectors, strict=True)
    (d / "vec.txt").write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in rows))
    return d


TASKS = {  # the data set is f"{task}.npz" up to the first "+"
    "lm": ["--seq-len", "9"],
    "clm": ["--task", "lm", "--condition", "both", "--seq-len", "16"],  # tunes longer than a chunk: carried states
    "classify": ["--bidirectional", "--pool", "mean", "--average", "0.9"],  # the weight average kept alike
    "tag": ["--crf", "--char-features", "--char-embed", "6", "--char-hidden", "6", "--lr-decay", "0.8"],
    "seq2seq": ["--attention", "general", "--max-steps", "12", "--lr-schedule", "cosine", "--warmup", "3",
                "--decoder-hidden", "10", "--input-feeding"],  # the schedule's steps alike
    "classify+vectors": ["--embeddings", "vec.txt", "--freeze-embeddings"],  # rows travel as rows
    # a table of 57 x 1,200 numbers: its update's blocks gather into the table itself (parallel/)
    "classify+wide": ["--embed", "1200", "--average", "0.9"],
    # recordings augmented: each sequence's draws are its own, whichever worker reads it
    "tones+augmented": ["--pool", "mean", "--noise-db", "-30", "--gain-db", "6", "--time-masks", "2",
                        "--freq-masks", "1"],
}


@pytest.mark.parametrize("batch", [6, 5])  # an even split, and an odd one (3 + 2)
@pytest.mark.parametrize("task", list(TASKS))
def test_two_workers_take_the_single_process_steps(data, task, batch):
    args = ["-d", f"{task.split('+')[0]}.npz", *SMALL, *TASKS[task], "--batch-size", str(batch)]
    one, two = f"{task}_{batch}_1.npz", f"{task}_{batch}_2.npz"
    train(data, one, *args)
    train(data, two, *args, "--workers", "2")
    assert relative_difference(groups(data / one), groups(data / two)) <= 1e-10
    # the evaluations shared out between the workers found what one process found
    h1, h2 = meta_of(data / one)["history"], meta_of(data / two)["history"]
    assert [r["step"] for r in h1] == [r["step"] for r in h2] and len(h1) >= 2
    for a, b in zip(h1, h2, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-10)
        assert _numbers(a["valid"]) == pytest.approx(_numbers(b["valid"]), rel=1e-9)
    assert meta_of(data / two)["workers"] == 2


@pytest.mark.parametrize("task", ["lm", "clm"])
def test_a_resumed_run_carries_every_workers_states_on(data, task):
    """Stopped mid-epoch (carried states, each worker's own streams or texts) and resumed (at the
    same number of workers, without saying it again): bit for bit the unbroken run."""
    args = ["-d", f"{task}.npz", *SMALL, *TASKS[task], "--batch-size", "5", "--workers", "2"]
    train(data, f"r_{task}_whole.npz", *args)
    train(data, f"r_{task}.npz", *[a if a != "20" else "11" for a in args])
    meta = meta_of(data / f"r_{task}.npz")
    assert meta["step"] == 11 and meta["chunk"] > 0
    # --resume continues with as many workers as the run had, unless told otherwise
    r = cli("train", "--resume", f"r_{task}.npz", "-d", f"{task}.npz", "--max-steps", "20", "-q", cwd=data,
            timeout=240)
    assert r.returncode == 0, r.stderr
    a, b = groups(data / f"r_{task}_whole.npz"), groups(data / f"r_{task}.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert meta_of(data / f"r_{task}.npz")["workers"] == 2


def _numbers(tree, prefix=""):
    """{path: number} of every number in a nested dict of metrics."""
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in _numbers(sub, f"{prefix}.{key}").items()}
    return {prefix: tree} if isinstance(tree, int | float) else {}


def test_runs_with_dropout_repeat_bit_for_bit_and_survive_a_kill(data):
    args = ["-d", "classify.npz", "--dropout", "0.3", "--word-dropout", "0.1", "--hidden", "32", "--batch-size", "8",
            "--max-steps", "150", "--eval-every", "10", "--workers", "2", "-q"]
    train(data, "a.npz", *args)
    train(data, "b.npz", *args)
    a, b = groups(data / "a.npz"), groups(data / "b.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a)

    # the same run, killed (SIGKILL: no chance to save) after its first checkpoints, then resumed
    proc = subprocess.Popen([sys.executable, "-m", "rnncli", "train", "-o", "c.npz", *args], cwd=data,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and (not os.path.exists(data / "c.npz") or meta_of(data / "c.npz")["step"] < 20):
        time.sleep(0.05)
    ranks = _ranks(proc.pid)
    assert set(ranks) == {0, 1}
    for pid in ranks.values():
        os.kill(pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode != 0
    stopped_at = meta_of(data / "c.npz")["step"]
    assert 20 <= stopped_at < 150
    r = cli("train", "--resume", "c.npz", "-d", "classify.npz", "--workers", "2", "-q", cwd=data, timeout=240)
    assert r.returncode == 0, r.stderr
    c = groups(data / "c.npz")
    assert all(np.array_equal(a[k], c[k]) for k in a), f"resumed from step {stopped_at}"


def _endless_run(data, out, hidden):
    """`train --workers 2` with no end in sight, once it has written its first checkpoint."""
    proc = subprocess.Popen([sys.executable, "-m", "rnncli", "train", "-d", "classify.npz", "-o", out,
                             "--hidden", str(hidden), "--batch-size", "8", "--max-steps", "100000", "--eval-every",
                             "10", "--workers", "2", "-q"], cwd=data, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not os.path.exists(data / out):
        time.sleep(0.05)
    return proc


def test_ctrl_c_stops_every_worker_at_one_step_with_a_resumable_checkpoint(data):
    proc = _endless_run(data, "i.npz", 32)
    proc.send_signal(signal.SIGINT)  # what a terminal sends the launcher on Ctrl-C
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "sigint received: saved a resumable checkpoint at step" in lines[0], err
    step = int(lines[0].split("at step ")[1].split()[0])
    meta = meta_of(data / "i.npz")
    assert meta["step"] == step and len(meta["rng_workers"]) == 2
    r = cli("train", "--resume", "i.npz", "-d", "classify.npz", "--max-steps", str(step + 5), "--workers", "2", "-q",
            cwd=data)
    assert r.returncode == 0 and meta_of(data / "i.npz")["step"] == step + 5, r.stderr


def _ranks(launcher_pid):
    """{rank: pid} of the rnncli processes below the launcher."""
    from rnncli.parallel.launch import _descendants

    out = {}
    for pid in _descendants(launcher_pid):
        try:
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        rank = next((e.split(b"=", 1)[1] for e in env if e.startswith(b"PMI_RANK=")), None)
        if rank is not None:
            out[int(rank)] = pid
    return out


def test_a_dead_worker_ends_the_run_everywhere_and_the_checkpoint_survives(data):
    proc = _endless_run(data, "k.npz", 64)
    ranks = _ranks(proc.pid)
    assert set(ranks) == {0, 1}
    killed = time.time()
    os.kill(ranks[1], signal.SIGKILL)
    _, err = proc.communicate(timeout=30)
    assert time.time() - killed < 10
    assert proc.returncode != 0
    assert not any(_alive(pid) for pid in ranks.values())
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("rnncli: error: a worker ended abnormally"), err
    assert "k.npz keeps its last checkpoint" in lines[0]
    r = cli("eval", "-m", "k.npz", f"{SAMPLES}/reviews.tsv", "--json", cwd=data)  # intact and loadable
    assert r.returncode == 0, r.stderr


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_two_ranks_over_tcp_as_two_machines_would(data):
    """mpiexec run by hand, the ranks forced onto the network transport (TCP on 127.0.0.1, no
    shared memory): the same parameters as one process."""
    env = {**os.environ, "MPIR_CVAR_NOLOCAL": "1", "MPIR_CVAR_CH4_NETMOD": "ofi", "FI_PROVIDER": "tcp",
           "FI_TCP_IFACE": "lo", "OMP_NUM_THREADS": "1"}
    launch = [MPIEXEC, "-n", "2", "-hosts", "127.0.0.1", "-iface", "lo"]
    probe = ("from mpi4py import MPI; import os, subprocess, numpy as np; c = MPI.COMM_WORLD; "
             "a = np.ones(100000); c.Allreduce(MPI.IN_PLACE, a); "
             "s = subprocess.run(['ss', '-tnp'], capture_output=True, text=True).stdout; "
             "tcp = any(f'pid={os.getpid()},' in l and '127.0.0.1' in l for l in s.splitlines()); "
             "found = c.gather(tcp); c.Get_rank() or print(found)")
    r = subprocess.run([*launch, sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[True, True]", r.stdout  # each rank holds a TCP socket on 127.0.0.1
    args = ["-d", "tag.npz", *SMALL, "--batch-size", "6"]
    train(data, "tcp1.npz", *args)
    r = subprocess.run([*launch, sys.executable, "-m", "rnncli", "train", "-o", "tcp2.npz", *args], cwd=data,
                       env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    assert relative_difference(groups(data / "tcp1.npz"), groups(data / "tcp2.npz")) <= 1e-10


def test_workers_that_disagree_are_refused_before_the_first_step(data, tmp_path):
    """Each rank reads its own data file (as on separate machines): a different one is named."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for sub, n in (("a", 120), ("b", 100)):
        lines = open(f"{SAMPLES}/reviews.tsv").read().splitlines()[:n]
        (tmp_path / sub / "r.tsv").write_text("\n".join(lines) + "\n")
        assert cli("tokenize", "r.tsv", "-o", "d.npz", "-q", cwd=tmp_path / sub).returncode == 0
    script = ("import os, sys; from rnncli.cli import main; "
              "os.chdir('a' if os.environ['PMI_RANK'] == '0' else 'b'); sys.argv = ['rnncli'] + sys.argv[1:]; main()")
    r = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-c", script, "train", "-d", "d.npz", "-o", "m.npz",
                        "--max-steps", "5", "-q"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "worker 1" in lines[0] and "different data" in lines[0], r.stderr
    assert not os.path.exists(tmp_path / "a" / "m.npz")


def test_without_the_extra_workers_is_one_line_naming_it(data, tmp_path):
    """A Python without mpi4py: --workers 2 says what to install; --workers 1 needs nothing."""
    blocker = tmp_path / "mpi4py.py"
    blocker.write_text("raise ImportError('No module named mpi4py')\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    run = [sys.executable, "-m", "rnncli", "train", "-d", "classify.npz", "--max-steps", "2", "-q"]
    r = subprocess.run([*run, "-o", "x.npz", "--workers", "2"], cwd=data, env=env, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert "pip install 'rnncli[mpi]'" in r.stderr
    r = subprocess.run([*run, "-o", "y.npz", "--workers", "1"], cwd=data, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
