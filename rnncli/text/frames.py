"""Inputs that are numbers: each time step x<t> a vector of D numbers instead of a token id.

A JSON lines record gives its frames in one of three fields, beside the output fields rnncli
knows (`label`, `tags` with one tag per frame, `target`):

    "frames":   [[0.1, 0.2, ...], ...]   T lists of D numbers
    "features": "clip.npy"               a (T, D) array, loaded without pickle
    "audio":    "clip.wav"               a recording, turned into log-mel frames (audio.py)

Paths are relative to the manifest's folder. Every recording of a data set must have one sample
rate (the model's; a file at another rate is refused, never silently resampled), every frame D
numbers, every number finite. The frames are normalised per dimension with the mean and standard
deviation of the training split, kept in the data set and the model so that `eval` and `predict`
normalise whatever comes in alike.
"""

import os

import numpy as np

from rnncli.errors import RnncliError, where

FIELDS = ("frames", "features", "audio")
MAX_FRAMES = 100_000  # time steps in one record (1,000 s of audio at 100 frames a second)
MAX_DIM = 10_000


def frame_field(obj):
    """The frames field a JSON record holds, or None."""
    return next((key for key in FIELDS if key in obj), None)


def record_frames(obj, path, n, audio_meta):
    """A record's frames (T, D) float32. audio_meta: {} to fill with the first recording's rate and
    the feature settings, or the model's, which later recordings must match."""
    key = frame_field(obj)
    at = where(path, n)
    value = obj[key]
    if key == "frames":
        if not isinstance(value, list) or not value or not all(isinstance(row, list) for row in value):
            raise RnncliError(f"{at}: field 'frames' must be a non-empty list of lists of numbers")
        D = len(value[0])
        bad = next((k for k, row in enumerate(value) if len(row) != D), None)
        if bad is not None:
            raise RnncliError(f"{at}: frame {bad} has {len(value[bad])} numbers where frame 0 has {D} (ragged frames)")
        try:
            x = np.array(value, np.float64)
        except (TypeError, ValueError):
            raise RnncliError(f"{at}: field 'frames' must hold numbers only") from None
        if x.dtype.kind != "f" or any(isinstance(v, bool) for row in value for v in row):
            raise RnncliError(f"{at}: field 'frames' must hold numbers only")
    else:
        if not isinstance(value, str) or not value.strip():
            raise RnncliError(f"{at}: field {key!r} must be a file path")
        file = value if os.path.isabs(value) else os.path.join(os.path.dirname(os.path.abspath(str(path))), value)
        x = load_features(file, at) if key == "features" else audio_features(file, at, audio_meta)
    if x.ndim != 2 or x.shape[0] < 1 or not 1 <= x.shape[1] <= MAX_DIM:
        raise RnncliError(f"{at}: frames of shape {x.shape}; expected (T, D) with T >= 1, D <= {MAX_DIM:,}")
    if x.shape[0] > MAX_FRAMES:
        raise RnncliError(f"{at}: {x.shape[0]:,} frames; at most {MAX_FRAMES:,} in one record")
    if not np.all(np.isfinite(x)):
        raise RnncliError(f"{at}: the frames hold NaN or infinite values")
    return x.astype(np.float32)


def load_features(file, at):
    """A .npy file's (T, D) array, refused with one line if it is not plain numbers."""
    if not os.path.isfile(file):
        raise RnncliError(f"{at}: {file}: no such features file")
    try:
        x = np.load(file, allow_pickle=False)
    except ValueError as e:
        why = "holds Python objects (needs pickle; refused)" if "pickle" in str(e).lower() else str(e)[:80]
        raise RnncliError(f"{at}: {file}: {why}") from None
    except (OSError, EOFError) as e:
        raise RnncliError(f"{at}: {file}: not a readable .npy file ({str(e)[:80]})") from None
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "fiu":
        raise RnncliError(f"{at}: {file}: expected an array of numbers, found {getattr(x, 'dtype', type(x))}")
    return x.astype(np.float64)


def audio_features(file, at, audio_meta):
    """Log-mel frames of a recording; its sample rate must be the data set's (the first one's)."""
    from rnncli.audio import DEFAULTS, log_mel, read_audio

    try:
        samples, rate = read_audio(file)
    except RnncliError as e:
        raise RnncliError(f"{at}: {e}") from None
    if "sample_rate" not in audio_meta:
        audio_meta.update(sample_rate=rate, **{k: v for k, v in DEFAULTS.items() if k not in audio_meta})
    elif rate != audio_meta["sample_rate"]:
        raise RnncliError(f"{at}: {file}: {rate:,} Hz, but this data's (and model's) recordings are "
                          f"{audio_meta['sample_rate']:,} Hz; resample it first (e.g. sox in.wav -r "
                          f"{audio_meta['sample_rate']} out.wav)")
    return log_mel(samples, rate, audio_meta["window_ms"], audio_meta["hop_ms"], audio_meta["bands"],
                   audio_meta["deltas"]).astype(np.float64)


def normaliser(arrays):
    """Per-dimension mean and standard deviation of every frame of the training split (sd 0 -> 1)."""
    total = np.concatenate(arrays, axis=0).astype(np.float64)
    sd = total.std(axis=0)
    return total.mean(axis=0).tolist(), [float(v) if v > 1e-12 else 1.0 for v in sd]


def frame_stats(meta, lengths):
    """What tokenize reports of frame input: D, T min/median/max, and the frame rate of audio."""
    out = {"dim": meta["frame_dim"], "frames": [int(lengths.min()), float(np.median(lengths)), int(lengths.max())]}
    audio = meta.get("audio")
    if audio:
        out["frame_rate"] = 1000.0 / audio["hop_ms"]
        out["sample_rate"] = audio["sample_rate"]
    return out


def check_audio_options(audio):
    """tokenize's log-mel options: a window of 1 to 1,000 ms, a hop no longer than it, 1 to 512 bands."""
    from rnncli.errors import UsageError

    window, hop = audio.get("window_ms", 25.0), audio.get("hop_ms", 10.0)
    if not 1 <= window <= 1000:
        raise UsageError(f"--window-ms must be 1 to 1000, not {window:g}")
    if not 0.1 <= hop <= window:
        raise UsageError(f"--hop-ms must be 0.1 to --window-ms ({window:g}), not {hop:g}")
    if not 1 <= audio.get("bands", 40) <= 512:
        raise UsageError(f"--mel-bands must be 1 to 512, not {audio['bands']}")
