"""The server's limits, and the guard that holds requests to the ones HTTP itself must enforce:
a body's size (413) and how long a client may take to send it (408). Headers that trickle in are
timed out by the connection itself (app.py's protocol), before any route runs."""

import asyncio
import json
import typing


class Limits(typing.NamedTuple):
    """What one request may ask for, and how long a client may take; `serve`'s options set them."""

    max_body: int = 4 * 1024 * 1024  # bytes of a request body (a WAV of about two minutes at 16 kHz)
    max_inputs: int = 256  # inputs in one /v1/predict request
    max_input_tokens: int = 2000  # tokens (or frames) of one input
    max_seconds: float = 60.0  # seconds of one audio input
    max_tokens: int = 2000  # tokens one sample may generate
    max_n: int = 16  # samples in one /v1/generate request
    max_beam: int = 16
    header_timeout: float = 10.0  # seconds to send a request's headers
    body_timeout: float = 30.0  # seconds to send its body
    max_batch: int = 64  # inputs the micro-batcher answers at once
    max_wait: float = 0.002  # seconds a request waits for others to share its batch


def body_guard(app, limits):
    """ASGI middleware: the body is read here first, whole, before any route sees it: over
    limits.max_body bytes (by its Content-Length, or as its chunks arrive) is a 413, not complete
    within limits.body_timeout seconds a 408. The route then reads it from memory, and `receive`
    is the server's own again (a stream waits on it to learn that the client has left)."""

    async def guarded(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limits.max_body):
            return await _refuse(send, 413, f"a request body of at most {limits.max_body:,} bytes")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limits.body_timeout
        body = bytearray()
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.001))
            except TimeoutError:
                return await _refuse(send, 408, f"the request body within {limits.body_timeout:g} s")
            if message["type"] != "http.request":  # the client left
                return None
            body += message.get("body", b"")
            if len(body) > limits.max_body:
                return await _refuse(send, 413, f"a request body of at most {limits.max_body:,} bytes")
            if not message.get("more_body", False):
                break
        given = False

        async def replayed():
            nonlocal given
            if given:
                return await receive()
            given = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await app(scope, replayed, send)

    return guarded


async def _refuse(send, status, what):
    body = json.dumps({"error": f"this server takes {what}"}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
