"""What commands write: atomically, in place when the output is not a regular file (/dev/null, a pipe),
cleanly failing on a full device, and one writer per output."""

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from cli_runner import cli

SAMPLES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "sample_data"))


CORPUS = f"{SAMPLES}/corpus.txt"


def ok(r):
    assert r.returncode == 0, r.stderr
    return r


def files(folder):
    return sorted(p.name for p in folder.iterdir())


AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]


def test_vocab_out_is_written_atomically(tmp_path, monkeypatch):
    from rnncli import npzfile
    from rnncli.commands.tokenize import tokenize_files
    from rnncli.errors import RnncliError

    (tmp_path / "vocab.json").write_text("previous")
    real = npzfile.os.replace

    def full_disk(src, dst):
        if dst.endswith(".json"):
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(npzfile.os, "replace", full_disk)
    with pytest.raises(RnncliError, match="vocab.json: cannot write: No space left on device"):
        tokenize_files([CORPUS], str(tmp_path / "t.npz"), vocab_out=str(tmp_path / "vocab.json"), force=True)
    assert (tmp_path / "vocab.json").read_text() == "previous"
    assert not [n for n in files(tmp_path) if n.endswith(".tmp")]


@pytest.mark.parametrize("who", ["root", "user"])
def test_an_output_that_is_not_a_regular_file_is_written_in_place(tmp_path, who):
    prefix = []
    if who == "root" and os.geteuid() != 0:
        pytest.skip("not root here; the 'user' case runs as this user")
    if who == "user" and os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("no setpriv to run as a normal user")
        prefix = AS_NOBODY
    # a folder anyone may enter and write (pytest's own are private to the user running it)
    folder = Path(tempfile.mkdtemp(prefix="rnncli-out-", dir="/tmp"))
    os.chmod(folder, 0o777)
    root_only = Path(tempfile.mkdtemp(prefix="rnncli-root-", dir="/tmp"))  # 0o700
    fifo = folder / "pipe"
    os.mkfifo(fifo)
    os.chmod(fifo, 0o666)
    got = {}

    def read_fifo():
        with open(fifo, "rb") as f:
            got["data"] = f.read()

    reader = threading.Thread(target=read_fifo, daemon=True)
    reader.start()
    env = {**os.environ, "HOME": str(folder)}
    r = subprocess.run([*prefix, sys.executable, "-m", "rnncli", "tokenize", CORPUS, "-o", str(fifo), "--force"],
                       cwd=folder, capture_output=True, text=True, timeout=120, env=env)
    if reader.is_alive():  # the run never opened the FIFO: let the reader go
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    reader.join(timeout=60)
    assert r.returncode == 0, r.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and got.get("data", b"").startswith(b"PK")
    # a symlink to a regular file: the link survives, its target is updated
    target = folder / "real.npz"
    target.write_bytes(b"old")
    os.chmod(target, 0o666)
    link = folder / "link.npz"
    os.symlink(target, link)
    r = subprocess.run([*prefix, sys.executable, "-m", "rnncli", "tokenize", CORPUS, "-o", str(link), "--force"],
                       cwd=folder, capture_output=True, text=True, timeout=120, env=env)
    if prefix:  # and it really ran as a normal user: it could not write where root alone may
        r2 = subprocess.run([*prefix, sys.executable, "-m", "rnncli", "tokenize", CORPUS, "-o",
                             str(root_only / "t.npz")], cwd=folder, capture_output=True, text=True, timeout=120)
        assert r2.returncode == 1 and "is not writable" in r2.stderr, r2.stderr
    assert r.returncode == 0, r.stderr
    assert os.path.islink(link) and target.read_bytes().startswith(b"PK")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666  # the file keeps its permissions
    shutil.rmtree(folder)
    shutil.rmtree(root_only)


def test_dev_null_discards_and_dev_full_fails_cleanly(tmp_path):
    r = ok(cli("tokenize", CORPUS, "-o", "/dev/null", "--force", cwd=tmp_path))
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    r = cli("tokenize", CORPUS, "-o", "/dev/full", "--force", cwd=tmp_path)
    assert r.returncode == 1 and "/dev/full: cannot write: No space left on device" in r.stderr, r.stderr
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)




def test_two_runs_writing_one_output_never_mix(models):
    d = models
    args = [sys.executable, "-m", "rnncli", "train", "-d", "rev.npz", "-o", "same.npz", "--hidden", "32",
            "--embed", "8", "--max-steps", "400", "--eval-every", "50", "-q"]
    first = subprocess.Popen(args, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (d / "same.npz.lock").exists() and time.time() < deadline:
        time.sleep(0.02)
    second = cli(*args[3:], "--force", cwd=d)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.returncode == 1 and "same.npz: another rnncli run is writing it" in second.stderr
    assert not (d / "same.npz.lock").exists()
    from rnncli.checkpoint import load_checkpoint

    meta, _ = load_checkpoint(str(d / "same.npz"))
    assert meta["step"] == 400
