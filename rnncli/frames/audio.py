"""Sound in: WAV files read with the standard library's view of bytes, and the log-mel filterbank
the speech literature feeds recurrent networks.

    read_wav(path)           -> (samples (N,) float64 in [-1, 1], sample rate); channels averaged
    log_mel(samples, rate)   -> (T, bands) float32: 25 ms Hann windows every 10 ms, |FFT|², 40
                                triangular mel bands (HTK's mel scale, Slaney's area normalisation),
                                log(energy + 1e-10), floored top_db decibels under the recording's
                                loudest band; optional deltas (T, 2·bands)

The floor is librosa's power_to_db(..., top_db=60) in natural-log units. Without it, the exact
zeros a generator writes into pauses read as log(1e-10) = -23, a value no microphone produces
(every real recording has a noise floor): a model trained on them learns digital silence, and a
recording with a faint floor, 70 dB under its peak, reads as something it never saw. With it, both
read as the floor (bench/RESULTS.md, "A floor under the log-mel"). Data sets made before it have no
top_db in their audio settings and keep their front end.

WAV holds PCM integers of 8 (unsigned), 16, 24 or 32 bits, or IEEE floats of 32 or 64 bits
(format 3, or WAVE_FORMAT_EXTENSIBLE naming either). Other containers (FLAC, OGG) are read
through the optional `soundfile` package (`pip install 'rnncli[audio]'`).
"""

import math
import os
import struct

import numpy as np

from rnncli.errors import RnncliError

PCM, FLOAT, EXTENSIBLE = 1, 3, 0xFFFE
MAX_SECONDS = 3600  # one recording; longer is not an utterance
DEFAULTS = {"window_ms": 25.0, "hop_ms": 10.0, "bands": 40, "deltas": False, "top_db": 60.0}


def read_audio(path):
    """(samples (N,) float64, rate) from a WAV, or any format soundfile reads."""
    head = read_head(path, "audio file")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return read_wav(path)
    try:
        import soundfile
    except ImportError:
        raise RnncliError(f"{path}: not a WAV file; other audio formats need soundfile: "
                          "pip install 'rnncli[audio]'") from None
    try:
        data, rate = soundfile.read(path, dtype="float64", always_2d=True)
    except Exception as e:  # soundfile raises its own error types
        raise RnncliError(f"{path}: cannot read the audio ({str(e).splitlines()[0][:100]})") from None
    return _checked(path, data.mean(axis=1), rate)


def read_head(path, what, size=12):
    """The first bytes of the file a record names, or one line saying why it cannot be read (missing,
    a folder, unreadable)."""
    if os.path.isdir(path):
        raise RnncliError(f"{path}: is a directory, not {'an' if what[0] in 'aeiou' else 'a'} {what}")
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except FileNotFoundError:
        raise RnncliError(f"{path}: no such {what}") from None
    except OSError as e:
        raise RnncliError(f"{path}: cannot read the {what}: {e.strerror or e}") from None


