"""The README's first command, as a new user runs it: it trains on sample_data/ and the model
writes new lines in the corpus's style, not copies of the corpus (the corpus's grammar makes far
more lines than it holds, so a model that has only memorised would show it here)."""

import os
import re
import shlex
import shutil

import pytest
from cli_runner import cli

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def main_job():
    """The rnncli commands of the README's first set-up line (pip install left out)."""
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    first = re.search(r"```\n(.*?)\n", readme).group(1)
    steps = [shlex.split(part) for part in first.split("&&")]
    assert steps[0][:2] == ["pip", "install"], first
    return [s[1:] for s in steps[1:] if s[0] == "rnncli"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("main_job")
    shutil.copytree(os.path.join(ROOT, "sample_data"), d / "sample_data")
    shutil.copytree(os.path.join(ROOT, "configs"), d / "configs")
    steps = main_job()
    assert [s[0] for s in steps] == ["tokenize", "train", "sample"], steps
    for args in steps:
        r = cli(*args, cwd=d, timeout=600)
        assert r.returncode == 0, (args, r.stderr)
    return d, r.stdout


def test_the_main_job_samples_new_lines_in_the_corpus_style(trained):
    d, first_sample = trained
    assert first_sample.strip()
    r = cli("sample", "--temp", "0.8", "--seed", "7", "-n", "30", cwd=d)
    assert r.returncode == 0, r.stderr
    corpus_text = (d / "sample_data" / "corpus.txt").read_text(encoding="utf-8")
    corpus_lines = {line.strip() for line in corpus_text.splitlines() if line.strip()}
    corpus_words = set(re.findall(r"[A-Za-z]+", corpus_text))
    lines = [line.strip() for line in r.stdout.splitlines() if line.strip() and not line.strip().endswith(":")]
    assert len(lines) >= 30
    copied = sum(line in corpus_lines for line in lines) / len(lines)
    words = re.findall(r"[A-Za-z]+", " ".join(lines))
    known = sum(w in corpus_words for w in words) / len(words)
    finished = sum(line.endswith(".") for line in lines) / len(lines)
    # new text: few lines are the corpus's own; in its style: its words, its sentences
    assert copied <= 0.2, (copied, lines)
    assert known >= 0.9 and finished >= 0.8, (known, finished, lines)
