"""The pages rnncli writes (show -o, --curves) are safe with hostile strings: labels, tags,
vocabularies and file names render as text; only our own elements and attributes, no script, nothing
from outside (docs/security.md)."""

import html.parser
import json
import subprocess

import numpy as np
import pytest
from cli_runner import cli

from rnncli.markup import ATTRIBUTES, TAGS

HOSTILE = ["<script>pwned=1</script>", '"><svg onload=pwned=2>', "</style><b>x</b>", "]]>", "'q'",
           "<img src=x onerror=pwned=3>"]


class PageParts(html.parser.HTMLParser):
    """Every element, attribute and text run of a page, as a browser's parser sees them."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.text = set(), [], []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs += attrs

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.text.append(data)


def check_page(path):
    """-> the page's text; asserts it holds only our own elements and attributes, no handler, no
    script and nothing from outside."""
    page = path.read_text(encoding="utf-8")
    p = PageParts()
    p.feed(page)
    p.close()
    assert p.tags <= TAGS, p.tags - TAGS
    names = {name for name, _ in p.attrs}
    assert names <= ATTRIBUTES | {"viewbox"}, names - ATTRIBUTES
    assert not any(name.startswith("on") for name in names)
    assert not any(v and v.strip().lower().startswith(("http", "//", "javascript:")) and
                   v != "http://www.w3.org/2000/svg" for _, v in p.attrs)
    return "".join(p.text) + " ".join(v or "" for _, v in p.attrs)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A tiny model of every task whose labels, tags and vocabulary are hostile strings."""
    d = tmp_path_factory.mktemp("hostile")
    words = [h.replace(" ", "_") for h in HOSTILE]
    rows = [f"{HOSTILE[k % 2]}\t{' '.join(words[k % 6:][:3])} good film {k}" for k in range(40)]
    (d / "cls.tsv").write_text("\n".join(rows) + "\n")
    conll = []
    for k in range(30):
        conll += [f"{words[k % 6]}\tB-<script>", f"said{k}\tO", f"x{k}\tB-on\"x=1", ""]
    (d / "ner.conll").write_text("\n".join(conll) + "\n")
    (d / "lm.txt").write_text("\n\n".join(" ".join(HOSTILE) + f" line {k}" for k in range(30)) + "\n")
    (d / "pairs.tsv").write_text("".join(f"{words[k % 6]} number {k}\t{words[(k + 1) % 6]} nombre {k}\n"
                                         for k in range(40)))
    small = ["--max-steps", "3", "--hidden", "8", "--embed", "4", "--eval-every", "1"]
    for data, name, extra in (("cls.tsv", "cls", []), ("ner.conll", "ner", ["--crf", "--char-features"]),
                              ("lm.txt", "lm", ["--layers", "1"]), ("pairs.tsv", "s2s", ["--attention", "general"]),
                              ("cls.tsv", "clm", ["--task", "lm"]), ("lm.txt", "lmc", ["--layers", "1"])):
        tokens = "clm.npz" if name == "clm" else f"{name}.npz"
        if name != "clm":
            r = cli("tokenize", data, "-o", tokens, *(["--level", "word"] if name == "lm" else []), cwd=d)
            assert r.returncode == 0, r.stderr
        model = f'{name}_<b onclick="x">.npz'
        r = cli("train", "-d", "cls.npz" if name == "clm" else tokens, "-o", model, *small, *extra, cwd=d)
        assert r.returncode == 0, r.stderr
    return d


def test_every_page_shows_hostile_strings_as_text(hostile):
    d = hostile
    pages = []
    for name, text in (("cls", "good film <script>pwned=1</script>"), ("ner", "said1 <img_src=x_onerror=pwned=3>"),
                       ("lm", HOSTILE[0]), ("s2s", "'q' number 3")):
        out = d / f"{name}.html"
        r = cli("show", "-m", f'{name}_<b onclick="x">.npz', text, "-o", str(out), cwd=d)
        assert r.returncode == 0, r.stderr
        pages.append(out)
        curves = d / f"{name}_curves.html"
        assert cli("show", "-m", f'{name}_<b onclick="x">.npz', "--curves", "-o", str(curves), cwd=d).returncode == 0
        pages.append(curves)
    svg = d / "curves.svg"
    assert cli("show", "-m", 'cls_<b onclick="x">.npz', "--curves", "-o", str(svg), cwd=d).returncode == 0
    grads = d / "grads.html"
    r = cli("gradients", "-m", 'lm_<b onclick="x">.npz', "-d", "lm.npz", "--steps", "5", "--batch", "2",
            "-o", str(grads), cwd=d)
    assert r.returncode == 0, r.stderr
    texts = {p.name: check_page(p) for p in [*pages, grads]}
    check_page(svg)
    # the hostile strings are there, as text a reader sees
    assert '<b onclick="x">' in texts["cls.html"]  # the model's file name, in the title
    assert any(h in texts["cls.html"] for h in HOSTILE[:2])  # the label
    assert "B-<script>" in texts["ner.html"] or "<script>" in texts["ner.html"]
    assert "<" in texts["lm.html"] and "script" in texts["lm.html"]  # the words of the hostile line
    assert "number" in texts["s2s.html"]


