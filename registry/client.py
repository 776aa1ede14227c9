"""One session with a registry: TUF metadata, the index, and bundle downloads.

    client = RegistryClient(url, root, state_dir)
    index = client.index()                  # refresh: timestamp, snapshot, targets, index.json
    raws = client.fetch_bundles([entry...]) # each listed by its publisher's role, in parallel

Trust flows one way: the root pinned in ruvector.toml signs the top-level
roles; the targets role signs index.json and delegates `<publisher>/...` to
each publisher's role; that role lists each bundle's length and sha256. A
file is fetched only after its listing was verified, and its bytes are
checked against that listing while they stream. The metadata directory
keeps the newest verified metadata, so a mirror can never move this
machine back to an older index (python-tuf's rollback checks).

Failures come in two kinds: RegistryUnreachable (a HostFault: the network;
a reconcile may then work from the download cache) and RegistryRefused (an
InputError: the registry or a mirror served something that fails
verification; never worked around).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from tuf.api.exceptions import (
    DownloadError,
    DownloadHTTPError,
    DownloadLengthMismatchError,
    ExpiredMetadataError,
    RepositoryError,
    UnsignedMetadataError,
)
from tuf.api.metadata import TargetFile
from tuf.ngclient.config import UpdaterConfig
from tuf.ngclient.updater import Updater

from reconciler._validation import size_text
from reconciler.bundle import MAX_BUNDLE_BYTES
from registry.fetch import (
    Downloader,
    DownloadFailed,
    DownloadRefused,
    FetchSettings,
    HttpxFetcher,
    Progress,
    Request,
)
from registry.index import INDEX_PATH, MAX_INDEX_BYTES, Entry, Index, parse_index
from ruvector.errors import ConfigError, HostFault, InputError

_SHA256_NAME = re.compile(r"[0-9a-f]{64}")  # how the download cache names its files


class RegistryUnreachable(HostFault):
    """The registry could not be reached (network, timeouts, HTTP errors)."""


class RegistryRefused(InputError):
    """What the registry served failed verification: nothing of it is used."""


@dataclass(frozen=True)
class PinnedRoot:
    """The registry's root of trust: root.json bytes and where they were pinned."""

    data: bytes
    origin: str  # for messages: a file, or "ruvector.toml: plugins.registry_root"
    key: str = "plugins.registry_root"


