"""Augmentation of frames in training: what else a recording might have sounded like, drawn afresh
for every sequence in every epoch.

    gain    the recording louder or softer, by g dB drawn in ±gain_db: every log energy moves by
            g · ln(10) / 10
    noise   white noise at a level drawn between -80 dB under full scale and noise_db, added where
            it adds, in each mel band's power: x' = log(e^x + σ² · n_b · χ), with n_b the power a
            unit of white noise puts in band b through the Hann window and the band's triangle, and
            χ its spread from frame to frame (a Gamma of mean 1 and the band's own variance)
    floor   the front end's floor again, top_db under the loudest value (frames/audio.py)
    masks   SpecAugment's: time_masks runs of up to time_mask frames and freq_masks runs of up to
            freq_mask bands set to the training mean (0 once normalised)

Gain and noise need a recording's settings (rate, window, bands): they are for audio. Masks apply
to any frames. Deltas, when the frames have them, are computed again from the augmented bands.

Each sequence's draws come from (seed, epoch, its index in the training split) alone: the same on
every worker, in whichever batch it falls, and again when a run resumes. Padding is never touched:
a sequence is augmented over its own length and its padded steps stay as they were (zeros).
tests/text/test_augment.py checks the noise's band powers against log_mel of real white noise.
"""

import math
from typing import NamedTuple

import numpy as np

from rnncli.frames.audio import deltas, mel_filters

QUIETEST_NOISE_DB = -80.0  # the low end of the noise levels drawn: under any floor the front end keeps


class Augmentation(NamedTuple):
    """What training adds to frames (config.py's fields of the same names)."""

    noise_db: float | None
    gain_db: float
    time_masks: int
    time_mask: int
    freq_masks: int
    freq_mask: int

    @classmethod
    def of(cls, cfg):
        """The configuration's augmentation, or None when it asks for none."""
        a = cls(cfg.noise_db, cfg.gain_db, cfg.time_masks, cfg.time_mask, cfg.freq_masks, cfg.freq_mask)
        return a if (a.noise_db is not None or a.gain_db or a.time_masks or a.freq_masks) else None

    @property
    def sound(self):
        """Does it change the sound (gain, noise), which only recordings have?"""
        return self.noise_db is not None or bool(self.gain_db)


def white_noise_bands(audio):
    """The mean power a unit of white noise (variance 1) puts in each mel band of these audio
    settings, and the Gamma shape of its spread -> (bands,), (bands,).

    The FFT coefficients of windowed white noise are complex Gaussians with covariance
    C(k - j) = sum_t w_t² e^(-2πi (k - j) t / n_fft) between bins k and j (the FFT of w²), so a bin's
    power is C(0) on average and two bins' powers covary by |C(k - j)|²: a band's power
    F_b · P has mean C(0) sum(F_b) and variance F_b G F_b with G[k, j] = |C(k - j)|² (neighbouring
    bins overlap through the window: about half the spread's degrees of freedom)."""
    rate = audio["sample_rate"]
    win = int(round(rate * audio["window_ms"] / 1000.0))
    n_fft = 1 << math.ceil(math.log2(win))
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)
    filters = mel_filters(rate, n_fft, audio["bands"])  # (bands, n_fft // 2 + 1)
    C = np.fft.fft(window**2, n_fft)  # C[d]: the covariance of bins d apart
    bins = np.arange(filters.shape[1])
    G = np.abs(C[np.abs(bins[:, None] - bins[None, :])]) ** 2
    power = filters.sum(axis=1) * C[0].real
    variance = np.einsum("bk,kj,bj->b", filters, G, filters)
    return power, power**2 / np.maximum(variance, 1e-300)


class FrameAugmenter:
    """augmenter(frames (T, B, D), mask (T, B), index (B,), epoch) -> augmented frames, same shape
    and dtype; frames normalised as the data set stores them (data_meta's frame_mean and _std)."""

    def __init__(self, augmentation, data_meta, seed):
        self.a, self.seed = augmentation, seed
        self.mean = np.asarray(data_meta["frame_mean"], np.float64)
        self.sd = np.asarray(data_meta["frame_std"], np.float64)
        audio = data_meta.get("audio") or {}
        self.deltas = bool(audio.get("deltas"))
        self.bands = len(self.mean) // 2 if self.deltas else len(self.mean)
        self.top_db = audio.get("top_db")
        self.noise = white_noise_bands(audio) if augmentation.sound else None

    def __call__(self, frames, mask, index, epoch):
        out = frames.copy()
        lengths = mask.sum(axis=0).astype(np.int64)
        for b, i in enumerate(np.asarray(index).tolist()):
            L = int(lengths[b])
            if L:
                rng = np.random.default_rng([self.seed, epoch, i, 0xA06])
                out[:L, b] = self.sequence(out[:L, b].astype(np.float64), rng)
        return out

    def sequence(self, z, rng):
        """One sequence's normalised frames z (L, D) -> augmented, normalised (L, D)."""
        a, K = self.a, self.bands
        x = z * self.sd + self.mean
        bands = x[:, :K]
        if a.sound:
            bands = bands + rng.uniform(-a.gain_db, a.gain_db) * math.log(10) / 10
            if a.noise_db is not None:
                power, shape = self.noise
                level = 10 ** (rng.uniform(QUIETEST_NOISE_DB, a.noise_db) / 10)
                spread = rng.gamma(shape, 1 / shape, size=bands.shape)
                bands = np.logaddexp(bands, np.log(level * power * spread))
            if self.top_db is not None:
                bands = np.maximum(bands, bands.max() - self.top_db * math.log(10) / 10)
        L = len(bands)
        for _ in range(a.time_masks):
            w = int(rng.integers(0, min(a.time_mask, L) + 1))
            t0 = int(rng.integers(0, L - w + 1))
            bands[t0 : t0 + w] = self.mean[:K]
        for _ in range(a.freq_masks):
            w = int(rng.integers(0, min(a.freq_mask, K) + 1))
            f0 = int(rng.integers(0, K - w + 1))
            bands[:, f0 : f0 + w] = self.mean[f0 : f0 + w]
        x[:, :K] = bands
        if self.deltas:
            x[:, K:] = deltas(bands)
        return (x - self.mean) / self.sd
