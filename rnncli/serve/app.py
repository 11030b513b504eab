"""The HTTP app: routes that check a request, hand its work to serve/answers.py (through the
micro-batcher for /v1/predict) and write the answer as JSON, or as server-sent events for a
streamed /v1/generate. Every refusal is one JSON line, {"error": "field: reason"}, with its status:
400 malformed JSON, 401 a missing or wrong token, 404 an unknown model, 408 a body too slow,
413 a body too large, 422 a request that is well-formed but cannot be answered."""

import asyncio
import base64
import concurrent.futures
import hmac
import json
import os
import tempfile
from importlib import resources
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from rnncli.errors import RnncliError
from rnncli.serve import answers
from rnncli.serve.answers import Problem
from rnncli.serve.batcher import MicroBatcher
from rnncli.serve.limits import Limits, body_guard
from rnncli.serve.models import describe

Input = str | list[str] | dict


class PredictBody(BaseModel):
    """POST /v1/predict: the inputs (text, a tagger's list of tokens, or for a model of frames
    {"audio": base64 WAV}, {"image": base64 PNG}, {"frames": [[...]]} or {"pixels": [[...]]}) and an
    encoder-decoder's decoding options."""

    model_config = ConfigDict(extra="forbid")
    model: str
    inputs: list[Input]
    beam: Annotated[int | None, Field(ge=0)] = None
    length_penalty: Annotated[float | None, Field(ge=0, le=10, allow_inf_nan=False)] = None
    n_best: Annotated[int, Field(ge=1)] = 1
    temperature: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] = 0.0
    top_k: Annotated[int | None, Field(ge=1)] = None
    top_p: Annotated[float | None, Field(gt=0, le=1)] = None
    seed: Annotated[int | None, Field(ge=0, lt=2**63)] = None


class GenerateBody(BaseModel):
    """POST /v1/generate: `sample`'s options under their request names."""

    model_config = ConfigDict(extra="forbid")
    model: str
    prime: str = ""
    label: str | list[str] | None = None
    temperature: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] = 1.0
    top_k: Annotated[int | None, Field(ge=1)] = None
    top_p: Annotated[float | None, Field(gt=0, le=1)] = None
    guidance: Annotated[float | None, Field(ge=0, le=100, allow_inf_nan=False)] = None
    max_tokens: Annotated[int, Field(ge=1)] = 200
    seed: Annotated[int | None, Field(ge=0, lt=2**63)] = None
    n: Annotated[int, Field(ge=1)] = 1
    stream: bool = False


class ShowBody(BaseModel):
    """POST /v1/show: the page `rnncli show -o` would write for this input."""

    model_config = ConfigDict(extra="forbid")
    model: str
    input: Input


class State:
    """What the running app keeps: the models, the limits, the batcher, the threads that step the
    streams, and counters GET /health reports."""

    def __init__(self, served, limits, token):
        self.served, self.limits, self.token = served, limits, token
        self.batcher = MicroBatcher(answers.answer, limits.max_batch, limits.max_wait)
        self.steps = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="rnncli-stream")
        self.streams = 0  # streams being generated now
        self.tokens = 0  # tokens generated since start

    async def run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.steps, fn, *args)


def build_app(served, limits=Limits(), token=None):
    """The ASGI app for {name: Served} models (serve/models.py): its error answers, its routes, and the
    guards around it (the body's size and time, JSON whatever the Content-Type says)."""
    state = State(served, limits, token)
    app = FastAPI(title="rnncli serve", description="Recurrent networks from NumPy, behind HTTP.",
                  version=_version())
    app.state.rnncli = state
    for kind, handler in ERROR_ANSWERS.items():
        app.add_exception_handler(kind, handler)
    _pages(app, state)
    _api(app, state)
    app.router.add_event_handler("shutdown", lambda: (state.batcher.close(), state.steps.shutdown(wait=False)))
    return body_guard(_json_by_default(app), limits)


async def _problem(request, e):
    return JSONResponse({"error": str(e), "field": e.field}, e.status,
                        headers={"WWW-Authenticate": "Bearer"} if e.status == 401 else None)


async def _invalid(request, e):
    """FastAPI's validation errors as ours: 400 for a body that is not JSON, else 422 naming the field."""
    errors = e.errors()
    bad_json = next((x for x in errors if x.get("type") == "json_invalid"), None)
    if bad_json is not None:
        reason = (bad_json.get("ctx") or {}).get("error", "not JSON")
        return JSONResponse({"error": f"the body is not valid JSON: {reason}", "field": None}, 400)
    first = errors[0]
    field = ".".join(str(p) for p in first.get("loc", ())[1:]) or "body"
    return JSONResponse({"error": f"{field}: {first.get('msg', 'invalid')}", "field": field}, 422)


async def _refused(request, e):
    return JSONResponse({"error": str(e), "field": None}, 422)


async def _failed(request, e):  # the server stays up; the request gets one line
    return JSONResponse({"error": f"internal error: {type(e).__name__}: {e}"}, 500)


ERROR_ANSWERS = {Problem: _problem, RequestValidationError: _invalid, RnncliError: _refused, Exception: _failed}
PAGE_POLICY = ("default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
               "frame-src 'self'")


def _pages(app, state):
    """What needs no token: the playground and the health check."""

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page():
        return HTMLResponse(resources.files("rnncli.serve").joinpath("page.html").read_text(encoding="utf-8"),
                            headers={"Content-Security-Policy": PAGE_POLICY})

    @app.get("/health")
    def health():
        return {"status": "ok", "models": len(state.served), "token": state.token is not None,
                "streams": state.streams, "batches": state.batcher.batches, "tokens": state.tokens}