class RegistryClient:
    """A session with one registry; one index refresh per session (as tuf allows)."""

    def __init__(
        self,
        url: str,
        root: PinnedRoot,
        state_dir: Path,
        *,
        settings: FetchSettings | None = None,
        progress: Progress | None = None,
        fetcher: HttpxFetcher | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._root = root
        self._settings = settings or FetchSettings()
        base = state_dir / "registry"
        # One metadata directory per pinned root, whatever the URL: mirrors of
        # one registry share what was verified, so switching to another
        # mirror (or writing localhost for 127.0.0.1) cannot roll this
        # machine back to an older index.
        slug = hashlib.sha256(root.data).hexdigest()[:16]
        self.metadata_dir = base / "metadata" / slug
        self.cache_dir = base / "cache"
        self._downloader = Downloader(self._settings, self.cache_dir, progress)
        # TUF's fetcher: our own unless given (bench/ passes one that counts bytes).
        self._fetcher = fetcher
        self._updater: Updater | None = None
        self._index: Index | None = None
        self.index_sha256: str | None = None  # of the index this session verified

    # -- the session -------------------------------------------------------------

    def index(self) -> Index:
        """Refresh the metadata and return the verified index.

        Raises RegistryUnreachable, RegistryRefused, or ConfigError when the
        pinned root itself is not a valid TUF root.
        """
        if self._index is None:
            info = self._targetinfo(INDEX_PATH, "the registry's targets role")
            request = self._request(info, MAX_INDEX_BYTES)
            raw = self.fetch([request])[0]
            self._index = parse_index(raw, f"{self.url}/targets/{INDEX_PATH}")
            self.index_sha256 = request.sha256
        return self._index

    def prune_cache(self, keep: set[str]) -> None:
        """Delete cached files but `keep` (sha256s) and the current index.

        Only after this session reached the registry: offline, the cache is
        all there is. Without this, every index and every bundle ever fetched
        (refused ones too) would stay on disk for good.
        """
        if self.index_sha256 is None:
            return
        wanted = keep | {self.index_sha256}
        try:
            names = [p for p in self.cache_dir.iterdir() if _SHA256_NAME.fullmatch(p.name)]
        except OSError:
            return
        for path in names:
            if path.name not in wanted:
                with contextlib.suppress(OSError):
                    path.unlink()

    def bundle_requests(self, entries: Sequence[Entry]) -> list[Request]:
        """Each entry's bundle as its publisher's role lists it (length and sha256).

        Raises RegistryRefused for a bundle its publisher's role does not list,
        or lists as larger than any bundle may be.
        """
        out = []
        for e in entries:
            info = self._targetinfo(e.bundle, f"publisher '{e.publisher}'")
            out.append(self._request(info, MAX_BUNDLE_BYTES))
        return out

    def fetch_each(
        self, requests: Sequence[Request]
    ) -> list[bytes | RegistryRefused | RegistryUnreachable]:
        """Each request's bytes or its own failure: one bad file spoils no other.

        Downloads run in parallel once; after a failed batch, the files that
        did arrive come from the download cache, and the failed ones are not
        asked for again.
        """
        try:
            return list(self._downloader.fetch_all(requests))
        except (DownloadRefused, DownloadFailed) as batch:
            failed = {f.url: f for f in batch.failures}
        out: list[bytes | RegistryRefused | RegistryUnreachable] = []
        for r in requests:
            failure = failed.get(r.url)
            if failure is None:
                try:
                    out.append(self.fetch([r])[0])
                except (RegistryRefused, RegistryUnreachable) as exc:
                    out.append(exc)
            elif isinstance(failure, DownloadRefused):
                out.append(RegistryRefused(f"registry {self.url}: {failure}"))
            else:
                out.append(RegistryUnreachable(f"registry {self.url}: {failure}"))
        return out

    def fetch(self, requests: Sequence[Request]) -> list[bytes]:
        """Download (or take from the cache) every request, in parallel."""
        try:
            return self._downloader.fetch_all(requests)
        except DownloadRefused as exc:
            raise RegistryRefused(f"registry {self.url}: {_one(exc)}") from None
        except DownloadFailed as exc:
            raise RegistryUnreachable(f"registry {self.url}: {_one(exc)}") from None

    def cached(self, sha256: str, length: int) -> bytes | None:
        """A bundle from the download cache, re-hashed; None if absent (no network)."""
        return self._downloader.cached(sha256, length)

    def close(self) -> None:
        self._downloader.close()
        if self._fetcher is not None:
            self._fetcher.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- TUF -------------------------------------------------------------------

    def _targetinfo(self, path: str, lister: str) -> TargetFile:
        updater = self._tuf()
        try:
            info = updater.get_targetinfo(path)
        except DownloadLengthMismatchError as exc:
            raise RegistryRefused(f"registry {self.url}: metadata too large: {exc}") from None
        except DownloadHTTPError as exc:
            reason = _cause(exc)
            if exc.status_code == 404 and "timestamp.json" in reason:
                reason += (
                    ": the server answers but holds no registry at this URL; registry_url "
                    "must be the served directory, the one holding metadata/ and targets/"
                )
            raise RegistryUnreachable(f"registry {self.url} is unreachable: {reason}") from None
        except DownloadError as exc:
            reason = _cause(exc)
            raise RegistryUnreachable(f"registry {self.url} is unreachable: {reason}") from None
        except RepositoryError as exc:
            hint = ""
            if isinstance(exc, ExpiredMetadataError):
                now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
                hint = (
                    f"; the registry must re-sign it (`ruvector registry refresh`), unless "
                    f"this machine's clock is wrong: it says {now}"
                )
            if isinstance(exc, UnsignedMetadataError):
                hint = (
                    f"; if this machine never reached this registry before, check that "
                    f"plugins.registry_root ({self._root.origin}) is the root of the "
                    f"registry at registry_url"
                )
            raise RegistryRefused(
                f"registry {self.url}: its metadata failed verification "
                f"({type(exc).__name__}: {exc}){hint}"
            ) from None
        except OSError as exc:
            raise HostFault(f"cannot keep registry metadata in {self.metadata_dir}: {exc}") from exc
        if info is None:
            raise RegistryRefused(f"registry {self.url}: {path} is not listed by {lister}")
        return info

    def _tuf(self) -> Updater:
        if self._updater is None:
            self._fetcher = self._fetcher or _MetadataFetcher(self._settings)
            try:
                self.metadata_dir.mkdir(parents=True, exist_ok=True)
                self._updater = Updater(
                    str(self.metadata_dir),
                    f"{self.url}/metadata/",
                    target_base_url=f"{self.url}/targets/",
                    fetcher=self._fetcher,
                    config=UpdaterConfig(),
                    bootstrap=self._root.data,
                )
            except OSError as exc:
                raise HostFault(
                    f"cannot keep registry metadata in {self.metadata_dir}: {exc}"
                ) from exc
            except (RepositoryError, ValueError) as exc:
                raise ConfigError(
                    self._root.origin, self._root.key, f"not a valid TUF root.json: {exc}"
                ) from None
        return self._updater

    def _request(self, info: TargetFile, cap: int) -> Request:
        sha256 = info.hashes.get("sha256")
        if sha256 is None:
            raise RegistryRefused(f"registry {self.url}: {info.path} is listed without a sha256")
        # The listed length bounds the download: a hostile listing must not lift the bound.
        if info.length > cap:
            raise RegistryRefused(
                f"registry {self.url}: {info.path} is listed at {info.length} bytes, "
                f"over the {size_text(cap)} it may have"
            )
        # Consistent snapshots: target files are stored under their hash.
        directory, sep, name = info.path.rpartition("/")
        return Request(f"{self.url}/targets/{directory}{sep}{sha256}.{name}", info.length, sha256)


class _MetadataFetcher(HttpxFetcher):
    """HttpxFetcher whose length errors name the file: TUF's own give only the numbers."""

    def download_bytes(self, url: str, max_length: int) -> bytes:
        try:
            return super().download_bytes(url, max_length)
        except DownloadLengthMismatchError as exc:
            if str(exc).startswith(url):
                raise  # ours (a Content-Length too large) already names it
            raise DownloadLengthMismatchError(f"{url}: {exc}") from None


def _one(exc: DownloadFailed | DownloadRefused) -> str:
    """A batch's message, or its one failure's: "1 of 1 downloads failed" says nothing."""
    return str(exc.failures[0]) if len(exc.failures) == 1 else str(exc)


def _cause(exc: BaseException) -> str:
    """The first message in a tuf DownloadError chain that names the file
    (our fetcher's do), else the innermost (httpx's)."""
    while "://" not in str(exc) and exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc) or type(exc).__name__
