"""rnncli serve under load (issue 46), beside the two ways a program gets rnncli's answers without it.

    python bench/serve.py [--requests 2000] [--clients 32] [--keep DIR]

Models: a sentiment classifier of configs/sentiment.yaml's shape (BiLSTM 128, embed 128, max pool)
and a character language model of configs/char-lm.yaml's, trained briefly on SST-2 and
tinyshakespeare from ../shared/data (sample_data/ when absent): only their speed matters here.
Inputs: SST-2's validation sentences, one per request.

In one run, each as a separate phase against the same server:
  1. one client, one request at a time: classifier predictions (the per-request cost);
  2. --clients concurrent clients: classifier predictions (what the micro-batcher buys);
  3. --clients concurrent clients, mixed: 80 % predictions, 20 % streamed generations of 40 tokens;
     every answer checked against the CLI's (predict --json, sample --json for the same seed), and
     the server's RSS before and after;
  4. one `rnncli predict` process per request (a script that shells out);
  5. one `rnncli predict -` process kept open, a line written and its answer read, in turn.
The load driver (bench/serve_load.py) runs in this process on the same 2 cores as the server.
"""

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import serve_load  # noqa: E402

SHARED = os.path.join(HERE, "..", "..", "shared", "data")
SAMPLES = os.path.join(HERE, "..", "sample_data")


def rnncli(*args, cwd, stdin=None):
    r = subprocess.run([sys.executable, "-m", "rnncli", *map(str, args)], cwd=cwd, input=stdin,
                       capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"rnncli {' '.join(map(str, args))}: {r.stderr.strip()[-500:]}")
    return r.stdout


def models(folder):
    """Train the two models briefly -> (classifier path, language model path, validation sentences)."""
    sst = os.path.join(SHARED, "sst2")
    train_tsv = os.path.join(sst, "train.tsv") if os.path.isdir(sst) else os.path.join(SAMPLES, "reviews.tsv")
    valid_tsv = os.path.join(sst, "valid.tsv") if os.path.isdir(sst) else os.path.join(SAMPLES, "reviews.tsv")
    shakespeare = os.path.join(SHARED, "tinyshakespeare", "input.txt")
    corpus = shakespeare if os.path.exists(shakespeare) else os.path.join(SAMPLES, "corpus.txt")
    if not (os.path.exists(os.path.join(folder, "cls.npz")) and os.path.exists(os.path.join(folder, "lm.npz"))):
        rnncli("tokenize", train_tsv, "-o", "cls_data.npz", "--quiet", "--force", cwd=folder)
        rnncli("train", "-d", "cls_data.npz", "-o", "cls.npz", "--config", os.path.join(HERE, "..", "configs",
               "sentiment.yaml"), "--max-steps", "60", "--quiet", "--force", cwd=folder)
        rnncli("tokenize", corpus, "-o", "lm_data.npz", "--quiet", "--force", cwd=folder)
        rnncli("train", "-d", "lm_data.npz", "-o", "lm.npz", "--config", os.path.join(HERE, "..", "configs",
               "char-lm.yaml"), "--max-steps", "60", "--quiet", "--force", cwd=folder)
    texts = [line.split("\t", 1)[1] for line in open(valid_tsv, encoding="utf-8").read().splitlines()
             if "\t" in line and line.split("\t", 1)[1].strip()]
    return os.path.join(folder, "cls.npz"), os.path.join(folder, "lm.npz"), texts


def start_server(folder, cls, lm):
    process = subprocess.Popen([sys.executable, "-m", "rnncli", "serve", "-m", f"cls={cls}", "-m", f"lm={lm}",
                                "--port", "0"], cwd=folder, stderr=subprocess.PIPE, text=True)
    said = []
    for line in process.stderr:
        said.append(line)
        found = re.search(r"on http://127\.0\.0\.1:(\d+)", line)
        if found:
            return process, f"http://127.0.0.1:{found.group(1)}"
    sys.exit("the server did not start: " + "".join(said)[-2000:])


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def one_process_per_request(folder, cls, texts):
    latencies = []
    for text in texts:
        started = time.perf_counter()
        rnncli("predict", "-m", cls, "--json", cwd=folder, stdin=text + "\n")
        latencies.append(time.perf_counter() - started)
    return _stats(latencies)


