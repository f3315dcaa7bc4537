"""An httpcore network backend that connects only to checked addresses, within a deadline.

httpx resolves a host again when it connects, so an address check done beforehand can be
undone by a second DNS answer (rebinding). This backend never resolves: each exchange
registers the addresses it checked for each host (``exchange()``), and ``connect_tcp``
connects to those only. The URL keeps the host name, so the Host header, TLS SNI and the
certificate check all use the name.

httpx timeouts apply per socket operation, so a server sending one byte a second never
trips them. Every connect, TLS handshake, read and write here is bounded by what is left
of the exchange's deadline as well, so the whole exchange ends by then.
"""

from __future__ import annotations

import ssl
import threading
import time
import typing
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpcore

MIN_WAIT = 0.001  # a socket timeout of 0 would make it non-blocking, not "expired"


@dataclass(slots=True)
class Exchange:
    """One fetch in progress on this thread: its deadline and the checked addresses."""

    deadline: float  # time.monotonic() by which everything must be over
    pins: dict[str, list[str]] = field(default_factory=dict)  # host -> checked addresses

    def left(self) -> float:
        return self.deadline - time.monotonic()


_local = threading.local()


def current() -> Exchange | None:
    """The exchange running on this thread, if any."""
    ex: Exchange | None = getattr(_local, "exchange", None)
    return ex


@contextmanager
def exchange(deadline: float) -> Iterator[Exchange]:
    """Run one fetch (with its redirects and retries) under ``deadline`` on this thread."""
    previous = current()
    ex = Exchange(deadline)
    _local.exchange = ex
    try:
        yield ex
    finally:
        _local.exchange = previous


def _bounded(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` cut to what is left of the current exchange; ``error`` when nothing is."""
    ex = current()
    if ex is None:
        return timeout
    left = ex.left()
    if left <= 0:
        raise error("the exchange's deadline has passed")
    return max(MIN_WAIT, left if timeout is None else min(timeout, left))


class _Stream(httpcore.NetworkStream):
    """A network stream whose every operation also respects the exchange's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        wait = _bounded(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, wait))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class PinnedBackend(httpcore.NetworkBackend):
    """Connects to the addresses the current exchange checked for the host, never others."""

    def __init__(self) -> None:
        self._sync = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        ex = current()
        addresses = ex.pins.get(host.lower(), []) if ex is not None else []
        if not addresses:
            # Only reachable by a request made outside Fetcher.fetch: refuse, do not resolve.
            raise httpcore.ConnectError(f"no checked address for {host!r}")
        error: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            wait = _bounded(timeout, httpcore.ConnectTimeout)
            try:
                stream = self._sync.connect_tcp(
                    address, port, wait, local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc  # try the host's next address, as a browser would
                continue
            return _Stream(stream)
        assert error is not None  # addresses is not empty, so the loop ran
        raise error

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not fetched")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
