"""Pages read as a person reads them, in headless chromium at 1000 x 700 (issue 42, case 9): the
numbers of an attention table each stay on one line, a training curve of one measurement shows
its point on an axis of whole steps, and a one-second clip's spectrogram is wide enough to read,
with a time axis in seconds, a frequency axis and a colour scale.
Run with: python -m pytest -m browser (Debian's chromium; .ci/run installs it)."""

import json
import shutil
import subprocess
import wave

import numpy as np
import pytest
from cli_runner import cli

pytestmark = pytest.mark.browser

# what the page looks like to the browser, written into its title once it has laid the page out
PROBE = """<script>addEventListener('load', () => setTimeout(() => {
  const lines = td => { const r = document.createRange(); r.selectNodeContents(td); return r.getClientRects().length; };
  const svgs = [...document.querySelectorAll('svg')];
  document.title = JSON.stringify({
    cells: [...document.querySelectorAll('td')].map(td => [td.textContent, lines(td)]),
    svgs: svgs.map(s => ({width: s.getBoundingClientRect().width,
                          circles: [...s.querySelectorAll('circle')]
                                     .filter(c => c.getBoundingClientRect().width > 0).length,
                          texts: [...s.querySelectorAll('text')].map(t => t.textContent)}))});
}, 300))</script></body>"""


def seen_by_browser(page):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium is not installed (apt-get install chromium; .ci/run does)")
    probe = page.with_name(f"probe_{page.name}")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE), encoding="utf-8")
    r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1000,700",
                        "--virtual-time-budget=3000", "--enable-logging=stderr", "--v=0", "--dump-dom",
                        probe.as_uri()], capture_output=True, text=True, timeout=120)
    assert "Uncaught" not in r.stderr and "CONSOLE(" not in r.stderr, r.stderr[-2000:]
    title = r.stdout.split("<title>", 1)[1].split("</title>", 1)[0]
    return json.loads(title.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))


def test_attention_numbers_never_break(tmp_path):
    words = [f"w{k}" for k in range(40)]
    rng = np.random.default_rng(0)
    pairs = ["\t".join([" ".join(rng.choice(words, 30)), " ".join(rng.choice(words, 4))]) for _ in range(40)]
    (tmp_path / "pairs.tsv").write_text("\n".join(pairs) + "\n")
    assert cli("tokenize", "pairs.tsv", "-o", "p.npz", cwd=tmp_path).returncode == 0
    r = cli("train", "-d", "p.npz", "-o", "s2s.npz", "--max-steps", "2", "--hidden", "4", "--embed", "4",
            "--attention", "general", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = cli("show", "-m", "s2s.npz", " ".join(words[:30]), "-o", "att.html", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    seen = seen_by_browser(tmp_path / "att.html")
    assert len(seen["cells"]) >= 30
    broken = [(text, lines) for text, lines in seen["cells"] if lines != 1]
    assert not broken, broken[:5]


def test_one_measurement_is_a_visible_point_on_whole_steps(tmp_path):
    (tmp_path / "t.txt").write_text("a small text to learn from.\n" * 40)
    assert cli("tokenize", "t.txt", "-o", "t.npz", cwd=tmp_path).returncode == 0
    r = cli("train", "-d", "t.npz", "-o", "m.npz", "--max-steps", "1", "--hidden", "4", "--embed", "4",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert cli("show", "-m", "m.npz", "--curves", "-o", "curves.html", cwd=tmp_path).returncode == 0
    loss = seen_by_browser(tmp_path / "curves.html")["svgs"][0]
    assert loss["circles"] >= 1, loss  # the lone measurement (train loss; valid loss beside it)
    # the step axis: whole numbers around the one step, no quarter steps
    assert [t for t in loss["texts"] if t in ("0", "1", "2")] == ["0", "1", "2"], loss["texts"]
    assert not {"0.25", "0.5", "0.75", "1.25", "1.5", "1.75"} & set(loss["texts"]), loss["texts"]


def test_a_one_second_spectrogram_has_axes_a_scale_and_a_readable_width(tmp_path):
    rate = 8000
    t = np.arange(rate) / rate
    for k, name in enumerate(("low", "high")):
        for j in range(4):
            with wave.open(str(tmp_path / f"{name}{j}.wav"), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(rate)
                tone = 0.4 * np.sin(2 * np.pi * (300 + 900 * k + 20 * j) * t)
                w.writeframes((tone * 32767).astype("<i2").tobytes())
    (tmp_path / "clips.jsonl").write_text("".join(json.dumps({"audio": f"{n}{j}.wav", "label": n}) + "\n"
                                                  for n in ("low", "high") for j in range(4)))
    assert cli("tokenize", "clips.jsonl", "-o", "c.npz", cwd=tmp_path).returncode == 0
    r = cli("train", "-d", "c.npz", "-o", "c_model.npz", "--max-steps", "1", "--hidden", "4", "--embed", "4",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = cli("show", "-m", "c_model.npz", "low0.wav", "-o", "spec.html", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    picture = seen_by_browser(tmp_path / "spec.html")["svgs"][0]
    assert picture["width"] >= 600, picture["width"]  # 100 frames, each a few pixels wide
    texts = picture["texts"]
    seconds = [float(t[:-2]) for t in texts if t.endswith(" s")]  # time in seconds
    assert seconds[0] == 0 and len(seconds) >= 4 and 0.75 <= seconds[-1] <= 1, texts
    assert sum(t.endswith(" Hz") for t in texts) >= 3, texts  # the bands' frequencies
    assert {"+3 sd", "−3 sd"} <= set(texts), texts  # the colour scale's ends
    assert "time" in texts and "mel band" in texts
