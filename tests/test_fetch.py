"""registry.fetch against a real HTTP server on loopback (tests/http_server.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from tuf.api.exceptions import DownloadHTTPError, DownloadLengthMismatchError

from registry.fetch import (
    Downloader,
    DownloadFailed,
    DownloadRefused,
    FetchSettings,
    HttpxFetcher,
    Request,
    TerminalProgress,
)
from ruvector.errors import HostFault, InputError
from tests.http_server import (
    LoopbackServer,
    RouteHandler,
    cut_short,
    endless,
    redirect,
    sequence,
    serve,
    stall,
    status,
    trickle,
    unused_url,
)

# Patient enough for a loaded CI machine, quick to back off.
SETTINGS = FetchSettings(
    connect_timeout_s=2,
    read_timeout_s=2,
    total_timeout_s=10,
    retries=2,
    backoff_base_s=0.01,
    backoff_cap_s=0.05,
)
BODY = b"plugin bundle " * 1000


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with serve({"/bundle": BODY}) as running:
        yield running


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def downloader(cache: Path) -> Iterator[Downloader]:
    with Downloader(SETTINGS, cache) as d:
        yield d


class Recorder:
    """A Progress that remembers what it was told."""

    def __init__(self) -> None:
        self.started: list[tuple[str, int]] = []
        self.advanced = 0
        self.finished = 0

    def start(self, url: str, total: int) -> None:
        self.started.append((url, total))

    def advance(self, n: int) -> None:
        self.advanced += n

    def done(self) -> None:
        self.finished += 1


# --- normal operation ---------------------------------------------------------


def test_fetch_returns_the_verified_body_and_caches_it(server: LoopbackServer, cache: Path) -> None:
    seen: list[str | None] = []

    def route(handler: RouteHandler) -> None:
        seen.append(handler.headers["User-Agent"])
        handler.send_body(BODY)

    server.routes["/bundle"] = route
    recorder = Recorder()
    with Downloader(SETTINGS, cache, recorder) as downloader:
        data = downloader.fetch(server.url("/bundle"), len(BODY), sha(BODY))

    assert data == BODY
    assert (cache / sha(BODY)).read_bytes() == BODY
    assert seen == ["ruvector/0.1.0"]
    assert recorder.started == [(server.url("/bundle"), len(BODY))]
    assert (recorder.advanced, recorder.finished) == (len(BODY), 1)


def test_fetch_all_fetches_in_parallel_and_keeps_request_order(
    server: LoopbackServer, downloader: Downloader
) -> None:
    bodies = [f"file {i} ".encode() * (100 + i) for i in range(20)]
    for i, body in enumerate(bodies):
        server.routes[f"/f{i}"] = body
    requests = [Request(server.url(f"/f{i}"), len(b), sha(b)) for i, b in enumerate(bodies)]

    assert downloader.fetch_all(requests) == bodies
    assert all(server.requests(f"/f{i}") == 1 for i in range(20))


def test_fetch_all_of_nothing_is_nothing(downloader: Downloader) -> None:
    assert downloader.fetch_all([]) == []


def test_fetch_all_lets_the_others_finish_and_lists_every_failure(
    server: LoopbackServer, downloader: Downloader
) -> None:
    bodies = [f"file {i}".encode() for i in range(6)]
    for i, body in enumerate(bodies):
        server.routes[f"/f{i}"] = body
    server.routes["/f2"] = status(404)
    server.routes["/f4"] = b"not what was signed"
    requests = [Request(server.url(f"/f{i}"), len(b), sha(b)) for i, b in enumerate(bodies)]

    with pytest.raises(DownloadRefused) as caught:
        downloader.fetch_all(requests)

    message = str(caught.value)
    assert "2 of 6 downloads failed" in message
    assert server.url("/f2") in message and "404" in message
    assert server.url("/f4") in message
    assert [f.url for f in caught.value.failures] == [server.url("/f2"), server.url("/f4")]
    assert isinstance(caught.value.failures[0], DownloadFailed)
    assert all(server.requests(f"/f{i}") == 1 for i in range(6))


def test_fetch_all_with_only_network_failures_is_download_failed(
    server: LoopbackServer, downloader: Downloader
) -> None:
    server.routes["/gone"] = status(404)
    requests = [
        Request(server.url("/bundle"), len(BODY), sha(BODY)),
        Request(server.url("/gone"), 1, sha(b"x")),
    ]
    with pytest.raises(DownloadFailed) as caught:
        downloader.fetch_all(requests)
    assert [f.url for f in caught.value.failures] == [server.url("/gone")]


# --- cache ----------------------------------------------------------------------


def test_a_cache_hit_makes_no_request(server: LoopbackServer, cache: Path) -> None:
    url = server.url("/bundle")
    with Downloader(SETTINGS, cache) as first:
        first.fetch(url, len(BODY), sha(BODY))
    del server.routes["/bundle"]  # a second request would now get a 404

    with Downloader(SETTINGS, cache) as second:
        assert second.fetch(url, len(BODY), sha(BODY)) == BODY
        assert second.cached(sha(BODY).upper(), len(BODY)) == BODY
    assert server.requests("/bundle") == 1


def test_a_corrupted_cache_file_is_deleted_and_downloaded_again(
    server: LoopbackServer, cache: Path, downloader: Downloader
) -> None:
    cache.mkdir()
    (cache / sha(BODY)).write_bytes(BODY[:-1] + b"!")

    assert downloader.cached(sha(BODY), len(BODY)) is None
    assert not (cache / sha(BODY)).exists()

    (cache / sha(BODY)).write_bytes(BODY + b"more")
    assert downloader.fetch(server.url("/bundle"), len(BODY), sha(BODY)) == BODY
    assert server.requests("/bundle") == 1
    assert (cache / sha(BODY)).read_bytes() == BODY


def test_without_a_cache_dir_nothing_is_cached(server: LoopbackServer) -> None:
    with Downloader(SETTINGS, None) as downloader:
        downloader.fetch(server.url("/bundle"), len(BODY), sha(BODY))
        assert downloader.cached(sha(BODY), len(BODY)) is None
        downloader.fetch(server.url("/bundle"), len(BODY), sha(BODY))
    assert server.requests("/bundle") == 2


def test_a_failed_cache_write_is_a_warning(
    server: LoopbackServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_bytes(b"")
    with Downloader(SETTINGS, not_a_dir) as downloader, caplog.at_level(logging.WARNING):
        assert downloader.fetch(server.url("/bundle"), len(BODY), sha(BODY)) == BODY
    assert "could not cache" in caplog.text


def test_a_malformed_digest_is_refused_before_it_names_a_file(downloader: Downloader) -> None:
    with pytest.raises(ValueError, match="sha256"):
        downloader.cached("../../etc/passwd", 10)


# --- what a mirror can serve wrong -----------------------------------------------


def test_an_oversized_content_length_is_refused_before_the_body(
    server: LoopbackServer, downloader: Downloader
) -> None:
    # The body never comes: reading it would wait for the read timeout.
    server.routes["/big"] = stall(b"x" * 10, declared=10 * len(BODY))
    url = server.url("/big")

    with pytest.raises(DownloadRefused, match="Content-Length") as caught:
        downloader.fetch(url, len(BODY), sha(BODY))
    assert caught.value.url == url
    assert isinstance(caught.value, InputError)
    assert server.requests("/big") == 1


def test_an_endless_body_is_cut_off_just_past_the_expected_length(
    server: LoopbackServer, cache: Path
) -> None:
    server.routes["/endless"] = endless()
    url = server.url("/endless")
    recorder = Recorder()

    with (
        Downloader(SETTINGS, cache, recorder) as downloader,
        pytest.raises(DownloadRefused) as caught,
    ):
        downloader.fetch(url, 100_000, sha(b""))

    assert url in str(caught.value)
    assert "endless" in str(caught.value) and "100000" in str(caught.value)
    # Nothing past the expected length was accepted, and the server was stopped
    # long before it could fill a disk (socket buffers hold a few MiB at most).
    assert recorder.advanced <= 100_000
    assert server.sent("/endless") < 64 << 20
    assert server.requests("/endless") == 1
    assert not (cache / sha(b"")).exists()


def test_a_short_body_is_refused(server: LoopbackServer, downloader: Downloader) -> None:
    url = server.url("/bundle")
    with pytest.raises(DownloadRefused, match=f"after {len(BODY)} of the expected"):
        downloader.fetch(url, len(BODY) + 1, sha(BODY + b"!"))


def test_a_body_cut_short_of_its_content_length_is_refused(
    server: LoopbackServer, downloader: Downloader
) -> None:
    server.routes["/cut"] = cut_short(BODY[:100], declared=len(BODY))
    with pytest.raises(DownloadRefused, match="malformed") as caught:
        downloader.fetch(server.url("/cut"), len(BODY), sha(BODY))
    assert caught.value.url == server.url("/cut")
    assert server.requests("/cut") == 1


def test_a_hash_mismatch_is_refused_and_not_cached(
    server: LoopbackServer, cache: Path, downloader: Downloader
) -> None:
    url = server.url("/bundle")
    expected = sha(BODY[::-1])  # same length, other bytes
    with pytest.raises(DownloadRefused) as caught:
        downloader.fetch(url, len(BODY), expected)

    message = str(caught.value)
    assert url in message and expected in message and sha(BODY) in message
    assert server.requests("/bundle") == 1
    assert not cache.exists() or not any(cache.iterdir())


def test_a_redirect_is_refused_not_followed(server: LoopbackServer, downloader: Downloader) -> None:
    server.routes["/moved"] = redirect(server.url("/bundle"), 301)
    with pytest.raises(DownloadRefused, match="redirect") as caught:
        downloader.fetch(server.url("/moved"), len(BODY), sha(BODY))
    assert caught.value.status == 301
    assert (server.requests("/moved"), server.requests("/bundle")) == (1, 0)


# --- network failures ----------------------------------------------------------


def test_a_server_stalling_mid_body_times_out_without_retry(
    server: LoopbackServer, cache: Path
) -> None:
    server.routes["/stall"] = stall(b"x" * 100, declared=len(BODY))
    settings = dataclasses.replace(SETTINGS, read_timeout_s=0.3)
    with Downloader(settings, cache) as downloader, pytest.raises(DownloadFailed) as caught:
        downloader.fetch(server.url("/stall"), len(BODY), sha(BODY))
    assert "timed out" in str(caught.value)
    assert isinstance(caught.value, HostFault)
    assert server.requests("/stall") == 1  # the body had started: no retry


def test_a_stall_before_the_first_byte_is_retried(server: LoopbackServer, cache: Path) -> None:
    server.routes["/slow"] = sequence(stall(), BODY)
    settings = dataclasses.replace(SETTINGS, read_timeout_s=0.3)
    with Downloader(settings, cache) as downloader:
        assert downloader.fetch(server.url("/slow"), len(BODY), sha(BODY)) == BODY
    assert server.requests("/slow") == 2


def test_a_trickling_server_hits_the_total_deadline(server: LoopbackServer, cache: Path) -> None:
    server.routes["/trickle"] = trickle(interval_s=0.05)
    settings = dataclasses.replace(SETTINGS, read_timeout_s=0.3, total_timeout_s=0.5)
    with Downloader(settings, cache) as downloader, pytest.raises(DownloadFailed) as caught:
        downloader.fetch(server.url("/trickle"), 10_000, sha(b""))
    assert "total_timeout_s" in str(caught.value)


@pytest.mark.parametrize("code", [500, 503, 429])
def test_a_transient_error_is_retried(
    server: LoopbackServer, downloader: Downloader, code: int
) -> None:
    server.routes["/flaky"] = sequence(status(code), BODY)
    assert downloader.fetch(server.url("/flaky"), len(BODY), sha(BODY)) == BODY
    assert server.requests("/flaky") == 2


def test_retries_stop_after_the_configured_number(
    server: LoopbackServer, downloader: Downloader
) -> None:
    server.routes["/down"] = status(502)
    with pytest.raises(DownloadFailed, match="502") as caught:
        downloader.fetch(server.url("/down"), len(BODY), sha(BODY))
    assert caught.value.status == 502
    assert server.requests("/down") == 1 + SETTINGS.retries


@pytest.mark.parametrize("code", [404, 403])
def test_not_found_and_forbidden_are_not_retried(
    server: LoopbackServer, downloader: Downloader, code: int
) -> None:
    url = server.url("/missing")
    server.routes["/missing"] = status(code)
    with pytest.raises(DownloadFailed) as caught:
        downloader.fetch(url, len(BODY), sha(BODY))
    assert (caught.value.url, caught.value.status) == (url, code)
    assert str(caught.value).startswith(f"{url}: HTTP {code}")
    assert server.requests("/missing") == 1


def test_a_refused_connection_fails_naming_the_url(downloader: Downloader) -> None:
    url = unused_url("/bundle.tar")
    with pytest.raises(DownloadFailed) as caught:
        downloader.fetch(url, 10, sha(b"0123456789"))
    assert caught.value.url == url
    assert url in str(caught.value)


# --- HttpxFetcher as python-tuf's fetcher ---------------------------------------


def test_tuf_download_bytes_through_the_fetcher(server: LoopbackServer) -> None:
    server.routes["/missing"] = status(404)
    with HttpxFetcher(SETTINGS) as fetcher:
        assert fetcher.download_bytes(server.url("/bundle"), len(BODY)) == BODY

        with pytest.raises(DownloadLengthMismatchError):
            fetcher.download_bytes(server.url("/bundle"), len(BODY) - 1)

        # TUF's Updater reads 403/404 as "no newer root": the status must come through.
        with pytest.raises(DownloadHTTPError) as caught:
            fetcher.download_bytes(server.url("/missing"), 100)
        assert caught.value.status_code == 404
        assert server.url("/missing") in str(caught.value)


def test_the_fetcher_refuses_other_schemes(tmp_path: Path) -> None:
    with HttpxFetcher(SETTINGS) as fetcher, pytest.raises(Exception, match="http and https"):
        fetcher.download_bytes((tmp_path / "x").as_uri(), 10)


# --- progress ------------------------------------------------------------------------


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_progress_is_silent_when_not_a_tty() -> None:
    stream = io.StringIO()
    progress = TerminalProgress(stream)
    progress.start("http://mirror/a", 100)
    progress.advance(100)
    progress.done()
    assert stream.getvalue() == ""


def test_terminal_progress_draws_one_line_and_erases_it() -> None:
    stream = FakeTerminal()
    progress = TerminalProgress(stream, min_interval_s=0)
    progress.start("http://mirror/a", 2 << 20)
    progress.advance(1 << 20)
    progress.done()

    output = stream.getvalue()
    assert "50%" in output and "1.0 MiB / 2.0 MiB" in output
    assert "\n" not in output
    assert output.endswith("\r")  # erased: the next output starts on a clean line
