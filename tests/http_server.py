"""A real HTTP/1.1 server on 127.0.0.1 for transport tests, with hostile routes.

    with serve({"/a": b"bytes"}) as server:
        server.routes["/b"] = status(500)          # routes may change while it runs
        fetch(server.url("/a"))
        assert server.requests("/a") == 1

A route is either bytes (served with status 200 and a Content-Length) or a
callable taking the `RouteHandler`, which writes whatever it likes: see the
builders below (`status`, `redirect`, `sequence`, `endless`, `stall`,
`trickle`, `cut_short`). A
path with no route gets a 404. The server counts requests and body bytes
written per path (query strings ignored), so tests can assert retries and
how much a client let a server send.

Handlers that wait (`stall`, `endless`) wake when the server closes, so a
test never sleeps longer than its client is patient.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Route = bytes | Callable[["RouteHandler"], None]

_MAX_WAIT_S = 10.0  # a stalled handler gives up after this even if the server stays up


class LoopbackServer:
    """What a test sees of a running server: its URL, routes and counters."""

    def __init__(self, routes: Mapping[str, Route] | None = None) -> None:
        self.base_url = ""
        self.routes: dict[str, Route] = dict(routes or {})
        self.closing = threading.Event()
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._sent: Counter[str] = Counter()

    def url(self, path: str) -> str:
        return self.base_url + path

    def requests(self, path: str) -> int:
        """How many requests for `path` arrived."""
        with self._lock:
            return self._requests[path]

    def sent(self, path: str) -> int:
        """How many body bytes the routes of `path` wrote (chunk framing excluded)."""
        with self._lock:
            return self._sent[path]

    def _hit(self, path: str) -> Route | None:
        with self._lock:
            self._requests[path] += 1
        return self.routes.get(path)

    def _count_sent(self, path: str, n: int) -> None:
        with self._lock:
            self._sent[path] += n


class RouteHandler(BaseHTTPRequestHandler):
    """Serves one connection; routes write through `send_body`, `write` or `write_chunk`."""

    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies, like a real mirror
    timeout = _MAX_WAIT_S  # an idle keep-alive connection ends after this

    @property
    def route_path(self) -> str:
        return self.path.split("?", 1)[0]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest's output for the tests

    def do_GET(self) -> None:
        route = self.server.site._hit(self.route_path)
        if route is None:
            self.send_body(b"not found", status=404)
        elif isinstance(route, bytes):
            self.send_body(route)
        else:
            route(self)

    def send_body(
        self, body: bytes, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        """A complete response with a Content-Length."""
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.write(body)

    def start_chunked(self, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def write(self, data: bytes) -> None:
        """Body bytes, counted for `LoopbackServer.sent`."""
        self.wfile.write(data)
        self.wfile.flush()
        self.server.site._count_sent(self.route_path, len(data))

    def write_chunk(self, data: bytes) -> None:
        """One chunk of a chunked body (an empty one ends the body)."""
        self.wfile.write(b"%x\r\n" % len(data))
        self.write(data)
        self.wfile.write(b"\r\n")
        self.wfile.flush()

    def wait(self, seconds: float = _MAX_WAIT_S) -> bool:
        """Sleep up to `seconds`; True (early) once the server is closing."""
        return self.server.site.closing.wait(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler still stalling cannot keep pytest alive

    def __init__(self, site: LoopbackServer) -> None:
        super().__init__(("127.0.0.1", 0), RouteHandler)
        self.site = site

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up on a hostile route is what the test wanted.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


@contextmanager
def serve(routes: Mapping[str, Route] | None = None) -> Iterator[LoopbackServer]:
    """Run a server in a thread for the `with` block; yields its `LoopbackServer`."""
    site = LoopbackServer(routes)
    server = _Server(site)
    site.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.closing.set()
        server.shutdown()
        server.server_close()
        thread.join()


def unused_url(path: str = "/") -> str:
    """A URL on a loopback port nobody listens on: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


# --- route builders -----------------------------------------------------------


def status(code: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> Route:
    """Answer every request with `code`."""
    return lambda handler: handler.send_body(body, status=code, headers=headers)


def redirect(location: str, code: int = 302) -> Route:
    return status(code, headers={"Location": location})


def sequence(*routes: Route) -> Route:
    """The n-th request gets the n-th route; the last one repeats (e.g. 500, then 200)."""
    lock = threading.Lock()
    served = 0

    def route(handler: RouteHandler) -> None:
        nonlocal served
        with lock:
            chosen = routes[min(served, len(routes) - 1)]
            served += 1
        if isinstance(chosen, bytes):
            handler.send_body(chosen)
        else:
            chosen(handler)

    return route


def endless(chunk: bytes = b"x" * 65536) -> Route:
    """A chunked body that never ends, until the client hangs up or the server closes."""

    def route(handler: RouteHandler) -> None:
        handler.start_chunked()
        while not handler.server.site.closing.is_set():
            handler.write_chunk(chunk)

    return route


def stall(prefix: bytes = b"", declared: int | None = None) -> Route:
    """Headers, then `prefix` of the body, then silence until the server closes.

    With `declared` the body has that Content-Length; without, it is chunked
    and `prefix` (if any) is its first chunk.
    """

    def route(handler: RouteHandler) -> None:
        if declared is None:
            handler.start_chunked()
            if prefix:
                handler.write_chunk(prefix)
        else:
            handler.send_response(200)
            handler.send_header("Content-Length", str(declared))
            handler.end_headers()
            handler.write(prefix)
        handler.wfile.flush()
        handler.wait()
        handler.close_connection = True

    return route


def trickle(byte: bytes = b"x", interval_s: float = 0.05) -> Route:
    """A chunked body of one byte every `interval_s`, for ever: each read is quick."""

    def route(handler: RouteHandler) -> None:
        handler.start_chunked()
        while not handler.wait(interval_s):
            handler.write_chunk(byte)

    return route


def cut_short(body: bytes, declared: int) -> Route:
    """Promise `declared` bytes, send `body`, hang up: a broken Content-Length."""

    def route(handler: RouteHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(declared))
        handler.end_headers()
        handler.write(body)
        handler.close_connection = True

    return route
