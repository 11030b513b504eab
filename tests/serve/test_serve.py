"""rnncli serve answers as the CLI answers (issue 46): for every task, the same input, options and
seed give the record `predict --json` or `sample --json` writes, over real HTTP to a real server
process. Streams, micro-batching, the page's own route and a graceful stop are checked here too."""

import concurrent.futures
import json
import math
import signal
import socket
import time

import pytest
from cli_runner import main_in_process, run
from serving import TOKEN, Server, b64

TEXTS = {
    "cls": ["a warm and funny film", "dull , long and tired", "the cast is wonderful", "i did not like it at all"],
    "hostile": ["a warm and funny film", "dull"],
    "ner": ["John Smith lives in Paris", "the bank of England", "Obama"],
    "reg": ["AGATTTTCATATTATGCAGAAAATTATATTCG", "CACCTGGTGATCCTATGCTTGTGAGTACCCAG", "ACGT"],
    "mt": ["4.3.2031", "2033.07.20", "13.2.2041", "march 3 2001"],
}


def cli_json(zoo, *args, stdin=None):
    return [json.loads(line) for line in run(*args, cwd=zoo["folder"], stdin=stdin).splitlines() if line.strip()]


def post(server, path, body, token=TOKEN):
    with server.client(token) as c:
        return c.post(path, json=body)


def answers_of(server, body):
    r = post(server, "/v1/predict", body)
    assert r.status_code == 200, r.text
    return r.json()["answers"]


@pytest.mark.parametrize("name", ["cls", "hostile", "ner", "reg"])
def test_labelling_models_answer_as_predict_json(zoo, server, name):
    expected = cli_json(zoo, "predict", "-m", zoo[name], "--json", stdin="\n".join(TEXTS[name]) + "\n")
    assert answers_of(server, {"model": name, "inputs": TEXTS[name]}) == expected


def test_a_tagger_reads_a_list_of_tokens_as_a_sentence(zoo, server):
    expected = cli_json(zoo, "predict", "-m", zoo["ner"], "--json", "-f", "jsonl",
                        stdin=json.dumps({"tokens": ["New", "York", "is", "big"]}) + "\n")
    assert answers_of(server, {"model": "ner", "inputs": [["New", "York", "is", "big"]]}) == expected


@pytest.mark.parametrize("options,flags", [
    ({}, []),
    ({"beam": 3, "n_best": 2}, ["--beam", "3", "--n-best", "2"]),
    ({"temperature": 0.9, "top_k": 4, "seed": 5}, ["--temp", "0.9", "--top-k", "4", "--seed", "5"]),
], ids=["model's-own", "beam-n-best", "seeded-sampling"])
def test_translations_answer_as_predict_json(zoo, server, options, flags):
    expected = cli_json(zoo, "predict", "-m", zoo["mt"], "--json", *flags, stdin="\n".join(TEXTS["mt"]) + "\n")
    assert answers_of(server, {"model": "mt", "inputs": TEXTS["mt"], **options}) == expected


@pytest.mark.parametrize("name", ["speech", "sounds"])
def test_recordings_answer_as_predict_json(zoo, server, name):
    wavs = [zoo["folder"] / "wav" / f"{k}.wav" for k in (0, 1, 5)]
    expected = cli_json(zoo, "predict", "-m", zoo[name], "--json", stdin="".join(f"{p}\n" for p in wavs))
    got = answers_of(server, {"model": name, "inputs": [{"audio": b64(p.read_bytes())} for p in wavs]})
    for g, e in zip(got, expected, strict=True):
        g.pop("source", None), e.pop("source", None)  # the file's name on the command line, inputs[k] here
    assert got == expected


def test_images_answer_as_predict_json(zoo, server):
    pngs = [zoo["folder"] / "img" / f"{k}.png" for k in (0, 1, 3)]
    expected = cli_json(zoo, "predict", "-m", zoo["captioner"], "--json", stdin="".join(f"{p}\n" for p in pngs))
    pixels = [[[255, 255, 0, 0], [255, 255, 0, 0], [0, 0, 255, 255], [0, 0, 255, 255]]]  # image 3, as rows
    got = answers_of(server, {"model": "captioner", "inputs": [{"image": b64(p.read_bytes())} for p in pngs]
                              + [{"pixels": pixels[0]}]})
    for g, e in zip(got, [*expected, expected[2]], strict=True):
        g.pop("source", None), e.pop("source", None)
        assert g == e


