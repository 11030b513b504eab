"""Memory stays flat over long streams: `sample` writing a million tokens, `predict` reading a
million lines through a pipe. Peak resident memory (max RSS) of each command run at a small
and at a large size, side by side.

    python bench/memory.py [--tokens 1000000] [--lines 1000000]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from rnncli.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from rnncli.config import make_config  # noqa: E402
from rnncli.text.encode import tokenize  # noqa: E402
from rnncli.text.vocab import EOS  # noqa: E402
from rnncli.train import train  # noqa: E402

SAMPLES = os.path.join(ROOT, "sample_data")


def run_measured(args, stdin_lines=None):
    """Run rnncli in a child; returns (seconds, child's max RSS in MiB, bytes written)."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "rnncli", *args], stdin=subprocess.PIPE if stdin_lines else None,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    if stdin_lines:
        import threading

        def feed():
            line = b"a warm and funny film that i loved\n"
            block = line * 1000
            for _ in range(stdin_lines // 1000):
                proc.stdin.write(block)
            proc.stdin.close()

        threading.Thread(target=feed, daemon=True).start()
    written = 0
    while chunk := proc.stdout.read(1 << 16):
        written += len(chunk)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak, not the maximum over all children
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"rnncli {' '.join(args)} failed with exit code {proc.returncode}")
    return time.perf_counter() - t, usage.ru_maxrss / 1024, written


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=1_000_000)
    ap.add_argument("--lines", type=int, default=1_000_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lm = os.path.join(tmp, "lm.npz")
        train(make_config(None, {"hidden": 16, "layers": 1, "embed": 8, "max_steps": 2}),
              tokenize([f"{SAMPLES}/corpus.txt"]), lm)
        meta, groups = load_checkpoint(lm)
        for group in ("param", "best"):
            groups[group]["head.b"][EOS] = -1e4  # never stop: we want a long stream
        save_checkpoint(lm, meta, groups["param"], groups["best"], groups["opt"], None)
        cls = os.path.join(tmp, "cls.npz")
        train(make_config(None, {"hidden": 16, "embed": 8, "max_steps": 2}), tokenize([f"{SAMPLES}/reviews.tsv"]),
              cls)
        print("command                                   size        seconds   max RSS MiB   output MB")
        for n in (args.tokens // 100, args.tokens):
            secs, rss, out = run_measured(["sample", "-m", lm, "--max-len", str(n), "--seed", "1"])
            print(f"sample --max-len                 {n:>12,}  {secs:9.1f}  {rss:12.1f}  {out / 1e6:10.1f}", flush=True)
        for n in (args.lines // 100, args.lines):
            secs, rss, out = run_measured(["predict", "-m", cls], stdin_lines=n)
            print(f"predict (lines through a pipe)   {n:>12,}  {secs:9.1f}  {rss:12.1f}  {out / 1e6:10.1f}", flush=True)


if __name__ == "__main__":
    main()
