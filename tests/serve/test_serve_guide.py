"""docs/serve.md as a user runs it: the Start block line by line in a folder beside sample_data/,
the server it starts (on a free port instead of 8000), then every curl line of the Endpoints block,
each of which must answer 200 with what the guide says it holds."""

import json
import os
import re
import shlex
import shutil
import subprocess

import pytest
from cli_runner import run
from serving import Server

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
GUIDE = open(os.path.join(ROOT, "docs", "serve.md"), encoding="utf-8").read()


def block(heading):
    section = GUIDE.split(f"## {heading}\n", 1)[1]
    return section.split("```bash\n", 1)[1].split("```", 1)[0].strip().splitlines()


def test_the_guide_runs_as_written(tmp_path):
    if shutil.which("curl") is None:
        pytest.fail("curl is not installed; the guide's examples use it")
    os.symlink(os.path.abspath(os.path.join(ROOT, "sample_data")), tmp_path / "sample_data")
    *setup, serve_line = block("Start")
    for line in setup:
        run(*shlex.split(line)[1:], "--quiet", cwd=tmp_path)
    s = Server([*shlex.split(serve_line)[2:]], cwd=tmp_path)
    try:
        outputs = {}
        for line in block("Endpoints"):
            assert "localhost:8000" in line
            command = line.replace("localhost:8000", f"127.0.0.1:{s.port}")
            r = subprocess.run(shlex.split(command) + ["-w", "\\n%{http_code}"], capture_output=True, text=True,
                               timeout=60)
            body, status = r.stdout.rsplit("\n", 1)
            assert r.returncode == 0 and status == "200", (line, r.stdout, r.stderr)
            outputs[re.search(r"/(health|v1/\w+)", line).group(1) + (" stream" if "stream" in line else "")] = body
    finally:
        code, err = s.stop()
    assert code == 0, err
    assert json.loads(outputs["health"])["status"] == "ok"
    assert [m["name"] for m in json.loads(outputs["v1/models"])["models"]] == ["sentiment", "lm"]
    answers = json.loads(outputs["v1/predict"])["answers"]
    assert len(answers) == 2 and all(a["label"] in ("negative", "positive") for a in answers)
    sample = json.loads(outputs["v1/generate"])["samples"][0]
    assert sample["text"].startswith("The ") and sample["stop"] in ("eos", "max_tokens")
    stream = outputs["v1/generate stream"]
    assert "event: end" in stream and stream.rstrip().endswith('data: {"samples": 1}')
    assert "<html" in json.loads(outputs["v1/show"])["page"]
