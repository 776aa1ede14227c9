"""The registry client's network layer: bounded downloads from an untrusted mirror.

Two ways in, one transport:

- `HttpxFetcher` is python-tuf's network seam (`FetcherInterface._fetch`).
  TUF's own `download_file`/`download_bytes` bound the length of metadata;
  the fetcher bounds time and speaks TUF's exception contract.
- `Downloader` fetches files whose length and sha256 are known in advance
  (a TUF `TargetFile` gives both): plugin bundles. It hashes while reading,
  stops one byte past the expected length, and keeps a content-addressed
  cache that is re-verified on every read.

Every read is bounded: response headers by h11 (16 KiB), a body by the
expected length, each socket read by `read_timeout_s`, one download by
`total_timeout_s` of wall clock (retries included; the last read can
overshoot it by at most `read_timeout_s`). Bodies are read raw: we ask for
`Accept-Encoding: identity` and never decompress what the mirror sends, so
the bytes hashed are the bytes on the wire. Redirects are refused, not
followed: a mirror cannot send us to a host the configuration never named.

Retries (exponential backoff with jitter) cover connection errors, timeouts
and HTTP 5xx/429, and only before the first body byte reaches the caller:
after that a retry would splice two responses. A 404/403, a redirect or a
length or hash mismatch is never retried; asking again would get the same
answer.

Exceptions::

    tuf.api.exceptions.DownloadError        what HttpxFetcher raises (TUF's contract)
    ├── DownloadHTTPError                   any status but 200, incl. a refused redirect
    ├── DownloadLengthMismatchError         Content-Length above the expected length
    ├── SlowRetrievalError                  a timeout, or the total deadline passed
    ├── ConnectionFailed                    unreachable, reset, closed before a response
    └── MalformedResponse                   the body broke HTTP framing (cut short, bad chunks)

    ruvector.errors.HostFault
    └── DownloadFailed      the network side failed: unreachable, timeouts, HTTP
                            errors after retries. Retrying later may work.
    ruvector.errors.InputError
    └── DownloadRefused     the mirror served something wrong: too long, too short,
                            hash mismatch, redirect, malformed framing.

`Downloader` translates the first tree into the second at one place
(`_classify`). The split follows the roots: a HostFault says our machine or
its network failed, and a mirror serving wrong bytes is not our machine's
fault. It is a finding about the mirror (a broken or hostile one) that the
user acts on by fixing or changing the mirror, and retrying does not help.
Both carry the URL; `DownloadFailed.status` holds the HTTP status if any.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, TextIO, TypeVar

import httpx
from tuf.api.exceptions import (
    DownloadError,
    DownloadHTTPError,
    DownloadLengthMismatchError,
    SlowRetrievalError,
)
from tuf.ngclient.fetcher import FetcherInterface

import ruvector
from ruvector.atomic import atomic_write
from ruvector.errors import HostFault, InputError

__all__ = [
    "ConnectionFailed",
    "DownloadFailed",
    "DownloadRefused",
    "Downloader",
    "FetchSettings",
    "HttpxFetcher",
    "MalformedResponse",
    "Progress",
    "Request",
    "TerminalProgress",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

_SHA256 = re.compile(r"[0-9a-f]{64}")
_MAX_ECHO = 200  # characters of a server-chosen string (a Location) we repeat in a message


@dataclass(frozen=True)
class FetchSettings:
    """How patient and how parallel downloads are; units in the names."""

    connect_timeout_s: float = 5.0  # seconds to open a connection
    read_timeout_s: float = 10.0  # seconds per socket read: a stall mid-body fails after this
    total_timeout_s: float = 120.0  # seconds of wall clock for one download, retries included
    retries: int = 3  # attempts after the first, before any body byte was yielded
    backoff_base_s: float = 0.25  # seconds before the first retry; doubles each time
    backoff_cap_s: float = 4.0  # seconds, the longest wait between two attempts
    max_parallel: int = 8  # concurrent downloads in fetch_all (and pooled connections)
    user_agent: str = f"ruvector/{ruvector.__version__}"

    def __post_init__(self) -> None:
        timeouts = (self.connect_timeout_s, self.read_timeout_s, self.total_timeout_s)
        if min(timeouts) <= 0:
            raise ValueError("timeouts must be positive")
        if self.retries < 0 or self.backoff_base_s < 0 or self.backoff_cap_s < 0:
            raise ValueError("retries and backoff must not be negative")
        if self.max_parallel < 1:
            raise ValueError("max_parallel must be at least 1")


# --- errors -----------------------------------------------------------------


class ConnectionFailed(DownloadError):
    """The connection failed before a response: refused, reset, unreachable, TLS."""


class MalformedResponse(DownloadError):
    """The mirror broke HTTP framing in the body (cut short, bad chunked encoding)."""


class DownloadFailed(HostFault):
    """A download failed on the network side: unreachable, timeouts, HTTP errors.

    `status` is the HTTP status when the server answered with an error.
    From `fetch_all`, `failures` holds each download's own error (either
    class) in request order; it is empty for a single download.
    """

    def __init__(
        self,
        url: str,
        reason: str,
        status: int | None = None,
        failures: tuple[DownloadFailed | DownloadRefused, ...] = (),
    ) -> None:
        self.url = url
        self.reason = reason
        self.status = status
        self.failures = failures
        # A batch's reason already lists every URL.
        super().__init__(reason if failures else f"{url}: {reason}")


class DownloadRefused(InputError):
    """A mirror served something wrong: too long, too short, wrong hash, redirect.

    `failures` is as for `DownloadFailed`.
    """

    def __init__(
        self,
        url: str,
        reason: str,
        status: int | None = None,
        failures: tuple[DownloadFailed | DownloadRefused, ...] = (),
    ) -> None:
        self.url = url
        self.reason = reason
        self.status = status
        self.failures = failures
        # A batch's reason already lists every URL.
        super().__init__(reason if failures else f"{url}: {reason}")


# --- the transport ----------------------------------------------------------


class _Deadline:
    """The wall-clock budget of one download, retries included.

    Checking between reads is not enough: a mirror can send its response
    headers a byte at a time, each within the read timeout, and httpx reads
    all of them before we see a byte. So a watchdog shuts down the sockets
    this download opened once the budget is spent, which ends any read in
    progress at once.
    """

    def __init__(self, url: str, total_s: float) -> None:
        self._url = url
        self._total_s = total_s
        self._end = time.monotonic() + total_s
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._fired = False
        self._timer = threading.Timer(total_s, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return self._end - time.monotonic()

    def check(self) -> None:
        """Raises SlowRetrievalError once the budget is spent."""
        if self.remaining() <= 0:
            raise SlowRetrievalError(
                f"{self._url}: not finished within {self._total_s:g} s (total_timeout_s)"
            )

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: keep each socket this download connects."""
        if event != "connection.connect_tcp.complete":
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            with self._lock:
                self._sockets.append(sock)
                if self._fired:  # connected just as the budget ran out
                    _shut(sock)

    def _fire(self) -> None:
        with self._lock:
            self._fired = True
            for sock in self._sockets:
                _shut(sock)

    def done(self) -> None:
        self._timer.cancel()


