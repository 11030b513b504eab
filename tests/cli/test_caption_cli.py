"""Image captioning end to end (issue 47): the guide as written on the real digits, and on small
made-up scenes every command a captioner meets, with each bad input's one-line answer."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from cli_runner import cli, run
from gradient_asserts import run_guide_block
from PIL import Image

SAMPLES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "sample_data"))
TINY = ["--hidden", "16", "--embed", "8", "--layers", "1", "--max-steps", "40", "--quiet"]


def test_the_guide_runs_as_written(tmp_path, shared_data):
    """docs/caption.md's first block, line by line, on ../shared/data/optdigits."""
    work = tmp_path / "work"
    work.mkdir()
    os.symlink(os.path.abspath(os.path.join(shared_data, "..")), tmp_path / "shared")
    outputs = run_guide_block("caption.md", "## Try it", str(work), SAMPLES)
    assert "exact match" in outputs[3].stderr and "objects right" in outputs[3].stderr
    words = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "top", "bottom",
             "left", "right", "and"}
    caption = outputs[4].stdout.strip()
    assert caption and set(caption.split()) <= words, caption
    assert "<svg" in (work / "caption.html").read_text()


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """Made-up digit scenes (sample_data/make_digit_scenes.py on a stand-in digits file) and two small
    captioners of them: the whole image, and attending over its columns."""
    d = tmp_path_factory.mktemp("scenes")
    rng = np.random.default_rng(0)
    rows = [",".join(map(str, list(rng.integers(0, 17, 64)) + [k % 10])) for k in range(120)]
    (d / "optdigits").mkdir()
    (d / "optdigits" / "train.csv").write_text("\n".join(rows) + "\n")
    subprocess.run([sys.executable, f"{SAMPLES}/make_digit_scenes.py", str(d / "optdigits"), "-o", str(d / "s"),
                    "--train", "200", "--valid", "40", "--test", "40"], check=True, capture_output=True)
    run("tokenize", "s/train.jsonl", "--valid", "s/valid.jsonl", "-o", "s.npz", "--target-level", "word", "--quiet",
        cwd=d)
    run("train", "-d", "s.npz", "-o", "whole.npz", *TINY, cwd=d)
    run("train", "-d", "s.npz", "-o", "attending.npz", "--attention", "general", *TINY, cwd=d)
    return d


@pytest.mark.parametrize("model", ["whole.npz", "attending.npz"])
def test_predict_eval_show_inspect(scenes, model):
    first = json.loads((scenes / "s" / "test.jsonl").read_text().splitlines()[0])
    alone = run("predict", "-m", model, f"s/{first['image']}", cwd=scenes).strip()
    listed = run("predict", "-m", model, "s/test.jsonl", "--json", cwd=scenes).splitlines()
    assert len(listed) == 40 and json.loads(listed[0])["caption"] == alone
    beam = json.loads(run("predict", "-m", model, "s/test.jsonl", "--json", "--beam", "3", "--n-best", "2",
                          cwd=scenes).splitlines()[0])
    assert len(beam["n_best"]) == 2
    scores = json.loads(run("eval", "-m", model, "s/test.jsonl", "--json", cwd=scenes))
    assert {"exact_match", "bleu", "object_accuracy", "wer"} <= set(scores)
    assert 0 <= scores["object_accuracy"] <= 1
    r = cli("show", "-m", model, f"s/{first['image']}", "-o", f"{model}.html", cwd=scenes)
    assert r.returncode == 0, r.stderr
    page = (scenes / f"{model}.html").read_text()
    assert "image captioning" in page and "<svg" in page
    assert ("attention over the image" in page) == (model == "attending.npz")
    assert json.loads(run("inspect", model, "--json", cwd=scenes))["task"] == "caption"


def test_pixels_in_a_record_caption_as_the_image_does(scenes):
    first = json.loads((scenes / "s" / "test.jsonl").read_text().splitlines()[0])
    pixels = np.asarray(Image.open(scenes / "s" / first["image"])).tolist()
    by_pixels = run("predict", "-m", "whole.npz", "-", "-f", "jsonl", "--json", cwd=scenes,
                    stdin=json.dumps({"pixels": pixels}) + "\n")
    by_file = run("predict", "-m", "whole.npz", f"s/{first['image']}", "--json", cwd=scenes)
    assert json.loads(by_pixels)["caption"] == json.loads(by_file)["caption"]


def test_bad_images_and_captions_are_one_line(scenes):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(scenes / "small.png")
    r = cli("predict", "-m", "whole.npz", "small.png", cwd=scenes)
    assert "an image of 8 x 8 grey pixels; this data's (and model's) images are 16 x 16 grey" in r.stderr
    (scenes / "fake.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    r = cli("predict", "-m", "whole.npz", "fake.png", cwd=scenes)
    assert "fake.png: a damaged PNG" in r.stderr and r.stdout == "\n"  # skipped: an empty answer line
    first = json.loads((scenes / "s" / "train.jsonl").read_text().splitlines()[0])
    (scenes / "empty.jsonl").write_text(json.dumps({"image": f"s/{first['image']}", "text": ""}) + "\n")
    r = cli("tokenize", "empty.jsonl", "-o", "e.npz", "--target-level", "word", cwd=scenes)
    assert r.returncode == 1 and "empty.jsonl:1: field 'text' is empty (an image needs its caption)" in r.stderr
    (scenes / "unseen.jsonl").write_text(json.dumps({"image": f"s/{first['image']}",
                                                     "text": first["text"] + " and elephant middle"}) + "\n")
    r = cli("eval", "-m", "whole.npz", "unseen.jsonl", cwd=scenes)
    assert r.returncode == 0 and "2 caption words the model never saw ('elephant', 'middle')" in r.stderr, r.stderr
