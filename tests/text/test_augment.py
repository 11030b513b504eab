"""frames/augment.py: the noise it adds against the front end's reading of real white noise; draws
that depend on (seed, epoch, sequence) alone; padding untouched; a resumed run bit for bit."""

import json
import subprocess
import sys

import numpy as np
import pytest
from cli_runner import cli

from rnncli.frames.audio import log_mel
from rnncli.frames.augment import Augmentation, FrameAugmenter, white_noise_bands

SAMPLES = __file__.rsplit("/tests/", 1)[0] + "/sample_data"
AUDIO = {"sample_rate": 8000, "window_ms": 25.0, "hop_ms": 10.0, "bands": 40, "deltas": False, "top_db": 60.0}


@pytest.mark.parametrize("rate", [8000, 16000])
def test_the_noise_bands_are_what_the_front_end_reads_of_white_noise(rate):
    """The mean power white noise of variance 1 puts in each band, and its spread from frame to
    frame, against log_mel of 20 s of real white noise (no floor)."""
    audio = dict(AUDIO, sample_rate=rate)
    power, shape = white_noise_bands(audio)
    x = np.random.default_rng(0).normal(0, 1, 20 * rate)
    energy = np.exp(log_mel(x, rate).astype(np.float64))  # (T, bands)
    np.testing.assert_allclose(energy.mean(axis=0), power, rtol=0.06)
    # a Gamma of this shape has variance mean² / shape
    ratio = energy.var(axis=0) / energy.mean(axis=0) ** 2 * shape
    assert 0.85 < np.median(ratio) < 1.15 and 0.7 < ratio.min() and ratio.max() < 1.4


def meta(D=40, deltas=False, audio=True):
    rng = np.random.default_rng(3)
    out = {"frame_mean": rng.normal(-8, 1, D).tolist(), "frame_std": rng.uniform(1, 3, D).tolist()}
    if audio:
        out["audio"] = dict(AUDIO, deltas=deltas)
    return out


def batch(rng, lengths, D=40):
    T = max(lengths)
    mask = (np.arange(T)[:, None] < np.array(lengths)[None, :]).astype(np.float32)
    return (rng.normal(size=(T, len(lengths), D)) * mask[:, :, None]).astype(np.float32), mask


FULL = Augmentation(noise_db=-30.0, gain_db=10.0, time_masks=2, time_mask=5, freq_masks=2, freq_mask=6)


@pytest.mark.parametrize("deltas", [False, True])
def test_draws_depend_on_the_seed_the_epoch_and_the_sequence_alone(deltas):
    """A sequence is augmented alike alone or beside others (padded to another length, in another
    column, on another worker), differently in another epoch; padded steps stay as they were."""
    D = 80 if deltas else 40
    augment = FrameAugmenter(FULL, meta(D, deltas), seed=5)
    rng = np.random.default_rng(1)
    frames, mask = batch(rng, [12, 30, 7], D)
    out = augment(frames, mask, np.array([4, 9, 2]), epoch=3)
    assert out.dtype == frames.dtype and np.all(out[mask == 0] == 0)
    assert not np.allclose(out[mask > 0], frames[mask > 0])
    alone = augment(frames[:12, :1], mask[:12, :1], np.array([4]), epoch=3)
    np.testing.assert_array_equal(alone[:, 0], out[:12, 0])
    swapped = augment(frames[:, ::-1], mask[:, ::-1], np.array([2, 9, 4]), epoch=3)
    np.testing.assert_array_equal(swapped[:, ::-1], out)
    again = augment(frames, mask, np.array([4, 9, 2]), epoch=4)
    assert not np.allclose(again[mask > 0], out[mask > 0])
    np.testing.assert_array_equal(augment(frames, mask, np.array([4, 9, 2]), epoch=3), out)


