"""rnncli serve: load the models once, then answer HTTP requests until SIGTERM or Ctrl-C (the
optional `[serve]` extra: FastAPI on uvicorn). The app is serve/app.py; this module opens the
socket, times out connections whose headers trickle in, and stops gracefully: no new requests,
the ones in flight finished within a bounded time, exit 0."""

import contextlib
import ipaddress
import signal
import socket

from rnncli import console
from rnncli.errors import UsageError

SHUTDOWN_SECONDS = 10  # what a stop gives the requests in flight


def serve(specs, host="127.0.0.1", port=8000, token=None, limits=None):
    """Serve the -m models on host:port (port 0: a free one); returns when stopped."""
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError:
        raise UsageError("rnncli serve needs the serve extra: pip install 'rnncli[serve]'") from None
    from rnncli.serve.app import build_app
    from rnncli.serve.limits import Limits
    from rnncli.serve.models import load_served

    limits = limits or Limits()
    _check_limits(limits)
    if token is not None and len(token) < 8:
        raise UsageError("--token must be at least 8 characters")
    served = load_served(specs)
    sock = _listen(host, port)
    warning = exposure_warning(host, token)
    if warning:
        console.log(f"[yellow]warning:[/yellow] {warning}")
    app = build_app(served, limits, token)
    config = uvicorn.Config(app, log_level="warning", http=_protocol(limits.header_timeout), lifespan="on",
                            timeout_graceful_shutdown=SHUTDOWN_SECONDS, timeout_keep_alive=5, server_header=False)
    shown_host, shown_port = sock.getsockname()[:2]
    shown_host = f"[{shown_host}]" if ":" in shown_host else shown_host
    names = ", ".join(f"{s.name} ({s.meta['task']})" for s in served.values())
    ready = (f"rnncli serve: {names} on http://{shown_host}:{shown_port} (the page: /, the API: /docs); "
             "Ctrl-C stops")
    _server(config, ready).run(sockets=[sock])
    console.log("rnncli serve: stopped")


def _check_limits(limits):
    for name, value in limits._asdict().items():
        if name == "max_wait" and value < 0:
            raise UsageError(f"--max-wait-ms must be 0 or more, not {value * 1000:g}")
        if name != "max_wait" and not value > 0:
            raise UsageError(f"--{name.replace('_', '-')} must be positive, not {value}")


def exposure_warning(host, token):
    """What to say when other machines may reach the models with no token, else None."""
    if _loopback(host) or token is not None:
        return None
    return (f"serving on {host}, which other machines can reach, with no --token: anyone who can reach it "
            "can use these models")


def _loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen(host, port):
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be 0 (a free one) to 65535, not {port}")
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY on the accepted connections only then (else every answer
    # of a kept-alive connection waits ~40 ms for the client's delayed ACK)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(512)
    except OSError as e:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.set_inheritable(True)
    return sock


def _protocol(header_timeout):
    """uvicorn's HTTP protocol, with a clock on each request's headers: a client that has not sent
    a whole request head within header_timeout seconds of connecting (or of its last answer) is
    disconnected, so a slow or stalled client holds no more than its own socket."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol as Base

    class HeaderClock(Base):
        _timer = _cycle = None

        def connection_made(self, transport):
            super().connection_made(transport)
            self._arm()

        def _arm(self):
            self._cycle = self.cycle  # a new cycle is a new request whose headers are all in
            self._timer = self.loop.call_later(header_timeout, self._too_slow)

        def _disarm(self):
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def data_received(self, data):
            super().data_received(data)
            if self.cycle is not self._cycle:
                self._disarm()

        def on_response_complete(self):
            super().on_response_complete()
            self._disarm()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc):
            self._disarm()
            super().connection_lost(exc)

        def _too_slow(self):
            self._timer = None
            busy = self.cycle is not None and not self.cycle.response_complete
            if not busy and not self.transport.is_closing():
                self.transport.close()

    return HeaderClock


def _server(config, ready):
    """uvicorn's server, whose signals end the run with exit 0: SIGTERM and Ctrl-C stop it gracefully
    (a second Ctrl-C forces it), and nothing re-raises them afterwards. It says `ready` once it is:
    listening, with those signals in its hands."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):
            before = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in before.items():
                    signal.signal(sig, handler)

        async def startup(self, sockets=None):
            await super().startup(sockets)
            console.log(ready)

    return Server(config)