def one_pipe(folder, cls, texts):
    process = subprocess.Popen([sys.executable, "-m", "rnncli", "predict", "-m", cls, "--json", "-"], cwd=folder,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    process.stdin.write(texts[0] + "\n")  # the first answer waits for the model to load: not counted
    process.stdout.readline()
    latencies = []
    for text in texts:
        started = time.perf_counter()
        process.stdin.write(text + "\n")
        process.stdin.flush()
        json.loads(process.stdout.readline())
        latencies.append(time.perf_counter() - started)
    process.stdin.close()
    process.wait()
    return _stats(latencies)


def _stats(latencies):
    ordered = sorted(latencies)
    return {"requests": len(ordered), "errors": 0, "rps": len(ordered) / sum(ordered),
            "p50_ms": 1000 * statistics.median(ordered), "p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--sequential", type=int, default=300, help="requests of the one-at-a-time phases")
    ap.add_argument("--processes", type=int, default=20, help="requests answered by a process each")
    ap.add_argument("--keep", help="a folder for the models (reused when they are there)")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the server's phases; medians are printed")
    args = ap.parse_args()
    folder = args.keep or tempfile.mkdtemp(prefix="rnncli-serve-bench-")
    os.makedirs(folder, exist_ok=True)
    cls, lm, texts = models(folder)
    process, url = start_server(folder, cls, lm)
    rounds = {}  # phase -> [summary of each round]

    def note(name, summary):
        rounds.setdefault(name, []).append(summary)

    one = [{"kind": "predict", "body": {"model": "cls", "inputs": [t]}} for t in texts[:args.sequential]]
    many = [{"kind": "predict", "body": {"model": "cls", "inputs": [texts[k % len(texts)]]}}
            for k in range(args.requests)]
    seeds = list(range(20))
    mixed = serve_load.mixed_requests(args.requests, texts, "cls", "lm", seeds, max_tokens=40)
    try:
        asyncio.run(serve_load.drive(url, None, one[:50], 1))  # warm up
        for r in range(args.rounds):
            results, seconds = asyncio.run(serve_load.drive(url, None, one, 1))
            note("serve, 1 client, classify", serve_load.summary(results, seconds))
            results, seconds = asyncio.run(serve_load.drive(url, None, many, args.clients))
            note(f"serve, {args.clients} clients, classify", serve_load.summary(results, seconds))
            failed = [x for x in results if x.status != 200]
            if failed:
                print(f"{len(failed)} errors under {args.clients} clients; the first: {failed[0]}")
            note("one rnncli predict - kept open (a pipe)", one_pipe(folder, cls, texts[:args.sequential]))
            print(f"round {r + 1}: " + ", ".join(f"{name}: {v[-1]['rps']:.0f} req/s" for name, v in rounds.items()),
                  flush=True)
        before = rss_mb(process.pid)
        results, seconds = asyncio.run(serve_load.drive(url, None, mixed, args.clients))
        after = rss_mb(process.pid)
        note(f"serve, {args.clients} clients, mixed (20 % streamed generate)", serve_load.summary(results, seconds))
    finally:
        process.terminate()
        code = process.wait(60)
    used = sorted({b["body"]["inputs"][0] for b in mixed if b["kind"] == "predict"})
    predicted = serve_load.cli_predictions(cls, used, folder)
    sampled = {s: serve_load.cli_sample(lm, {"seed": s, "max_tokens": 40, "temperature": 0.8}, folder)
               for s in seeds}
    wrong = serve_load.mismatches(mixed, results, predicted, sampled)
    note("one rnncli predict process per request", one_process_per_request(folder, cls, texts[:args.processes]))
    rows = {name: {k: (statistics.median(x[k] for x in v) if k != "errors" else sum(x[k] for x in v))
                   for k in v[0]} for name, v in rounds.items()}
    ratios = [a["rps"] / b["rps"] for a, b in zip(rounds[f"serve, {args.clients} clients, classify"],
                                                   rounds["serve, 1 client, classify"], strict=True)]

    print(f"\nmedians of {args.rounds} rounds (the mixed run and the processes: once)")
    print(f"{'':52} {'requests':>8} {'errors':>6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, r in rows.items():
        print(f"{name:52} {r['requests']:>8} {r['errors']:>6} {r['rps']:>8.1f} {r['p50_ms']:>8.2f} "
              f"{r['p99_ms']:>8.2f}")
    alone = rows["serve, 1 client, classify"]["rps"]
    crowd = rows[f"serve, {args.clients} clients, classify"]["rps"]
    print(f"\n{args.clients} clients / 1 client (classify req/s), each round: "
          f"{', '.join(f'{x:.2f}x' for x in ratios)}; median {statistics.median(ratios):.2f}x (target >= 5x)")
    per_process = rows["one rnncli predict process per request"]["rps"]
    pipe = rows["one rnncli predict - kept open (a pipe)"]["rps"]
    print(f"serve, 1 client / a process per request: {alone / per_process:.1f}x; / a pipe: {alone / pipe:.2f}x; "
          f"serve, {args.clients} clients / a pipe: {crowd / pipe:.2f}x")
    print(f"mixed run: {len(wrong)} answers differ from the CLI's; server RSS {before:.0f} -> {after:.0f} MB "
          f"({after - before:+.1f}); server exit code {code}")
    if wrong:
        print("first difference:", wrong[0])
    failed = [r for r in results if r.status != 200]
    if failed:
        print(f"{len(failed)} errors in the mixed run; the first: {failed[0]}")


if __name__ == "__main__":
    main()
