"""Which addresses may be fetched, and an HTTP transport that connects only to those.

The address rules (``is_public_address``, ``is_metadata_address``) are what the hardened
client (digest.http) checks every host against, before each hop.

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

import ipaddress
import socket
import ssl
import threading
import time
import typing
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

import httpcore
import httpx

MIN_WAIT = 0.001  # a socket timeout of 0 would make it non-blocking, not "expired"
# Cloud metadata endpoints, refused even with allow_private: a feed URL (or a redirect) must
# never read instance credentials. Link-local ranges are refused as a whole too.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog"})

Resolver = Callable[[str], list[str]]
AddressCheck = Callable[[str], bool]


def system_resolver(host: str) -> list[str]:
    """Every address ``host`` resolves to through the system resolver."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def parse_address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address ``value`` spells (an IPv4-mapped IPv6 one as IPv4), else None."""
    try:
        addr = ipaddress.ip_address(value.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


# Both are pure functions of the address text, asked a few times per request: parsing an
# address with ipaddress costs more than the rest of the check.
@lru_cache(maxsize=4096)
def is_metadata_address(value: str) -> bool:
    """True for cloud metadata endpoints and link-local addresses: never fetched."""
    addr = parse_address(value)
    return addr is None or addr in METADATA_ADDRESSES or addr.is_link_local


@lru_cache(maxsize=4096)
def is_public_address(value: str) -> bool:
    """True when ``value`` is a globally routable unicast address we may connect to."""
    addr = parse_address(value)
    if addr is None or is_metadata_address(value):
        return False
    return not (
        addr.is_loopback
        or addr.is_private
        or addr.is_link_local
        or addr.is_reserved
        or addr.is_multicast
        or addr.is_unspecified
        or not addr.is_global
    )


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
            # Only reachable by a request made outside Fetcher: refuse, do not resolve.
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


class PinnedTransport(httpx.HTTPTransport):
    """httpx's transport on a pool whose network backend connects to pinned addresses.

    httpx.HTTPTransport takes no network backend, so its pool is replaced by an
    equivalent one that has ours (same limits and TLS context as httpx would build).
    """

    def __init__(self, limits: httpx.Limits, tls: ssl.SSLContext | None) -> None:
        tls = tls or httpx.create_ssl_context(trust_env=False)
        super().__init__(verify=tls, limits=limits, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=tls,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PinnedBackend(),
        )
