"""Run the web app under uvicorn: in the foreground (`digest serve`) or in a background thread."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Self

import uvicorn
from starlette.types import ASGIApp

from digest.exceptions import DigestError


def _config(asgi: ASGIApp, host: str, port: int, log_level: str) -> uvicorn.Config:
    # h11 and no websockets: the app needs neither httptools nor ws, and fewer moving parts.
    # proxy_headers: behind a TLS-terminating proxy on loopback, cookies get the Secure flag.
    return uvicorn.Config(
        asgi, host=host, port=port, log_level=log_level, http="h11", ws="none",
        lifespan="off", proxy_headers=True, server_header=False,
    )  # fmt: skip


def serve(asgi: ASGIApp, *, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve until SIGINT or SIGTERM."""
    server = uvicorn.Server(_config(asgi, host, port, "info"))
    server.run()
    if not server.started:
        raise DigestError(f"cannot listen on {host}:{port} (in use, or not allowed); pick --port")


class BackgroundServer:
    """Context manager: serve ``asgi`` on ``host`` and a free port in a thread; ``url`` is set."""

    def __init__(self, asgi: ASGIApp, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = uvicorn.Server(_config(asgi, host, port, "warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True, name="digest-web")
        self.host = host
        self.url = ""

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise DigestError(f"the web server did not start on {self.host}")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://{self.host}:{port}"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