def test_pages_of_frame_models_show_hostile_labels_tags_and_file_names_as_text(tmp_path):
    """Models of frames: a classifier whose labels and a tagger whose tags are hostile strings, shown
    on a features file whose name is one too."""
    rng = np.random.default_rng(0)
    name = 'x<b onclick="y">.npy'
    np.save(tmp_path / name, rng.normal(size=(12, 3)))
    cls = [{"frames": rng.normal(size=(10, 3)).round(3).tolist(), "label": HOSTILE[k % 2]} for k in range(20)]
    tag = [{"frames": rng.normal(size=(10, 3)).round(3).tolist(), "tags": ["0"] * 6 + ["<script>"] * 4}
           for _ in range(20)]
    texts = {}
    for kind, records in (("cls", cls), ("tag", tag)):
        (tmp_path / f"{kind}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        assert cli("tokenize", f"{kind}.jsonl", "-o", f"{kind}.npz", "-q", cwd=tmp_path).returncode == 0
        r = cli("train", "-d", f"{kind}.npz", "-o", f"{kind}.model.npz", "--max-steps", "2", "--hidden", "4",
                "--layers", "1", "-q", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        r = cli("show", "-m", f"{kind}.model.npz", name, "-o", f"{kind}.html", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        texts[kind] = check_page(tmp_path / f"{kind}.html")
    assert name in texts["cls"] and any(h in texts["cls"] for h in HOSTILE[:2])  # the file name, the label
    assert "p(<script>)" in texts["tag"]  # the tag, naming its strip


@pytest.mark.browser
def test_a_browser_runs_nothing_injected_and_nothing_overflows(hostile):
    """Headless chromium at 1200 x 900 loads every kind of page made from hostile models: no injected
    code runs, the console stays clean, and no page is wider than the window (long token lines wrap,
    wide tables scroll in their box). Run with: python -m pytest -m browser"""
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium is not installed (apt-get install chromium; .ci/run does)")
    d = hostile
    long_line = " ".join(["<script>pwned=4</script>"] * 40)  # far wider than the window as one line
    kinds = {"lm_long.html": ["show", "-m", 'lm_<b onclick="x">.npz', long_line],
             "lmc_long.html": ["show", "-m", 'lmc_<b onclick="x">.npz', long_line, "--top"],
             "cls.html": ["show", "-m", 'cls_<b onclick="x">.npz', "good film " * 30],
             "ner.html": ["show", "-m", 'ner_<b onclick="x">.npz', "said1 " * 60],
             "s2s.html": ["show", "-m", 's2s_<b onclick="x">.npz', "'q' number 3 " * 2],
             "curves.html": ["show", "-m", 'cls_<b onclick="x">.npz', "--curves"],
             "grads.html": ["gradients", "-m", 'lm_<b onclick="x">.npz', "-d", "lm.npz", "--steps", "5",
                            "--batch", "2"]}
    for name, command in kinds.items():
        r = cli(*command, "-o", name, cwd=d)
        assert r.returncode == 0, r.stderr
        probe = d / f"probe_{name}"  # the page and, last, our own line that reports what the browser saw
        probe.write_text((d / name).read_text(encoding="utf-8").replace("</body>", (
            "<script>addEventListener('load', () => setTimeout(() => { document.title = JSON.stringify("
            "{pwned: typeof pwned === 'undefined' ? 0 : pwned, scroll: document.documentElement.scrollWidth, "
            "inner: innerWidth}) }, 300))</script></body>")), encoding="utf-8")
        r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,900",
                            "--virtual-time-budget=3000", "--enable-logging=stderr", "--v=0", "--dump-dom",
                            probe.as_uri()], capture_output=True, text=True, timeout=120)
        title = r.stdout.split("<title>", 1)[1].split("</title>", 1)[0]
        seen = json.loads(title.replace("&quot;", '"'))
        assert seen["pwned"] == 0, (name, seen)
        assert seen["inner"] == 1200 and seen["scroll"] <= seen["inner"], (name, seen)
        assert "Uncaught" not in r.stderr and "CONSOLE(" not in r.stderr, (name, r.stderr[-2000:])


def test_a_constant_series_gets_an_axis_around_its_value():
    import re

    from rnncli.charts import line_chart

    svg = line_chart({"learning rate": ([1, 2, 3], [0.002, 0.002, 0.002])}, "lr", "step", "lr")
    ticks = [float(t) for t in re.findall(r'text-anchor="end">([-0-9.e]+)<', svg)]
    assert min(ticks) < 0.002 < max(ticks) and max(ticks) - min(ticks) < 0.001, ticks
    svg = line_chart({"loss": ([1, 2], [2.5, 1.5])}, "loss", "step", "loss")
    ticks = [float(t) for t in re.findall(r'text-anchor="end">([-0-9.e]+)<', svg)]
    assert min(ticks) == 1.5 and max(ticks) == 2.5


def test_the_page_builder_refuses_what_our_pages_never_hold():
    from rnncli.markup import element, escape

    assert escape('<a href="x">') == "&lt;a href=&quot;x&quot;&gt;"
    for bad in (lambda: element("script", "x"), lambda: element("p", "x", onclick="y"),
                lambda: element("img", src="x"), lambda: element("p", style="background:url(http://x)")):
        with pytest.raises(ValueError):
            bad()