def _shut(sock: socket.socket) -> None:
    # shutdown, not close: it wakes a recv blocked in another thread.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class HttpxFetcher(FetcherInterface):
    """A `FetcherInterface` on one shared, thread-safe `httpx.Client`.

    HTTP/1.1 only, http(s) URLs only, redirects refused. `_fetch` raises
    TUF's exceptions (see the module docstring); `stream` adds a check of
    the declared Content-Length for callers that know the length.
    """

    def __init__(self, settings: FetchSettings | None = None) -> None:
        self._settings = settings if settings is not None else FetchSettings()
        s = self._settings
        self._client = httpx.Client(
            http1=True,
            http2=False,
            follow_redirects=False,
            # identity: we hash and bound the bytes on the wire, never a decompressed body
            headers={"User-Agent": s.user_agent, "Accept-Encoding": "identity"},
            # No keep-alive: each download opens its own connection, which its
            # deadline's watchdog can shut down (see _Deadline).
            limits=httpx.Limits(max_connections=s.max_parallel, max_keepalive_connections=0),
            # trust_env stays on: a user behind a proxy must reach the registry, and
            # TUF and the hashes, not the transport, vouch for what comes back.
        )

    def close(self) -> None:
        """Close the pooled connections; the fetcher is unusable afterwards."""
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _fetch(self, url: str) -> Iterator[bytes]:
        return self.stream(url)

    def stream(self, url: str, max_length: int | None = None) -> Generator[bytes, None, None]:
        """The body of `url` as raw chunks, fetched lazily on first iteration.

        With `max_length`, a Content-Length above it is refused before any of
        the body is read; counting the bytes themselves is the caller's job.
        Close the generator (or exhaust it) to release the connection.

        Raises (while iterating) DownloadHTTPError for any status but 200,
        DownloadLengthMismatchError, SlowRetrievalError, ConnectionFailed,
        MalformedResponse, or DownloadError for a URL that is not http(s).
        """
        return self._chunks(url, max_length)

    def _chunks(self, url: str, max_length: int | None) -> Generator[bytes, None, None]:
        if not url.lower().startswith(("http://", "https://")):
            raise DownloadError(f"{url}: only http and https URLs are fetched")
        deadline = _Deadline(url, self._settings.total_timeout_s)
        try:
            response, rest, chunk = self._open(url, max_length, deadline)
            try:
                while chunk is not None:
                    if chunk:
                        yield chunk
                    deadline.check()
                    chunk = _past_deadline(deadline, lambda: _next_chunk(url, rest))
            finally:
                response.close()
        finally:
            deadline.done()

    def _open(
        self, url: str, max_length: int | None, deadline: _Deadline
    ) -> tuple[httpx.Response, Iterator[bytes], bytes | None]:
        """Send and read the first chunk, retrying what may be transient."""
        attempt = 0
        while True:
            deadline.check()
            try:
                return _past_deadline(deadline, lambda: self._attempt(url, max_length, deadline))
            except DownloadError as exc:
                attempt += 1
                delay = self._backoff(attempt)
                if not _retryable(exc) or attempt > self._settings.retries:
                    raise
                if delay >= deadline.remaining():
                    raise  # waiting would spend the budget; report the real cause
                log.info("retrying %s in %.2f s after: %s", url, delay, exc)
                time.sleep(delay)

    def _attempt(
        self, url: str, max_length: int | None, deadline: _Deadline
    ) -> tuple[httpx.Response, Iterator[bytes], bytes | None]:
        response = self._send(url, deadline)
        try:
            _check_status(url, response)
            _check_declared_length(url, response, max_length)
            # iter_raw without a chunk size yields whatever each socket read got,
            # so the deadline is checked even against a server trickling bytes.
            rest = response.iter_raw()
            return response, rest, _next_chunk(url, rest)
        except BaseException:
            response.close()
            raise

    def _send(self, url: str, deadline: _Deadline) -> httpx.Response:
        try:
            request = self._client.build_request(
                "GET", url, timeout=self._timeout(deadline), extensions={"trace": deadline.trace}
            )
            return self._client.send(request, stream=True)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _translate(url, exc, in_body=False) from exc

    def _timeout(self, deadline: _Deadline) -> httpx.Timeout:
        # No phase may outlast the whole budget; waiting for a pooled
        # connection counts against it too.
        s, left = self._settings, max(deadline.remaining(), 0.001)
        read = min(s.read_timeout_s, left)
        return httpx.Timeout(
            connect=min(s.connect_timeout_s, left), read=read, write=read, pool=left
        )

    def _backoff(self, attempt: int) -> float:
        """Seconds before retry number `attempt` (1-based): half fixed, half jitter."""
        s = self._settings
        ceiling = min(s.backoff_cap_s, s.backoff_base_s * 2.0 ** (attempt - 1))
        # The jitter keeps parallel downloads that failed together from retrying together.
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def _past_deadline(deadline: _Deadline, step: Callable[[], T]) -> T:
    """Run `step`; a failure after the budget ran out is the deadline's (the
    watchdog's shutdown makes the read fail as a dropped connection)."""
    try:
        return step()
    except DownloadError:
        deadline.check()
        raise


