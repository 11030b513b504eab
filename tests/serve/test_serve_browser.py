"""The playground page of `rnncli serve` in a real browser (issue 46): Debian's chromium driven by
Playwright (its executable_path; nothing is downloaded). The page loads with no console error,
Generate streams text into it, a classifier's label on the page is `rnncli predict`'s, and labels
that are markup render as text.
Run with: python -m pytest -m browser (.ci/run installs chromium)."""

import json
import shutil

import pytest
from cli_runner import run
from serving import TOKEN

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium is not installed (apt-get install chromium; .ci/run does)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    """The page at /, its token typed in, with every console error and page error collected."""
    # bypass_csp: Playwright's waits evaluate script, which the page's policy forbids; the page must keep
    # hostile text inert by itself (the header is checked in test_serve.py)
    context = browser.new_context(viewport={"width": 1100, "height": 800}, bypass_csp=True)
    p = context.new_page()
    p.problems = []
    p.on("console", lambda m: m.type == "error" and p.problems.append(m.text))
    p.on("pageerror", lambda e: p.problems.append(str(e)))
    p.goto(server.url + "/")
    p.fill("#token", TOKEN)
    p.dispatch_event("#token", "change")
    p.wait_for_function("document.querySelectorAll('#model option').length >= 10")
    yield p
    context.close()


def test_the_page_loads_with_no_console_error_and_lists_the_models(page):
    names = page.eval_on_selector_all("#model option", "os => os.map(o => o.value)")
    assert {"cls", "lm", "ner", "mt", "speech", "hostile"} <= set(names)
    assert page.problems == []


def test_generate_streams_text_into_the_page(page, zoo):
    page.select_option("#model", "lm")
    page.fill("#prime", "Th")
    page.fill("#seed", "7")
    page.fill("#max-tokens", "80")
    page.eval_on_selector("#temperature", "e => { e.value = '0.8'; e.dispatchEvent(new Event('input')); }")
    page.click("#generate")
    page.wait_for_function("document.querySelectorAll('#output .tok').length > 0")  # tokens arrive one by one
    page.wait_for_function("document.querySelector('#output').dataset.done === '1'", timeout=60_000)
    shown = page.inner_text("#output")
    expected = json.loads(run("sample", "-m", zoo["lm"], "--prime", "Th", "--seed", "7", "--max-len", "80",
                              "--temp", "0.8", "--json", cwd=zoo["folder"]))["text"]
    assert shown == expected
    titles = page.eval_on_selector_all("#output .tok", "ts => ts.map(t => t.title)")
    assert titles and all(t.startswith("p = ") for t in titles)  # each token's probability on hover
    assert page.problems == []


def test_the_classifiers_label_on_the_page_is_predicts(page, zoo):
    text = "a warm and funny film"
    expected = json.loads(run("predict", "-m", zoo["cls"], "--json", cwd=zoo["folder"], stdin=text + "\n"))
    page.select_option("#model", "cls")
    page.fill("#text", text)
    page.click("#predict")
    page.wait_for_selector("#answer h2")
    assert page.inner_text("#answer h2") == expected["label"]
    page.wait_for_selector("#picture:not(.hidden)")  # and show's picture of it, in a frame that runs nothing
    assert page.get_attribute("#picture", "sandbox") == ""
    assert page.problems == []


def test_labels_that_are_markup_render_as_text(page, zoo):
    page.select_option("#model", "hostile")
    page.fill("#text", "a warm and funny film")
    page.click("#predict")
    page.wait_for_selector("#answer table")
    cells = page.eval_on_selector_all("#answer td", "ts => ts.map(t => t.textContent)")
    assert '<img src=x onerror="document.title=\'pwned\'">' in cells and "<b>bold</b>&amp;" in cells
    assert page.eval_on_selector_all("#answer img, #answer b", "es => es.length") == 0
    assert page.title() == "rnncli serve"
    assert page.problems == []


def test_a_translation_shows_its_attention(page):
    page.select_option("#model", "mt")
    page.fill("#text", "4.3.2031")
    page.click("#predict")
    page.wait_for_selector("#answer h2")
    page.wait_for_selector("#picture:not(.hidden)")
    frame = page.frame_locator("#picture")
    assert frame.locator("table, svg").first.is_visible()
    assert page.problems == []


def test_a_recording_is_uploaded_and_transcribed(page, zoo):
    wav = zoo["folder"] / "wav" / "2.wav"
    expected = json.loads(run("predict", "-m", zoo["speech"], "--json", cwd=zoo["folder"], stdin=f"{wav}\n"))
    page.select_option("#model", "speech")
    page.set_input_files("#file", str(wav))
    page.click("#predict")
    page.wait_for_selector("#answer h2")
    assert page.inner_text("#answer h2") == expected["transcript"]
    page.wait_for_selector("#picture:not(.hidden)")
    assert page.frame_locator("#picture").locator("svg").first.is_visible()  # the spectrogram and attention
    assert page.problems == []
