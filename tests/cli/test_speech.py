"""Speech recognition (issue 33): frames in, text out. Joining steps against a naive loop; the
speech encoder-decoder's gradients in float64 (stacked frames, a pyramid, a shallower decoder;
padded and not); padding that never changes a result; step-by-step decoding; WER and CER against
jiwer; ONNX parity; sample_data/make_connected_digits.py; and the commands end to end on tones."""

import dataclasses
import json
import os
import subprocess
import sys
import wave

import jiwer
import numpy as np
import pytest
from cli_runner import cli
from gradient_asserts import assert_model_gradients, run_guide_block

from rnncli.config import make_config
from rnncli.decode import beam_search, greedy
from rnncli.metrics import edit_operations, error_rates
from rnncli.nn.gradcheck import numerical_gradient
from rnncli.nn.reduce import join_steps, join_steps_backward
from rnncli.nn.stack import RecurrentStack
from rnncli.tasks.build import build_model
from rnncli.tasks.seq2seq import Seq2Seq

SAMPLES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "sample_data"))
D = 4


def speech_batch(rng, S=11, T=4, B=3, Vt=7):
    """Frames (S, B, D) of three lengths (11, 7, 2), zero where padded; targets as for text."""
    src = rng.normal(size=(S, B, D))
    mask = np.ones((S, B))
    mask[7:, 1] = 0
    mask[2:, 2] = 0
    src[mask == 0] = 0
    t_in = rng.integers(4, Vt, (T, B))
    t_in[0] = 2
    t_out = rng.integers(3, Vt, (T, B))
    t_mask = np.ones((T, B))
    t_mask[2:, 0] = 0
    t_in[t_mask == 0] = 0
    t_out[t_mask == 0] = 0
    return src, mask, t_in, t_out, t_mask


# ---------------------------------------------------------------- joining steps