def _next_chunk(url: str, chunks: Iterator[bytes]) -> bytes | None:
    """The next body chunk, None at the end; httpx errors become TUF's."""
    try:
        return next(chunks, None)
    except httpx.HTTPError as exc:
        raise _translate(url, exc, in_body=True) from exc


def _check_status(url: str, response: httpx.Response) -> None:
    status = response.status_code
    if status == 200:
        return
    # The standard phrase, not the server's: its reason text is untrusted and may
    # hold terminal escapes.
    phrase = httpx.codes.get_reason_phrase(status)
    if 300 <= status < 400:
        location = response.headers.get("location", "")[:_MAX_ECHO]
        message = f"{url}: redirect (HTTP {status}) to {location!r} refused"
    elif status >= 400:
        message = f"{url}: HTTP {status} {phrase}".rstrip()
    else:  # 204, 206...: we sent no Range and expect a body
        message = f"{url}: unexpected HTTP {status} {phrase}".rstrip()
    raise DownloadHTTPError(message, status)


def _check_declared_length(url: str, response: httpx.Response, max_length: int | None) -> None:
    header = response.headers.get("content-length")
    if max_length is None or header is None:
        return
    try:
        declared = int(header)
    except ValueError:  # h11 rejects most bad values; repeated headers arrive joined
        raise MalformedResponse(f"{url}: malformed Content-Length {header[:_MAX_ECHO]!r}") from None
    if declared > max_length:
        raise DownloadLengthMismatchError(
            f"{url}: Content-Length {declared} is larger than the expected {max_length} bytes"
        )


