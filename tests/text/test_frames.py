"""Inputs that are numbers (issue 31): WAV files of every sample format, the log-mel filterbank
against librosa, the frame projection's gradients in float64 (padded and not), padding
invariance, and the commands end to end on generated tones (sample_data/make_tones.py)."""

import json
import os
import struct
import subprocess
import sys
import wave

import numpy as np
import pytest
from cli_runner import cli
from gradient_asserts import run_guide_block

from rnncli.errors import RnncliError
from rnncli.frames.audio import log_mel, mel_filters, read_wav
from rnncli.nn.gradcheck import check_gradients
from rnncli.tasks.classify import Classifier
from rnncli.tasks.regress import Regressor
from rnncli.tasks.tag import Tagger

SAMPLES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "sample_data"))


def wav_bytes(samples, rate, tag, bits, channels=1, extensible=False):
    """A WAV file written here by hand (not by the reader under test): samples (N, channels) in [-1, 1]."""
    x = np.asarray(samples, np.float64).reshape(len(samples), channels)
    if tag == 3:
        data = x.astype(f"<f{bits // 8}").tobytes()
    elif bits == 8:
        data = np.round(x * 127 + 128).astype(np.uint8).tobytes()
    elif bits == 24:
        v = np.round(x * (2**23 - 1)).astype(np.int32).reshape(-1)
        data = b"".join(int(i).to_bytes(3, "little", signed=True) for i in v)
    else:
        data = np.round(x * (2 ** (bits - 1) - 1)).astype(f"<i{bits // 8}").tobytes()
    align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 0xFFFE if extensible else tag, channels, rate, rate * align, align, bits)
    if extensible:
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", tag) + bytes(14)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"LIST" + struct.pack("<I", 3) + b"abc\x00"
    chunks += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


@pytest.mark.parametrize("tag,bits,channels,extensible,tol", [
    (1, 8, 1, False, 1 / 64), (1, 16, 1, False, 1e-4), (1, 24, 2, False, 1e-6), (1, 32, 1, True, 1e-8),
    (3, 32, 2, False, 1e-7), (3, 64, 1, True, 1e-12)])
def test_every_wav_sample_format_reads_back(tmp_path, tag, bits, channels, extensible, tol):
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.9, 0.9, (500, channels))
    path = tmp_path / "x.wav"
    path.write_bytes(wav_bytes(x, 11025, tag, bits, channels, extensible))
    samples, rate = read_wav(str(path))
    assert rate == 11025 and samples.shape == (500,)
    assert np.max(np.abs(samples - x.mean(axis=1))) < tol  # channels averaged


@pytest.mark.parametrize("raw,message", [
    (b"RIFF\x04\x00\x00\x00WAVE", "no fmt or data chunk"),
    (b"OggS" + bytes(40), "cannot read the audio|not a WAV file"),
    (wav_bytes(np.zeros(10), 8000, 1, 12), "damaged WAV file"), (wav_bytes(np.zeros(0), 8000, 1, 16), "is empty"),
    (wav_bytes(np.array([np.nan, 0.0]), 8000, 3, 32), "NaN or infinite")])
