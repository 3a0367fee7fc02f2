"""A real threaded HTTP server on a free port, with routes the fetcher and probe tests need."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Handler = Callable[[BaseHTTPRequestHandler], None]
HANG_LIMIT_S = 30.0  # a hanging handler gives up after this, so teardown never waits forever


@dataclass
class LocalServer:
    """Routes by path (query ignored), counting hits; ``release`` frees hanging handlers."""

    routes: dict[str, Handler] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    release: threading.Event = field(default_factory=threading.Event)
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def add_bytes(self, path: str, data: bytes, *, gate: threading.Event | None = None) -> None:
        """Serve ``data`` with a Content-Length; with ``gate``, only once the gate opens."""

        def handler(request: BaseHTTPRequestHandler) -> None:
            if gate is not None:
                gate.wait(HANG_LIMIT_S)
            send(request, 200, data)

        self.routes[path] = handler

    def add_status(self, path: str, status: int, location: str | None = None) -> None:
        def handler(request: BaseHTTPRequestHandler) -> None:
            send(request, status, b"status", {"Location": location} if location else {})

        self.routes[path] = handler

    def add_unsized(self, path: str, data: bytes) -> None:
        """Serve ``data`` with no Content-Length, ended by closing the connection."""

        def handler(request: BaseHTTPRequestHandler) -> None:
            request.close_connection = True
            request.send_response(200)
            request.send_header("Connection", "close")
            request.end_headers()
            request.wfile.write(data)

        self.routes[path] = handler

    def add_stall(self, path: str, declared: int = 1000) -> None:
        """Announce ``declared`` bytes, send a few, then hang until released."""

        def handler(request: BaseHTTPRequestHandler) -> None:
            request.send_response(200)
            request.send_header("Content-Length", str(declared))
            request.end_headers()
            request.wfile.write(b"partial")
            request.wfile.flush()
            self.release.wait(HANG_LIMIT_S)
            request.close_connection = True

        self.routes[path] = handler

    def add_hang(self, path: str) -> None:
        """Accept the request and never answer (until released)."""

        def handler(request: BaseHTTPRequestHandler) -> None:
            self.release.wait(HANG_LIMIT_S)
            request.close_connection = True

        self.routes[path] = handler


def send(
    request: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None
) -> None:
    request.send_response(status)
    for name, value in (headers or {}).items():
        request.send_header(name, value)
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)


def _handler_class(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # small writes would otherwise wait ~40 ms for ACKs

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            with server.lock:
                server.hits[path] += 1
            route = server.routes.get(path)
            if route is None:
                send(self, 404, b"not found")
            else:
                route(self)

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output quiet

    return RequestHandler


@contextmanager
def running_server() -> Iterator[LocalServer]:
    """A server on 127.0.0.1, port 0; every hanging handler is released on exit."""
    state = LocalServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(
        target=httpd.serve_forever, args=(0.02,), name="test-http", daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()
