"""What the serve tests share (conftest.py makes fixtures of it): a zoo of small models of every
task and input kind, and a real `rnncli serve` process (on 127.0.0.1, a free port) that the tests
talk to over HTTP."""

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
import wave

import numpy as np
import pytest
from cli_runner import run

SAMPLES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "sample_data"))
TOKEN = "a-test-token-of-ours"
TINY = ["--hidden", "8", "--embed", "6", "--layers", "1", "--batch-size", "8", "--quiet"]
HOSTILE = ['<img src=x onerror="document.title=\'pwned\'">', "<b>bold</b>&amp;"]


def wav_bytes(samples, rate=8000):
    import io

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def write_png(path, pixels):
    """An 8-bit grey PNG of (H, W) uint8 pixels (rows unfiltered)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)
    head = struct.pack(">IIBBBBB", pixels.shape[1], pixels.shape[0], 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))


def tone(k, seconds=0.25):
    t = np.arange(int(8000 * seconds)) / 8000
    return 0.5 * np.sin(2 * np.pi * (400 if k % 2 else 900) * t)


def b64(raw):
    return base64.b64encode(raw).decode()


@pytest.fixture(scope="session")
def zoo(tmp_path_factory):
    """{name: path} of small trained models: every task, text and audio and frames, and a classifier
    whose labels are markup."""
    d = tmp_path_factory.mktemp("served")
    rng = np.random.default_rng(0)
    (d / "wav").mkdir()
    for k in range(16):
        (d / "wav" / f"{k}.wav").write_bytes(wav_bytes(tone(k, rng.uniform(0.15, 0.3))))
    (d / "speech.jsonl").write_text("".join(json.dumps({"audio": f"wav/{k}.wav", "text": ["low", "high"][k % 2]})
                                            + "\n" for k in range(16)))
    (d / "sounds.jsonl").write_text("".join(json.dumps({"audio": f"wav/{k}.wav", "label": "ab"[k % 2]}) + "\n"
                                            for k in range(16)))
    frames = [rng.normal(size=(int(rng.integers(4, 9)), 3)).round(3) for _ in range(40)]
    (d / "frames.jsonl").write_text("".join(json.dumps({"frames": x.tolist(), "label": "ab"[k % 2]}) + "\n"
                                            for k, x in enumerate(frames)))
    reviews = open(f"{SAMPLES}/reviews.tsv", encoding="utf-8").read().splitlines()
    (d / "hostile.tsv").write_text("".join(f"{HOSTILE[k % 2]}\t{line.split(chr(9))[1]}\n"
                                           for k, line in enumerate(reviews[:120])))
    (d / "tunes.jsonl").write_text("".join(json.dumps({"label": "ab"[k % 2], "text": line.split("\t")[1]}) + "\n"
                                           for k, line in enumerate(reviews[:200])))
    (d / "dates.tsv").write_text("".join(open(f"{SAMPLES}/dates.tsv", encoding="utf-8").readlines()[:400]))
    (d / "img").mkdir()
    for k in range(24):  # 4 x 4 grey images of a bright corner or two, captioned by where
        pixels = np.zeros((4, 4), np.uint8)
        pixels[:2, :2] = 255 * (k % 2)
        pixels[2:, 2:] = 255 * (k % 3 == 0)
        write_png(d / "img" / f"{k}.png", pixels)
    (d / "images.jsonl").write_text("".join(json.dumps(
        {"image": f"img/{k}.png", "text": " and ".join(w for w, on in (("dot top left", k % 2), ("dot bottom right",
                                                                      k % 3 == 0)) if on) or "nothing here"}) + "\n"
        for k in range(24)))
    made = {}
    for name, raw, extra in (("cls", f"{SAMPLES}/reviews.tsv", []), ("ner", f"{SAMPLES}/ner.conll", []),
                             ("reg", f"{SAMPLES}/scores.jsonl", ["--level", "char"]), ("mt", "dates.tsv", []),
                             ("lm", f"{SAMPLES}/corpus.txt", []), ("clm", "tunes.jsonl", []),
                             ("speech", "speech.jsonl", ["--target-level", "char"]), ("sounds", "sounds.jsonl", []),
                             ("frames", "frames.jsonl", []), ("hostile", "hostile.tsv", []),
                             ("captioner", "images.jsonl", ["--target-level", "word"])):
        run("tokenize", raw, "-o", f"{name}_data.npz", *extra, "--quiet", cwd=d)
        task = ["--task", "lm"] if name == "clm" else ["--attention", "general"] if name in ("mt", "speech") else []
        steps = "40" if name in ("cls", "lm", "clm") else "6"
        run("train", "-d", f"{name}_data.npz", "-o", f"{name}.npz", "--max-steps", steps, *TINY, *task, cwd=d)
        made[name] = d / f"{name}.npz"
    made["folder"] = d
    return made


class Server:
    """A running `rnncli serve` process; talks to it with httpx."""

    def __init__(self, args, cwd, env=None):
        self.process = subprocess.Popen([sys.executable, "-m", "rnncli", "serve", "--port", "0", *args], cwd=cwd,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, **(env or {})})
        self.lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line:
                break
            self.lines.append(line)
            found = re.search(r"on http://127\.0\.0\.1:(\d+)", line)
            if found:
                self.port = int(found.group(1))
                self.url = f"http://127.0.0.1:{self.port}"
                return
        self.process.kill()
        raise AssertionError("the server did not start: " + "".join(self.lines) + self.process.stderr.read())

    def client(self, token=TOKEN, timeout=60):
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """-> (exit code, all of stderr); sig None: wait for the process to end by itself."""
        if sig is not None:
            self.process.send_signal(sig)
        try:
            _, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        return self.process.returncode, "".join(self.lines) + err

    def rss_mb(self):
        with open(f"/proc/{self.process.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


SERVED = ("cls", "ner", "reg", "mt", "lm", "clm", "speech", "sounds", "frames", "hostile", "captioner")


@pytest.fixture(scope="session")
def server(zoo):
    """One server with every model of the zoo, a token, and short timeouts (1 s) to test them."""
    args = [a for name in SERVED for a in ("-m", f"{name}={zoo[name]}")]
    s = Server([*args, "--token", TOKEN, "--header-timeout", "1", "--body-timeout", "1", "--max-body", "300000",
                "--max-seconds", "2"], cwd=zoo["folder"])
    yield s
    code, err = s.stop()
    assert code == 0, err