def test_noise_and_gain_keep_the_floor_and_masks_set_the_mean():
    m = meta()
    mean, sd = np.array(m["frame_mean"]), np.array(m["frame_std"])
    rng = np.random.default_rng(2)
    frames, mask = batch(rng, [50])
    out = FrameAugmenter(FULL._replace(time_masks=0, freq_masks=0), m, seed=0)(frames, mask, np.array([0]), 1)
    raw = out[:, 0].astype(np.float64) * sd + mean
    assert raw.min() >= raw.max() - 6 * np.log(10) - 1e-4  # 60 dB under the loudest
    masks = FrameAugmenter(Augmentation(None, 0.0, 3, 8, 3, 10), m, seed=0)
    out = masks(frames, mask, np.array([0]), 1)
    changed = out[:, 0] != frames[:, 0]
    assert changed.any() and np.all(out[:, 0][changed] == 0)  # the mean, normalised


def test_white_noise_raises_the_quiet_bands_and_leaves_loud_ones():
    """Noise at -30 dBFS at most: a band far above it keeps its value, the floor rises."""
    m = meta()
    mean, sd = np.array(m["frame_mean"]), np.array(m["frame_std"])
    raw = np.full((40, 40), np.log(1e-9))
    raw[10:20] = np.log(1e3)  # loud frames
    z = ((raw - mean) / sd).astype(np.float32)[:, None, :]
    out = FrameAugmenter(Augmentation(-30.0, 0.0, 0, 1, 0, 1), m, seed=0)(z, np.ones((40, 1), np.float32),
                                                                        np.array([0]), 0)
    back = out[:, 0].astype(np.float64) * sd + mean
    np.testing.assert_allclose(back[10:20], np.log(1e3), atol=1e-3)
    assert np.all(back[:10] > np.log(1e-9) + 1)


def test_augmentation_resumes_bit_for_bit_and_differs_from_none(tmp_path):
    subprocess.run([sys.executable, f"{SAMPLES}/make_tones.py", str(tmp_path), "--per-digit", "6"], check=True,
                   capture_output=True)
    assert cli("tokenize", "train.jsonl", "-o", "t.npz", "-q", cwd=tmp_path).returncode == 0
    model = ["--hidden", "16", "--layers", "1", "--embed", "8", "--batch-size", "8", "--eval-every", "5",
             "--seed", "2", "-q"]
    aug = ["--noise-db", "-30", "--gain-db", "6", "--time-masks", "2", "--freq-masks", "2"]
    for args in (["-o", "whole.npz", "--max-steps", "16", *aug], ["-o", "half.npz", "--max-steps", "7", *aug],
                 ["-o", "plain.npz", "--max-steps", "16"]):
        r = cli("train", "-d", "t.npz", *model, *args, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    r = cli("train", "-d", "t.npz", "--resume", "half.npz", "--max-steps", "16", "-q", cwd=tmp_path)  # (in place)
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "whole.npz") as a, np.load(tmp_path / "half.npz") as b, \
            np.load(tmp_path / "plain.npz") as c:
        names = [k for k in a.files if k.startswith("param")]
        assert names and all(np.array_equal(a[k], b[k]) for k in names)
        assert not all(np.array_equal(a[k], c[k]) for k in names)
        assert json.loads(str(a["meta"]))["config"]["noise_db"] == -30


def test_sound_options_are_refused_on_frames_that_are_not_recordings(tmp_path):
    rng = np.random.default_rng(0)
    lines = [json.dumps({"frames": rng.normal(size=(6, 3)).round(3).tolist(), "label": str(k % 2)}) for k in range(20)]
    (tmp_path / "f.jsonl").write_text("\n".join(lines) + "\n")
    assert cli("tokenize", "f.jsonl", "-o", "f.npz", "-q", cwd=tmp_path).returncode == 0
    r = cli("train", "-d", "f.npz", "-o", "m.npz", "--gain-db", "3", "--max-steps", "2", cwd=tmp_path)
    assert r.returncode == 2 and "--gain-db changes a recording's sound; these frames are not log-mel audio" in r.stderr
    r = cli("train", "-d", "f.npz", "-o", "m.npz", "--time-masks", "1", "--time-mask", "2", "--freq-masks", "1",
            "--freq-mask", "1", "--max-steps", "2", "--hidden", "8", "--layers", "1", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr  # masks apply to any frames
