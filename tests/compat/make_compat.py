"""Writes tests/compat/538af89/: small data sets and models of every task, made by rnncli at
commit 538af89, and what that rnncli answered with them (expected.json). tests/project/test_compat.py
replays the same commands with today's rnncli and compares: checkpoints and data files written
before the fourth round's restructuring still load and give the same outputs.

    git worktree add /tmp/old 538af89
    RNNCLI_SOURCE=/tmp/old python tests/compat/make_compat.py

Standard library and NumPy only; the inputs are cut from sample_data/ and made by make_tones.py.
"""

import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLES = os.path.join(HERE, "..", "..", "sample_data")
OUT = os.path.join(HERE, "538af89")
TINY = ["--hidden", "8", "--embed", "4", "--layers", "1", "--seed", "0", "--quiet"]

# (name, [(command, stdin)]): the commands whose answers are kept
CASES = {
    "lm": [(["sample", "-m", "lm_model.npz", "--seed", "0", "--max-len", "60", "--temp", "0.8", "--json"], None),
           (["eval", "-m", "lm_model.npz", "lm.npz", "--json"], None),
           (["eval", "-m", "lm_model.npz", "text.txt", "--json"], None)],
    "clm": [(["sample", "-m", "clm_model.npz", "--label", "positive", "--seed", "1", "--max-len", "40", "--json"],
             None)],
    "classify": [(["predict", "-m", "cls_model.npz", "--json"], "a warm and funny film\nbad , dull and long\n"),
                 (["eval", "-m", "cls_model.npz", "reviews.tsv", "--json"], None)],
    "tag": [(["predict", "-m", "ner_model.npz", "--json"], "Anna moved to Paris\nthe cat sat on Mars\n"),
            (["eval", "-m", "ner_model.npz", "ner.conll", "--json"], None)],
    "regress": [(["predict", "-m", "reg_model.npz", "scores.jsonl", "--json"], None),
                (["eval", "-m", "reg_model.npz", "scores.jsonl", "--json"], None)],
    "seq2seq": [(["predict", "-m", "s2s_model.npz", "--beam", "2", "--n-best", "2", "--json"],
                 "12 march 1999\n2001-04-05\n"),
                (["eval", "-m", "s2s_model.npz", "dates.tsv", "--json"], None)],
    "frames": [(["predict", "-m", "tone_model.npz", "--json", "--proba"],
                "tones/wav/3_0000.wav\ntones/wav/7_0001.wav\n")],
    "speech": [(["predict", "-m", "asr_model.npz", "--json"], "tones/wav/3_0000.wav\ntones/wav/7_0001.wav\n")],
}


def rnncli(*args, stdin=None):
    env = dict(os.environ, PYTHONPATH=os.environ["RNNCLI_SOURCE"])
    r = subprocess.run([sys.executable, "-m", "rnncli", *args], cwd=OUT, capture_output=True, text=True,
                       input=stdin, env=env)
    if r.returncode != 0:
        sys.exit(f"rnncli {' '.join(args)}: {r.stderr}")
    return r.stdout


def head(name, lines, to=None):
    with open(os.path.join(SAMPLES, name), encoding="utf-8") as f:
        kept = f.read().splitlines()[:lines]
    with open(os.path.join(OUT, to or name), "w", encoding="utf-8") as f:
        f.write("\n".join(kept) + "\n")


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    head("corpus.txt", 120, "text.txt")
    head("reviews.tsv", 120)
    head("ner.conll", 400)
    head("scores.jsonl", 100)
    head("dates.tsv", 150)
    subprocess.run([sys.executable, os.path.join(SAMPLES, "make_tones.py"), os.path.join(OUT, "tones"),
                    "--per-digit", "2"], check=True, capture_output=True)
    words = "zero one two three four five six seven eight nine".split()
    with open(os.path.join(OUT, "tones", "train.jsonl"), encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    with open(os.path.join(OUT, "tones", "speech.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"audio": r["audio"], "text": words[int(r["label"])]}) + "\n" for r in records)
    rnncli("tokenize", "text.txt", "-o", "lm.npz", "--quiet")
    rnncli("train", "-d", "lm.npz", "-o", "lm_model.npz", "--max-steps", "20", *TINY)
    rnncli("tokenize", "reviews.tsv", "-o", "rev.npz", "--quiet")
    rnncli("train", "-d", "rev.npz", "-o", "clm_model.npz", "--task", "lm", "--max-steps", "10", *TINY)
    rnncli("train", "-d", "rev.npz", "-o", "cls_model.npz", "--max-steps", "10", "--pool", "max", *TINY)
    rnncli("tokenize", "ner.conll", "-o", "ner.npz", "--quiet")
    rnncli("train", "-d", "ner.npz", "-o", "ner_model.npz", "--max-steps", "10", "--crf", "--char-features",
           "--char-embed", "4", "--char-hidden", "4", *TINY)
    rnncli("tokenize", "scores.jsonl", "-o", "scores.npz", "--quiet")
    rnncli("train", "-d", "scores.npz", "-o", "reg_model.npz", "--max-steps", "10", *TINY)
    rnncli("tokenize", "dates.tsv", "--format", "pairs", "--level", "char", "-o", "dates.npz", "--quiet")
    rnncli("train", "-d", "dates.npz", "-o", "s2s_model.npz", "--max-steps", "10", "--attention", "general", *TINY)
    rnncli("tokenize", "tones/train.jsonl", "-o", "tones.npz", "--quiet")
    rnncli("train", "-d", "tones.npz", "-o", "tone_model.npz", "--max-steps", "5", *TINY)
    rnncli("tokenize", "tones/speech.jsonl", "--target-level", "char", "-o", "asr.npz", "--quiet")
    rnncli("train", "-d", "asr.npz", "-o", "asr_model.npz", "--max-steps", "5", "--attention", "additive",
           "--stack-frames", "2", *TINY)
    for name in os.listdir(OUT):  # what the replay does not read: the logs, the frames' data sets
        if name.endswith(".metrics.jsonl") or name in ("tones.npz", "asr.npz"):
            os.remove(os.path.join(OUT, name))
    expected = {name: [{"command": command, "stdin": stdin, "stdout": rnncli(*command, stdin=stdin)}
                       for command, stdin in runs] for name, runs in CASES.items()}
    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
