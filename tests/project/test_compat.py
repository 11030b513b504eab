"""Checkpoints and data files written by rnncli at 538af89 (before the fourth round's restructuring)
still load and give the same answers: a small model of each task and input kind, with what that
rnncli answered (tests/compat/make_compat.py wrote both), replayed with today's rnncli."""

import json
import os
import shutil

import pytest
from cli_runner import run

STORED = os.path.join(os.path.dirname(__file__), "..", "compat", "538af89")
with open(os.path.join(STORED, "expected.json"), encoding="utf-8") as f:
    EXPECTED = json.load(f)


def same(answer, expected):
    """Equal, numbers to 1e-9 relative (a change of summation order is allowed; nothing more)."""
    if isinstance(expected, dict):
        return isinstance(answer, dict) and answer.keys() == expected.keys() and all(
            same(answer[k], v) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(answer, list) and len(answer) == len(expected) and all(
            same(a, e) for a, e in zip(answer, expected, strict=True))
    if isinstance(expected, float):
        return isinstance(answer, (int, float)) and answer == pytest.approx(expected, rel=1e-9, abs=1e-12)
    return answer == expected


def parsed(text):
    """A command's JSON answers: one document, or one per line."""
    try:
        return [json.loads(text)]
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    d = tmp_path_factory.mktemp("compat") / "538af89"
    shutil.copytree(STORED, d)  # commands write nothing there, but a lock or a log must not touch the repo
    return d


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_model_written_by_538af89_answers_as_it_did(stored, name):
    for case in EXPECTED[name]:
        answer = run(*case["command"], cwd=stored, stdin=case["stdin"])
        assert same(parsed(answer), parsed(case["stdout"])), (case["command"], answer, case["stdout"])