def read_wav(path):
    """(samples (N,) float64 in [-1, 1], sample rate) of a WAV file; several channels averaged."""
    read_head(path, "audio file", 0)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise RnncliError(f"{path}: not a WAV file (no RIFF/WAVE header)")
    fmt, data, at = None, None, 12
    while at + 8 <= len(raw):  # chunks: 4-byte id, 4-byte little-endian size, payload (padded to even)
        cid, size = raw[at : at + 4], struct.unpack("<I", raw[at + 4 : at + 8])[0]
        body = raw[at + 8 : at + 8 + size]
        if cid == b"fmt ":
            fmt = body
        elif cid == b"data":
            data = body
        at += 8 + size + (size & 1)
    if fmt is None or len(fmt) < 16 or data is None:
        raise RnncliError(f"{path}: damaged WAV file (no fmt or data chunk)")
    tag, channels, rate, _, align, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack("<H", fmt[24:26])[0]  # the sub-format GUID starts with the real tag
    width = bits // 8
    if channels < 1 or rate < 1 or bits % 8 or align != channels * width:
        raise RnncliError(f"{path}: damaged WAV file ({channels} channels, {rate} Hz, {bits} bits)")
    frames = len(data) // align
    data = data[: frames * align]
    if tag == PCM and width == 1:
        x = (np.frombuffer(data, np.uint8).astype(np.float64) - 128.0) / 128.0
    elif tag == PCM and width in (2, 4):
        x = np.frombuffer(data, f"<i{width}").astype(np.float64) / float(2 ** (bits - 1))
    elif tag == PCM and width == 3:  # 24-bit: sign-extend three bytes into an int32
        b = np.frombuffer(data, np.uint8).reshape(-1, 3).astype(np.int32)
        x = ((b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8).astype(np.float64) / float(2**23)
    elif tag == FLOAT and width in (4, 8):
        x = np.frombuffer(data, f"<f{width}").astype(np.float64)
    else:
        raise RnncliError(f"{path}: WAV of format {tag} with {bits} bits is not read here (PCM 8/16/24/32 or "
                          "float 32/64); other formats need soundfile: pip install 'rnncli[audio]'")
    return _checked(path, x.reshape(frames, channels).mean(axis=1), rate)


def _checked(path, samples, rate):
    if len(samples) == 0:
        raise RnncliError(f"{path}: the recording is empty")
    if len(samples) > MAX_SECONDS * rate:
        raise RnncliError(f"{path}: {len(samples) / rate:,.0f} s of audio; at most {MAX_SECONDS:,} s a recording")
    if not np.all(np.isfinite(samples)):
        raise RnncliError(f"{path}: the recording holds NaN or infinite samples")
    return samples, int(rate)


def hz_to_mel(f):
    """HTK's mel scale: 2595 log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


def mel_filters(rate, n_fft, bands):
    """(bands, n_fft // 2 + 1): triangles evenly spaced on the mel scale from 0 to rate / 2, each
    scaled to unit area (2 / its width in Hz), over the FFT bins' frequencies."""
    freqs = np.linspace(0.0, rate / 2.0, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(rate / 2.0), bands + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None] - lower) / (centre - lower)
    falling = (upper - freqs[None]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (upper - lower))


def deltas(feats, width=2):
    """The regression slope of each band over ±width frames (edges repeated), as HTK computes it."""
    padded = np.pad(feats, ((width, width), (0, 0)), mode="edge")
    T = len(feats)
    num = sum(k * (padded[width + k : width + k + T] - padded[width - k : width - k + T]) for k in range(1, width + 1))
    return num / (2 * sum(k * k for k in range(1, width + 1)))


def log_mel(samples, rate, window_ms=25.0, hop_ms=10.0, bands=40, deltas_too=False, top_db=None):
    """(T, bands) float32 log-mel energies (T, 2·bands with deltas): frames of window_ms every hop_ms
    (the signal zero-padded at the end to fill the last frame), a periodic Hann window, the power
    spectrum of an FFT of the next power of two, the mel filters, log(energy + 1e-10); with top_db,
    nothing under the loudest value less top_db decibels (top_db · ln(10) / 10 in these units)."""
    win, hop = int(round(rate * window_ms / 1000.0)), int(round(rate * hop_ms / 1000.0))
    if win < 2 or hop < 1:
        raise RnncliError(f"a {window_ms:g} ms window every {hop_ms:g} ms is too short at {rate} Hz")
    if len(samples) < win:  # less than one analysis window: no frame of it would be the sound's own
        raise RnncliError(f"the recording is too short: {len(samples):,} samples ({1000 * len(samples) / rate:.3g} "
                          f"ms), shorter than one {window_ms:g} ms analysis window")
    n_fft = 1 << math.ceil(math.log2(win))
    T = max(1, 1 + math.ceil((len(samples) - win) / hop))
    padded = np.zeros((T - 1) * hop + win)
    padded[: len(samples)] = samples
    index = np.arange(win)[None, :] + hop * np.arange(T)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)
    power = np.abs(np.fft.rfft(padded[index] * window, n=n_fft)) ** 2
    feats = np.log(power @ mel_filters(rate, n_fft, bands).T + 1e-10)
    if top_db is not None:  # a floor tied to the recording, not to the number 1e-10
        feats = np.maximum(feats, feats.max() - top_db * np.log(10.0) / 10.0)
    if deltas_too:
        feats = np.concatenate([feats, deltas(feats)], axis=1)
    return feats.astype(np.float32)