def naive_join(h, lengths, k):
    """One sequence at a time, one group at a time: [h<kt>; ...; h<kt+k-1>], zeros past its end."""
    T, B, F = h.shape
    steps = -(-T // k)
    out = np.zeros((steps, B, k * F))
    for b in range(B):
        for t in range(steps):
            for j in range(k):
                if k * t + j < lengths[b]:
                    out[t, b, j * F : (j + 1) * F] = h[k * t + j, b]
    return out


@pytest.mark.parametrize("k", [1, 2, 3])
def test_join_steps_against_a_naive_loop_and_its_gradient(k):
    rng = np.random.default_rng(k)
    lengths = np.array([7, 5, 1])
    mask = (np.arange(7)[:, None] < lengths[None]).astype(np.float64)
    h = rng.normal(size=(7, 3, 2))
    joined, new_mask = join_steps(h, mask, k)
    np.testing.assert_array_equal(joined, naive_join(h, lengths, k))
    np.testing.assert_array_equal(new_mask.sum(axis=0), -(-lengths // k))
    w = rng.normal(size=joined.shape)
    analytic = join_steps_backward(w, mask, k)
    numeric = numerical_gradient(lambda: float((join_steps(h, mask, k)[0] * w).sum()), h)
    np.testing.assert_allclose(analytic, numeric, atol=1e-8)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_a_pyramid_equals_its_layers_run_one_sequence_at_a_time(bidirectional):
    """The pyramidal stack on a padded batch equals, for each sequence alone, layer 0 -> join its
    real outputs in pairs -> layer 1 -> join -> layer 2, each layer a one-layer stack of the same cells."""
    rng = np.random.default_rng(3)
    stack = RecurrentStack("gru", 3, 4, rng, num_layers=3, bidirectional=bidirectional, pyramid=2, dtype=np.float64)
    lengths = np.array([9, 6, 1])
    x = rng.normal(size=(9, 3, 3))
    mask = (np.arange(9)[:, None] < lengths[None]).astype(np.float64)
    x[mask == 0] = 0
    out, _, _ = stack.forward(x, None, mask)
    top_mask = stack.output_mask(mask)
    for b, L in enumerate(lengths):
        h = x[:L, b : b + 1]
        for k, cells in enumerate(stack.layers):
            if k > 0:
                h = naive_join(h, [len(h)], 2)
            one = RecurrentStack("gru", h.shape[2], 4, rng, num_layers=1, bidirectional=bidirectional,
                                 dtype=np.float64)
            for d, cell in enumerate(cells):
                for name, arr in cell.params.items():
                    one.layers[0][d].params[name][...] = arr
            h, _, _ = one.forward(h, None, np.ones((len(h), 1)))
        n = int(top_mask[:, b].sum())
        assert n == len(h) == -(-L // 4)
        np.testing.assert_allclose(out[:n, b], h[:, 0], atol=1e-12)


# ---------------------------------------------------------------- the model: gradients, padding, decoding

CASES = [  # cell, attention, bidirectional, layers, decoder layers, stacked frames, pyramid levels
    ("lstm", "general", True, 3, 1, 2, 2), ("gru", "additive", False, 2, 2, 3, 1), ("rnn", None, True, 2, 1, 1, 1),
    ("lstm", "dot", False, 3, 2, 2, 2), ("gru", "general", True, 1, 1, 3, 0), ("lstm", "additive", True, 2, 1, 1, 0)]


def speech_model(rng, cell, attention, bidirectional, layers, decoder_layers, stack, pyramid, dropout=0.0):
    return Seq2Seq(1, 7, rng, embed=3, hidden=4, cell=cell, layers=layers, bidirectional=bidirectional,
                   dropout=dropout, attention=attention, dtype=np.float64, frame_dim=D, stack_frames=stack,
                   pyramid=pyramid, decoder_layers=decoder_layers)


def assert_gradients(model, data):
    assert "input.W" in model.params
    assert_model_gradients(model, data, eps=1e-4, tiny=1e-5)


@pytest.mark.parametrize("case", [CASES[0], CASES[1], *[pytest.param(c, marks=pytest.mark.slow) for c in CASES[2:]]])
def test_speech_gradients_padded(case):
    rng = np.random.default_rng(0)
    model = speech_model(rng, *case, dropout=0.2)
    assert_gradients(model, speech_batch(rng))


@pytest.mark.parametrize("case", CASES[:2])
def test_speech_gradients_unpadded(case):
    rng = np.random.default_rng(5)
    model = speech_model(rng, *case)
    src, _, t_in, t_out, _ = speech_batch(rng)
    assert_gradients(model, (src, np.ones(src.shape[:2]), t_in, t_out, np.ones(t_in.shape)))


@pytest.mark.parametrize("case", CASES)
def test_padding_never_changes_a_speech_loss(case):
    rng = np.random.default_rng(1)
    model = speech_model(rng, *case)
    src, mask, t_in, t_out, t_mask = speech_batch(rng)
    src_padded = src.copy()
    src_padded[mask == 0] = 9.0  # whatever stands in the padding is never read
    nll, _ = model.loss(src_padded, mask, t_in, t_out, t_mask)
    alone = 0.0
    for b in range(src.shape[1]):
        S, T = int(mask[:, b].sum()), int(t_mask[:, b].sum())
        alone += model.loss(src[:S, b : b + 1], mask[:S, b : b + 1], t_in[:T, b : b + 1], t_out[:T, b : b + 1],
                            t_mask[:T, b : b + 1])[0]
    assert abs(nll - alone) < 1e-10


def test_step_by_step_decoding_equals_teacher_forcing_over_a_shortened_memory():
    rng = np.random.default_rng(2)
    model = speech_model(rng, *CASES[0])
    src, mask, t_in, _, _ = speech_batch(rng)
    logits, _ = model.forward(src, mask, t_in, np.ones(t_in.shape))
    memory, states = model.start(src, mask)
    memory_mask = model.memory_mask(mask)
    assert memory.shape[0] == memory_mask.shape[0] == 2  # 11 frames / 2 stacked / 2 / 2, rounded up
    np.testing.assert_array_equal(memory_mask.sum(axis=0), [2, 1, 1])  # 11, 7 and 2 frames
    for t in range(t_in.shape[0]):
        step_logits, states = model.step(t_in[t], states, memory, memory_mask)
        np.testing.assert_allclose(step_logits, logits[t], rtol=0, atol=1e-12)


def test_beam_of_one_is_greedy_and_a_batch_decodes_as_its_members_alone():
    rng = np.random.default_rng(6)
    model = speech_model(rng, *CASES[0])
    for p in model.params.values():
        p[...] = rng.normal(size=p.shape)
    src, mask, *_ = speech_batch(rng)
    tokens, logp = greedy(model, src, mask)
    beams = beam_search(model, src, mask, beam=1)
    assert [b[0][0] for b in beams] == tokens
    np.testing.assert_allclose([b[0][2] for b in beams], logp, atol=1e-9)
    wide = beam_search(model, src, mask, beam=4)
    for b in range(src.shape[1]):
        S = int(mask[:, b].sum())
        alone, _ = greedy(model, src[:S, b : b + 1], mask[:S, b : b + 1])
        assert alone[0] == tokens[b]
        one = beam_search(model, src[:S, b : b + 1], mask[:S, b : b + 1], beam=4)
        assert one[0][0][0] == wide[b][0][0]
        assert wide[b][0][2] >= logp[b] - 1e-9  # beam search never returns a less likely output


# ---------------------------------------------------------------- WER and CER


def test_error_rates_equal_jiwers():
    rng = np.random.default_rng(0)
    words = "zero one two three four five six seven eight nine oh".split()
    refs = [" ".join(rng.choice(words, rng.integers(1, 8))) for _ in range(200)]
    hyps = [r if rng.random() < 0.3 else " ".join(rng.choice(words, rng.integers(0, 9))) for r in refs]
    hyps[0], refs[1] = "", "  seven   two "  # an empty output; spaces around and between words
    ours = error_rates(hyps, refs)
    # characters: a run of spaces counts as one (jiwer's CER only strips the ends: given one space)
    words_out = jiwer.process_words(refs, hyps)
    chars_out = jiwer.process_characters([" ".join(r.split()) for r in refs], hyps)
    assert ours["wer"] == pytest.approx(words_out.wer, abs=1e-12)
    assert ours["cer"] == pytest.approx(chars_out.cer, abs=1e-12)
    for mine, theirs in ((ours["word_errors"], words_out), (ours["char_errors"], chars_out)):
        # the distance is unique; how it divides into S, D and I between equal alignments is not
        assert (mine["substitutions"] + mine["deletions"] + mine["insertions"]
                == theirs.substitutions + theirs.deletions + theirs.insertions)
        assert mine["reference"] == theirs.hits + theirs.substitutions + theirs.deletions


def brute_force_distance(a, b):
    """Edit distance by trying every alignment: recursion without a table (tiny inputs only)."""
    if not a or not b:
        return len(a) + len(b)
    return min(brute_force_distance(a[1:], b[1:]) + (a[0] != b[0]), brute_force_distance(a[1:], b) + 1,
               brute_force_distance(a, b[1:]) + 1)


def test_edit_operations_sum_to_the_distance_and_count_each_kind():
    rng = np.random.default_rng(1)
    for _ in range(200):
        a = list(rng.choice(list("abc"), rng.integers(0, 6)))
        b = list(rng.choice(list("abc"), rng.integers(0, 6)))
        s, d, i = edit_operations(a, b)
        assert s + d + i == brute_force_distance(a, b)
        assert len(a) - d + i == len(b)  # what is deleted leaves, what is inserted arrives
    assert edit_operations("a b c".split(), "a x c d".split()) == (1, 0, 1)
    assert edit_operations(["a", "b"], []) == (0, 2, 0)


# ---------------------------------------------------------------- ONNX


@pytest.mark.parametrize("cell,bidirectional,stack,pyramid,decoder_layers,feeding", [
    ("lstm", True, 2, 2, 1, False), ("gru", False, 3, 1, 2, False), ("lstm", True, 1, 0, 2, False),
    ("lstm", True, 2, 1, 1, True)])
def test_onnx_runs_a_speech_model_as_rnncli_does(cell, bidirectional, stack, pyramid, decoder_layers, feeding):
    ort = pytest.importorskip("onnxruntime")
    import onnx

    from rnncli.export.onnx_graph import build

    cfg = make_config(None, {"task": "seq2seq", "cell": cell, "hidden": 5, "embed": 4, "layers": 3,
                             "bidirectional": bidirectional, "attention": "general", "stack_frames": stack,
                             "pyramid": pyramid, "decoder_layers": decoder_layers, "input_feeding": feeding})
    vocab = ["<pad>", "<unk>", "<bos>", "<eos>"]
    rng = np.random.default_rng(0)
    data = {"vocab": vocab, "level": "frame", "lower": False, "format": "pairs", "input": "frames", "frame_dim": D,
            "frame_mean": rng.normal(size=D).tolist(), "frame_std": rng.uniform(0.5, 2, D).tolist(),
            "target_vocab": vocab + ["one", "two", "three"], "target_level": "word"}
    model = build_model(cfg, data, rng)
    for p in model.params.values():
        p[...] = rng.normal(size=p.shape) * 0.5
    lengths = np.array([13, 8, 3], np.int32)
    raw = rng.normal(size=(13, 3, D)).astype(np.float32) * 2
    mask = (np.arange(13)[:, None] < lengths[None]).astype(np.float32)
    raw[mask == 0] = 5.0  # padding the graph must not read
    normalised = (raw - np.float32(data["frame_mean"])) / np.float32(data["frame_std"]) * mask[:, :, None]
    t_in = rng.integers(4, 7, (5, 3))
    t_in[0] = 2
    graph = build(model, {"task": "seq2seq", "config": dataclasses.asdict(cfg), "data": data})
    onnx.checker.check_model(graph, full_check=True)
    sess = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    out = dict(zip([o.name for o in sess.get_outputs()],
                   sess.run(None, {"frames": raw, "source_lengths": lengths, "target_in": t_in}), strict=True))
    logits, _ = model.forward(normalised, mask, t_in, np.ones(t_in.shape, np.float32))
    np.testing.assert_allclose(out["logits"], logits, rtol=0, atol=1e-5)
    weights = model.attention_weights(normalised, mask, t_in)
    assert out["attention"].shape == weights.shape == (3, 5, -(-13 // model.reduction))
    np.testing.assert_allclose(out["attention"], weights, rtol=0, atol=1e-5)


# ---------------------------------------------------------------- the generator of connected digits


def _write(path, x, rate=8000):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.asarray(x) * 32767).astype("<i2").tobytes())


def _read(path):
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2")


def test_connected_digits_come_from_their_own_splits_recordings_and_repeat(tmp_path):
    """Train recordings hold +0.5, valid ones -0.5: an utterance's non-silent samples say which
    split's recordings made it. The same arguments write the same bytes."""
    src = tmp_path / "fsdd"
    (src / "rec").mkdir(parents=True)
    for split, level in (("train", 0.5), ("valid", -0.5)):
        lines = []
        for digit in range(10):
            for speaker in ("ann", "bob"):
                name = f"rec/{digit}_{speaker}_{split}.wav"
                _write(src / name, np.full(800 + 80 * digit, level))
                lines.append(json.dumps({"audio": name, "label": str(digit)}))
        (src / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    args = [sys.executable, f"{SAMPLES}/make_connected_digits.py", str(src), "--train", "20", "--valid", "10",
            "--test", "5", "--max-digits", "3", "--clean"]
    for out in ("a", "b"):
        subprocess.run([*args, "-o", str(tmp_path / out)], check=True, capture_output=True)
    for split, sign in (("train", 1), ("valid", -1), ("test", -1)):
        records = [json.loads(line) for line in (tmp_path / "a" / f"{split}.jsonl").read_text().splitlines()]
        assert len(records) == {"train": 20, "valid": 10, "test": 5}[split]
        for r in records:
            words = r["text"].split()
            assert 1 <= len(words) <= 3 and r["speaker"] in ("ann", "bob")
            x = _read(tmp_path / "a" / r["audio"])
            assert set(np.unique(np.sign(x))) <= {0, sign}
            # each digit's recording lasts 800 + 80 d samples: the sound's length says the words
            digits = ["zero one two three four five six seven eight nine".split().index(w) for w in words]
            assert np.count_nonzero(x) == sum(800 + 80 * d for d in digits)
            assert (tmp_path / "b" / r["audio"]).read_bytes() == (tmp_path / "a" / r["audio"]).read_bytes()


def test_the_generator_records_as_a_microphone_would_by_default(tmp_path):
    """By default every utterance has a gain and a noise floor of its own, drawn from --gain-db and
    --noise-db: no exact zeros anywhere; --noise-db with one level fixes it."""
    src = tmp_path / "src"
    (src / "rec").mkdir(parents=True)
    for split in ("train", "valid"):
        lines = []
        for digit in range(10):
            name = f"rec/{digit}_ann_{split}.wav"
            _write(src / name, np.full(800, 0.5))
            lines.append(json.dumps({"audio": name, "label": str(digit)}))
        (src / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    base = [sys.executable, f"{SAMPLES}/make_connected_digits.py", str(src), "--train", "30", "--valid", "0",
            "--test", "0", "--max-digits", "2", "--pause-ms", "100", "200", "--ends-ms", "100", "100"]
    subprocess.run([*base, "-o", str(tmp_path / "a")], check=True, capture_output=True)
    subprocess.run([*base, "--noise-db", "-60", "--gain-db", "0", "0", "-o", str(tmp_path / "b")], check=True,
                   capture_output=True)
    subprocess.run([*base, "--clean", "-o", str(tmp_path / "c")], check=True, capture_output=True)
    # the sound has generators of its own: the same utterances are said whatever it is
    said = [(tmp_path / f / "train.jsonl").read_text() for f in ("a", "b", "c")]
    assert said[0] == said[1] == said[2]
    floors, gains = [], []
    for line in (tmp_path / "a" / "train.jsonl").read_text().splitlines():
        x = _read(tmp_path / "a" / json.loads(line)["audio"]) / 32768.0
        zero = np.r_[0, (x == 0).astype(np.int8), 0]  # (a 16-bit sample of faint noise can round to 0)
        runs = np.flatnonzero(np.diff(zero) == -1) - np.flatnonzero(np.diff(zero) == 1)
        assert runs.max(initial=0) < 20  # no stretch of digital silence
        loud = np.abs(x) > 0.05
        floors.append(20 * np.log10(np.std(x[~loud])))
        gains.append(20 * np.log10(np.median(np.abs(x[loud])) / 0.5))
    assert -77 < min(floors) and max(floors) < -44 and np.ptp(floors) > 10
    assert -10.5 < min(gains) and max(gains) < 6.5 and np.ptp(gains) > 5
    for line in (tmp_path / "b" / "train.jsonl").read_text().splitlines():
        x = _read(tmp_path / "b" / json.loads(line)["audio"]) / 32768.0
        loud = np.abs(x) > 0.05
        assert 20 * np.log10(np.std(x[~loud])) == pytest.approx(-60, abs=1.0)
        assert np.median(np.abs(x[loud])) == pytest.approx(0.5, abs=0.01)


# ---------------------------------------------------------------- the commands, on tones


@pytest.fixture(scope="module")
def asr(tmp_path_factory):
    """docs/speech.md's tones block run line by line, as a user would: connected tone-digits,
    tokenized, a small speech model trained, evaluated, asked and drawn. -> (folder, outputs)."""
    d = tmp_path_factory.mktemp("asr")
    outputs = run_guide_block("speech.md", "## Try it on tones", d, SAMPLES)
    return d, outputs


def test_the_guide_runs_as_written(asr):
    d, outputs = asr
    assert "WER" in outputs[4].stderr and "beam 5" in outputs[4].stderr
    words = set("zero one two three four five six seven eight nine".split())
    assert outputs[5].stdout.strip() and set(outputs[5].stdout.split()) <= words
    assert "speech recognition" in (d / "attention.html").read_text()


def test_a_speech_model_learns_connected_tones(asr):
    d, _ = asr
    r = cli("eval", "-m", "tone_asr_model.npz", "tone_seq/test.jsonl", "--json", cwd=d)
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["wer"] < 0.25 and m["decoding"] == "greedy"  # tones are easy; an untrained model scores ~100 %
    # eval's WER is the WER of predict's transcripts, scored by jiwer
    records = [json.loads(line) for line in (d / "tone_seq" / "test.jsonl").read_text().splitlines()]
    paths = "\n".join(str(d / "tone_seq" / r["audio"]) for r in records) + "\n"
    p = cli("predict", "-m", "tone_asr_model.npz", "-", cwd=d, stdin=paths)
    assert p.returncode == 0, p.stderr
    hyps = p.stdout.split("\n")[:-1]
    assert len(hyps) == len(records)
    assert m["wer"] == pytest.approx(jiwer.wer([r["text"] for r in records], hyps), abs=1e-12)
    right = [h == r["text"] for h, r in zip(hyps, records, strict=True)]
    assert m["sentence_accuracy"] == pytest.approx(np.mean(right))
    beam = json.loads(cli("eval", "-m", "tone_asr_model.npz", "tone_seq/test.jsonl", "--json", "--beam", "3",
                          cwd=d).stdout)
    assert beam["decoding"] == "beam 3, length penalty 1" and beam["loss"] == pytest.approx(m["loss"])


def test_predict_and_show_a_recording(asr):
    d, _ = asr
    record = json.loads((d / "tone_seq" / "test.jsonl").read_text().splitlines()[0])
    wav = str(d / "tone_seq" / record["audio"])
    one = cli("predict", "-m", "tone_asr_model.npz", wav, "--beam", "3", "--n-best", "2", "--json", cwd=d)
    assert one.returncode == 0, one.stderr
    answer = json.loads(one.stdout)
    assert len(answer["n_best"]) == 2 and answer["transcript"] == answer["n_best"][0]["transcript"]
    # longer than --max-source-len: skipped with one line (an empty answer), or cut with --too-long cut
    long = cli("predict", "-m", "tone_asr_model.npz", wav, "--max-source-len", "12", cwd=d)
    assert long.returncode == 0 and long.stdout == "\n" and "longer than this model's limit of 12" in long.stderr
    cut = cli("predict", "-m", "tone_asr_model.npz", wav, "--max-source-len", "12", "--too-long", "cut", cwd=d)
    assert cut.returncode == 0 and cut.stdout.count("\n") == 1 and "read its first 12" in cut.stderr
    s = cli("show", "-m", "tone_asr_model.npz", wav, "-o", "att.html", "--json", cwd=d)
    assert s.returncode == 0, s.stderr
    shown = json.loads(s.stdout)
    greedy_line = cli("predict", "-m", "tone_asr_model.npz", wav, cwd=d).stdout.strip()
    assert shown["transcript"] == greedy_line and shown["tokens"][-1] == "<eos>"
    weights = np.array(shown["attention"])
    assert weights.shape == (len(shown["tokens"]), -(-shown["frames"] // 4))
    np.testing.assert_allclose(weights.sum(axis=1), 1, atol=1e-5)
    page = (d / "att.html").read_text()
    assert "speech recognition" in page and page.count("<rect") >= shown["frames"] * (40 + len(shown["tokens"]))


def test_inspect_and_export_a_speech_model(asr):
    d, _ = asr
    r = cli("inspect", "tone_asr_model.npz", "--json", cwd=d)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["config"]["pyramid"] == 1 and info["config"]["stack_frames"] == 2
    assert "one per 4 frames" in cli("inspect", "tone_asr_model.npz", cwd=d).stderr
    e = cli("export", "-m", "tone_asr_model.npz", "-o", "asr.onnx", cwd=d)
    assert e.returncode == 0, e.stderr
    # safetensors and back: the same transcripts
    assert cli("export", "-m", "tone_asr_model.npz", "-o", "asr.safetensors", cwd=d).returncode == 0
    r = cli("import", "asr.safetensors", "--like", "tone_asr_model.npz", "-o", "back.npz", cwd=d)
    assert r.returncode == 0, r.stderr
    wer = [json.loads(cli("eval", "-m", m, "tone_seq/test.jsonl", "--json", cwd=d).stdout)["wer"]
           for m in ("tone_asr_model.npz", "back.npz")]
    assert wer[0] == wer[1]

