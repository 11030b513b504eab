"""Bad input, damaged checkpoints, interrupted runs: a clean one-line error or a correct result."""

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from cli_runner import cli, main_in_process
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnncli.checkpoint import load_checkpoint
from rnncli.errors import RnncliError
from rnncli.text.encode import tokenize

SAMPLES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "sample_data"))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, request):
    """A folder with data, a tiny LM and a tiny classifier, and a zoo of bad files; and a process
    that holds the outputs busy.npz and busy_study/ as another run would (lock.py)."""
    d = tmp_path_factory.mktemp("hard")
    (d / "busy_study").mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from rnncli.lock import hold; "
                               "hold('busy.npz'); hold('busy_study'); print('held', flush=True); time.sleep(3600)"],
                              cwd=d, stdout=subprocess.PIPE, text=True)
    request.addfinalizer(holder.kill)
    assert holder.stdout.readline().strip() == "held"
    assert cli("tokenize", f"{SAMPLES}/corpus.txt", cwd=d).returncode == 0
    assert cli("train", "--max-steps", "4", "--hidden", "8", "--layers", "1", "--embed", "4", cwd=d).returncode == 0
    assert cli("tokenize", f"{SAMPLES}/reviews.tsv", "-o", "rev.npz", cwd=d).returncode == 0
    assert cli("train", "-d", "rev.npz", "-o", "cls.npz", "--max-steps", "3", "--hidden", "8", "--embed", "4",
               cwd=d).returncode == 0
    (d / "empty.txt").write_text("")
    with zipfile.ZipFile(d / "tokens.npz") as z:  # a data set whose ids claim 10 TB: refused before mapping
        members = {i.filename: z.read(i) for i in z.infolist()}
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (10**13,)})
    members["train_ids.npy"] = header.getvalue() + b"\0" * 64
    with zipfile.ZipFile(d / "claims.npz", "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    (d / "bad_utf8.txt").write_bytes(b"ok\n\xc3\x28 broken\n")
    (d / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (d / "bad_image.jsonl").write_text('{"image": "binary.bin", "text": "a caption"}\n')
    (d / "nan_pixels.jsonl").write_text('{"pixels": [[0, NaN]], "text": "a caption"}\n')
    (d / "huge.tsv").write_text("positive\t" + "x" * (3 << 20) + "\n")
    (d / "notab.tsv").write_text("positive\tfine\nno tab\n")
    (d / "cols.conll").write_text("a\tO\nb\tc\tO\n")
    (d / "tags.conll").write_text("Anna\tPERSON\n")
    (d / "neutral.tsv").write_text("neutral\tmeh\n")
    (d / "emptytext.tsv").write_text("positive\tgood\nnegative\t  \n")
    (d / "nan.yaml").write_text("lr: .nan\n")
    (d / "noepochs.yaml").write_text("epochs: null\n")
    (d / "longint.yaml").write_text("hidden: " + "9" * 5000 + "\n")
    (d / "baddate.yaml").write_text("hidden: 8\nnote: 2026-02-31\n")
    (d / "pairs_notab.tsv").write_text("hello there\tbonjour\nno tab here\n")
    (d / "pairs_nosource.tsv").write_text("hello there\tbonjour\n \tvide\n")
    (d / "pairs_notarget.tsv").write_text("hello there\tbonjour\nempty target\t\n")
    (d / "pairs.tsv").write_text("".join(f"sentence number {i}\tphrase {i}\n" for i in range(60)))
    (d / "pairs_unkchar.tsv").write_text("sentence number 1\tphrase 1\nzebra number 2\tphrase 2\n")
    (d / "pairs_long.tsv").write_text("sentence number 1\tphrase 1\nshort\t" + "very " * 13 + "long\n")
    (d / "bad.jsonl").write_text('{"label": "pos", "text": "good"}\n{"label": "neg", "text": "bad"\n')
    (d / "nofield.jsonl").write_text('{"label": "pos", "text": "good"}\n{"label": "neg", "txt": "bad"}\n')
    (d / "type.jsonl").write_text('{"label": "pos", "text": "good"}\n{"label": "neg", "text": 7}\n')
    (d / "tagtype.jsonl").write_text('{"tokens": ["a", "b"], "tags": ["O", 1]}\n')
    (d / "tagcount.jsonl").write_text('{"tokens": ["a", "b"], "tags": ["O"]}\n')
    (d / "array.jsonl").write_text('["pos", "good"]\n')
    (d / "unknown.jsonl").write_text('{"sentence": "good", "idx": 1}\n')
    (d / "emptyfield.jsonl").write_text('{"source": "a b", "target": "c"}\n{"source": " ", "target": "c"}\n')
    (d / "huge.jsonl").write_text('{"text": "' + "x" * (3 << 20) + '"}\n')
    (d / "mixed.jsonl").write_text('{"text": "one"}\n')
    (d / "pair.jsonl").write_text('{"source": "one", "target": "un"}\n')
    (d / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    assert cli("export", "-m", "model.npz", "-o", "lm.safetensors", cwd=d).returncode == 0
    (d / "vec.txt").write_text("good 0.1 0.2 0.3 0.4\nfilm 0.5 0.6 0.7 0.8\n")
    (d / "vec_bad.txt").write_text("good 0.1 0.2 0.3 0.4\nfilm 0.5 0.6 0.7\n")
    (d / "folder").mkdir()
    (d / "pairs3.tsv").write_text("a b\tc d\nsource\ttarget\textra\n")
    (d / "deep.jsonl").write_text('{"text": "fine"}\n{"text": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    (d / "space_type.yaml").write_text("lr: [0.001, 0.01, log]\n")
    (d / "space_deep.yaml").write_text("lr: " + "[" * 5000 + "]" * 5000 + "\n")
    (d / "cfg_tiny.yaml").write_text("hidden: 8\nembed: 4\nmax_steps: 2\n")
    (d / "cfg_workers.yaml").write_text("hidden: 8\nembed: 4\nmax_steps: 2\nworkers: 2\n")
    (d / "space_workers.yaml").write_text("lr: [0.01, 0.001]\nworkers: [1, 2]\n")
    (d / "score_word.jsonl").write_text('{"text": "ACGT", "target": 1}\n{"text": "ACG", "target": "high"}\n')
    (d / "score_nan.jsonl").write_text('{"text": "ACGT", "target": NaN}\n')
    (d / "score_ragged.jsonl").write_text('{"text": "ACGT", "target": [1, 2]}\n{"text": "AC", "target": [1]}\n')
    subprocess.run([sys.executable, f"{SAMPLES}/make_tones.py", str(d / "tones"), "--per-digit", "3"], check=True)
    assert cli("tokenize", "tones/train.jsonl", "-o", "tones.npz", cwd=d).returncode == 0
    assert cli("train", "-d", "tones.npz", "-o", "tone_model.npz", "--max-steps", "2", "--hidden", "8", "--embed",
               "4", cwd=d).returncode == 0
    import wave

    for name, rate, channels, frames in (("fast.wav", 44100, 2, 4410), ("empty.wav", 8000, 1, 0),
                                         ("one_sample.wav", 8000, 1, 1)):
        with wave.open(str(d / "tones" / name), "wb") as w:
            w.setnchannels(channels)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(bytes(2 * channels * frames))
    (d / "tones" / "garbage.wav").write_bytes(b"not audio at all" * 10)
    (d / "tones" / "folder.wav").mkdir()
    (d / "tones" / "folder.npy").mkdir()
    header = io.BytesIO()  # a .npy header claiming 10^12 x 40 numbers over 200 bytes
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**12, 40)})
    (d / "tones" / "huge_header.npy").write_bytes(header.getvalue() + bytes(200))
    np.save(d / "tones" / "one_frame.npy", np.zeros((3, 40)))
    (d / "score_overflow.jsonl").write_text("".join(json.dumps({"text": "ACGT", "target": v}) + "\n"
                                                    for v in (1e300, -1e300, 5e299, 0.0)))
    np.save(d / "tones" / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    for name, record in (("ragged", {"frames": [[1, 2, 3], [1, 2]], "label": "a"}),
                         ("nan_frames", {"frames": [[1, float("nan")]], "label": "a"}),
                         ("missing_wav", {"audio": "nope.wav", "label": "a"}),
                         ("garbage_wav", {"audio": "garbage.wav", "label": "a"}),
                         ("fast_wav", {"audio": "fast.wav", "label": "3"}),
                         ("empty_wav", {"audio": "empty.wav", "label": "3"}),
                         ("objects_npy", {"features": "objects.npy", "label": "a"}),
                         ("frames_only", {"frames": [[1.0]]}),
                         ("dir_wav", {"audio": "folder.wav", "label": "a"}),
                         ("dir_npy", {"features": "folder.npy", "label": "a"}),
                         ("huge_header", {"features": "huge_header.npy", "label": "a"}),
                         ("string_frames", {"frames": [["1", "2", "3"]], "label": "a"}),
                         ("two_inputs", {"frames": [[1.0]], "audio": "garbage.wav", "label": "a"}),
                         ("features_audio", {"features": "one_frame.npy", "audio": "fast.wav", "label": "a"}),
                         ("one_sample_wav", {"audio": "one_sample.wav", "label": "3"})):
        (d / "tones" / f"{name}.jsonl").write_text(json.dumps(record) + "\n")
    # speech (issue 33): each tone recording with its digit as a word, read by characters
    words = "zero one two three four five six seven eight nine".split()
    speech = [json.dumps({"audio": f"wav/{name}", "text": words[int(name[0])]})
              for name in sorted(os.listdir(d / "tones" / "wav"))]
    (d / "tones" / "speech.jsonl").write_text("\n".join(speech) + "\n")
    with wave.open(str(d / "tones" / "short.wav"), "wb") as w:  # 30 ms: 2 frames
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(2 * 240))
    for name, record in (("speech_empty", {"audio": "wav/1_0000.wav", "text": " "}),
                         ("speech_unseen", {"audio": "wav/1_0000.wav", "text": "one!"}),
                         ("speech_short", {"audio": "short.wav", "text": "one"})):
        (d / "tones" / f"{name}.jsonl").write_text(json.dumps(record) + "\n")
    assert cli("tokenize", "tones/speech.jsonl", "--target-level", "char", "-o", "speech.npz", cwd=d).returncode == 0
    assert cli("train", "-d", "speech.npz", "-o", "speech_model.npz", "--max-steps", "2", "--hidden", "8", "--embed",
               "4", "--pyramid", "1", "--stack-frames", "2", "--attention", "general", cwd=d).returncode == 0
    assert cli("tokenize", f"{SAMPLES}/scores.jsonl", "-o", "scores.npz", cwd=d).returncode == 0
    assert cli("train", "-d", "scores.npz", "-o", "reg.npz", "--max-steps", "2", "--hidden", "8", "--embed", "4",
               cwd=d).returncode == 0
    from rnncli.text.store import save_dataset

    assert cli("tokenize", "pairs.tsv", "-o", "pairs.npz", cwd=d).returncode == 0
    assert cli("train", "-d", "pairs.npz", "-o", "s2s.npz", "--max-steps", "2", "--hidden", "8", "--embed", "4",
               "--attention", "general", cwd=d).returncode == 0
    assert cli("train", "-d", "rev.npz", "-o", "clm.npz", "--task", "lm", "--max-steps", "1", "--hidden", "8",
               "--embed", "4", "--layers", "1", cwd=d).returncode == 0
    assert cli("tokenize", "pairs.tsv", "--level", "char", "-o", "cpairs.npz", cwd=d).returncode == 0
    assert cli("train", "-d", "cpairs.npz", "-o", "cs2s.npz", "--max-steps", "1", "--hidden", "8", "--embed", "4",
               cwd=d).returncode == 0

    save_dataset(str(d / "other.npz"), tokenize([f"{SAMPLES}/reviews.tsv"], max_size=10))
    return d


CASES = [
    # (command line, exit code, part of the one-line message)
    (["tokenize", "missing.txt"], 1, "missing.txt: no such file"),
    (["tokenize", "folder"], 1, "folder: is a directory"),
    (["tokenize", "empty.txt", "-o", "e.npz"], 1, "empty.txt: nothing to tokenize"),
    (["tokenize", "bad_utf8.txt", "-o", "e.npz"], 1, "bad_utf8.txt:2: invalid UTF-8"),
    (["tokenize", "binary.bin", "-o", "e.npz"], 1, "binary.bin:1: NUL byte"),
    (["tokenize", "huge.tsv", "-f", "tsv", "-o", "e.npz"], 1, "huge.tsv:1: line of 3,145,737 characters"),
    (["tokenize", "notab.tsv", "-f", "tsv", "-o", "e.npz"], 1, "notab.tsv:2: expected 'label<TAB>text'"),
    (["tokenize", "cols.conll", "-f", "conll", "-o", "e.npz"], 1, "cols.conll:2: expected 2 columns"),
    (["tokenize", "tags.conll", "-f", "conll", "-o", "e.npz"], 1, "is not a BIO/IOB tag"),
    (["tokenize", f"{SAMPLES}/corpus.txt", "-o", "/proc/t.npz"], 1, "is not writable"),
    (["tokenize", f"{SAMPLES}/corpus.txt", "-o", "nowhere/t.npz"], 1, "does not exist"),
    (["tokenize", f"{SAMPLES}/corpus.txt"], 2, "tokens.npz: exists; pass --force"),
    (["tokenize", f"{SAMPLES}/corpus.txt", "-o", "e.npz", "--max-size", "0"], 2, "--max-size must be at least 1"),
    (["tokenize", f"{SAMPLES}/corpus.txt", "-o", "e.npz", "--valid-frac", "1"], 2, "--valid-frac must be in"),
    (["train", "-d", "missing.npz"], 1, "missing.npz: no such data set"),
    (["train", "-d", "folder", "-o", "x.npz"], 1, "folder: is a directory"),
    (["train", "-d", "binary.bin", "-o", "x.npz"], 1, "binary.bin:1: NUL byte"),
    (["train", "-o", "x.npz", "--hidden", "0"], 2, "--hidden must be at least 1"),
    (["train", "-o", "x.npz", "--layers", "-1"], 2, "--layers must be at least 1"),
    (["train", "-o", "x.npz", "--seed", "-1"], 2, "--seed must be at least 0"),
    (["train", "-o", "x.npz", "--workers", "0"], 2, "--workers must be at least 1"),
    (["train", "-o", "x.npz", "--eval-tokens", "-5"], 2, "--eval-tokens must be at least 0"),
    (["train", "-d", "claims.npz", "-o", "x.npz"], 1, "claims.npz: not a valid rnncli data set (array 'train_ids' "
                                                     "declares 10,000,000,000,000 bytes"),
    (["train", "-o", "x.npz", "--workers", "2", "--batch-size", "1", "--max-steps", "1"], 2,
     "--batch-size 1 is smaller than the 2 workers"),
    (["train", "-o", "x.npz", "--dropout", "1"], 2, "--dropout must be in [0, 1)"),
    (["train", "-o", "x.npz", "--lr", "0"], 2, "--lr must be positive"),
    (["train", "-o", "x.npz", "--max-time", "soon"], 2, "--max-time: cannot read 'soon'"),
    (["train", "-o", "/proc/x.npz"], 1, "is not writable"),
    (["train"], 2, "model.npz: exists; pass --force"),
    (["train", "--resume", "model.npz", "-d", "rev.npz"], 1, "vocabulary differs"),
    (["train", "--resume", "model.npz", "--hidden", "99"], 2, "cannot change ['hidden']"),
    (["sample", "--temp", "-0.5"], 2, "--temp must be >= 0"),
    (["sample", "--top-p", "1.5"], 2, "--top-p must be in (0, 1]"),
    (["sample", "--top-k", "0"], 2, "--top-k must be at least 1"),
    (["sample", "-m", "missing.npz"], 1, "missing.npz: no such model"),
    (["sample", "-m", "tokens.npz"], 1, "tokens.npz: not an rnncli model"),
    (["sample", "-m", "binary.bin"], 1, "binary.bin: not a valid rnncli model"),
    (["sample", "-m", "folder"], 1, "folder: is a directory"),
    (["eval", "missing.txt"], 1, "missing.txt: no such file"),
    (["eval", "empty.txt"], 1, "empty.txt: nothing to tokenize"),
    (["eval", "-m", "cls.npz", "neutral.tsv"], 1, "label 'neutral' is not one the model"),
    (["eval", "-m", "cls.npz", "other.npz"], 1, "tokenized with another vocabulary than the model's"),
    (["eval", "-m", "cls.npz", "notab.tsv"], 1, "notab.tsv:2: expected 'label<TAB>text'"),
    (["tokenize", "bad_image.jsonl", "-o", "e.npz"], 1, "binary.bin: not a PNG, PGM or PPM image"),
    (["tokenize", "nan_pixels.jsonl", "-o", "e.npz"], 1, "nan_pixels.jsonl:1: field 'pixels' holds NaN"),
    (["train", "-d", "rev.npz", "-o", "x.npz", "--task", "caption"], 2,
     "--task caption needs images and their captions"),
    (["serve", "-m", "missing.npz"], 1, "missing.npz: no such model"),
    (["serve", "-m", "binary.bin"], 1, "binary.bin: not a valid rnncli model"),
    (["serve", "-m", "a=cls.npz", "-m", "a=model.npz"], 2, "two models are named 'a'"),
    (["serve", "-m", "no name=cls.npz"], 2, "a model's name is 1-64 letters"),
    (["serve", "-m", "cls.npz", "--port", "70000"], 2, "--port must be 0 (a free one) to 65535"),
    (["serve", "-m", "cls.npz", "--host", "192.0.2.1", "--port", "0"], 2, "cannot listen on 192.0.2.1:0"),
    (["serve", "-m", "cls.npz", "--token", "short"], 2, "--token must be at least 8 characters"),
    (["serve", "-m", "cls.npz", "--max-batch", "0"], 2, "--max-batch must be positive"),
    (["serve", "-m", "cls.npz", "--max-wait-ms", "-1"], 2, "--max-wait-ms must be 0 or more, not -1"),
    (["serve", "-m", "cls.npz", "--header-timeout", "0"], 2, "--header-timeout must be positive"),
    (["predict", "-m", "cls.npz", "missing.txt"], 1, "missing.txt: no such file"),
    (["predict", "-m", "cls.npz", "bad_utf8.txt"], 1, "bad_utf8.txt:2: invalid UTF-8"),
    (["predict", "-m", "cls.npz", "binary.bin"], 1, "binary.bin:1: NUL byte"),
    (["predict", "-m", "cls.npz", "huge.tsv"], 1, "huge.tsv:1: line of"),
    (["predict", "-m", "model.npz"], 2, "a language model does not label input"),
    # added with issue 14
    (["tokenize", "emptytext.tsv", "-f", "tsv", "-o", "e.npz"], 1, "emptytext.tsv:2: empty text"),
    (["tokenize", "neutral.tsv", "--vocab", "cls.npz", "-o", "e.npz"], 1, "neutral.tsv:1: label 'neutral' is not one"),
    (["tokenize", f"{SAMPLES}/corpus.txt", "-o", "e.npz", "--valid-frac", "nan"], 2, "'--valid-frac': must be"),
    (["train", "-d", "rev.npz", "-o", "x.npz", "--task", "tag"], 2, "--task tag needs a tag per token"),
    (["train", "-o", "x.npz", "--task", "classify"], 2, "--task classify needs one label per example"),
    (["train", "-o", "x.npz", "--lr", "inf"], 2, "'--lr': must be a finite number"),
    (["train", "-o", "x.npz", "--config", "nan.yaml"], 2, "--lr must be a finite number, not nan"),
    (["train", "-o", "x.npz", "--config", "noepochs.yaml"], 2, "with no --epochs limit, give --max-steps"),
    (["train", "-o", "x.npz", "--config", "longint.yaml"], 2, "longint.yaml: not valid YAML (Exceeds the limit"),
    (["train", "-o", "x.npz", "--config", "baddate.yaml"], 2, "baddate.yaml: not valid YAML (day is out of range"),
    (["sample", "--temp", "nan"], 2, "'--temp' / '-t': must be a finite number"),
    (["sample", "--top-p", "inf"], 2, "'--top-p': must be a finite number"),
    # encoder-decoder input and options
    (["tokenize", "pairs_notab.tsv", "-f", "pairs", "-o", "e.npz"], 1, "pairs_notab.tsv:2: expected 'source<TAB>"),
    (["tokenize", "pairs_nosource.tsv", "-f", "pairs", "-o", "e.npz"], 1, "pairs_nosource.tsv:2: empty source"),
    (["tokenize", "pairs_notarget.tsv", "-f", "pairs", "-o", "e.npz"], 1, "pairs_notarget.tsv:2: empty target"),
    (["tokenize", "neutral.tsv", "--target-level", "char", "-o", "e.npz"], 2, "--target-level applies to"),
    (["tokenize", f"{SAMPLES}/reviews.tsv", "-f", "pairs", "--level", "word", "--target-level", "chars",
      "-o", "e.npz"], 2, "'--target-level'"),
    (["train", "-d", "pairs.tsv", "-o", "x.npz", "--attention", "dot"], 2, "--attention dot needs equal sizes"),
    (["train", "-d", "pairs.tsv", "-o", "x.npz", "--task", "classify"], 2, "--task classify needs one label"),
    (["train", "-d", "rev.npz", "-o", "x.npz", "--task", "seq2seq"], 2, "--task seq2seq needs source<TAB>target"),
    (["predict", "-m", "s2s.npz", "--beam", "2", "--n-best", "3"], 2, "at most --beam"),
    (["predict", "-m", "s2s.npz", "--beam", "2", "--temp", "0.5"], 2, "--beam and --temp exclude each other"),
    (["predict", "-m", "s2s.npz", "--temp", "nan"], 2, "'--temp': must be a finite number"),
    (["eval", "-m", "s2s.npz", "pairs.tsv", "--beam", "-1"], 2, "--beam must be 0 (greedy) or more"),
    (["eval", "-m", "s2s.npz", "pairs_notarget.tsv"], 1, "pairs_notarget.tsv:2: empty target"),
    (["sample", "-m", "s2s.npz"], 2, "a seq2seq model does not generate text"),
    # JSON lines, and the conditional language model
    (["tokenize", "bad.jsonl", "-o", "e.npz"], 1, "bad.jsonl:2: invalid JSON ("),
    (["tokenize", "nofield.jsonl", "-o", "e.npz"], 1, "nofield.jsonl:2: missing field 'text'"),
    (["tokenize", "type.jsonl", "-o", "e.npz"], 1, "type.jsonl:2: field 'text' must be a string, found int"),
    (["tokenize", "tagtype.jsonl", "-o", "e.npz"], 1, "tagtype.jsonl:1: field 'tags' must be a list of strings"),
    (["tokenize", "tagcount.jsonl", "-o", "e.npz"], 1, "tagcount.jsonl:1: 2 tokens but 1 tags"),
    (["tokenize", "array.jsonl", "-o", "e.npz"], 1, "array.jsonl:1: expected a JSON object"),
    (["tokenize", "unknown.jsonl", "-o", "e.npz"], 1, "unknown.jsonl:1: expected the fields text, label + text"),
    (["tokenize", "emptyfield.jsonl", "-o", "e.npz"], 1, "emptyfield.jsonl:2: field 'source' is empty"),
    (["tokenize", "huge.jsonl", "-o", "e.npz"], 1, "huge.jsonl:1: line of 3,145,740 characters"),
    (["tokenize", "bad.jsonl", "nofield.jsonl", "mixed.jsonl", "-o", "e.npz"], 1, "bad.jsonl:2: invalid JSON"),
    (["tokenize", "mixed.jsonl", "--valid", "bad.jsonl", "-o", "e.npz"], 1, "bad.jsonl:2: invalid JSON"),
    (["tokenize", "mixed.jsonl", "--valid", "pair.jsonl", "-o", "e.npz"], 2, "pair.jsonl: holds pairs records, but"),
    (["tokenize", "mixed.jsonl", "--valid", "pairs.tsv", "-o", "e.npz"], 1, "pairs.tsv:1: invalid JSON"),
    (["tokenize", "neutral.tsv", "-f", "jsonl", "-o", "e.npz"], 1, "neutral.tsv:1: invalid JSON"),
    (["train", "-d", "rev.npz", "-o", "e.npz", "--embeddings", "vec_bad.txt"], 1,
     "vec_bad.txt:2: 3 numbers where every vector has 4"),
    (["train", "-d", "rev.npz", "-o", "e.npz", "--embeddings", "nothere.txt"], 1, "nothere.txt: no such file"),
    (["train", "-d", "rev.npz", "-o", "e.npz", "--embeddings", "vec.txt", "--embed", "8"], 2,
     "--embed 8 differs from the 4 dimensions of vec.txt"),
    (["train", "-o", "e.npz", "--embeddings", "vec.txt"], 2, "this data set is read by chars"),
    (["train", "-d", "rev.npz", "-o", "e.npz", "--freeze-embeddings"], 2, "--freeze-embeddings needs --embeddings"),
    (["train", "-d", "rev.npz", "-o", "e.npz", "--embeddings", "folder"], 1, "folder: is a directory"),
    (["export", "-m", "cls.npz", "-o", "cls.pt"], 2, "cls.pt: the output's extension picks the format"),
    (["export", "-m", "cls.npz", "-o", "lm.safetensors"], 2, "lm.safetensors: exists; pass --force"),
    (["export", "-m", "nothere.npz", "-o", "x.onnx"], 1, "nothere.npz: no such"),
    (["import", "cls.npz", "--like", "cls.npz", "-o", "x.npz"], 2, "cls.npz: import reads a .safetensors"),
    (["import", "bad.safetensors", "--like", "cls.npz", "-o", "x.npz"], 1, "bad.safetensors: not a readable"),
    (["import", "lm.safetensors", "--like", "cls.npz", "-o", "x.npz"], 1, "lm.safetensors: its vocab differs"),
    (["predict", "-m", "cls.npz", "bad.jsonl"], 1, "bad.jsonl:2: invalid JSON ("),
    (["predict", "-m", "cls.npz", "nofield.jsonl"], 1, "nofield.jsonl:2: missing field 'text' (found 'label', 'txt')"),
    (["predict", "-m", "cls.npz", "type.jsonl"], 1, "type.jsonl:2: field 'text' must be a string, found int"),
    (["predict", "-m", "cls.npz", "array.jsonl"], 1, "array.jsonl:1: expected a JSON object"),
    (["predict", "-m", "cls.npz", "-f", "jsonl", "neutral.tsv"], 1, "neutral.tsv:1: invalid JSON"),
    (["predict", "-m", "cls.npz", "huge.jsonl"], 1, "huge.jsonl:1: line of more than 1,048,576 bytes"),
    (["sample", "-m", "clm.npz", "--label", "meh"], 2, "unknown --label 'meh'; clm.npz knows: negative, positive"),
    (["sample", "-m", "clm.npz"], 2, "clm.npz is conditional: choose --label (negative, positive)"),
    (["sample", "--label", "positive"], 2,
     "--label does not apply to a language model: sample uses it for conditional language models only"),
    (["sample", "-m", "clm.npz", "--label", "positive", "--guidance", "2"], 2,
     "clm.npz: --guidance needs a conditional language model trained with --label-dropout"),
    (["sample", "-m", "clm.npz", "--label", "positive", "--guidance", "-1"], 2, "--guidance must be >= 0"),
    (["sample", "-m", "clm.npz", "--label", "positive", "--guidance", "nan"], 2, "'--guidance': must be a finite"),
    (["train", "-d", "rev.npz", "-o", "x.npz", "--task", "lm", "--label-dropout", "1"], 2,
     "--label-dropout must be in [0, 1)"),
    (["train", "-d", "rev.npz", "-o", "x.npz", "--label-dropout", "0.2"], 2,
     "--label-dropout does not apply to a classifier: train uses it for conditional language models only"),
    (["predict", "-m", "clm.npz"], 2, "clm.npz: a language model does not label input"),
    (["train", "-d", "rev.npz", "-o", "x.npz", "--task", "lm", "--condition", "sometimes"], 2, "'--condition'"),
    (["tokenize", "pairs_unkchar.tsv", "--vocab", "cpairs.npz", "-o", "e.npz"], 1,
     "pairs_unkchar.tsv:2: source character 'z' is not in the model's vocabulary"),
    (["eval", "-m", "cs2s.npz", "pairs_unkchar.tsv"], 1, "pairs_unkchar.tsv:2: source character 'z'"),
    (["tokenize", "pairs_long.tsv", "-f", "pairs", "-o", "e.npz"], 1,
     "pairs_long.tsv:2: the target has 14 tokens, more than a decoder writes for a 1-token source (12 = 2 x 1 + 10;"),
    (["tokenize", "pairs_long.tsv", "--vocab", "pairs.npz", "-o", "e.npz"], 1, "the model's limit, set when"),
    (["eval", "-m", "s2s.npz", "pairs_long.tsv"], 1, "pairs_long.tsv:2: the target has 14 tokens"),
    (["tokenize", "pairs.tsv", "--max-target-ratio", "0", "-o", "e.npz"], 2, "--max-target-ratio must be a positive"),
    (["tokenize", "pairs.tsv", "--max-target-ratio", "inf", "-o", "e.npz"], 2, "'--max-target-ratio': must be a fin"),
    (["tokenize", "neutral.tsv", "--max-target-ratio", "3", "-o", "e.npz"], 2, "--max-target-ratio applies to"),
    (["tokenize", "pairs.tsv", "--vocab", "pairs.npz", "--max-target-ratio", "3", "-o", "e.npz"], 2,
     "drop it with --vocab"),
    # untrusted files and hostile strings (issue 30)
    (["tokenize", "pairs3.tsv", "-f", "pairs", "-o", "e.npz"], 1, "pairs3.tsv:2: expected 'source<TAB>target', "
     "found 3 tab-separated fields"),
    (["tokenize", "deep.jsonl", "-o", "e.npz"], 1, "deep.jsonl:2: invalid JSON (nested too deeply)"),
    (["predict", "-m", "cls.npz", "deep.jsonl"], 1, "deep.jsonl:2: invalid JSON (nested too deeply)"),
    (["tune", "-d", "rev.npz", "--config", "cfg_tiny.yaml", "--space", "space_type.yaml", "-o", "st",
      "--trials", "1"], 2,
     "space_type.yaml: key 'lr' should be float, found 'log'"),
    (["tune", "-d", "rev.npz", "--config", "cfg_tiny.yaml", "--space", "space_deep.yaml", "-o", "st",
      "--trials", "1"], 2,
     "space_deep.yaml"),
    (["tune", "-d", "rev.npz", "--config", "cfg_tiny.yaml", "--space", "space_workers.yaml", "-o", "sw",
      "--trials", "1"], 2, "space_workers.yaml: `workers` is not a hyperparameter; give tune --workers N"),
    (["tune", "-d", "rev.npz", "--config", "cfg_workers.yaml", "--space", f"{SAMPLES}/../configs/sentiment.space.yaml",
      "-o", "sw", "--trials", "1", "--jobs", "1000"], 2, "--jobs 1000 trials of 2 workers each need 2000 cores"),
    (["tune", "-d", "rev.npz", "--config", "cfg_tiny.yaml", "--space", f"{SAMPLES}/../configs/sentiment.space.yaml",
      "-o", "sw", "--trials", "1", "--workers", "0"], 2, "--workers"),
    # concurrency: an output another run is writing
    (["train", "-d", "rev.npz", "-o", "busy.npz", "--max-steps", "1"], 1, "busy.npz: another rnncli run is writing"),
    (["tokenize", "pairs.tsv", "-o", "busy.npz", "--force"], 1, "busy.npz: another rnncli run is writing it"),
    (["tune", "-d", "rev.npz", "--config", "cfg_tiny.yaml", "--space", f"{SAMPLES}/../configs/sentiment.space.yaml",
      "-o", "busy_study", "--budget", "1m"], 1, "busy_study: another rnncli run is writing it"),
    # resources: sizes refused before anything is allocated
    (["train", "-d", "rev.npz", "-o", "x.npz", "--hidden", "1000000000"], 2, "more than this machine's"),
    (["train", "-d", "rev.npz", "-o", "x.npz", "--layers", "100000"], 2, "lower --layers, --hidden or --embed"),
    (["train", "-d", "rev.npz", "-o", "x.npz", "--embed", "1000000000"], 2, "parameters"),
    (["gradients", "-d", "tokens.npz", "--batch", "1000000000"], 2, "--batch must be at most 4,096"),
    (["gradients", "-d", "tokens.npz", "--steps", "1000000000"], 2, "--steps 1000000000 needs at least"),
    (["gradients", "-d", "tokens.npz", "--hidden", "1000000000"], 2, "more than this machine's"),
    (["predict", "-m", "s2s.npz", "--beam", "1000000000"], 2, "--beam 1,000,000,000 is wider than the target"),
    (["predict", "-m", "s2s.npz", "--max-source-len", "0"], 2, "--max-source-len must be at least 1"),
    (["eval", "-m", "s2s.npz", "pairs.tsv", "--beam", "1000000000"], 2, "is wider than the target vocabulary"),
    # numbers out: regression (issue 31)
    (["tokenize", "score_word.jsonl", "-o", "e.npz"], 1, "score_word.jsonl:2: field 'target' must be a finite number"),
    (["tokenize", "score_nan.jsonl", "-o", "e.npz"], 1, "score_nan.jsonl:1: field 'target' must be a finite number"),
    (["tokenize", "score_ragged.jsonl", "-o", "e.npz"], 1, "score_ragged.jsonl:2: 1 numbers in 'target', where"),
    (["eval", "-m", "reg.npz", "neutral.tsv"], 2, "neutral.tsv: scores are read from JSON lines records"),
    (["eval", "-m", "reg.npz", "score_ragged.jsonl"], 1, "score_ragged.jsonl:2: 1 numbers in 'target', where"),
    (["train", "-d", "scores.npz", "-o", "x.npz", "--task", "classify"], 2, "--task classify needs one label"),
    (["train", "-d", "rev.npz", "-o", "x.npz", "--task", "regress"], 2, "--task regress needs a number per example"),
    (["predict", "-m", "reg.npz", "-m", "cls.npz"], 1, "cls.npz: a classify model cannot join reg.npz"),
    # numbers in: frames, features and audio (issue 31)
    (["tokenize", "tones/ragged.jsonl", "-o", "e.npz"], 1, "ragged.jsonl:1: frame 1 has 2 numbers where frame 0 has 3"),
    (["tokenize", "tones/nan_frames.jsonl", "-o", "e.npz"], 1, "nan_frames.jsonl:1: the frames hold NaN or infinite"),
    (["tokenize", "tones/missing_wav.jsonl", "-o", "e.npz"], 1, "missing_wav.jsonl:1: "),
    (["tokenize", "tones/garbage_wav.jsonl", "-o", "e.npz"], 1, "garbage.wav: "),
    (["tokenize", "tones/empty_wav.jsonl", "-o", "e.npz"], 1, "empty.wav: the recording is empty"),
    (["tokenize", "tones/objects_npy.jsonl", "-o", "e.npz"], 1, "objects.npy: holds Python objects (needs pickle"),
    (["tokenize", "tones/frames_only.jsonl", "-o", "e.npz"], 1, "frames_only.jsonl:1: expected the fields"),
    (["eval", "-m", "tone_model.npz", "tones/fast_wav.jsonl"], 1,
     "fast.wav: 44,100 Hz, but this data's (and model's) recordings are 8,000 Hz"),
    (["eval", "-m", "tone_model.npz", "neutral.tsv"], 2, "the model reads frames, but these records hold text"),
    (["train", "-d", "tones.npz", "-o", "x.npz", "--task", "lm"], 2, "frames (audio, features) cannot train a lang"),
    (["train", "-d", "tones.npz", "-o", "x.npz", "--task", "tag"], 2, "--task tag needs a tag per token"),
    (["train", "-d", "tones.npz", "-o", "x.npz", "--char-features"], 2, "--char-features reads words"),
    (["train", "-d", "rev.npz", "-o", "x.npz", "--input-projection", "8"], 2, "--input-projection is for frame"),
    (["train", "-d", "tones.npz", "-o", "x.npz", "--input-projection", "-1"], 2, "--input-projection must be at"),
    (["train", "-d", "rev.npz", "-o", "x.npz", "--noise-db", "-30"], 2, "--noise-db augments frames (audio, features)"),
    (["train", "-d", "rev.npz", "-o", "x.npz", "--time-masks", "2"], 2, "--time-masks augments frames"),
    (["train", "-d", "tones.npz", "-o", "x.npz", "--noise-db", "5"], 2, "--noise-db"),
    (["train", "-d", "tones.npz", "-o", "x.npz", "--gain-db", "-3"], 2, "--gain-db"),
    (["train", "-d", "tones.npz", "-o", "x.npz", "--time-masks", "-1"], 2, "--time-masks"),
    (["show", "-m", "tone_model.npz", "nothere.wav"], 1, "nothere.wav: no such audio file"),
    (["show", "-m", "tone_model.npz", "tones/wav/1_0000.wav", "--top"], 2, "--top does not apply to a classifier"),
    (["show", "-m", "tone_model.npz", "tones/fast.wav"], 1, "fast.wav: 44,100 Hz, but this data's"),
    (["tokenize", "tones/train.jsonl", "-o", "e.npz", "--hop-ms", "50"], 2, "--hop-ms must be 0.1 to --window-ms"),
    (["tokenize", "tones/train.jsonl", "-o", "e.npz", "--mel-bands", "0"], 2, "--mel-bands must be 1 to 512, not 0"),
    (["tokenize", "tones/train.jsonl", "-o", "e.npz", "--window-ms", "nan"], 2, "'--window-ms': must be a finite"),
    (["tokenize", "tones/train.jsonl", "-o", "e.npz", "--top-db", "5"], 2, "--top-db must be 10 to 200, not 5"),
    (["tokenize", "tones/train.jsonl", "-o", "e.npz", "--top-db", "inf"], 2, "'--top-db': must be a finite"),
    (["tokenize", "tones/train.jsonl", "--vocab", "tone_model.npz", "-o", "e.npz", "--deltas"], 2,
     "are the model's (set when its data was tokenized)"),
    # speech: recordings in, text out (issue 33)
    (["tokenize", "tones/speech_empty.jsonl", "-o", "e.npz"], 1,
     "speech_empty.jsonl:1: field 'text' is empty (a recording needs its transcript)"),
    (["eval", "-m", "speech_model.npz", "tones/speech_unseen.jsonl"], 1,
     "speech_unseen.jsonl:1: the transcript holds '!', a character the model never saw in training"),
    (["eval", "-m", "speech_model.npz", "tones/speech_short.jsonl"], 1,
     "speech_short.jsonl:1: a recording of 2 frames, shorter than the encoder's reduction of 4 frames"),
    (["eval", "-m", "speech_model.npz", "tones/speech.jsonl", "--max-source-len", "20"], 1,
     "speech.jsonl:1: a recording of 29 frames, longer than this model's limit of 20 (twice the longest training"),
    (["train", "-d", "speech.npz", "-o", "x.npz", "--pyramid", "2", "--layers", "2"], 2,
     "--pyramid 2 joins steps between encoder layers: it needs --layers 3 or more"),
    (["train", "-d", "speech.npz", "-o", "x.npz", "--decoder-layers", "3"], 2, "at most --layers"),
    (["train", "-d", "speech.npz", "-o", "x.npz", "--stack-frames", "0"], 2, "--stack-frames must be at least 1"),
    (["train", "-d", "speech.npz", "-o", "x.npz", "--stack-frames", "64"], 1,
     "the shortest training recording has"),
    (["train", "-d", "tones.npz", "-o", "x.npz", "--pyramid", "1"], 2, "--pyramid shortens recordings for speech"),
    (["train", "-d", "rev.npz", "-o", "x.npz", "--decoder-layers", "1"], 2, "--decoder-layers is for an encoder-"),
    (["predict", "-m", "speech_model.npz", "tones/short.wav", "--beam", "99"], 2, "--beam 99 is wider than the"),
    # label smoothing (issue 34)
    (["train", "-d", "rev.npz", "-o", "x.npz", "--label-smoothing", "1"], 2, "--label-smoothing must be in [0, 1)"),
    (["train", "-d", "rev.npz", "-o", "x.npz", "--label-smoothing", "0.1"], 2, "two labels use one sigmoid output"),
    (["train", "-d", "scores.npz", "-o", "x.npz", "--label-smoothing", "0.1"], 2, "a regression has no classes"),
    # a decoder of its own width, learning-rate schedules (issue 34)
    (["train", "-d", "rev.npz", "-o", "x.npz", "--decoder-hidden", "8"], 2, "--decoder-hidden is for an encoder-dec"),
    (["train", "-d", "pairs.npz", "-o", "x.npz", "--attention", "dot", "--decoder-hidden", "5"], 2,
     "dot attention compares the decoder's state with the encoder's outputs: --decoder-hidden must equal"),
    (["train", "-d", "pairs.npz", "-o", "x.npz", "--decoder-hidden", "0"], 2, "--decoder-hidden must be at least 1"),
    (["train", "-d", "rev.npz", "-o", "x.npz", "--lr-schedule", "steep"], 2,
     "'steep' is not one of 'constant', 'linear', 'cosine'"),
    (["train", "-d", "rev.npz", "-o", "x.npz", "--warmup", "-1"], 2, "--warmup must be at least 0"),
    # defects on the new inputs (issue 42)
    (["tokenize", "tones/dir_wav.jsonl", "-o", "e.npz"], 1, "folder.wav: is a directory, not an audio file"),
    (["tokenize", "tones/dir_npy.jsonl", "-o", "e.npz"], 1, "folder.npy: is a directory, not a features file"),
    (["show", "-m", "tone_model.npz", "tones/folder.wav"], 1, "folder.wav: is a directory, not an audio file"),
    (["tokenize", "tones/huge_header.jsonl", "-o", "e.npz"], 1,
     "huge_header.npy: its header claims an array of shape (1000000000000, 40)"),
    (["show", "-m", "tone_model.npz", "tones/huge_header.npy"], 1, "bytes after it (truncated or damaged)"),
    (["tokenize", "tones/string_frames.jsonl", "-o", "e.npz"], 1,
     "string_frames.jsonl:1: field 'frames' must hold numbers only (found \"1\", a str)"),
    (["tokenize", "tones/two_inputs.jsonl", "-o", "e.npz"], 1,
     "two_inputs.jsonl:1: the record gives its input twice ('frames' and 'audio'); keep one"),
    (["tokenize", "tones/features_audio.jsonl", "-o", "e.npz"], 1, "twice ('features' and 'audio')"),
    (["tokenize", "tones/one_sample_wav.jsonl", "-o", "e.npz"], 1,
     "one_sample.wav: the recording is too short: 1 samples (0.125 ms), shorter than one 25 ms analysis window"),
    (["show", "-m", "tone_model.npz", "tones/one_sample.wav"], 1, "shorter than one 25 ms analysis window"),
    (["tokenize", "score_overflow.jsonl", "-o", "e.npz"], 1,
     "the regression targets spread wider than a float64 holds (values up to 1e+300 in size)"),
    # an option the model's task does not use (tasks/options.py: one row per command here)
    (["predict", "-m", "reg.npz", "--proba"], 2,
     "--proba does not apply to a regression: predict uses it for classifiers and taggers only"),
    (["predict", "-m", "cls.npz", "--beam", "3"], 2, "--beam does not apply to a classifier: predict uses it for"),
    (["predict", "-m", "tone_model.npz", "--temp", "0.5"], 2, "--temp does not apply to a classifier"),
    (["eval", "-m", "cls.npz", f"{SAMPLES}/reviews.tsv", "--beam", "2"], 2,
     "--beam does not apply to a classifier: eval uses it for encoder-decoders and image captioners only"),
    (["show", "-m", "cls.npz", "a fine film", "--unit", "1"], 2,
     "--unit does not apply to a classifier: show uses it for language models and conditional language models"),
    (["show", "-m", "model.npz", "a fine film", "--label", "x"], 2, "--label does not apply to a language model"),
    (["sample", "-m", "model.npz", "--guidance", "2"], 2, "--guidance does not apply to a language model"),
    (["train", "-d", "rev.npz", "-o", "x.npz", "--crf"], 2, "--crf does not apply to a classifier: train uses it"),
    (["train", "-d", "tokens.npz", "-o", "x.npz", "--pool", "max"], 2, "--pool does not apply to a language model"),
    (["train", "-d", "pairs.npz", "-o", "x.npz", "--seq-len", "20"], 2, "--seq-len does not apply to an encoder"),
    (["train", "-d", "rev.npz", "-o", "x.npz", "--beam", "4"], 2, "--beam does not apply to a classifier"),
]


@pytest.mark.parametrize("args,code,message", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_input_gives_one_clean_line(workdir, args, code, message):
    """Each row through main(), the entry point, in this process (the interpreter's start-up is
    the same for every row; tests of the process boundary itself are below and elsewhere)."""
    before = {p.name: p.stat().st_mtime_ns for p in workdir.iterdir() if p.is_file()}
    r = main_in_process(*args, cwd=workdir, stdin="")
    assert r.returncode == code, (r.returncode, r.stderr)
    assert message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
    after = {p.name: p.stat().st_mtime_ns for p in workdir.iterdir() if p.is_file()}
    assert after == before, "a failed run changed or left files behind"


def test_predict_skips_an_unreadable_recording_by_name(workdir):
    """A pipeline of recordings keeps one answer per input: a folder named like a recording, or a
    recording shorter than one analysis window, is skipped with a line saying which and why."""
    r = cli("predict", "-m", "tone_model.npz", "-", cwd=workdir, stdin="tones/folder.wav\ntones/one_sample.wav\n"
            "tones/wav/1_0000.wav\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["", ""] and r.stdout.split("\n")[2].strip()
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in r.stderr, r.stderr
    assert "folder.wav: is a directory, not an audio file" in lines[0]
    assert "one_sample.wav: the recording is too short: 1 samples" in lines[1]


def test_full_disk_is_a_clean_error(tmp_path, monkeypatch):
    from rnncli import npzfile

    def no_space(*a, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(npzfile.np, "savez", no_space)
    target = tmp_path / "t.npz"
    target.write_bytes(b"previous")
    with pytest.raises(RnncliError, match="t.npz: cannot write: No space left on device"):
        npzfile.save_npz(str(target), {"a": np.zeros(3)}, {})
    assert target.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["t.npz"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(
    st.binary(max_size=400),
    st.lists(st.sampled_from(["positive\tgood film", "negative\tbad", "word\tO", "Anna\tB-PER", "x\tI-LOC",
                              "", "no tab", "a b c", "\t", "a\tb\tc", "-DOCSTART- O", "é\t😀", "\x00"]),
             max_size=12).map(lambda ls: "\n".join(ls).encode("utf-8"))),
    fmt=st.sampled_from([None, "text", "tsv", "conll"]))
def test_readers_return_data_or_a_clean_error(tmp_path, data, fmt):
    path = tmp_path / "in.dat"
    path.write_bytes(data)
    try:
        ds = tokenize([str(path)], fmt=fmt, valid_frac=0.2)
    except RnncliError as e:
        assert "\n" not in str(e) and str(e)
        return
    assert len(ds.train.ids) == ds.train.offsets[-1]
    assert ds.train.ids.min() >= 0 and ds.train.ids.max() < len(ds.meta["vocab"])


# ---------------------------------------------------------------- checkpoints are data


def crafted(tmp_path, name, workdir, change):
    """Copy the trained model's arrays, apply `change(arrays, meta)`, save as a new .npz."""
    with np.load(workdir / "model.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    change(arrays, meta)
    path = tmp_path / name
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)
    return path


def _set(key, value):
    def change(arrays, meta):
        arrays[key] = value
    return change


@pytest.mark.parametrize("name,change,message", [
    ("newer.npz", lambda a, m: m.update(format_version=99), "model format 99 is newer"),
    ("nan.npz", lambda a, m: a["best.head.b"].__setitem__(0, np.nan), "holds NaN or infinite values"),
    ("shape.npz", lambda a, m: a.__setitem__("best.head.W", np.zeros((3, 3), np.float32)), "has shape (3, 3)"),
    ("missing.npz", lambda a, m: [a.pop(k) for k in list(a) if k.endswith("head.b")], "do not fit"),
    ("strings.npz", lambda a, m: a.__setitem__("param.x", np.array(["a"])), "expected numbers"),
    ("noconfig.npz", lambda a, m: m.pop("config"), "damaged model (no config)"),
])
def test_damaged_checkpoints_are_refused(workdir, tmp_path, name, change, message):
    path = crafted(tmp_path, name, workdir, change)
    r = cli("sample", "-m", str(path), cwd=tmp_path)
    assert r.returncode == 1 and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_truncated_checkpoint_is_refused(workdir, tmp_path):
    raw = (workdir / "model.npz").read_bytes()
    path = tmp_path / "cut.npz"
    path.write_bytes(raw[: len(raw) // 2])
    r = cli("sample", "-m", str(path), cwd=tmp_path)
    assert r.returncode == 1 and "cut.npz: not a valid rnncli model" in r.stderr


def test_pickle_payload_never_runs(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.npz"
    np.savez(path, meta=np.array(json.dumps({"kind": "rnncli-model"})), **{"param.x": np.array([Payload()])})
    for command in (["sample", "-m", str(path)], ["predict", "-m", str(path)], ["inspect", str(path)],
                    ["train", "--resume", str(path)], ["eval", "-m", str(path), "x.txt"]):
        r = cli(*command, cwd=tmp_path, stdin="")
        assert r.returncode == 1 and "refusing" in r.stderr, r.stderr
    assert not marker.exists()


# ---------------------------------------------------------------- interrupted runs


def _params(path):
    return load_checkpoint(str(path))[1]["param"]


def _train_args(out):
    return ["train", "-o", str(out), "--hidden", "24", "--layers", "2", "--embed", "8", "--seq-len", "16",
            "--batch-size", "8", "--max-steps", "1200", "--eval-every", "20", "--dropout", "0.2"]


@pytest.fixture(scope="module")
def reference_run(workdir):
    r = cli(*_train_args("ref.npz"), cwd=workdir)
    assert r.returncode == 0, r.stderr
    return _params(workdir / "ref.npz")


def test_sigterm_saves_a_resumable_checkpoint(workdir, reference_run):
    out = workdir / "term.npz"
    proc = subprocess.Popen([sys.executable, "-m", "rnncli", *_train_args(out)], cwd=workdir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not out.exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "sigterm received: saved a resumable checkpoint" in err, err
    r = cli("train", "--resume", str(out), cwd=workdir)
    assert r.returncode == 0, r.stderr
    resumed = _params(out)
    for name, arr in reference_run.items():
        assert np.array_equal(arr, resumed[name]), name


def test_sigkill_at_random_moments_then_resume_is_bit_exact(workdir, reference_run):
    rng = np.random.default_rng(0)
    out = workdir / "kill.npz"
    kills = 0
    for attempt in range(20):
        args = ["train", "--resume", str(out)] if out.exists() else _train_args(out) + ["--force"]
        seen = out.stat().st_mtime_ns if out.exists() else None
        proc = subprocess.Popen([sys.executable, "-m", "rnncli", *args], cwd=workdir,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if attempt < 4:
            # let this run write 1 to 3 checkpoints of its own, then kill it a random few milliseconds
            # later (perhaps in the middle of the next write): counted in checkpoints, not seconds, so
            # that a fast machine cannot finish the run before the kill
            target, writes, deadline = int(rng.integers(1, 4)), 0, time.time() + 60
            while proc.poll() is None and time.time() < deadline and writes < target:
                stamp = out.stat().st_mtime_ns if out.exists() else None
                if stamp != seen:
                    writes, seen = writes + 1, stamp
                time.sleep(0.001)
            time.sleep(float(rng.uniform(0.0, 0.03)))
            if proc.poll() is None:
                proc.kill()
                kills += 1
        proc.wait(timeout=300)
        if out.exists():
            load_checkpoint(str(out))  # whatever moment the kill came, the checkpoint loads
        if proc.returncode == 0:
            break
    assert proc.returncode == 0 and kills == 4, (proc.returncode, kills)
    final = _params(out)
    for name, arr in reference_run.items():
        assert np.array_equal(arr, final[name]), name
