"""The HTTP(S) machinery of the emulator: a werkzeug server in a thread, with fault injection."""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wrappers import Response

__all__ = [
    "Fault",
    "RecordedRequest",
    "Route",
    "Router",
    "ServerThread",
]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the emulator saw it.

    ``route``: the route name (``"unknown"`` when none matched); ``path``: decoded, with doubled
    slashes collapsed; ``query``: parsed (name -> values); ``status``: the HTTP status answered
    (None for a connection reset); ``fault``: ``"status"``, ``"reset"``, ``"delay"`` or None;
    ``params``: the route's path parameters; ``started``: ``time.monotonic()`` at arrival.
    """

    route: str
    method: str
    host: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body_size: int
    status: int | None
    fault: str | None
    params: dict[str, str] = field(default_factory=dict)
    started: float = 0.0

    @property
    def is_blob(self) -> bool:
        return self.route.startswith("blob.")

    def header(self, name: str) -> str | None:
        """A request header, looked up case-insensitively."""
        wanted = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == wanted), None)


@dataclass
class Fault:
    """A programmed misbehaviour of one route, consumed one request at a time."""

    route: str
    kind: str  # "status", "reset" or "delay"
    times: int
    status: int = 503
    retry_after: str | None = None
    body: Any = None
    delay: float = 0.0
    method: str | None = None


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    pattern: re.Pattern[str]
    handler: Callable[..., Response]
    blob: bool = False


_PARAM = re.compile(r"\{(\w+)\}")


def compile_path(template: str) -> re.Pattern[str]:
    """'/a/{x}/b' -> a case-insensitive full-match regex with named groups."""
    parts: list[str] = []
    last = 0
    for match in _PARAM.finditer(template):
        parts.append(re.escape(template[last : match.start()]))
        parts.append(f"(?P<{match.group(1)}>[^/]+)")
        last = match.end()
    parts.append(re.escape(template[last:]))
    # Artifact paths contain slashes: '{path*}' is spelled '{path}' at the end and widened here.
    regex = "".join(parts)
    regex = regex.replace("(?P<artifact_path>[^/]+)", "(?P<artifact_path>.+)")
    regex = regex.replace("(?P<blob_path>[^/]+)", "(?P<blob_path>.+)")
    return re.compile(regex, re.IGNORECASE)


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(
        self,
        name: str,
        method: str,
        template: str,
        handler: Callable[..., Response],
        *,
        blob: bool = False,
    ) -> None:
        self.routes.append(Route(name, method.upper(), compile_path(template), handler, blob))

    def match(self, method: str, path: str, *, blob: bool) -> tuple[Route | None, dict[str, str]]:
        path = normalize_path(path)
        for route in self.routes:
            if route.blob != blob or route.method != method.upper():
                continue
            found = route.pattern.fullmatch(path)
            if found:
                return route, dict(found.groupdict())
        return None, {}

    @property
    def names(self) -> set[str]:
        return {route.name for route in self.routes}


def normalize_path(path: str) -> str:
    # The SDK builds some ARM URLs as '{resource_manager}/{id}' with a doubled slash.
    path = re.sub(r"/{2,}", "/", path)
    return path if path == "/" else path.rstrip("/")


class _Handler(WSGIRequestHandler):
    """Adds connection-reset faults (they must happen below WSGI) and connection tracking."""

    server: _Server
    timeout = 30  # an idle keep-alive connection frees its thread after this

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    def run_wsgi(self) -> None:
        host = self.headers.get("Host", "")
        if self.server.owner.take_reset_fault(
            self.command, self.path, host, dict(self.headers.items())
        ):
            # RST instead of FIN: SO_LINGER with a zero timeout, then close.
            with contextlib.suppress(OSError):
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            self.close_connection = True
            with contextlib.suppress(OSError):
                raw = self.connection
                if isinstance(raw, ssl.SSLSocket):
                    # Close the TCP socket under the TLS layer, without a TLS close_notify.
                    socket.socket(fileno=raw.detach()).close()
                else:
                    raw.close()
            return
        super().run_wsgi()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # the emulator keeps its own request log

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class _Server(ThreadedWSGIServer):
    daemon_threads = True
    owner: Any

    def __init__(self, *args: Any, tls: ssl.SSLContext | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tls = tls
        # werkzeug reads ssl_context to set wsgi.url_scheme; the handshake itself is done in the
        # connection's own thread (get_request below), so a slow client never blocks accept().
        self.ssl_context = tls
        self._connections: set[Any] = set()
        self._connections_lock = threading.Lock()

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        if self._tls is not None:
            sock = self._tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def track(self, connection: Any, *, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_all_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
            self._connections.clear()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up (or faults we caused) are not errors of the emulator


class ServerThread:
    """Runs one WSGI app on 127.0.0.1:<free port> (TLS) in a daemon thread."""

    def __init__(self, app: Callable[..., Any], owner: Any, tls: ssl.SSLContext | None) -> None:
        self._server = _Server("127.0.0.1", 0, app, _Handler, tls=tls)
        self._server.owner = owner
        self.port: int = self._server.port
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"azureml-emulator-{self.port}",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            # shutdown() waits (without a time limit) for serve_forever to leave its loop: wait
            # for it from a helper thread, for at most `timeout`.
            stopper = threading.Thread(
                target=self._server.shutdown, name="emulator-stopper", daemon=True
            )
            stopper.start()
            stopper.join(timeout)
        self._thread.join(timeout)
        self._server.close_all_connections()
        self._server.server_close()
        if self._thread.is_alive():  # pragma: no cover - would be a bug in the emulator
            raise RuntimeError("the emulator server thread did not stop")


def parse_query(query_string: str) -> dict[str, list[str]]:
    return parse_qs(query_string, keep_blank_values=True)


def host_without_port(host: str) -> str:
    if host.startswith("["):
        return host.split("]", maxsplit=1)[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host
