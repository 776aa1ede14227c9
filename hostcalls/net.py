"""http_request: a plugin's HTTP, limited to the hosts its grant names.

The plugin passes a JSON request::

    {"method": "GET", "url": "http://host:port/path",
     "headers": {"name": "value"}, "body": "text"}

and gets back ``{"status": 200, "headers": {...}, "body": "..."}`` with
header names in lower case and the body decoded as UTF-8 (bad bytes
replaced). The host is checked against the NetworkAccess grants before any
connection is made; a grant entry is "host" (any port) or "host:port".

Redirects are never followed: a 3xx goes back to the plugin as it came, so a
granted server cannot bounce the request to a host the plugin may not reach.
The headers that decide where and how the request travels (Host,
Content-Length, Transfer-Encoding, Connection...) are the host's to set.

Time is bounded twice. Every httpx phase (pool, connect, write, each read)
has timeout_s; and the whole exchange runs in a worker thread the caller
waits on for at most timeout_s, because per-read timeouts alone let a server
that trickles one byte at a time hold the call for ever. A worker whose
caller has given up stops at its next chunk or per-read timeout.

The body cap applies to the decoded body; the JSON around it adds the
headers and escaping.
"""

from __future__ import annotations

import ipaddress
import json
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

import httpx

from hostcalls.abi import Status
from hostcalls.capabilities import Capability, CapabilityKind

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REQUEST_KEYS = frozenset({"method", "url", "headers", "body"})
# Framing and routing headers: a plugin setting Host could reach another
# virtual host behind a granted reverse proxy; the rest could desynchronise
# the connection.
_HOST_SET_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "proxy-connection",
    }
)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 field-name
# httpx encodes header values as ASCII; a control character could split them.
_VALUE = re.compile(r"[\t\x20-\x7e]*")

_client_lock = threading.Lock()
_client: httpx.Client | None = None


def default_client() -> httpx.Client:
    """The process-wide client, so connections are pooled across calls.

    trust_env=False: an HTTP(S)_PROXY in the host's environment must not
    silently carry plugin traffic to a third party, nor turn the host check
    into a check of the proxy.
    """
    global _client
    with _client_lock:
        if _client is None:
            _client = httpx.Client(
                trust_env=False,
                follow_redirects=False,
                limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
            )
        return _client


@dataclass(frozen=True)
class _Request:
    method: str
    url: httpx.URL
    headers: tuple[tuple[str, str], ...]
    body: bytes | None


def http_request(
    grants: Sequence[Capability],
    request_json: bytes,
    timeout_s: float,
    max_response_bytes: int,
    client: httpx.Client | None = None,
) -> bytes | Status:
    """Make one HTTP request for a plugin.

    Returns the response as JSON bytes, or INVALID_ARGUMENT (malformed
    request), DENIED (host or port not granted), TIMEOUT (timeout_s passed,
    or timeout_s <= 0), TOO_LARGE (body over max_response_bytes) or IO_ERROR
    (connection, TLS or protocol failure). Raises nothing of its own.
    """
    request = _parse_request(request_json)
    if isinstance(request, Status):
        return request
    if not _allowed(grants, request.url):
        return Status.DENIED
    if not timeout_s > 0:  # also catches NaN
        return Status.TIMEOUT
    deadline = time.monotonic() + timeout_s
    cancelled = threading.Event()
    http = client if client is not None else default_client()
    return _within_deadline(
        lambda: _exchange(http, request, timeout_s, deadline, max_response_bytes, cancelled),
        deadline,
        cancelled,
    )


def _parse_request(raw: bytes) -> _Request | Status:
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return Status.INVALID_ARGUMENT
    if not isinstance(doc, dict) or not set(doc) <= _REQUEST_KEYS:
        return Status.INVALID_ARGUMENT
    method = doc.get("method", "GET")
    headers = _parse_headers(doc.get("headers", {}))
    body = doc.get("body")
    url = _parse_url(doc.get("url"))
    if not isinstance(method, str) or method not in METHODS:  # a list is unhashable
        return Status.INVALID_ARGUMENT
    if isinstance(headers, Status) or isinstance(url, Status):
        return Status.INVALID_ARGUMENT
    if body is not None and not isinstance(body, str):
        return Status.INVALID_ARGUMENT
    try:
        encoded = None if body is None else body.encode("utf-8")
    except UnicodeEncodeError:  # JSON can spell a lone surrogate; UTF-8 cannot
        return Status.INVALID_ARGUMENT
    return _Request(method, url, headers, encoded)


