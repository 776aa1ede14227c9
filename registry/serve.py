"""A static HTTP server for a registry tree, for tests, demos and a LAN.

The registry is plain files (see registry.tuf_repo), so any web server or CDN
serves it; this one exists so tests exercise the real transport over loopback
and a developer can serve a registry with one command. It serves only files
below `directory`: no directory listings, and SimpleHTTPRequestHandler already
drops ".." and drive components from request paths.

A host with a ':' is an IPv6 address ("::1", "::"), served over an IPv6
socket and written in brackets in URLs; any other host is IPv4 or a name.
"""

from __future__ import annotations

import contextlib
import functools
import io
import socket
import threading
from collections.abc import Callable, Iterator
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from os import PathLike
from pathlib import Path
from typing import Any

from ruvector.errors import HostFault, InputError

__all__ = ["WILDCARD_HOSTS", "serve", "serve_forever"]

# Hosts that listen on every address: a URL naming one reaches nothing elsewhere.
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})


class _StaticFiles(SimpleHTTPRequestHandler):
    """Files only, and quiet: the CLI, not the server, decides what is printed."""

    def list_directory(self, path: str | PathLike[str]) -> io.BytesIO | None:
        # A listing would advertise every file; a TUF client never needs one.
        self.send_error(HTTPStatus.NOT_FOUND)
        return None

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


@contextlib.contextmanager
def serve(directory: Path, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `directory` from a background thread; yield its base URL.

    The URL has no trailing slash ("http://127.0.0.1:PORT", "http://[::1]:PORT");
    port 0 picks a free port. The server stops when the block exits.
    Raises InputError if `directory` is not a directory, HostFault if the
    address cannot be bound (a port outside 0-65535 included).
    """
    server = _make_server(directory, host, port)
    # shutdown() waits for the loop's next poll: a short interval makes the
    # block exit at once instead of up to half a second later.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="registry-http"
    )
    thread.start()
    try:
        yield _base_url(server, host)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def serve_forever(
    directory: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Serve `directory` in this thread until interrupted (KeyboardInterrupt propagates).

    `ready` is called with the base URL once the socket is bound, so a CLI
    can print it (the port is only known then when `port` is 0).
    Raises InputError and HostFault as serve() does.
    """
    server = _make_server(directory, host, port)
    try:
        if ready is not None:
            ready(_base_url(server, host))
        server.serve_forever()
    finally:
        server.server_close()


def _make_server(directory: Path, host: str, port: int) -> ThreadingHTTPServer:
    if not directory.is_dir():
        raise InputError(f"{directory}: not a directory, nothing to serve")
    handler = functools.partial(_StaticFiles, directory=str(directory))
    server_class = _IPv6Server if ":" in host else ThreadingHTTPServer
    try:
        return server_class((host, port), handler)
    # OverflowError: socket.bind's answer to a port outside 0-65535.
    except (OSError, OverflowError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise HostFault(f"cannot listen on {_netloc(host, port)}: {why}") from exc


def _base_url(server: ThreadingHTTPServer, host: str) -> str:
    return f"http://{_netloc(host, server.server_address[1])}"


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
