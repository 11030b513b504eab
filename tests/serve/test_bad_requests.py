"""The bad-input table of `rnncli serve` (cli/test_hardening.py holds the command line's, and the
serve command's own options): each bad request gets its status and one JSON line naming the field
and the limit, and the server stays up for the next one."""

import pytest
from serving import TOKEN, b64, tone, wav_bytes

WAV = b64(wav_bytes(tone(1)))
TRUNCATED_WAV = b64(wav_bytes(tone(1))[:30])
LONG_WAV = b64(wav_bytes(tone(1, seconds=3.0)))  # the server under test allows 2 s
FAST_WAV = b64(wav_bytes(tone(1), rate=16000))  # the model's recordings are 8,000 Hz
LONG_TEXT = " ".join(["word"] * 2001)

# (case id, path, body: a JSON value or raw bytes, token, status, part of the error line)
REQUESTS = [
    ("oversized body", "/v1/predict", b'{"model": "cls", "inputs": ["' + b"a" * 300_001 + b'"]}', TOKEN, 413,
     "at most 300,000 bytes"),
    ("malformed JSON", "/v1/predict", b'{"model": "cls", "inputs": [', TOKEN, 400, "the body is not valid JSON"),
    ("JSON not an object", "/v1/predict", [1, 2], TOKEN, 422, "body: Input should be a valid dictionary"),
    ("no token", "/v1/predict", {"model": "cls", "inputs": ["a"]}, None, 401, "a valid token is needed"),
    ("wrong token", "/v1/predict", {"model": "cls", "inputs": ["a"]}, "not-the-token", 401, "a valid token"),
    ("no token to list models", "/v1/models", None, None, 401, "a valid token is needed"),
    ("unknown model", "/v1/predict", {"model": "nope", "inputs": ["a"]}, TOKEN, 404, "no model named 'nope'"),
    ("unknown field", "/v1/predict", {"model": "cls", "inputs": ["a"], "beams": 3}, TOKEN, 422,
     "beams: Extra inputs are not permitted"),
    ("no inputs", "/v1/predict", {"model": "cls", "inputs": []}, TOKEN, 422, "inputs: give at least one input"),
    ("too many inputs", "/v1/predict", {"model": "cls", "inputs": ["a"] * 257}, TOKEN, 422,
     "inputs: 257 inputs; at most 256"),
    ("empty input", "/v1/predict", {"model": "cls", "inputs": ["fine", "  "]}, TOKEN, 422, "inputs[1]: is empty"),
    ("input too long", "/v1/predict", {"model": "cls", "inputs": [LONG_TEXT]}, TOKEN, 422,
     "inputs[0]: 2,001 tokens; at most 2,000"),
    ("object to a text model", "/v1/predict", {"model": "cls", "inputs": [{"audio": WAV}]}, TOKEN, 422,
     "inputs[0]: a classify model reads text"),
    ("bad token list", "/v1/predict", {"model": "ner", "inputs": [["two words"]]}, TOKEN, 422,
     "inputs[0]: a list of tokens must hold non-empty strings"),
    ("text to a speech model", "/v1/predict", {"model": "speech", "inputs": ["hello"]}, TOKEN, 422,
     "inputs[0]: this model reads audio or frames"),
    ("a WAV that is not one", "/v1/predict", {"model": "speech", "inputs": [{"audio": b64(b"hello there!")}]},
     TOKEN, 422, "inputs[0].audio: is not a WAV file"),
    ("audio not base64", "/v1/predict", {"model": "speech", "inputs": [{"audio": "%%%"}]}, TOKEN, 422,
     "inputs[0].audio: is not base64"),
    ("truncated WAV", "/v1/predict", {"model": "sounds", "inputs": [{"audio": TRUNCATED_WAV}]}, TOKEN, 422,
     "inputs[0]"),
    ("WAV of another rate", "/v1/predict", {"model": "speech", "inputs": [{"audio": FAST_WAV}]}, TOKEN, 422,
     "16,000 Hz, but this data's (and model's) recordings are 8,000 Hz"),
    ("too many seconds", "/v1/predict", {"model": "speech", "inputs": [{"audio": LONG_WAV}]}, TOKEN, 422,
     "inputs[0].audio: 3.0 s of audio; at most 2 s"),
    ("audio to a frames model", "/v1/predict", {"model": "frames", "inputs": [{"audio": WAV}]}, TOKEN, 422,
     "inputs[0]: this model reads frames (not 'audio'): give {\"frames\": [[...]]}"),
    ("frames of another size", "/v1/predict", {"model": "frames", "inputs": [{"frames": [[1, 2]]}]}, TOKEN, 422,
     "inputs[0]: frames of 2 numbers; the model reads 3"),
    ("NaN frames", "/v1/predict", b'{"model": "frames", "inputs": [{"frames": [[1, NaN, 2]]}]}', TOKEN, 422,
     "the frames hold NaN"),
    ("text to an image model", "/v1/predict", {"model": "captioner", "inputs": ["a picture"]}, TOKEN, 422,
     "inputs[0]: this model reads image or pixels: give"),
    ("an image that is not one", "/v1/predict", {"model": "captioner", "inputs": [{"image": b64(b"GIF89a...")}]},
     TOKEN, 422, "not a PNG, PGM or PPM image"),
    ("an image of another size", "/v1/predict", {"model": "captioner", "inputs": [{"pixels": [[0, 255]]}]}, TOKEN,
     422, "an image of 1 x 2 grey pixels; this data's (and model's) images are 4 x 4 grey"),
    ("frames beyond float32", "/v1/predict", {"model": "frames", "inputs": [{"frames": [[1e300, 1, 2]]}]}, TOKEN,
     422, "the frames hold numbers beyond float32's range"),
    ("ragged frames", "/v1/predict", {"model": "frames", "inputs": [{"frames": [[1, 2, 3], [1]]}]}, TOKEN, 422,
     "frame 1 has 1 numbers where frame 0 has 3"),
    ("source over the model's limit", "/v1/predict", {"model": "mt", "inputs": [" ".join(["1.2.2000"] * 40)]},
     TOKEN, 422, "longer than this model's limit"),
    ("beam too wide", "/v1/predict", {"model": "mt", "inputs": ["1.2.2000"], "beam": 1000}, TOKEN, 422,
     "beam: 1,000 is wider than this server's limit of 16"),
    ("negative beam", "/v1/predict", {"model": "mt", "inputs": ["1.2.2000"], "beam": -1}, TOKEN, 422,
     "beam: Input should be greater than or equal to 0"),
    ("n_best over the beam", "/v1/predict", {"model": "mt", "inputs": ["1.2.2000"], "beam": 2, "n_best": 3},
     TOKEN, 422, "n_best: 3 is more than the beam (2) keeps"),
    ("beam and temperature", "/v1/predict", {"model": "mt", "inputs": ["1.2.2000"], "beam": 2,
                                             "temperature": 0.5}, TOKEN, 422, "beam and temperature exclude"),
    ("predict with a language model", "/v1/predict", {"model": "lm", "inputs": ["a"]}, TOKEN, 422,
     "'lm' is a language model; it does not label input"),
    ("generate with a classifier", "/v1/generate", {"model": "cls"}, TOKEN, 422,
     "'cls' is a classify model; it does not generate"),
    ("temperature below 0", "/v1/generate", {"model": "lm", "temperature": -1}, TOKEN, 422,
     "temperature: Input should be greater than or equal to 0"),
    ("top_p above 1", "/v1/generate", {"model": "lm", "top_p": 1.5}, TOKEN, 422, "top_p: Input should be less"),
    ("top_k of 0", "/v1/generate", {"model": "lm", "top_k": 0}, TOKEN, 422, "top_k: Input should be greater"),
    ("max_tokens over the limit", "/v1/generate", {"model": "lm", "max_tokens": 5000}, TOKEN, 422,
     "max_tokens: 5,000; at most 2,000"),
    ("n over the limit", "/v1/generate", {"model": "lm", "n": 100}, TOKEN, 422, "n: 100; at most 16"),
    ("label of an unconditional model", "/v1/generate", {"model": "lm", "label": "a"}, TOKEN, 422,
     "lm: label needs a conditional language model"),
    ("no label for a conditional model", "/v1/generate", {"model": "clm"}, TOKEN, 422, "is conditional: choose"),
    ("unknown label", "/v1/generate", {"model": "clm", "label": "c"}, TOKEN, 422, "unknown label 'c'"),
    ("guidance without label dropout", "/v1/generate", {"model": "clm", "label": "a", "guidance": 2}, TOKEN, 422,
     "guidance: needs a conditional language model trained with --label-dropout"),
    ("show a recording as text", "/v1/show", {"model": "speech", "input": "hello"}, TOKEN, 422,
     "input: give the recording"),
]


@pytest.mark.parametrize("case,path,body,token,status,message", REQUESTS, ids=[r[0] for r in REQUESTS])
def test_bad_request_gets_its_status_and_one_line(server, case, path, body, token, status, message):
    with server.client(token) as c:
        if body is None:
            r = c.get(path)
        elif isinstance(body, bytes):
            r = c.post(path, content=body, headers={"Content-Type": "application/json"})
        else:
            r = c.post(path, json=body)
        assert r.status_code == status, r.text
        error = r.json()["error"]
        assert message in error and "\n" not in error and "Traceback" not in error, error
        if status == 401:
            assert r.headers["www-authenticate"] == "Bearer"
        assert c.get("/health").status_code == 200  # and the server is still there for the next

