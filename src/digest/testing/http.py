"""A real threaded HTTP server on 127.0.0.1 for tests: files under a root plus explicit routes."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

CONTENT_TYPES = {
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".xml": "application/xml",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}


@dataclass
class _Route:
    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    trickle: float = 0.0  # seconds between single bytes of the head: a slowloris server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops bursts of parallel connects for a second
    fixture: FixtureServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out on purpose leave broken pipes behind; that is the test's point.
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._answer("GET")

    def do_HEAD(self) -> None:
        self._answer("HEAD")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._answer("POST", self.rfile.read(length))

    def _answer(self, method: str, body: bytes = b"") -> None:
        fixture = self.server.fixture
        path = urlsplit(self.path).path
        with fixture.lock:
            fixture.requests.append(
                (method, self.path, {k.lower(): v for k, v in self.headers.items()})
            )
            fixture.bodies.append(body)
        route = fixture.next_route(self.path) or fixture.next_route(path) or fixture.file(path)
        if route is None:
            route = _Route(b"not found\n", 404, {"Content-Type": "text/plain"})
        if route.delay:
            time.sleep(route.delay)
        if route.trickle:
            self._trickle(route)
            return
        self.send_response(route.status)
        names = {k.lower() for k in route.headers}
        for name, value in route.headers.items():
            if value:
                self.send_header(name, value)
        if "content-length" not in names:
            self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(route.body)

    def _trickle(self, route: _Route) -> None:
        """Send the status line and headers one byte at a time, each after a pause, so
        that every read a client makes succeeds and no per-read timeout ever fires."""
        head = f"HTTP/1.1 {route.status} OK\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in route.headers.items()
        )
        head += "X-Padding: " + "." * 400 + "\r\n"
        stop = self.server.fixture.stopping
        try:
            for byte in head.encode():
                if stop.wait(route.trickle):
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            self.wfile.write(b"\r\n" + route.body)
        except OSError:
            return  # the client gave up, which is what a deadline is for

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FixtureServer:
    """``with FixtureServer(root) as srv: fetch(srv.base_url + "/feed.rss")``.

    ``requests`` records each request's (method, path, headers), and ``bodies`` at the same
    index the body it carried (a POST's; b"" for GET and HEAD). A POST gets the same routed
    answers as a GET.
    """

    def __init__(self, root: Path | None = None, *, host: str = "127.0.0.1") -> None:
        self.root = root
        self.stopping = threading.Event()
        self.routes: dict[str, list[_Route]] = {}
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.bodies: list[bytes] = []
        self.lock = threading.Lock()  # keeps requests and bodies in step
        self._httpd = _Server((host, 0), _Handler)
        self._httpd.fixture = self
        self.port: int = self._httpd.server_address[1]
        self.base_url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        return self.base_url + path

    def route(
        self,
        path: str,
        body: bytes,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        trickle: float = 0.0,
    ) -> None:
        """Answer ``path`` (with or without its query) with exactly this response.

        A header given as "" is not sent: ``{"Content-Length": ""}`` makes the body end only
        when the connection closes (the server speaks HTTP/1.0). ``trickle`` sends the head
        one byte every that many seconds (and stops when the server stops).
        """
        self.routes[path] = [_Route(body, status, dict(headers or {}), delay, trickle)]

    def route_sequence(self, path: str, answers: list[tuple[int, bytes, dict[str, str]]]) -> None:
        """Answer ``path`` with each (status, body, headers) in turn; the last one repeats."""
        self.routes[path] = [_Route(body, status, dict(hdrs)) for status, body, hdrs in answers]

    def next_route(self, path: str) -> _Route | None:
        with self._lock:
            answers = self.routes.get(path)
            if not answers:
                return None
            return answers.pop(0) if len(answers) > 1 else answers[0]

    def redirect(self, path: str, location: str, *, status: int = 302) -> None:
        self.route(path, b"", status=status, headers={"Location": location})

    def file(self, path: str) -> _Route | None:
        if self.root is None:
            return None
        root = self.root.resolve()
        target = (root / path.lstrip("/")).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            return None
        kind = CONTENT_TYPES.get(target.suffix, "application/octet-stream")
        return _Route(target.read_bytes(), 200, {"Content-Type": kind})

    def start(self) -> FixtureServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> FixtureServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