def test_frames_answer_as_predict_json(zoo, server):
    records = [json.loads(line) for line in (zoo["folder"] / "frames.jsonl").read_text().splitlines()[:5]]
    stdin = "".join(json.dumps({"frames": r["frames"]}) + "\n" for r in records)
    expected = cli_json(zoo, "predict", "-m", zoo["frames"], "--json", "-f", "jsonl", stdin=stdin)
    assert answers_of(server, {"model": "frames", "inputs": [{"frames": r["frames"]} for r in records]}) == expected


def events(response):
    """The server-sent events of a streamed answer -> [(event name, data)]."""
    out, name = [], "token"
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            out.append((name, json.loads(line[len("data: "):])))
            name = "token"
    return out


@pytest.mark.parametrize("name,options,flags", [
    ("lm", {"prime": "Th", "temperature": 0.9, "top_k": 5}, ["--prime", "Th", "--temp", "0.9", "--top-k", "5"]),
    ("lm", {"temperature": 0.0}, ["--greedy"]),
    ("lm", {"prime": "A", "top_p": 0.8}, ["--prime", "A", "--top-p", "0.8"]),
    ("clm", {"label": "b", "temperature": 0.7}, ["--label", "b", "--temp", "0.7"]),
    ("clm", {"label": "*"}, ["--label", "*"]),
], ids=["lm-top-k", "lm-greedy", "lm-top-p", "clm-label", "clm-any-label"])
def test_generation_streamed_or_not_equals_sample_json(zoo, server, name, options, flags):
    expected = cli_json(zoo, "sample", "-m", zoo[name], "-n", "3", "--seed", "11", "--max-len", "60", "--json",
                        *flags)
    body = {"model": name, "n": 3, "seed": 11, "max_tokens": 60, **options}
    r = post(server, "/v1/generate", body)
    assert r.status_code == 200, r.text
    whole = r.json()["samples"]
    assert [{k: s[k] for k in ("label", "prime", "text")} for s in whole] == expected
    with server.client() as c, c.stream("POST", "/v1/generate", json={**body, "stream": True}) as streamed:
        assert streamed.status_code == 200
        assert streamed.headers["content-type"].startswith("text/event-stream")
        seen = events(streamed)
    ends = [data for kind, data in seen if kind == "end"]
    assert [{k: e[k] for k in ("label", "prime", "text")} for e in ends] == expected
    assert seen[-1] == ("done", {"samples": 3})
    for k, end in enumerate(ends):  # the tokens as they came, one event each, add up to the text
        tokens = [d for kind, d in seen if kind == "token" and d["sample"] == k]
        assert end["prime"] + "".join(t["token"] for t in tokens) == end["text"]
        assert len(tokens) == end["tokens"] and end["stop"] == ("max_tokens" if len(tokens) == 60 else "eos")
        assert all(0 < t["p"] <= 1 for t in tokens)


def test_concurrent_requests_share_batches_and_keep_their_answers(zoo, server):
    texts = [f"{w} film , {k} times" for k, w in enumerate(["warm", "dull", "funny", "long", "bright", "tired"] * 5)]
    alone = {t: answers_of(server, {"model": "cls", "inputs": [t]})[0] for t in texts[:6]}
    with server.client() as c:
        before = c.get("/health").json()["batches"]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda t: answers_of(server, {"model": "cls", "inputs": [t]})[0], texts))
    with server.client() as c:
        batches = c.get("/health").json()["batches"] - before
    assert batches < len(texts), "every request was answered alone"
    for t, answer in zip(texts, got, strict=True):
        if t in alone:  # the same answer in a shared batch as alone, to float32's rounding: a matrix product
            # of other rows rounds differently (so does `predict`'s for a line among other lines)
            assert answer["label"] == alone[t]["label"]
            assert all(math.isclose(answer["probabilities"][n], p, rel_tol=1e-6)
                       for n, p in alone[t]["probabilities"].items())
    expected = cli_json(zoo, "predict", "-m", zoo["cls"], "--json", stdin="\n".join(texts) + "\n")
    assert [a["label"] for a in got] == [e["label"] for e in expected]


