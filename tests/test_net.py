"""http_request against a real HTTP server on loopback, run in a thread."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from hostcalls.abi import Status
from hostcalls.capabilities import Capability, CapabilityKind
from hostcalls.net import default_client, http_request


class Server(ThreadingHTTPServer):
    """Records each request it sees; `release` ends any stalled handler."""

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, Handler)
        self.seen: list[tuple[str, str]] = []
        self.release = threading.Event()


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append((self.command, self.path))
        route = getattr(self, "route_" + self.path.strip("/").split("?")[0], self.route_echo)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            route()  # the tests that cut a response short hang up mid-write

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def route_echo(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        doc = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": self.rfile.read(length).decode(),
        }
        self.reply(201, json.dumps(doc).encode(), {"X-Reply": "yes"})

    def route_redirect(self) -> None:
        self.reply(302, b"moved", {"Location": "http://example.invalid/elsewhere"})

    def route_big(self) -> None:
        self.reply(200, b"x" * 2000)

    def route_binary(self) -> None:
        self.reply(200, b"ok \xff\xfe end")

    def route_stall(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        self.wfile.write(b"first ten.")
        self.wfile.flush()
        self.server.release.wait(5)

    def route_trickle(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        for _ in range(1000):
            if self.server.release.wait(0.1):
                return
            self.wfile.write(b"x")
            self.wfile.flush()

    def route_endless(self) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"y" * 4096
        while not self.server.release.is_set():
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server(("127.0.0.1", 0))
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False) as c:
        yield c


def net(*hosts: str) -> list[Capability]:
    return [Capability(CapabilityKind.NETWORK_ACCESS, hosts=hosts)]


def port_of(srv: Server) -> int:
    return srv.server_address[1]


def req(url: object, **fields: object) -> bytes:
    return json.dumps({"url": url, **fields}).encode()


def call(grants: list[Capability], request: bytes, client: httpx.Client, **kw: float) -> object:
    result = http_request(
        grants,
        request,
        kw.get("timeout_s", 2.0),
        int(kw.get("max_bytes", 10_000)),
        client=client,
    )
    return result if isinstance(result, Status) else json.loads(result)


def test_get_round_trip(server: Server, client: httpx.Client) -> None:
    url = f"http://127.0.0.1:{port_of(server)}/echo?q=1"
    out = call(net("127.0.0.1"), req(url, headers={"X-Token": "abc"}), client)
    assert isinstance(out, dict)
    assert out["status"] == 201
    assert out["headers"]["x-reply"] == "yes"
    echoed = json.loads(out["body"])
    assert echoed["method"] == "GET"
    assert echoed["path"] == "/echo?q=1"
    assert echoed["headers"]["x-token"] == "abc"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_body_methods(server: Server, client: httpx.Client, method: str) -> None:
    url = f"http://127.0.0.1:{port_of(server)}/echo"
    out = call(net("127.0.0.1"), req(url, method=method, body="héllo"), client)
    assert isinstance(out, dict)
    echoed = json.loads(out["body"])
    assert (echoed["method"], echoed["body"]) == (method, "héllo")


def test_head_has_no_body(server: Server, client: httpx.Client) -> None:
    out = call(
        net("127.0.0.1"), req(f"http://127.0.0.1:{port_of(server)}/big", method="HEAD"), client
    )
    assert isinstance(out, dict)
    assert (out["status"], out["body"]) == (200, "")
    assert out["headers"]["content-length"] == "2000"


def test_body_bytes_decoded_with_replacement(server: Server, client: httpx.Client) -> None:
    out = call(net("127.0.0.1"), req(f"http://127.0.0.1:{port_of(server)}/binary"), client)
    assert isinstance(out, dict)
    assert out["body"] == "ok \ufffd\ufffd end"


def test_denied_host_never_connects(server: Server, client: httpx.Client) -> None:
    url = f"http://127.0.0.1:{port_of(server)}/echo"
    assert call(net("example.invalid"), req(url), client) == Status.DENIED
    assert call([], req(url), client) == Status.DENIED
    # a userinfo that looks like a granted host does not fool the check
    tricky = f"http://example.invalid@127.0.0.1:{port_of(server)}/"
    assert call(net("example.invalid"), req(tricky), client) == Status.DENIED
    assert server.seen == []


def test_port_scoped_entries(server: Server, client: httpx.Client) -> None:
    port = port_of(server)
    url = f"http://127.0.0.1:{port}/echo"
    assert call(net(f"127.0.0.1:{port + 1}"), req(url), client) == Status.DENIED
    assert server.seen == []
    out = call(net(f"127.0.0.1:{port}"), req(url), client)
    assert isinstance(out, dict) and out["status"] == 201
    # a default port is the scheme's: "host:80" does not cover this port
    assert call(net("127.0.0.1:80"), req(url), client) == Status.DENIED


def test_host_compared_case_insensitively(server: Server, client: httpx.Client) -> None:
    url = f"http://LocalHost:{port_of(server)}/echo"
    out = call(net("localhost"), req(url), client)
    assert isinstance(out, dict) and out["status"] == 201


def test_ipv6_entries(client: httpx.Client) -> None:
    # checked before any connection, so no IPv6 server is needed
    grants = net("[::1]:8080")
    assert call(grants, req("http://[::1]:8081/"), client) == Status.DENIED
    assert call(grants, req("http://[::2]:8080/"), client) == Status.DENIED
    allowed = call(grants, req("http://[0:0::1]:8080/"), client, timeout_s=0.5)
    assert allowed in (Status.IO_ERROR, Status.TIMEOUT)  # allowed: it tried to connect


def test_redirect_returned_not_followed(server: Server, client: httpx.Client) -> None:
    out = call(net("127.0.0.1"), req(f"http://127.0.0.1:{port_of(server)}/redirect"), client)
    assert isinstance(out, dict)
    assert out["status"] == 302
    assert out["headers"]["location"] == "http://example.invalid/elsewhere"
    assert out["body"] == "moved"


def test_oversized_response(server: Server, client: httpx.Client) -> None:
    url = f"http://127.0.0.1:{port_of(server)}/big"
    assert call(net("127.0.0.1"), req(url), client, max_bytes=1999) == Status.TOO_LARGE
    out = call(net("127.0.0.1"), req(url), client, max_bytes=2000)
    assert isinstance(out, dict) and len(out["body"]) == 2000


def test_endless_chunked_response_cut_at_cap(server: Server, client: httpx.Client) -> None:
    url = f"http://127.0.0.1:{port_of(server)}/endless"
    started = time.monotonic()
    assert call(net("127.0.0.1"), req(url), client, max_bytes=50_000) == Status.TOO_LARGE
    assert time.monotonic() - started < 1.0


def test_stall_mid_body_times_out(server: Server, client: httpx.Client) -> None:
    url = f"http://127.0.0.1:{port_of(server)}/stall"
    started = time.monotonic()
    assert call(net("127.0.0.1"), req(url), client, timeout_s=0.5) == Status.TIMEOUT
    assert time.monotonic() - started < 0.8


def test_trickle_bounded_by_wall_clock(server: Server, client: httpx.Client) -> None:
    # each byte comes well within the read timeout: only the total bound stops it
    url = f"http://127.0.0.1:{port_of(server)}/trickle"
    started = time.monotonic()
    assert call(net("127.0.0.1"), req(url), client, timeout_s=0.5) == Status.TIMEOUT
    assert time.monotonic() - started < 0.8


def test_no_time_left_never_connects(server: Server, client: httpx.Client) -> None:
    url = f"http://127.0.0.1:{port_of(server)}/echo"
    assert call(net("127.0.0.1"), req(url), client, timeout_s=0) == Status.TIMEOUT
    assert server.seen == []


def test_connection_refused(client: httpx.Client) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the request: nobody listens
    assert call(net("127.0.0.1"), req(f"http://127.0.0.1:{port}/"), client) == Status.IO_ERROR


def test_https_accepted(server: Server, client: httpx.Client) -> None:
    # TLS to a plain-HTTP server fails in the handshake: the request was valid
    url = f"https://127.0.0.1:{port_of(server)}/echo"
    assert call(net("127.0.0.1"), req(url), client) == Status.IO_ERROR


@pytest.mark.parametrize(
    "request_json",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b"[" * 100_000,
        json.dumps({"method": "GET"}).encode(),  # no url
        req("ftp://127.0.0.1/x"),
        req("file:///etc/passwd"),
        req("http:///no-host"),
        req("http://[::1/"),
        req(12),
        req("http://127.0.0.1/", method="CONNECT"),
        req("http://127.0.0.1/", method="get"),
        req("http://127.0.0.1/", method=["GET"]),
        req("http://127.0.0.1/", headers=["X-A", "1"]),
        req("http://127.0.0.1/", headers={"X-A": 1}),
        req("http://127.0.0.1/", headers={"X-A": "a\r\nX-Injected: 1"}),
        req("http://127.0.0.1/", headers={"Bad Name": "1"}),
        req("http://127.0.0.1/", headers={"X-A": "caf\u00e9"}),
        req("http://127.0.0.1/", headers={"Host": "internal.example"}),
        req("http://127.0.0.1/", headers={"Content-Length": "5"}),
        req("http://127.0.0.1/", body=5),
        req("http://127.0.0.1/", body="\ud800"),
        req("http://127.0.0.1/", extra=1),
    ],
)
def test_malformed_requests(client: httpx.Client, request_json: bytes) -> None:
    assert call(net("127.0.0.1"), request_json, client) == Status.INVALID_ARGUMENT


def test_default_client_is_shared_and_ignores_environment(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a proxy that does not exist: if the client used it, the request would fail
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    assert default_client() is default_client()
    assert default_client().trust_env is False
    url = f"http://127.0.0.1:{port_of(server)}/echo"
    result = http_request(net("127.0.0.1"), req(url), 2.0, 10_000)
    assert isinstance(result, bytes) and json.loads(result)["status"] == 201
