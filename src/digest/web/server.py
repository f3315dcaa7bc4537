"""Run the web app under uvicorn: in the foreground (`digest serve`) or in a background thread.

The access log never holds a credential: query strings of /confirm/, /e/, /u/, /p/ and /s/
paths, the token segment of /confirm/, /u/, /p/ and /s/ paths, and the values of token-like
query parameters (t, k, token, key) on any path are replaced before any handler sees the
line.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
import time
from types import TracebackType
from typing import Self

import uvicorn
from starlette.types import ASGIApp

from digest.config import Settings
from digest.exceptions import DigestError

REDACTED = "[redacted]"
_TOKEN_PATH = re.compile(r"^/(confirm|u|p|s)/[^/?]+")
_SECRET_QUERY = re.compile(r"^/(confirm|e|u|p|s)/")
# The archive's private key is ?k=; proof links use ?t=. Matched anywhere in a query string.
_TOKEN_PARAM = re.compile(r"(^|[&;])(t|k|token|key)=[^&;#]*", re.IGNORECASE)


def redact(path: str) -> str:
    """A request path as the log may show it: no tokens, no query string where they live."""
    if not _SECRET_QUERY.match(path):
        bare, mark, query = path.partition("?")
        return bare + mark + _TOKEN_PARAM.sub(rf"\1\2={REDACTED}", query)
    bare, _, query = path.partition("?")
    bare = _TOKEN_PATH.sub(lambda m: f"/{m.group(1)}/{REDACTED}", bare)
    return f"{bare}?{REDACTED}" if query else bare


class RedactTokens(logging.Filter):
    """Rewrites uvicorn's access-log records (client, method, path, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], redact(args[2]), args[3], args[4])
        return True


def _config(asgi: ASGIApp, host: str, port: int, log_level: str) -> uvicorn.Config:
    # h11 and no websockets: the app needs neither httptools nor ws, and fewer moving parts.
    # proxy_headers: behind a proxy on loopback, the client address (which the sign-in
    # throttle counts per client) is the one the proxy saw.
    config = uvicorn.Config(
        asgi,
        host=host,
        port=port,
        log_level=log_level,
        http="h11",
        ws="none",
        lifespan="off",
        proxy_headers=True,
        server_header=False,
    )
    access = logging.getLogger("uvicorn.access")  # configured by uvicorn.Config just now
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())
    return config


def serve_warnings(settings: Settings, host: str) -> list[str]:
    """What `digest serve` should warn about before it listens (one line each)."""
    lines = []
    base = settings.publication.base_url
    if not _loopback(host):
        if base.lower().startswith("https://"):
            lines.append(
                f"serving plain HTTP on {host}: put a TLS-terminating proxy in front of it "
                f"(publication.base_url is {base}) and bind 127.0.0.1, or other hosts see "
                "sign-in links, sessions and proof tokens in clear text"
            )
        else:
            lines.append(
                f"serving plain HTTP on {host} and publication.base_url ({base}) is not "
                "https: sign-in links, sessions and proof tokens cross the network in clear "
                "text; serve behind a TLS proxy and set an https base_url"
            )
    if not settings.approval.editors:
        lines.append("no editor can sign in: list approval.editors (name and email) in the config")
    return lines


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(asgi: ASGIApp, *, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve until SIGINT or SIGTERM."""
    server = uvicorn.Server(_config(asgi, host, port, "info"))
    server.run()
    if not server.started:
        raise DigestError(f"cannot listen on {host}:{port} (in use, or not allowed); pick --port")


class BackgroundServer:
    """Context manager: serve ``asgi`` on ``host`` and a free port in a thread; ``url`` is set."""

    def __init__(
        self, asgi: ASGIApp, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
    ) -> None:
        self._server = uvicorn.Server(_config(asgi, host, port, log_level))
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
