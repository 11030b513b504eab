"""The load driver behind bench/serve.py and tests/serve/test_load.py: many concurrent clients
(asyncio, in the driver's process) send a list of requests to a running `rnncli serve`,
mixed /v1/predict and streamed /v1/generate, and every answer is checked against what the CLI
itself answered for the same input and seed (`predict --json`, `sample --json`).

    results, seconds = asyncio.run(drive(url, token, requests, concurrency=32))
    summary(results, seconds) -> {"requests", "errors", "rps", "p50_ms", "p99_ms"}
"""

import asyncio
import json
import math
import statistics
import subprocess
import sys
import time
import typing


class Result(typing.NamedTuple):
    kind: str
    seconds: float
    status: int
    answer: object  # predict: the answers; generate: the samples' end events; or the error's text


class Connection:
    """One kept-alive HTTP/1.1 connection, written by hand on asyncio's streams: a load driver in
    Python must spend less per request than the server it measures, and a general client library
    (httpx) spends about three times the server's own time per request (measured: 300 requests a
    second at most against GET /health, the client at 100 % of a core, the server at 25 %)."""

    def __init__(self, host, port, headers):
        self.host, self.port, self.headers, self.reader = host, port, headers, None

    async def request(self, path, body):
        """POST a JSON body -> (status, the answer's body: whole, a chunked stream joined)."""
        if self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        data = json.dumps(body).encode()
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n{self.headers}\r\n").encode()
        self.writer.write(head + data)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status, fields = int(status_line.split()[1]), {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            fields[name.strip().lower()] = value.strip()
        if fields.get("transfer-encoding") == "chunked":
            parts = []
            while (size := int((await self.reader.readline()).strip() or b"0", 16)) > 0:
                parts.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            await self.reader.readline()
            answer = b"".join(parts)
        else:
            answer = await self.reader.readexactly(int(fields.get("content-length", 0)))
        if fields.get("connection") == "close":
            self.close()
        return status, answer.decode()

    def close(self):
        if self.reader is not None:
            self.writer.close()
            self.reader = None


def _end_events(text):
    """The `end` events of a server-sent event stream (an `error` event raises)."""
    ends, event = [], None
    for line in text.splitlines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            if event == "error":
                raise RuntimeError(line)
            if event == "end":
                ends.append(json.loads(line[6:]))
            event = None
    return ends


async def _one(connection, request):
    started = time.perf_counter()
    try:
        if request["kind"] == "predict":
            status, text = await connection.request("/v1/predict", request["body"])
            answer = json.loads(text)["answers"] if status == 200 else text
        else:
            status, text = await connection.request("/v1/generate", {**request["body"], "stream": True})
            answer = _end_events(text) if status == 200 else text
        return Result(request["kind"], time.perf_counter() - started, status, answer)
    except Exception as e:  # a refused or broken connection is an error of the run, not of the driver
        connection.close()
        return Result(request["kind"], time.perf_counter() - started, 0, f"{type(e).__name__}: {e}")


async def drive(url, token, requests, concurrency):
    """Send every request, `concurrency` clients at a time, each on its own kept-alive connection
    and sending its next request when its last is answered -> (results in the order of requests,
    wall seconds)."""
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    headers = f"Authorization: Bearer {token}\r\n" if token else ""
    results = [None] * len(requests)
    todo = iter(range(len(requests)))

    async def client():
        connection = Connection(host, int(port), headers)
        try:
            for k in todo:
                results[k] = await _one(connection, requests[k])
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return results, time.perf_counter() - started


def summary(results, seconds):
    latencies = sorted(r.seconds for r in results)
    p99 = latencies[min(len(latencies) - 1, math.ceil(0.99 * len(latencies)) - 1)]
    return {"requests": len(results), "errors": sum(r.status != 200 for r in results),
            "rps": len(results) / seconds, "p50_ms": 1000 * statistics.median(latencies), "p99_ms": 1000 * p99}


def cli_predictions(model, texts, cwd):
    """{text: the record `rnncli predict --json` writes for it} for distinct texts, in one process."""
    r = subprocess.run([sys.executable, "-m", "rnncli", "predict", "-m", str(model), "--json"], cwd=cwd,
                       input="\n".join(texts) + "\n", capture_output=True, text=True, check=True)
    return dict(zip(texts, map(json.loads, r.stdout.splitlines()), strict=True))


def cli_sample(model, body, cwd):
    """The texts `rnncli sample --json` writes for a /v1/generate body (prime, seed, temperature,
    max_tokens, n)."""
    args = [sys.executable, "-m", "rnncli", "sample", "-m", str(model), "--json", "--seed", str(body["seed"]),
            "--max-len", str(body["max_tokens"]), "--temp", str(body.get("temperature", 1.0)),
            "-n", str(body.get("n", 1))]
    if body.get("prime"):
        args += ["--prime", body["prime"]]
    r = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=True)
    return [json.loads(line)["text"] for line in r.stdout.splitlines()]


def mismatches(requests, results, predicted, sampled):
    """The requests whose answer is not the CLI's: a label differs, a probability differs by more
    than float32's rounding (a batch of other rows rounds differently, as predict's does), or a
    generated text differs. predicted: {text: record}; sampled: {seed: [texts]}."""
    bad = []
    for k, (request, result) in enumerate(zip(requests, results, strict=True)):
        if result.status != 200:
            continue
        body = request["body"]
        if request["kind"] == "predict":
            for text, got in zip(body["inputs"], result.answer, strict=True):
                want = predicted[text]
                if got["label"] != want["label"] or not all(
                        math.isclose(got["probabilities"][n], p, rel_tol=1e-6)
                        for n, p in want["probabilities"].items()):
                    bad.append((k, text, got, want))
        elif [e["text"] for e in result.answer] != sampled[body["seed"]]:
            bad.append((k, body, result.answer, sampled[body["seed"]]))
    return bad


def mixed_requests(count, texts, cls, lm, seeds, generate_share=0.2, prime="", max_tokens=40, temperature=0.8):
    """count requests: a share of streamed generations (seeds in turn), the rest one-text predictions."""
    out = []
    every = max(1, round(1 / generate_share)) if generate_share else 0
    for k in range(count):
        if every and k % every == every - 1:
            seed = seeds[(k // every) % len(seeds)]
            out.append({"kind": "generate", "body": {"model": lm, "prime": prime, "seed": seed,
                                                     "max_tokens": max_tokens, "temperature": temperature}})
        else:
            out.append({"kind": "predict", "body": {"model": cls, "inputs": [texts[k % len(texts)]]}})
    return out
