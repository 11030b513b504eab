"""Frames: inputs that are vectors per step rather than tokens, in one room.

audio.py    recordings: WAV read by the standard library, log-mel features (equal to librosa's)
records.py  frames in data and in predict's input: a record's "frames", "features" (.npy) or
            "audio" field, checked and read; the normalisation statistics of a training split
"""
