"""A smaller bench/serve.py in the default run (issue 46): 400 requests from 16 concurrent clients,
mixed predictions and streamed generations, against a real server: no errors, every answer the
CLI's for the same input and seed, and the server's memory after the run within 50 MB of before.
(Speed is bench/serve.py's to measure, not a test's to assert.)"""

import asyncio
import os
import sys

from serving import Server

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
import serve_load  # noqa: E402

TEXTS = [line.split("\t")[1] for line in open(os.path.join(os.path.dirname(__file__), "..", "..", "sample_data",
                                                            "reviews.tsv"), encoding="utf-8").read().splitlines()]


def test_mixed_load_from_16_clients_answers_as_the_cli_with_flat_memory(zoo):
    s = Server(["-m", f"cls={zoo['cls']}", "-m", f"lm={zoo['lm']}"], cwd=zoo["folder"])
    try:
        texts, seeds = TEXTS[:150], list(range(8))
        requests = serve_load.mixed_requests(400, texts, "cls", "lm", seeds, max_tokens=30)
        warm, _ = asyncio.run(serve_load.drive(s.url, None, requests[:40], 16))  # the first batches allocate
        assert all(r.status == 200 for r in warm)
        before = s.rss_mb()
        results, seconds = asyncio.run(serve_load.drive(s.url, None, requests, 16))
        after = s.rss_mb()
    finally:
        code, err = s.stop()
    assert code == 0, err
    stats = serve_load.summary(results, seconds)
    assert stats["errors"] == 0, [r.answer for r in results if r.status != 200][:3]
    predicted = serve_load.cli_predictions(zoo["cls"], texts, zoo["folder"])
    sampled = {seed: serve_load.cli_sample(zoo["lm"], {"seed": seed, "max_tokens": 30, "temperature": 0.8},
                                           zoo["folder"]) for seed in seeds}
    assert serve_load.mismatches(requests, results, predicted, sampled) == []
    assert sum(r.kind == "generate" for r in results) == 80
    assert after - before < 50, (before, after)