def _api(app, state):
    """The /v1/ routes, each behind the token when the server has one."""
    served, limits = state.served, state.limits

    def authorised(request: Request):
        if state.token is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {state.token}".encode()):
            raise Problem(None, "a valid token is needed: Authorization: Bearer <token>", 401)

    guarded = [Depends(authorised)]

    @app.get("/v1/models", dependencies=guarded)
    def models():
        return {"models": [describe(s) for s in served.values()]}

    @app.post("/v1/predict", dependencies=guarded)
    async def predict(body: PredictBody):
        s = answers.model_named(served, body.model, "predict")
        if s.reads_frames:  # reading a recording takes milliseconds: off the event loop
            job = await state.run(answers.prepare_predict, s, body.model_dump(), limits)
        else:  # splitting text into words takes microseconds: a thread's hop would cost more
            job = answers.prepare_predict(s, body.model_dump(), limits)
        # a JSONResponse of our own: the answers are plain JSON already (FastAPI would walk them again)
        return JSONResponse({"model": s.name, "answers": await state.batcher.submit(job)})

    @app.post("/v1/generate", dependencies=guarded)
    async def generate(body: GenerateBody):
        s = answers.model_named(served, body.model, "generate")
        o = answers.prepare_generate(s, body.model_dump(), limits)
        if body.stream:
            return StreamingResponse(_events(state, s, o), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        return {"model": s.name, "samples": await state.run(_all_samples, state, s, o)}

    @app.post("/v1/show", dependencies=guarded)
    async def show(body: ShowBody):
        s = answers.model_named(served, body.model, "any")
        return await state.run(_picture, s, body.input, limits)


def _json_by_default(app):
    """A POST body is JSON whatever its Content-Type says, so that `curl -d '{...}'` (which says
    form data) works as written."""

    async def read_as_json(scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST":
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            scope = dict(scope, headers=[*headers, (b"content-type", b"application/json")])
        await app(scope, receive, send)

    return read_as_json


def _version():
    from rnncli import __version__

    return __version__


def _sample_record(label, prime, texts, count, max_len):
    return {"label": label, "prime": prime, "text": "".join(texts), "tokens": count,
            "stop": "max_tokens" if count >= max_len else "eos"}


def _all_samples(state, s, o):
    out = []
    for label, prime, pieces in answers.samples(s, o):
        texts, count = [], 0
        for text, p in pieces:
            texts.append(text)
            count += p is not None
        state.tokens += count
        out.append(_sample_record(label, prime, texts, count, o["max_len"]))
    return out


def _event(record, name=None):
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {json.dumps(record, ensure_ascii=False)}\n\n"


async def _events(state, s, o):
    """A streamed /v1/generate: an event per token ({"sample", "token", "p"}), an `end` event per
    sample with its whole text and stop reason, then `done`. A client that leaves cancels this
    generator (Starlette watches the connection), so no more tokens are computed for it."""
    state.streams += 1
    try:
        drawn = answers.samples(s, o)
        k = 0
        while (item := await state.run(next, drawn, None)) is not None:
            label, prime, pieces = item
            texts, count = [], 0
            while (piece := await state.run(next, pieces, None)) is not None:
                text, p = piece
                texts.append(text)
                if p is not None:
                    count += 1
                    state.tokens += 1
                    yield _event({"sample": k, "token": text, "p": round(p, 6)})
            yield _event({"sample": k, **_sample_record(label, prime, texts, count, o["max_len"])}, "end")
            k += 1
        yield _event({"samples": k}, "done")
    except RnncliError as e:  # the headers are out: the reason goes in the stream
        yield _event({"error": str(e)}, "error")
    finally:
        state.streams -= 1


def _picture(s, given, limits):
    """The show page of one input: text, or for a model of frames a recording or an image (base64)."""
    from rnncli.commands.show import picture_of

    if s.reads_frames:
        kind = "image" if "image" in s.meta["data"] else "audio"
        if not isinstance(given, dict) or not isinstance(given.get(kind), str) or len(given) != 1:
            raise Problem("input", f"give the {'image' if kind == 'image' else 'recording'} as "
                          f"{answers.FIELD_FORMS[kind]}")
        answers.prepare_predict(s, {"inputs": [given], **dict.fromkeys(answers.DECODING)}, limits)  # its limits
        raw = base64.b64decode(given[kind])
        suffix = ".wav" if kind == "audio" else ".png" if raw.startswith(b"\x89PNG") else (
            ".ppm" if raw[:2] in (b"P3", b"P6") else ".pgm")
        with tempfile.TemporaryDirectory(prefix="rnncli-serve-") as folder:
            path = os.path.join(folder, kind + suffix)
            with open(path, "wb") as f:
                f.write(raw)
            picture = picture_of(s.model, s.meta, s.name, path)
    else:
        if not isinstance(given, str) or not given.strip():
            raise Problem("input", "give the text to show")
        if len(given.split()) > limits.max_input_tokens or len(given) > 16 * limits.max_input_tokens:
            raise Problem("input", f"at most {limits.max_input_tokens:,} tokens")
        picture = picture_of(s.model, s.meta, s.name, given)
    return {"model": s.name, "numbers": picture.numbers, "page": picture.page}  # numbers: show --json's