def _translate(url: str, exc: httpx.HTTPError | httpx.InvalidURL, in_body: bool) -> DownloadError:
    """The one place httpx's exceptions become TUF's."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return SlowRetrievalError(f"{url}: timed out ({type(exc).__name__})")
    # Before a response, a protocol error is indistinguishable from a dropped
    # connection (a stale pooled socket says "Server disconnected"); in the body
    # it is the mirror framing its answer wrong.
    if isinstance(exc, httpx.RemoteProtocolError) and in_body:
        return MalformedResponse(f"{url}: malformed response body: {detail}")
    if isinstance(exc, httpx.TransportError):
        return ConnectionFailed(f"{url}: {detail}")
    return DownloadError(f"{url}: {detail}")


def _retryable(exc: DownloadError) -> bool:
    if isinstance(exc, DownloadHTTPError):
        return exc.status_code == 429 or exc.status_code >= 500
    return isinstance(exc, SlowRetrievalError | ConnectionFailed)


# --- progress ---------------------------------------------------------------


class Progress(Protocol):
    """Told about downloads as they run; may be called from several threads.

    `start` and `done` bracket each network download (cache hits are not
    reported); `advance` adds bytes received by any running download.
    """

    def start(self, url: str, total: int) -> None: ...

    def advance(self, n: int) -> None: ...

    def done(self) -> None: ...


class _Silent:
    """The default: no progress shown."""

    def start(self, url: str, total: int) -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def done(self) -> None:
        pass


class TerminalProgress:
    """One progress line for all running downloads, redrawn with '\\r'.

    Prints only when the stream (stderr by default) is a terminal, so piped
    output and logs stay clean. The line is erased when the last running
    download ends. Thread-safe.
    """

    _BAR = 24  # characters

    def __init__(self, stream: TextIO | None = None, min_interval_s: float = 0.1) -> None:
        self._stream = stream if stream is not None else sys.stderr
        # sys.stderr is None under pythonw
        self._enabled = self._stream is not None and self._stream.isatty()
        self._min_interval_s = min_interval_s
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._running = self._files = self._finished = 0
        self._total = self._received = 0
        self._drawn_at = 0.0
        self._width = 0

    def start(self, url: str, total: int) -> None:
        with self._lock:
            self._running += 1
            self._files += 1
            self._total += total
            self._draw(force=True)

    def advance(self, n: int) -> None:
        with self._lock:
            self._received += n
            self._draw(force=False)

    def done(self) -> None:
        with self._lock:
            self._running -= 1
            self._finished += 1
            if self._running > 0:
                self._draw(force=True)
                return
            self._write("\r" + " " * self._width + "\r")
            self._reset()

    def _draw(self, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._drawn_at < self._min_interval_s:
            return  # redrawing on every 64 KiB chunk would cost more than the download
        self._drawn_at = now
        share = self._received / self._total if self._total else 1.0
        filled = int(share * self._BAR)
        line = (
            f"downloading [{'#' * filled}{'-' * (self._BAR - filled)}] {share:4.0%}"
            f"  {_mib(self._received)} / {_mib(self._total)}"
            f"  {self._finished}/{self._files} files"
        )
        self._write("\r" + line.ljust(self._width))
        self._width = len(line)

    def _write(self, text: str) -> None:
        if self._enabled and self._stream is not None:
            self._stream.write(text)
            self._stream.flush()


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


# --- downloads of known files -------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One file to fetch: where, and the length and sha256 it must have."""

    url: str
    length: int  # bytes
    sha256: str  # hex digest


