"""Whatever `train` writes, every command that loads a model opens (issue 42, case 1).

A cross product, not one case: the smallest model of every task x input kind (tokens, characters,
frames, audio) x the option families that change what a checkpoint stores (one and two labels, one
tag, a minimal vocabulary, frames of one number, one and several scores, pretrained rows, a CRF,
character features, each attention, a pyramid, input feeding, a decoder of its own width), each
trained for one step and then opened by inspect, eval, predict or sample, show, export (ONNX and
safetensors), import, gradcheck and train --resume. Commands run in-process (through main()), so the
whole product fits the default test run; two workers (--workers 2) are the same check under -m mpi.
"""

import json
import wave

import numpy as np
import pytest
from cli_runner import cli, main_in_process, run

from rnncli.checkpoint import load_checkpoint

TINY = ["--max-steps", "1", "--hidden", "4", "--embed", "4", "--layers", "1", "--batch-size", "4"]


def _wav(path, samples, rate=8000):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Every kind of data set, small: raw files beside their tokens.npz."""
    d = tmp_path_factory.mktemp("zoo")
    rng = np.random.default_rng(0)
    words = "the cat sat on a mat and then ran far away from home".split()
    lines = [" ".join(rng.choice(words, rng.integers(3, 8))) for _ in range(60)]
    (d / "text.txt").write_text("\n\n".join(lines) + "\n")
    (d / "ab.txt").write_text("ab\n\nba\n\n" * 30)  # a vocabulary of two symbols
    (d / "two.tsv").write_text("".join(f"{'pos' if k % 2 else 'neg'}\t{ln}\n" for k, ln in enumerate(lines)))
    (d / "three.tsv").write_text("".join(f"{'abc'[k % 3]}\t{ln}\n" for k, ln in enumerate(lines)))
    (d / "jigs.jsonl").write_text("".join(json.dumps({"label": "jig", "text": ln}) + "\n" for ln in lines))
    (d / "one_tag.conll").write_text("".join("".join(f"{w}\tO\n" for w in ln.split()) + "\n" for ln in lines))
    (d / "scores1.jsonl").write_text("".join(json.dumps({"text": ln, "target": len(ln) / 10}) + "\n"
                                             for ln in lines))
    (d / "scores2.jsonl").write_text("".join(json.dumps({"text": ln, "target": [len(ln) / 10, ln.count("a")]})
                                             + "\n" for ln in lines))
    (d / "pairs.tsv").write_text("".join(f"{ln}\t{' '.join(reversed(ln.split()))}\n" for ln in lines))
    vocab = sorted(set(words))
    (d / "vec.txt").write_text("".join(f"{w} {' '.join(f'{v:.3f}' for v in rng.normal(size=4))}\n"
                                       for w in vocab[:8] + ["unseen", "words"]))
    # frames of one number per step: a label, a number, a tag per frame, a text
    frames = [rng.normal(size=(int(rng.integers(4, 9)), 1)).round(3) for _ in range(40)]
    for name, field in (("f_label", lambda k, x: {"label": "ab"[k % 2]}),
                        ("f_score", lambda k, x: {"target": float(x.sum())}),
                        ("f_tags", lambda k, x: {"tags": ["hi" if v > 0 else "lo" for v in x[:, 0]]}),
                        ("f_text", lambda k, x: {"text": ["one", "two"][k % 2]})):
        (d / f"{name}.jsonl").write_text("".join(json.dumps({"frames": x.tolist(), **field(k, x)}) + "\n"
                                                 for k, x in enumerate(frames)))
    # audio: tones of two pitches, labelled and transcribed
    (d / "wav").mkdir()
    for k in range(16):
        t = np.arange(int(8000 * rng.uniform(0.15, 0.3))) / 8000
        _wav(d / "wav" / f"{k}.wav", 0.5 * np.sin(2 * np.pi * (400 if k % 2 else 900) * t))
    (d / "a_label.jsonl").write_text("".join(json.dumps({"audio": f"wav/{k}.wav", "label": "ab"[k % 2]}) + "\n"
                                             for k in range(16)))
    (d / "a_text.jsonl").write_text("".join(json.dumps({"audio": f"wav/{k}.wav", "text": ["low", "high"][k % 2]})
                                            + "\n" for k in range(16)))
    # images: 4 x 4 grey PNGs of a bright cell or two, captioned by where they are
    from PIL import Image

    (d / "img").mkdir()
    captions = []
    for k in range(24):
        pixels = np.zeros((4, 4), np.uint8)
        words = []
        for cell, (r, c) in enumerate([(0, 0), (0, 2), (2, 0), (2, 2)]):
            if (k >> cell) & 1 or (k % 16 == 0 and cell == 0):
                pixels[r:r + 2, c:c + 2] = 255
                words.append(f"dot {['top', 'top', 'bottom', 'bottom'][cell]} {['left', 'right'][cell % 2]}")
        Image.fromarray(pixels).save(d / "img" / f"{k}.png")
        captions.append(" and ".join(words))
    (d / "images.jsonl").write_text("".join(json.dumps({"image": f"img/{k}.png", "text": t}) + "\n"
                                            for k, t in enumerate(captions)))
    for raw, extra in (("text.txt", []), ("images.jsonl", ["--target-level", "word"]),
                       ("text.txt --level word -o words.npz", []), ("ab.txt", []),
                       ("two.tsv", []), ("three.tsv", []), ("jigs.jsonl", []), ("one_tag.conll", []),
                       ("scores1.jsonl", []), ("scores2.jsonl", []), ("pairs.tsv", []),
                       ("pairs.tsv --level char -o cpairs.npz", []), ("f_label.jsonl", []), ("f_score.jsonl", []),
                       ("f_tags.jsonl", []), ("f_text.jsonl", ["--target-level", "word"]),
                       ("a_label.jsonl", []), ("a_text.jsonl", ["--target-level", "char"])):
        name, *rest = raw.split()
        out = [] if "-o" in rest else ["-o", name.rsplit(".", 1)[0] + ".npz"]
        run("tokenize", name, *rest, *out, *extra, "--valid-frac", "0.2", "--quiet", cwd=d)
    return d


# (case id, data set, raw file for eval/predict, train options)
MODELS = [
    ("lm-chars", "text", "text.txt", ["--cell", "lstm"]),
    ("lm-words", "words", "text.txt", ["--cell", "gru"]),
    ("lm-two-symbols", "ab", "ab.txt", ["--cell", "rnn"]),
    ("lm-words-pretrained", "words", "text.txt", ["--embeddings", "vec.txt"]),
    ("lm-of-labelled-text", "two", "two.tsv", ["--task", "lm", "--condition", "none"]),
    ("lm-of-tagged-text", "one_tag", "one_tag.conll", ["--task", "lm"]),
    ("lm-of-scored-text", "scores1", "scores1.jsonl", ["--task", "lm"]),
    ("clm-two-labels", "two", "two.tsv", ["--task", "lm"]),
    ("clm-one-label", "jigs", "jigs.jsonl", ["--task", "lm"]),
    ("clm-one-label-dropout", "jigs", "jigs.jsonl", ["--task", "lm", "--label-dropout", "0.25"]),
    ("clm-two-labels-dropout", "two", "two.tsv", ["--task", "lm", "--label-dropout", "0.25", "--layers", "2"]),
    ("classify-two", "two", "two.tsv", []),
    ("classify-three", "three", "three.tsv", ["--pool", "max", "--no-bidirectional"]),
    ("classify-pretrained", "three", "three.tsv", ["--embeddings", "vec.txt"]),
    ("tag-one-tag", "one_tag", "one_tag.conll", []),
    ("tag-crf", "one_tag", "one_tag.conll", ["--crf"]),
    ("tag-chars-cnn", "one_tag", "one_tag.conll", ["--char-features", "--char-encoder", "cnn"]),
    ("tag-chars-rnn-crf", "one_tag", "one_tag.conll", ["--char-features", "--char-encoder", "rnn", "--crf"]),
    ("tag-pretrained", "one_tag", "one_tag.conll", ["--embeddings", "vec.txt"]),
    ("regress-one", "scores1", "scores1.jsonl", []),
    ("regress-two", "scores2", "scores2.jsonl", ["--pool", "mean"]),
    ("regress-pretrained", "scores2", "scores2.jsonl", ["--embeddings", "vec.txt"]),
    ("seq2seq-plain", "pairs", "pairs.tsv", ["--attention", "none"]),
    ("seq2seq-dot", "pairs", "pairs.tsv", ["--attention", "dot", "--no-bidirectional"]),
    ("seq2seq-general-feeding", "pairs", "pairs.tsv", ["--attention", "general", "--input-feeding"]),
    ("seq2seq-additive-wide", "pairs", "pairs.tsv", ["--attention", "additive", "--decoder-hidden", "6",
                                                     "--layers", "2", "--decoder-layers", "1"]),
    ("seq2seq-chars", "cpairs", "pairs.tsv", ["--attention", "general"]),
    ("seq2seq-pretrained", "pairs", "pairs.tsv", ["--attention", "general", "--embeddings", "vec.txt"]),
    ("frames-classify-d1", "f_label", "f_label.jsonl", []),
    ("frames-regress-d1", "f_score", "f_score.jsonl", ["--input-projection", "0"]),
    ("frames-tag-d1", "f_tags", "f_tags.jsonl", ["--crf"]),
    ("frames-seq2seq-d1", "f_text", "f_text.jsonl", ["--attention", "general"]),
    ("audio-classify", "a_label", "a_label.jsonl", []),
    ("audio-speech-pyramid", "a_text", "a_text.jsonl", ["--attention", "additive", "--layers", "2", "--pyramid",
                                                        "1", "--stack-frames", "2"]),
    ("audio-speech-feeding", "a_text", "a_text.jsonl", ["--attention", "general", "--input-feeding",
                                                        "--decoder-hidden", "6"]),
    ("caption-whole-image", "images", "images.jsonl", ["--layers", "2"]),
    ("caption-attending", "images", "images.jsonl", ["--attention", "additive", "--cell", "gru"]),
]


def _train(d, name, dataset, options, workers=()):
    out = f"{name}.npz"
    args = ["train", "-d", f"{dataset}.npz", "-o", out, *TINY, *options, *workers, "--quiet", "--force"]
    if workers:  # the launcher starts `rnncli` again with this process's own arguments: a process of its own
        r = cli(*args, cwd=d)
        assert r.returncode == 0, r.stderr
    else:
        run(*args, cwd=d)
    return out


def _open_with_every_command(d, model, dataset, raw):
    assert json.loads(run("inspect", model, "--json", cwd=d))["path"] == model
    meta, _ = load_checkpoint(str(d / model))  # the file only: what the test needs to know of the model
    task, frames = meta["task"], meta["data"].get("input") == "frames"
    run("eval", "-m", model, f"{dataset}.npz", "--quiet", cwd=d)
    run("eval", "-m", model, raw, "--quiet", cwd=d)
    first = open(d / raw).read().split("\n\n" if raw.endswith(".conll") else "\n")[0]
    if task in ("lm", "clm"):
        label = ["--label", meta["data"]["labels"][0]] if task == "clm" else []
        run("sample", "-m", model, "--max-len", "5", "--seed", "0", *label, cwd=d)
        run("show", "-m", model, "the cat", "--json", *label, cwd=d)
        if task == "lm":  # gradients reads plain language models
            run("gradients", "-m", model, "-d", f"{dataset}.npz", "--steps", "3", "--batch", "2", "--json", cwd=d)
    else:
        fmt = ["--format", "jsonl"] if raw.endswith(".jsonl") else ["--format", "conll"] if task == "tag" else []
        line = first if raw.endswith(".jsonl") else first.split("\t")[0] if task == "seq2seq" else (
            first.split("\t")[-1] if raw.endswith(".tsv") else " ".join(w.split("\t")[0] for w in first.splitlines()))
        stdin = first + "\n" if task == "tag" and not frames else line + "\n"
        answer = run("predict", "-m", model, "-", *fmt, "--json", cwd=d, stdin=stdin)
        assert answer.strip(), f"predict answered nothing for {model}"
        if frames:  # a recording, or a features file of the record's frames
            record = json.loads(line)
            shown = record.get("audio") or record.get("image") or f"{model}.npy"
            if "frames" in record:
                np.save(d / shown, np.array(record["frames"]))
        else:
            shown = line if task != "tag" else " ".join(w.split("\t")[0] for w in first.splitlines())
        run("show", "-m", model, shown, "--json", cwd=d)
    run("show", "-m", model, "--curves", "-o", f"{model}.curves.svg", cwd=d)
    run("export", "-m", model, "-o", f"{model}.onnx", "--force", cwd=d)
    run("export", "-m", model, "-o", f"{model}.safetensors", "--force", cwd=d)
    run("import", f"{model}.safetensors", "--like", model, "-o", f"{model}.imported.npz", "--force", cwd=d)
    run("inspect", f"{model}.imported.npz", cwd=d)
    run("gradcheck", "-m", model, "-d", f"{dataset}.npz", "--entries", "3", "--json", cwd=d)
    run("gradcheck", "-m", model, "--entries", "3", "--json", cwd=d)  # a random batch that fits the model
    resume = ["train", "-d", f"{dataset}.npz", "--resume", model, "-o", model, "--max-steps", "2", "--quiet"]
    if meta.get("workers", 1) > 1:  # resumed on as many workers: the launcher again (see _train)
        r = cli(*resume, cwd=d)
        assert r.returncode == 0, r.stderr
    else:
        run(*resume, cwd=d)
    run("inspect", model, cwd=d)


@pytest.mark.parametrize("name,dataset,raw,options", MODELS, ids=[m[0] for m in MODELS])
def test_every_trained_model_opens_with_every_command(data, name, dataset, raw, options):
    model = _train(data, name, dataset, options)
    _open_with_every_command(data, model, dataset, raw)


@pytest.mark.mpi
@pytest.mark.parametrize("name,dataset,raw,options", [MODELS[i] for i in (0, 10, 12, 16, 26, 33)],
                         ids=[MODELS[i][0] for i in (0, 10, 12, 16, 26, 33)])
def test_two_workers_write_models_every_command_opens(data, name, dataset, raw, options):
    pytest.importorskip("mpi4py")
    model = _train(data, f"{name}-workers", dataset, options, workers=["--workers", "2"])
    _open_with_every_command(data, model, dataset, raw)


# a value for each option of the table (tasks/options.py); flags take none
VALUES = {"--beam": "2", "--length-penalty": "1", "--n-best": "2", "--temp": "0.5", "--top-k": "2", "--top-p": "0.9",
          "--seed": "1", "--max-source-len": "5", "--too-long": "cut", "--unit": "0", "--gate": "f", "--label": "jig",
          "--guidance": "2", "--char-encoder": "cnn", "--char-embed": "3", "--char-hidden": "3",
          "--word-dropout": "0.1", "--pool": "max", "--attention": "general", "--decode-valid": "5",
          "--label-dropout": "0.1", "--seq-len": "10"}
ONE_PER_TASK = {"lm": MODELS[0], "clm": MODELS[9], "classify": MODELS[11], "tag": MODELS[14], "regress": MODELS[19],
                "seq2seq": MODELS[22], "caption": MODELS[-2]}


def _refused(d, args):
    """rnncli args in this process -> its one-line usage error (the test fails on any other end)."""
    r = main_in_process(*args, cwd=d)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, (args, r.returncode, r.stderr[-500:])
    return r.stderr.removeprefix("rnncli: error: ").strip()


def test_every_option_of_the_table_is_refused_for_the_tasks_it_does_not_apply_to(data):
    """One test over the whole table: each option, given to a model (or data) of a task it does not
    apply to, is refused in one line naming the option and the task; none is silently ignored."""
    from rnncli.tasks.options import APPLIES, NAMES

    models = {task: _train(data, f"table-{task}", dataset, options)
              for task, (_, dataset, _, options) in ONE_PER_TASK.items()}
    datasets = {task: f"{dataset}.npz" for task, (_, dataset, _, _) in ONE_PER_TASK.items()}
    checked = 0
    for command, table in APPLIES.items():
        for option, tasks in table.items():
            value = [VALUES[option]] if option in VALUES else []
            for task in NAMES:
                if task in tasks:
                    continue
                if command == "train":
                    task_flag = ["--task", "lm"] if task == "clm" else []
                    args = ["train", "-d", datasets[task], "-o", "never.npz", *TINY, *task_flag, option, *value]
                elif command == "sample":
                    if task not in ("lm", "clm"):
                        continue  # sample refuses other models whatever the options
                    args = ["sample", "-m", models[task], "--max-len", "3", option, *value]
                elif command == "predict":
                    if task in ("lm", "clm"):
                        continue  # predict refuses language models whatever the options
                    args = ["predict", "-m", models[task], "-", option, *value]
                elif command == "eval":
                    args = ["eval", "-m", models[task], datasets[task], option, *value]
                else:
                    args = ["show", "-m", models[task], "the cat", option, *value]
                message = _refused(data, args)
                article = "an" if NAMES[task][0] in "aeiou" else "a"
                if message.endswith("this data holds frames") and task == "caption":  # refused for the input, first
                    assert message.startswith(option), (args, message)
                else:
                    assert message.startswith(f"{option} does not apply to {article} {NAMES[task]}: "
                                              f"{command} uses it"), (args, message)
                checked += 1
    assert not (data / "never.npz").exists()
    assert checked > 100


def test_train_refuses_before_the_first_step_to_write_a_model_nothing_opens(data, monkeypatch):
    """The checks every command runs on opening a model also run before training starts: a run whose
    checkpoint they would refuse stops at once, saying so, and writes nothing."""
    from rnncli import checkpoint_checks
    from rnncli.errors import RnncliError

    def refuse(path, cfg, meta, params):
        raise RnncliError(f"{path}: damaged model: data.labels holds 1 entries, fewer than 2")

    monkeypatch.setattr(checkpoint_checks, "check_shapes", refuse)
    r = main_in_process("train", "-d", "jigs.npz", "-o", "lost.npz", *TINY, "--task", "lm", cwd=data)
    assert r.returncode == 1
    assert "would write a model that rnncli could not open again" in r.stderr
    assert "data.labels holds 1 entries" in r.stderr
    assert not (data / "lost.npz").exists() and not (data / "lost.metrics.jsonl").exists()
