"""Inputs that are numbers: each time step x<t> a vector of D numbers instead of a token id.

A JSON lines record gives its frames in one of three fields, beside the output fields rnncli
knows (`label`, `tags` with one tag per frame, `target`):

    "frames":   [[0.1, 0.2, ...], ...]   T lists of D numbers
    "features": "clip.npy"               a (T, D) array, loaded without pickle
    "audio":    "clip.wav"               a recording, turned into log-mel frames (audio.py)
    "image":    "scene.png"              a PNG, PGM or PPM image, read as its columns (images.py)
    "pixels":   [[0, 255, ...], ...]     an image's rows of pixels 0-255, read alike

Paths are relative to the manifest's folder. Every recording of a data set must have one sample
rate (the model's; a file at another rate is refused, never silently resampled), every frame D
numbers, every number finite. The frames are normalised per dimension with the mean and standard
deviation of the training split, kept in the data set and the model so that `eval` and `predict`
normalise whatever comes in alike.
"""

import json
import os

import numpy as np

from rnncli.errors import RnncliError, where

FIELDS = ("frames", "features", "audio", "image", "pixels")
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
    given = [k for k in FIELDS if k in obj]
    if len(given) > 1:  # which one was meant is not ours to guess
        raise RnncliError(f"{at}: the record gives its input twice ({' and '.join(map(repr, given))}); keep one")
    value = obj[key]
    if key in ("image", "pixels"):
        x = _image(key, value, path, at, audio_meta)
    elif key == "frames":
        if not isinstance(value, list) or not value or not all(isinstance(row, list) for row in value):
            raise RnncliError(f"{at}: field 'frames' must be a non-empty list of lists of numbers")
        D = len(value[0])
        bad = next((k for k, row in enumerate(value) if len(row) != D), None)
        if bad is not None:
            raise RnncliError(f"{at}: frame {bad} has {len(value[bad])} numbers where frame 0 has {D} (ragged frames)")
        try:  # the types JSON gave: strings ("1") and booleans are not numbers, whatever NumPy would make of them
            x = np.array(value)
        except (TypeError, ValueError):
            raise RnncliError(f"{at}: field 'frames' must hold numbers only") from None
        if x.dtype.kind not in "iuf" or any(isinstance(v, bool) for row in value for v in row):
            raise RnncliError(f"{at}: field 'frames' must hold numbers only (found {_not_a_number(value)})")
        x = x.astype(np.float64)
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
    with np.errstate(over="ignore"):
        x = x.astype(np.float32)  # what the model reads
    if not np.all(np.isfinite(x)):
        raise RnncliError(f"{at}: the frames hold numbers beyond float32's range (about 3.4e38)")
    return x


def _image(key, value, path, at, settings):
    """An image record's frames (W, H * C); every image of a data set (and of a model's input) has
    the first one's size and channels, kept in settings["image"] as [H, W, C]."""
    from rnncli.frames.images import describe, image_frames, pixel_rows, read_image

    if key == "pixels":
        pixels = pixel_rows(value, at)
    else:
        if not isinstance(value, str) or not value.strip():
            raise RnncliError(f"{at}: field 'image' must be a file path")
        file = value if os.path.isabs(value) else os.path.join(os.path.dirname(os.path.abspath(str(path))), value)
        try:
            pixels = read_image(file)
        except RnncliError as e:
            raise RnncliError(f"{at}: {e}") from None
    shape = list(pixels.shape)
    if "image" not in settings:
        settings["image"] = shape
    elif settings["image"] != shape:
        raise RnncliError(f"{at}: an image of {describe(shape)} pixels; this data's (and model's) images are "
                          f"{describe(settings['image'])}")
    return image_frames(pixels)


def _not_a_number(rows):
    v = next(v for row in rows for v in row if isinstance(v, bool) or not isinstance(v, (int, float)))
    return f"{json.dumps(v)[:20]}, a {'boolean' if isinstance(v, bool) else type(v).__name__}"