def _parse_url(value: object) -> httpx.URL | Status:
    if not isinstance(value, str):
        return Status.INVALID_ARGUMENT
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, ValueError):
        return Status.INVALID_ARGUMENT
    if url.scheme not in _DEFAULT_PORTS or not url.raw_host:
        return Status.INVALID_ARGUMENT
    return url


def _parse_headers(value: object) -> tuple[tuple[str, str], ...] | Status:
    if not isinstance(value, dict):
        return Status.INVALID_ARGUMENT
    headers = []
    for name, text in value.items():
        if not isinstance(text, str) or not _TOKEN.fullmatch(name) or not _VALUE.fullmatch(text):
            return Status.INVALID_ARGUMENT
        if name.lower() in _HOST_SET_HEADERS:
            return Status.INVALID_ARGUMENT
        headers.append((name, text))
    return tuple(headers)


def _allowed(grants: Sequence[Capability], url: httpx.URL) -> bool:
    """Whether a NetworkAccess grant names the URL's host, and its port if any."""
    host = _normal_host(url.raw_host.decode("ascii"))
    port = url.port if url.port is not None else _DEFAULT_PORTS[url.scheme]
    for cap in grants:
        if cap.kind is not CapabilityKind.NETWORK_ACCESS:
            continue
        for entry in cap.hosts:
            entry_host, entry_port = _split_entry(entry)
            if _normal_host(entry_host) == host and entry_port in (None, port):
                return True
    return False


def _split_entry(entry: str) -> tuple[str, int | None]:
    """Split a grant entry: host, host:port, [v6] or [v6]:port; port None if absent."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else None
    host, sep, port = entry.partition(":")
    return host, int(port) if sep else None


def _normal_host(host: str) -> str:
    """Lower case; an IP address in its canonical form, so ::1 == 0:0::1."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return host.lower()


def _within_deadline(
    work: Callable[[], bytes | Status], deadline: float, cancelled: threading.Event
) -> bytes | Status:
    """Run work in a worker thread; TIMEOUT if it is not done by deadline.

    An exception in work (a bug) is re-raised here, in the caller's thread.
    """
    future: Future[bytes | Status] = Future()

    def run() -> None:
        try:
            future.set_result(work())
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, name="ruvector-http", daemon=True).start()
    try:
        return future.result(timeout=max(0.0, deadline - time.monotonic()))
    except FutureTimeout:
        cancelled.set()
        return Status.TIMEOUT


def _exchange(
    client: httpx.Client,
    request: _Request,
    timeout_s: float,
    deadline: float,
    max_bytes: int,
    cancelled: threading.Event,
) -> bytes | Status:
    # identity unless the plugin asks otherwise: a compressed body would be
    # inflated before the cap could see it.
    headers = httpx.Headers({"accept-encoding": "identity"})
    headers.update(request.headers)
    try:
        built = client.build_request(
            request.method,
            request.url,
            headers=headers,
            content=request.body,
            timeout=httpx.Timeout(timeout_s),
        )
        response = client.send(built, stream=True, follow_redirects=False)
        try:
            body = _read_body(response, deadline, max_bytes, cancelled)
        finally:
            response.close()
    except httpx.TimeoutException:
        return Status.TIMEOUT
    except httpx.LocalProtocolError:  # a request h11 will not send
        return Status.INVALID_ARGUMENT
    except httpx.HTTPError:
        return Status.IO_ERROR
    if isinstance(body, Status):
        return body
    return _encode_response(response.status_code, response.headers, body)


def _read_body(
    response: httpx.Response, deadline: float, max_bytes: int, cancelled: threading.Event
) -> bytes | Status:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        if cancelled.is_set() or time.monotonic() > deadline:
            return Status.TIMEOUT
        size += len(chunk)
        if size > max_bytes:
            return Status.TOO_LARGE
        chunks.append(chunk)
    return b"".join(chunks)


def _encode_response(status: int, headers: Mapping[str, str], body: bytes) -> bytes:
    doc = {
        "status": status,
        # httpx.Headers yields lower-case names, repeated ones joined by ", "
        "headers": {name.lower(): value for name, value in headers.items()},
        "body": body.decode("utf-8", errors="replace"),
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