class Downloader:
    """Downloads files of known length and sha256, through a verified cache.

    The cache is content-addressed (`cache_dir/<sha256>`) and re-hashed on
    every read, so a corrupted or tampered entry is deleted and fetched
    again, never used. Failing to write the cache is logged, not raised: the
    download itself succeeded. Use as a context manager or call `close()`.
    Safe to use from several threads.
    """

    def __init__(
        self, settings: FetchSettings, cache_dir: Path | None, progress: Progress | None = None
    ) -> None:
        self._settings = settings
        self._cache_dir = cache_dir
        self._progress: Progress = progress if progress is not None else _Silent()
        self._fetcher = HttpxFetcher(settings)

    def close(self) -> None:
        self._fetcher.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def fetch(self, url: str, length: int, sha256: str) -> bytes:
        """The verified bytes of `url`, from the cache when it holds them.

        Raises DownloadFailed (network side, after retries), DownloadRefused
        (the mirror served wrong bytes), ValueError (`sha256` is not a hex
        sha256 digest or `length` is negative).
        """
        digest = _expected_digest(sha256, length)
        data = self.cached(digest, length)
        if data is None:
            data = self._download(url, length, digest)
            self._store(digest, data)
        return data

    def fetch_all(self, requests: Sequence[Request]) -> list[bytes]:
        """`fetch` for each request, `max_parallel` at a time; results in request order.

        Every download runs to its end even when one fails. Then, if any
        failed, raises one error listing each failed URL and why (its
        `failures` holds the individual errors): DownloadRefused if any
        mirror served wrong bytes (that finding must not be lost among
        network errors), else DownloadFailed. ValueError as for `fetch`.
        """
        if not requests:
            return []
        workers = min(self._settings.max_parallel, len(requests))
        with ThreadPoolExecutor(workers, thread_name_prefix="ruvector-fetch") as pool:
            futures = [pool.submit(self.fetch, r.url, r.length, r.sha256) for r in requests]
        # Leaving the with block waited for all of them.
        results: list[bytes] = []
        failures: list[DownloadFailed | DownloadRefused] = []
        for future in futures:
            try:
                results.append(future.result())
            except (DownloadFailed, DownloadRefused) as exc:
                failures.append(exc)
        if failures:
            raise _batch_error(tuple(failures), len(requests))
        return results

    def cached(self, sha256: str, length: int) -> bytes | None:
        """The cached file with this digest if it is intact, else None; no network.

        A corrupt entry is deleted (and logged). Raises ValueError as `fetch`.
        """
        digest = _expected_digest(sha256, length)
        if self._cache_dir is None:
            return None
        path = self._cache_dir / digest
        try:
            with path.open("rb") as f:
                data = f.read(length + 1)  # a grown file cannot make us read more
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read cached %s, downloading instead: %s", path, exc)
            return None
        if len(data) == length and hashlib.sha256(data).hexdigest() == digest:
            return data
        log.warning("cached %s does not match its sha256; deleting it", path)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot delete corrupt cache file %s: %s", path, exc)
        return None

    def _download(self, url: str, length: int, digest: str) -> bytes:
        self._progress.start(url, length)
        try:
            return self._receive(url, length, digest)
        except DownloadError as exc:
            raise _classify(url, exc) from exc
        finally:
            self._progress.done()

    def _receive(self, url: str, length: int, digest: str) -> bytes:
        hasher = hashlib.sha256()
        parts: list[bytes] = []
        received = 0
        with contextlib.closing(self._fetcher.stream(url, max_length=length)) as chunks:
            for chunk in chunks:
                received += len(chunk)
                if received > length:
                    raise DownloadRefused(
                        url, f"endless response: more than the expected {length} bytes"
                    )
                hasher.update(chunk)
                parts.append(chunk)
                self._progress.advance(len(chunk))
        if received < length:
            raise DownloadRefused(
                url, f"body ended after {received} of the expected {length} bytes"
            )
        actual = hasher.hexdigest()
        if actual != digest:
            raise DownloadRefused(url, f"sha256 mismatch: expected {digest}, got {actual}")
        return b"".join(parts)

    def _store(self, digest: str, data: bytes) -> None:
        if self._cache_dir is None:
            return
        try:
            atomic_write(self._cache_dir / digest, data)
        except OSError as exc:
            log.warning("could not cache %s in %s: %s", digest, self._cache_dir, exc)