def test_models_health_docs_and_page(server):
    with server.client(token=None) as c:
        assert c.get("/health").json()["status"] == "ok"  # no token needed
        page = c.get("/")
        assert page.status_code == 200 and "<title>rnncli serve</title>" in page.text
        assert "http://" not in page.text and "https://" not in page.text  # nothing fetched from outside
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert c.get("/docs").status_code == 200
        assert "/v1/predict" in c.get("/openapi.json").json()["paths"]
    with server.client() as c:
        models = {m["name"]: m for m in c.get("/v1/models").json()["models"]}
    assert models["cls"]["task"] == "classify" and models["cls"]["labels"] == ["negative", "positive"]
    assert models["ner"]["tags"][0].startswith(("B-", "I-", "O"))
    assert models["lm"]["kind"] == "generate" and models["clm"]["labels"] == ["a", "b"]
    assert models["speech"]["input"] == "audio or frames" and models["speech"]["audio"]["sample_rate"] == 8000
    assert models["mt"]["decoding"] == {"beam": 0, "length_penalty": 0.0}
    assert models["captioner"]["input"] == "image" and models["captioner"]["image"] == {"height": 4, "width": 4,
                                                                                       "channels": 1}


def test_show_gives_the_page_of_show_minus_o(zoo, server):
    r = post(server, "/v1/show", {"model": "mt", "input": "4.3.2031"})
    assert r.status_code == 200, r.text
    run("show", "-m", zoo["mt"], "4.3.2031", "-o", "mt_page.html", cwd=zoo["folder"])
    assert r.json()["page"] == (zoo["folder"] / "mt_page.html").read_text(encoding="utf-8").replace(
        str(zoo["mt"]), "mt")
    wav = zoo["folder"] / "wav" / "3.wav"
    r = post(server, "/v1/show", {"model": "speech", "input": {"audio": b64(wav.read_bytes())}})
    assert r.status_code == 200, r.text
    assert "<svg" in r.json()["page"]


def test_a_client_that_leaves_mid_stream_stops_its_generation(server):
    body = {"model": "lm", "max_tokens": 2000, "temperature": 1.0, "stream": True}
    with server.client() as c:
        with c.stream("POST", "/v1/generate", json=body) as r:
            lines = r.iter_lines()
            while not next(lines).startswith("data: "):
                pass
        # the connection is closed: the server notices and generates no more for it
        for _ in range(100):
            health = c.get("/health").json()
            if health["streams"] == 0:
                break
            time.sleep(0.05)
        assert health["streams"] == 0
        tokens = c.get("/health").json()["tokens"]
        time.sleep(0.5)
        assert c.get("/health").json()["tokens"] == tokens


def test_slow_clients_time_out_and_hold_up_no_one(server):
    trickle = socket.create_connection(("127.0.0.1", server.port))
    trickle.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\n")  # and then nothing: headers never end
    slow_body = socket.create_connection(("127.0.0.1", server.port))
    slow_body.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n\r\n{\"model\"")
    started = time.monotonic()
    assert answers_of(server, {"model": "cls", "inputs": ["fine"]})  # others are served meanwhile
    assert time.monotonic() - started < 1.0
    trickle.settimeout(10)
    slow_body.settimeout(10)
    assert trickle.recv(1000) == b""  # closed by the server after --header-timeout 1
    answer = slow_body.recv(1000)
    assert answer.startswith(b"HTTP/1.1 408") and b"within 1 s" in answer
    assert time.monotonic() - started < 8
    trickle.close()
    slow_body.close()


def test_sigterm_and_ctrl_c_finish_the_requests_in_flight_and_exit_0(zoo):
    for sig in (signal.SIGTERM, signal.SIGINT):
        s = Server(["-m", str(zoo["lm"])], cwd=zoo["folder"])
        with s.client() as c, c.stream("POST", "/v1/generate", json={"model": "lm", "max_tokens": 300, "seed": 1,
                                                                       "stream": True}) as r:
            lines = r.iter_lines()
            next(lines)
            s.process.send_signal(sig)
            rest = list(lines)  # the stream in flight goes on to its end
        assert any(line.startswith("event: done") for line in rest), rest[-3:]
        code, err = s.stop(None)
        assert code == 0, err
        assert "stopped" in err
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", s.port), timeout=2)


def test_serve_without_its_extra_is_one_line_naming_it(zoo):
    import subprocess
    import sys

    code = ("import sys; sys.modules['fastapi'] = None; sys.argv = ['rnncli', 'serve', '-m', 'cls.npz']; "
            "from rnncli.cli import main; main()")
    r = subprocess.run([sys.executable, "-c", code], cwd=zoo["folder"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "pip install 'rnncli[serve]'" in r.stderr


def test_serve_needs_no_network_and_refuses_a_taken_port(zoo, server):
    r = main_in_process("serve", "-m", zoo["cls"], "--port", str(server.port), cwd=zoo["folder"])
    assert r.returncode == 2 and f"cannot listen on 127.0.0.1:{server.port}" in r.stderr, r.stderr
