"""A small threaded HTTP server with fault injection, the base of every stand-in.

Subclasses implement :meth:`StandIn.handle`. Every request is recorded (method, path, query, form,
time) so tests can assert what reached a stand-in, and what never did.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


def free_port(hosts: tuple[str, ...] | list[str] = ("127.0.0.1",)) -> int:
    """A port free on every one of ``hosts`` (the daemons of a cluster share one port)."""
    while True:
        with socket.socket() as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
        try:
            for host in hosts[1:]:
                with socket.socket() as s:
                    s.bind((host, port))
            return port
        except OSError:
            continue


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    body: bytes
    started: float
    finished: float = 0.0


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-encoded unless bytes
    headers: dict[str, str] = field(default_factory=dict)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class StandIn:
    """Serve :meth:`handle` on ``host:port`` (port 0 = any free port) until :meth:`stop`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.delay = 0.0  # seconds before every answer
        self.fail_status: int | None = None  # answer every request with this status
        self.blackhole = False  # accept, read, never answer
        self.garbage: bytes | None = None  # answer every request 200 with exactly these bytes
        self.poll_interval = 0.02  # how fast stop() takes effect; raise it for hundreds of stand-ins
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._released = threading.Event()
        self._connections: set[socket.socket] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        self._released.clear()
        self._server = _Server((self.host, self.port), self._handler_class())
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        args=(self.poll_interval,), daemon=True,
                                        name=f"standin-{self.host}:{self.port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop like a dead process: no listener, and every open (keep-alive) connection cut."""
        self._released.set()  # let black-holed requests go
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            connections, self._connections = self._connections, set()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def restart(self) -> None:
        """Stop and start on the same address; subclasses reset their state in :meth:`on_restart`."""
        self.stop()
        self.on_restart()
        self.start()

    def on_restart(self) -> None:
        """Hook: what a real daemon forgets when it restarts."""

    def handle(self, req: Recorded) -> Reply:  # pragma: no cover - abstract
        raise NotImplementedError

    def received(self, path_prefix: str = "", method: str | None = None) -> list[Recorded]:
        """Requests whose path starts with ``path_prefix`` (and of ``method``, when given)."""
        with self._lock:
            return [r for r in self.requests
                    if r.path.startswith(path_prefix) and method in (None, r.method)]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Go's servers (the real daemons) set TCP_NODELAY; without it headers and body go out
            # as two segments and the client's delayed ACK adds ~40 ms to every answer.
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with standin._lock:
                    standin._connections.add(self.connection)

            def finish(self) -> None:
                with standin._lock:
                    standin._connections.discard(self.connection)
                with contextlib.suppress(OSError):
                    super().finish()

            def _serve(self) -> None:
                started = time.monotonic()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                form = {}
                if "application/x-www-form-urlencoded" in self.headers.get("Content-Type", ""):
                    form = parse_qs(body.decode(), keep_blank_values=True)
                rec = Recorded(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                               form, body, started)
                with standin._lock:
                    standin.requests.append(rec)
                if standin.blackhole:
                    standin._released.wait(120)
                    self.close_connection = True
                    return
                if standin.delay:
                    time.sleep(standin.delay)
                if standin.fail_status:
                    reply = Reply(standin.fail_status, "Injected failure: stand-in told to fail")
                elif standin.garbage is not None:
                    reply = Reply(200, standin.garbage)
                else:
                    try:
                        reply = standin.handle(rec)
                    except Exception as e:  # a stand-in bug must show up as a 500, not a hang
                        reply = Reply(500, f"stand-in error: {type(e).__name__}: {e}")
                rec.finished = time.monotonic()
                payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type",
                                     reply.headers.get("Content-Type", "application/json"))
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (an injected delay)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        return Handler