def test_bad_wav_files_are_one_line_errors(tmp_path, raw, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(raw)
    from rnncli.frames.audio import read_audio

    with pytest.raises(RnncliError, match=message):
        read_audio(str(path))


def test_log_mel_equals_librosa():
    """Within 1e-4 of librosa's log of its mel power spectrogram: HTK mel scale, Slaney-normalised
    triangles, a periodic Hann window. A 16 ms window at 16 kHz fills its FFT (256), where both
    frame the signal alike; the filters are compared for an FFT longer than the window too."""
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(1)
    rate = 16000
    x = np.sin(2 * np.pi * 440 * np.arange(rate) / rate) * 0.5 + rng.normal(0, 0.05, rate)
    ours = log_mel(x, rate, window_ms=16, hop_ms=10, bands=40)
    power = librosa.feature.melspectrogram(y=x, sr=rate, n_fft=256, hop_length=160, win_length=256, window="hann",
                                           center=False, power=2.0, n_mels=40, htk=True, norm="slaney")
    theirs = np.log(power.T + 1e-10)
    assert len(ours) >= len(theirs)
    np.testing.assert_allclose(ours[: len(theirs)], theirs, atol=1e-4, rtol=0)
    for r, n_fft in ((8000, 256), (22050, 1024)):
        np.testing.assert_allclose(mel_filters(r, n_fft, 40),
                                   librosa.filters.mel(sr=r, n_fft=n_fft, n_mels=40, htk=True, norm="slaney"),
                                   atol=1e-9, rtol=1e-6)


def voiced(rate, rng, peak_db=-10.0, pause_s=0.3):
    """Three 'syllables' (harmonics of a gliding 120-180 Hz voice, shaped by a rising and falling
    envelope) joined by pauses of exact zeros, peaking at peak_db dBFS: the generator's utterances."""
    parts = []
    for _ in range(3):
        t = np.arange(int(0.25 * rate)) / rate
        f0 = rng.uniform(120, 180) * (1 + 0.2 * t)
        phase = 2 * np.pi * np.cumsum(f0) / rate
        tone = sum(np.sin(k * phase) / k for k in range(1, 20) if k * f0.max() < rate / 2)
        parts += [tone * np.sin(np.pi * t / t[-1]) ** 2, np.zeros(int(pause_s * rate))]
    x = np.concatenate(parts)
    return x * 10 ** (peak_db / 20) / np.abs(x).max()


def test_log_mel_floor_equals_librosas_top_db():
    """The floor is librosa's power_to_db(top_db=60) in natural-log units, where it bites (pauses)."""
    librosa = pytest.importorskip("librosa")
    rate = 16000
    x = voiced(rate, np.random.default_rng(3))
    ours = log_mel(x, rate, window_ms=16, hop_ms=10, bands=40, top_db=60)
    power = librosa.feature.melspectrogram(y=x, sr=rate, n_fft=256, hop_length=160, win_length=256, window="hann",
                                           center=False, power=2.0, n_mels=40, htk=True, norm="slaney")
    theirs = librosa.power_to_db(power.T, ref=1.0, amin=1e-10, top_db=60) * np.log(10) / 10
    assert (theirs == theirs.min()).mean() > 0.2  # the floor holds a good share of the values
    np.testing.assert_allclose(ours[: len(theirs)], theirs, atol=1e-4, rtol=0)


@pytest.mark.parametrize(("peak_db", "most_mean", "most_max"), [(-3.0, 0.001, 0.08), (-10.0, 0.001, 0.08),
                                                                (-20.0, 0.02, 0.2)])
def test_a_faint_noise_floor_reads_as_the_pauses_exact_zeros_do(peak_db, most_mean, most_max):
    """Exact zeros in the pauses and a -70 dBFS white noise floor under the same utterance give log-mel
    frames that differ, on average, by under 0.1 % of the frames' range (at most 8 % in any value) with
    the 60 dB floor, for an utterance peaking at -3 or -10 dBFS (FSDD's median peak is -11 dBFS);
    without the floor (data sets made before it), by over 10 %. An utterance peaking at -20 dBFS has the
    noise 50 dB under its peak, above the floor: under 2 % (20 % at most), and training's added noise
    is what teaches a model the rest."""
    rate = 8000
    rng = np.random.default_rng(int(-peak_db))
    x = voiced(rate, rng, peak_db)
    noisy = x + rng.normal(0, 10 ** (-70 / 20), len(x))
    for top_db in (60.0, None):
        a, b = log_mel(x, rate, top_db=top_db), log_mel(noisy, rate, top_db=top_db)
        span = float(a.max() - a.min())
        mean, worst = float(np.abs(a - b).mean()) / span, float(np.abs(a - b).max()) / span
        if top_db is None:
            assert mean > 0.1
        else:
            assert mean < most_mean and worst < most_max, (mean, worst)


def test_data_sets_made_before_the_floor_keep_their_front_end(tmp_path):
    """Audio settings without top_db (a model whose data was made before it) read recordings as
    before: the exact zeros of a pause as log(1e-10)."""
    from rnncli.frames.records import audio_features

    path = tmp_path / "z.wav"
    x = np.r_[voiced(8000, np.random.default_rng(1)), np.zeros(800)]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes((x * 32767).astype("<i2").tobytes())
    old = {"sample_rate": 8000, "window_ms": 25.0, "hop_ms": 10.0, "bands": 40, "deltas": False}
    assert audio_features(str(path), "r:1", dict(old)).min() < -22
    new = audio_features(str(path), "r:1", {})
    assert new.min() == pytest.approx(new.max() - 6 * np.log(10), abs=1e-5)


def frames_batch(rng, T=5, B=3, D=4, padded=True):
    mask = np.ones((T, B))
    if padded:
        mask[3:, 1] = 0
        mask[2:, 2] = 0
    return rng.normal(size=(T, B, D)) * mask[:, :, None], mask


@pytest.mark.parametrize("task,projection,padded", [("classify", None, True), ("classify", None, False),
                                                    ("classify", 0, True), ("regress", 3, True), ("regress", 3, False),
                                                    ("tag", None, True), ("tag", None, False), ("tag", 0, True)])
def test_frame_models_gradients(task, projection, padded):
    rng = np.random.default_rng(2)
    common = dict(embed=3, hidden=4, cell="lstm", layers=2, dropout=0.1, dtype=np.float64, frame_dim=4,
                  input_projection=projection)
    x, mask = frames_batch(rng, padded=padded)
    if task == "classify":
        model = Classifier(4, 3, rng, pool="mean", **common)
        target = rng.integers(0, 3, 3)
    elif task == "regress":
        model = Regressor(4, 2, rng, pool="max", **common)
        target = rng.normal(size=(3, 2))
    else:
        model = Tagger(4, 3, rng, crf=True, **common)
        model.params["crf.trans"][...] = rng.normal(size=(3, 3))
        target = rng.integers(0, 3, mask.shape)
    assert ("input.W" in model.params) == (projection != 0)

    def run():
        return model.loss_and_grads(x, mask, target, rng=np.random.default_rng(4))

    _, grads = run()
    errors = check_gradients(lambda: run()[0], dict(model.params), grads)
    assert max(errors.values()) < 1e-6, errors


def test_padding_never_changes_a_frame_classifier():
    rng = np.random.default_rng(3)
    model = Classifier(4, 3, rng, embed=3, hidden=4, pool="mean", dtype=np.float64, frame_dim=4)
    x, mask = frames_batch(rng)
    both = model.predict_proba(x, mask)
    for b in range(3):
        n = int(mask[:, b].sum())
        np.testing.assert_allclose(both[b], model.predict_proba(x[:n, b : b + 1], mask[:n, b : b + 1])[0], atol=1e-12)


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    d = tmp_path_factory.mktemp("tones")
    subprocess.run([sys.executable, f"{SAMPLES}/make_tones.py", str(d), "--per-digit", "15"], check=True)
    r = cli("tokenize", "train.jsonl", "--valid", "valid.jsonl", "-o", "t.npz", "--json", cwd=d)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["frames"]["dim"] == 40 and report["frames"]["sample_rate"] == 8000
    r = cli("train", "-d", "t.npz", "-o", "m.npz", "--hidden", "32", "--layers", "1", "--embed", "16",
            "--max-steps", "150", "--eval-every", "50", "--pool", "mean", cwd=d)
    assert r.returncode == 0, r.stderr
    return d


def test_audio_classifier_end_to_end(tones):
    d = tones
    r = cli("eval", "-m", "m.npz", "valid.jsonl", "--json", cwd=d)
    assert r.returncode == 0 and json.loads(r.stdout)["accuracy"] > 0.7, r.stdout + r.stderr  # chance: 0.1
    r = cli("predict", "-m", "m.npz", "wav/7_0004.wav", cwd=d)
    assert r.returncode == 0 and r.stdout.strip() in [str(k) for k in range(10)]
    from rnncli.models import load_model

    model, meta, _ = load_model(str(d / "m.npz"))  # the answer is the model's, on frames normalised alike
    from rnncli.frames.audio import log_mel as features
    from rnncli.frames.audio import read_audio

    x = features(*read_audio(str(d / "wav/7_0004.wav")), top_db=meta["data"]["audio"]["top_db"])
    z = (x - np.array(meta["data"]["frame_mean"])) / np.array(meta["data"]["frame_std"])
    p = model.predict_proba(z[:, None, :].astype(np.float32), np.ones((len(z), 1), np.float32))[0]
    assert r.stdout.strip() == meta["data"]["labels"][int(p.argmax())]
    # a pipeline of paths: a missing file and another rate are skipped with an empty line each
    import wave

    with wave.open(str(d / "fast.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(bytes(44100))
    r = cli("predict", "-m", "m.npz", "-", cwd=d, stdin="wav/3_0004.wav\nnope.wav\nfast.wav\n\nwav/9_0009.wav\n")
    assert r.returncode == 0 and r.stdout.split("\n")[1:4] == ["", "", ""] and len(r.stdout.split("\n")) == 6
    assert "<stdin>:2:" in r.stderr and "no such audio file" in r.stderr
    assert "44,100 Hz, but this data's (and model's) recordings are 8,000 Hz" in r.stderr
    # JSON lines records and .npy features reach the same model
    np.save(d / "feat.npy", x)
    (d / "recs.jsonl").write_text(json.dumps({"frames": x.tolist()}) + "\n" + json.dumps({"features": "feat.npy"})
                                  + "\n")
    r = cli("predict", "-m", "m.npz", "recs.jsonl", cwd=d)
    assert r.returncode == 0 and r.stdout.split("\n")[:2] == [r.stdout.split("\n")[0]] * 2
    r = cli("predict", "-m", "m.npz", "feat.npy", cwd=d)
    assert r.stdout.strip() == r.stdout.split("\n")[0]
    r = cli("inspect", "m.npz", cwd=d)
    assert r.returncode == 0
    # show: the spectrogram as the model reads it, and the model's answer
    r = cli("show", "-m", "m.npz", "wav/7_0004.wav", "--json", "-o", "s.html", cwd=d)
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["label"] == meta["data"]["labels"][int(p.argmax())] and shown["frames"] == len(x)
    from test_pages import check_page

    check_page(d / "s.html")
    gates, units = shown["gates"], shown["units"]
    assert list(gates) == ["input gate", "forget gate", "output gate"] and len(units) == 3
    # a cell per frame and band, per frame and strip, and the colour scale's 12 steps
    assert (d / "s.html").read_text().count("<rect") == len(x) * (40 + len(gates) + len(units)) + 12
    # the gates, recomputed from the layer's own equations: a<t-1> from the outputs, x<t> projected
    H = model.rnn.hidden_size
    x_in = model.embedding.forward(z[:, None, :].astype(np.float32))[:, 0].astype(np.float64)
    _, (_, _, h, *_) = model.forward(z[:, None, :].astype(np.float32), np.ones((len(z), 1), np.float32))
    a_prev = np.vstack([np.zeros((1, H)), h[:-1, 0, :H]])
    w = model.rnn.layers[0][0].params
    pre = x_in @ w["W_ax"].T + a_prev @ w["W_aa"].T + w["b"]
    f = 1 / (1 + np.exp(-pre[:, H : 2 * H]))  # PyTorch's order: i, f, g, o
    np.testing.assert_allclose(gates["forget gate"], f.mean(axis=1), atol=1e-5)
    np.testing.assert_allclose(units[next(iter(units))], h[:, 0, int(next(iter(units)))], atol=1e-5)


def test_log_mel_options_shape_the_frames(tones):
    r = cli("tokenize", "train.jsonl", "-o", "t2.npz", "--mel-bands", "20", "--deltas", "--window-ms", "32",
            "--hop-ms", "16", "--json", cwd=tones)
    assert r.returncode == 0, r.stderr
    frames = json.loads(r.stdout)["frames"]
    assert frames["dim"] == 40 and frames["frame_rate"] == 62.5  # 20 bands and their deltas, 1000 / 16 a second


def test_frames_records_and_features(tmp_path):
    """Frames given inline and as .npy files train taggers (one tag per frame) and regressions."""
    rng = np.random.default_rng(5)
    lines, scores = [], []
    for k in range(40):
        x = rng.normal(size=(int(rng.integers(5, 12)), 3))
        tags = ["1" if v > 0 else "0" for v in x[:, 0]]
        lines.append(json.dumps({"frames": x.round(4).tolist(), "tags": tags}))
        np.save(tmp_path / f"f{k}.npy", x)
        scores.append(json.dumps({"features": f"f{k}.npy", "target": float(x[:, 1].sum())}))
    (tmp_path / "tag.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "reg.jsonl").write_text("\n".join(scores) + "\n")
    for data, name in (("tag.jsonl", "tag"), ("reg.jsonl", "reg")):
        r = cli("tokenize", data, "-o", f"{name}.npz", "--valid-frac", "0.2", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        r = cli("train", "-d", f"{name}.npz", "-o", f"{name}_m.npz", "--hidden", "8", "--embed", "4", "--max-steps",
                "30", "--json", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    r = cli("eval", "-m", "tag_m.npz", "tag.jsonl", "--json", cwd=tmp_path)
    assert r.returncode == 0 and "token_accuracy" in json.loads(r.stdout)
    r = cli("eval", "-m", "reg_m.npz", "reg.jsonl", "--json", cwd=tmp_path)
    assert r.returncode == 0 and "pearson" in json.loads(r.stdout)


def test_the_guide_runs_as_written(tmp_path):
    """docs/frames.md's Training block, line by line, with make_tones.py from sample_data."""
    outputs = run_guide_block("frames.md", "## Training", tmp_path, SAMPLES)
    assert "accuracy" in outputs[3].stderr and outputs[4].stdout.strip() in [str(k) for k in range(10)]


def test_event_scores_by_enumeration():
    from rnncli.metrics import event_scores, events

    assert events(list("0011000110"), "0") == [("1", 2, 3), ("1", 7, 8)]
    true = [list("0011000110"), list("0000000000"), list("1100000011")]
    pred = [list("0001100000"), list("0000110000"), list("1111111111")]
    s = event_scores(true, pred)
    # sentence 1: one prediction overlaps the first event, the second event is missed;
    # sentence 2: a prediction with no event; sentence 3: one long prediction overlaps one of two events
    assert (s["events"], s["predicted"]) == (4, 3)
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(2 / 4)


def test_trigger_words_train_a_frame_tagger(tmp_path):
    """sample_data/make_trigger.py: a tag per frame; eval reports event F1 and frame accuracy."""
    subprocess.run([sys.executable, f"{SAMPLES}/make_trigger.py", str(tmp_path), "--clips", "60"], check=True)
    r = cli("tokenize", "train.jsonl", "--valid", "valid.jsonl", "-o", "t.npz", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = cli("train", "-d", "t.npz", "-o", "m.npz", "--hidden", "16", "--layers", "1", "--embed", "16",
            "--max-steps", "60", "--batch-size", "8", "--lr", "0.01", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = cli("eval", "-m", "m.npz", "valid.jsonl", "--json", cwd=tmp_path)
    m = json.loads(r.stdout)
    assert r.returncode == 0 and "event F1" in r.stderr and m["f1"] > 0.6, m  # all "0" would score F1 0
    r = cli("predict", "-m", "m.npz", "wav/0004.wav", cwd=tmp_path)
    assert r.returncode == 0 and len([ln for ln in r.stdout.splitlines() if ln]) == 199  # frame<TAB>tag lines
    r = cli("show", "-m", "m.npz", "wav/0004.wav", "--json", cwd=tmp_path)
    shown = json.loads(r.stdout)
    assert len(shown["tags"]) == 199 and np.allclose(np.add(*shown["probabilities"].values()), 1, atol=1e-5)
    assert shown["tags"] == [line.split("\t")[1] for line in cli("predict", "-m", "m.npz", "wav/0004.wav",
                                                                 cwd=tmp_path).stdout.splitlines() if line]