def _expected_digest(sha256: str, length: int) -> str:
    """The digest normalised to lower case; it names a cache file, so it is checked."""
    digest = sha256.lower()
    if not _SHA256.fullmatch(digest):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    if length < 0:
        raise ValueError(f"negative length: {length}")
    return digest


def _classify(url: str, exc: DownloadError) -> DownloadFailed | DownloadRefused:
    """The one place the fetcher's TUF exceptions become our two roots."""
    # Our fetcher's messages start with the URL, which the new error adds again.
    reason = str(exc).removeprefix(f"{url}: ")
    if isinstance(exc, DownloadHTTPError):
        if exc.status_code >= 400:
            return DownloadFailed(url, reason, status=exc.status_code)
        return DownloadRefused(url, reason, status=exc.status_code)  # a redirect, a 204...
    if isinstance(exc, DownloadLengthMismatchError | MalformedResponse):
        return DownloadRefused(url, reason)
    return DownloadFailed(url, reason)


def _batch_error(
    failures: tuple[DownloadFailed | DownloadRefused, ...], total: int
) -> DownloadFailed | DownloadRefused:
    summary = f"{len(failures)} of {total} downloads failed:" + "".join(
        f"\n  {failure}" for failure in failures
    )
    first = failures[0].url
    if any(isinstance(f, DownloadRefused) for f in failures):
        return DownloadRefused(first, summary, failures=failures)
    return DownloadFailed(first, summary, failures=failures)
