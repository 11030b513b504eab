"""rnncli show: what it colours is what the model computes (the hidden unit's value, a tag's
marginal, the max-pool winners, the attention rows), and its pages are valid, self-contained HTML
with one coloured span per token."""

import html.parser
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from cli_runner import cli

SAMPLES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "sample_data"))


class Spans(html.parser.HTMLParser):
    """Counts <span class='tok'> and collects every attribute value (for references outside)."""

    def __init__(self):
        super().__init__()
        self.tokens, self.values = 0, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tokens += tag == "span" and attrs.get("class") == "tok"
        self.values += [v for v in attrs.values() if v]


def parsed(path):
    page = path.read_text(encoding="utf-8")
    p = Spans()
    p.feed(page)
    p.close()
    outside = [v for v in p.values if v.startswith(("http", "//")) and v != "http://www.w3.org/2000/svg"]
    assert not outside and "<script" not in page and "src=" not in page
    return p


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("show")
    for data, out, extra in ((f"{SAMPLES}/corpus.txt", "lm", ["--cell", "lstm", "--layers", "2"]),
                             (f"{SAMPLES}/reviews.tsv", "cls", ["--pool", "max"]),
                             (f"{SAMPLES}/ner.conll", "ner", ["--crf", "--char-features"])):
        assert cli("tokenize", data, "-o", f"{out}.npz", cwd=d).returncode == 0
        r = cli("train", "-d", f"{out}.npz", "-o", f"{out}_model.npz", "--max-steps", "30", "--hidden", "16",
                "--embed", "8", *extra, cwd=d)
        assert r.returncode == 0, r.stderr
    return d


def test_language_model_units_gates_and_next_tokens(models):
    from rnncli.models import load_model

    d = models
    text = 'Enter "the king" (alone)\nKING: Speak.'
    r = cli("show", "-m", "lm_model.npz", text, "--unit", "3", "--json", "-o", "lm.html", cwd=d)
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["tokens"] == list(text) and len(shown["next"]) == len(text)
    model, meta, _ = load_model(str(d / "lm_model.npz"))  # the same unit, read by teacher forcing
    from rnncli.text.vocab import Vocab

    ids = np.concatenate([[3], Vocab(meta["data"]["vocab"]).encode(list(text))])[:, None]
    E = model.embedding.forward(ids)
    h, _, _ = model.rnn.forward(E, None)
    assert np.allclose(shown["values"], h[1:, 0, 3], atol=1e-5)
    assert parsed(d / "lm.html").tokens == len(text)
    r = cli("show", "-m", "lm_model.npz", text, "--gate", "f", "--top", "--json", cwd=d)
    shown = json.loads(r.stdout)
    assert all(0 < v < 1 for v in shown["values"]) and shown["top_units"]
    r = cli("show", "-m", "lm_model.npz", text, "--gate", "u", cwd=d)
    assert r.returncode == 2 and "--gate of a lstm: i, f, o" in r.stderr


def test_tagger_probabilities_are_the_marginals(models):
    d = models
    r = cli("show", "-m", "ner_model.npz", "Anna moved to Paris .", "--json", "-o", "ner.html", cwd=d)
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    proba = cli("predict", "-m", "ner_model.npz", "--proba", cwd=d, stdin="Anna moved to Paris .\n").stdout
    rows = [line.split("\t") for line in proba.splitlines() if line]
    assert shown["tags"] == [t for _, t, _ in rows]
    assert np.allclose(shown["probabilities"], [float(p) for _, _, p in rows], atol=1e-4)
    assert parsed(d / "ner.html").tokens == 5


def test_classifier_contributions_are_the_max_pool_winners(models):
    d = models
    r = cli("show", "-m", "cls_model.npz", "a warm and funny film", "--json", "-o", "cls.html", cwd=d)
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert abs(sum(shown["contributions"]) - 1) < 1e-9 and min(shown["contributions"]) >= 0
    assert shown["label"] in ("positive", "negative") and parsed(d / "cls.html").tokens == 5


def test_attention_rows_are_distributions_and_curves_draw(models, tmp_path):
    d = models
    r = cli("tokenize", f"{SAMPLES}/dates.tsv", "--level", "char", "-o", "dates.npz", cwd=d)
    assert r.returncode == 0
    assert cli("train", "-d", "dates.npz", "-o", "mt.npz", "--attention", "general", "--max-steps", "5",
               "--hidden", "8", "--embed", "4", cwd=d).returncode == 0
    r = cli("show", "-m", "mt.npz", "3 March 1998", "--json", "-o", "att.html", cwd=d)
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    weights = np.array(shown["attention"])
    assert weights.shape == (len(shown["target"]), len("3 March 1998")) and np.allclose(weights.sum(axis=1), 1)
    parsed(d / "att.html")
    r = cli("show", "-m", "lm_model.npz", "--curves", "-o", "curves.html", cwd=d)
    page = (d / "curves.html").read_text()
    assert r.returncode == 0 and page.count("<svg") == 3 and "training speed" in page  # loss, lr, tokens/s
    parsed(d / "curves.html")
    r = cli("show", "-m", "lm_model.npz", "--curves", cwd=d)
    assert r.returncode == 2 and "give -o curves.html" in r.stderr


@pytest.mark.browser
def test_a_real_browser_renders_the_page_without_errors(models):
    """Headless chromium (Debian's package) loads the page, logs no console error, and finds one
    coloured span per token. Run with: python -m pytest -m browser"""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium is not installed (apt-get install chromium)")
    d = models
    text = "To be, or not to be"
    assert cli("show", "-m", "lm_model.npz", text, "-o", "b.html", cwd=d).returncode == 0
    probe = d / "probe.html"  # the page, plus a line that writes the span count into the title
    probe.write_text((d / "b.html").read_text().replace(
        "</body>", "<script>document.title='spans:'+document.querySelectorAll('span.tok').length</script></body>"))
    r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                        "--v=0", "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    assert f"<title>spans:{len(text)}</title>" in r.stdout, r.stdout[:500]
    assert "Uncaught" not in r.stderr and "CONSOLE(" not in r.stderr, r.stderr[-2000:]