def load_features(file, at):
    """A .npy file's (T, D) array, refused with one line if it is not plain numbers. The header is
    checked against the file's size before anything is allocated: a header is a claim, and one of
    shape (10^12, 40) over 200 bytes would otherwise ask for 146 TiB."""
    from rnncli.frames.audio import read_head

    try:
        read_head(file, "features file", 0)
        with open(file, "rb") as f:
            dtype, shape = _npy_header(f)
            if dtype.kind not in "fiu":
                raise ValueError("holds Python objects (needs pickle; refused)" if dtype.hasobject else
                                 f"expected an array of numbers, found {dtype}")
            need = int(np.prod(shape, dtype=object)) * dtype.itemsize
            have = os.fstat(f.fileno()).st_size - f.tell()
            if need != have:
                raise ValueError(f"its header claims an array of shape {shape} ({need:,} bytes) but the file holds "
                                 f"{have:,} bytes after it (truncated or damaged)")
            x = np.load(file, allow_pickle=False)
    except RnncliError as e:
        raise RnncliError(f"{at}: {e}") from None
    except ValueError as e:
        raise RnncliError(f"{at}: {file}: {str(e)[:160]}") from None
    except (OSError, EOFError) as e:
        raise RnncliError(f"{at}: {file}: not a readable .npy file ({str(e)[:80]})") from None
    return x.astype(np.float64)


def _npy_header(f):
    """(dtype, shape) of an open .npy file, leaving it at the first byte of the data."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"a .npy file of version {version}, which is not read here")
    except ValueError as e:
        raise ValueError(f"not a .npy file ({str(e)[:80]})") from None
    return dtype, shape


def audio_features(file, at, audio_meta):
    """Log-mel frames of a recording; its sample rate must be the data set's (the first one's)."""
    from rnncli.frames.audio import DEFAULTS, log_mel, read_audio

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
    try:
        # (top_db: absent from the settings of data sets made before it, which keep no floor)
        return log_mel(samples, rate, audio_meta["window_ms"], audio_meta["hop_ms"], audio_meta["bands"],
                       audio_meta["deltas"], audio_meta.get("top_db")).astype(np.float64)
    except RnncliError as e:
        raise RnncliError(f"{at}: {file}: {e}") from None


def normaliser(arrays):
    """Per-dimension mean and standard deviation of every frame of the training split (sd 0 -> 1)."""
    from rnncli.text.standardise import mean_and_sd

    return mean_and_sd(np.concatenate(arrays, axis=0), "frames", tiny=1e-12)


def frame_stats(meta, lengths):
    """What tokenize reports of frame input: D, T min/median/max, and the frame rate of audio."""
    out = {"dim": meta["frame_dim"], "frames": [int(lengths.min()), float(np.median(lengths)), int(lengths.max())]}
    audio = meta.get("audio")
    if audio:
        out["frame_rate"] = 1000.0 / audio["hop_ms"]
        out["sample_rate"] = audio["sample_rate"]
    return out


def check_audio_options(audio):
    """tokenize's log-mel options: a window of 1 to 1,000 ms, a hop no longer than it, 1 to 512 bands,
    a floor 10 to 200 dB under the loudest value."""
    from rnncli.errors import UsageError

    window, hop = audio.get("window_ms", 25.0), audio.get("hop_ms", 10.0)
    if not 1 <= window <= 1000:
        raise UsageError(f"--window-ms must be 1 to 1000, not {window:g}")
    if not 0.1 <= hop <= window:
        raise UsageError(f"--hop-ms must be 0.1 to --window-ms ({window:g}), not {hop:g}")
    if not 1 <= audio.get("bands", 40) <= 512:
        raise UsageError(f"--mel-bands must be 1 to 512, not {audio['bands']}")
    if audio.get("top_db") is not None and not 10 <= audio["top_db"] <= 200:
        raise UsageError(f"--top-db must be 10 to 200, not {audio['top_db']:g}")
