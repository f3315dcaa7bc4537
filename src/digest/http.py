"""The one hardened HTTP client: schemes, addresses, redirects, size caps, retries, deadline."""

from __future__ import annotations

import email.utils
import random
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType

import httpx

from digest.exceptions import DeadlineExceeded, FetchError
from digest.netpin import (
    METADATA_HOSTS,
    AddressCheck,
    Exchange,
    PinnedTransport,
    Resolver,
    exchange,
    is_metadata_address,
    is_public_address,
    parse_address,
    system_resolver,
)
from digest.schema import internal, setting
from digest.version import __version__

ALLOWED_SCHEMES = ("http", "https")
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
RETRY_CODES = frozenset({429, 500, 502, 503, 504})
RETRY_AFTER_CAP = 5.0
API_ACCEPT = "application/json, */*;q=0.5"  # what POST asks for, unless told otherwise
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/xml;q=0.9,"
    " text/xml;q=0.9, application/json;q=0.9, text/html;q=0.8, */*;q=0.5"
)


@dataclass(frozen=True, slots=True)
class FetchSettings:
    """Limits for every fetch: the config's ``fetch`` section, plus fixed internals."""

    timeout: float = setting(10.0, "Connect and read timeout per request, seconds.")
    deadline: float = setting(30.0, "Each source's whole exchange, retries included, seconds.")
    max_bytes: int = setting(5_000_000, "Largest (decoded) response accepted.")
    retries: int = setting(2, "Retries on connection errors, 5xx and 429.")
    concurrency: int = setting(32, "Requests in flight at once, over all hosts.")
    per_host: int = setting(4, "Requests in flight at once to one host.")
    # Used by collection, not by the client: flag a source after this many failed runs.
    failure_alert: int = setting(3, "Flag a source failing this many runs in a row.")
    max_redirects: int = internal(5)
    user_agent: str = internal(f"digest/{__version__} (+https://github.com/digest-mailer/digest)")


@dataclass(frozen=True, slots=True)
class Response:
    """An answer with its decoded body: from ``fetch`` a 2xx, or a 304 with an empty body;
    from ``post`` whatever status the server gave."""

    url: str
    status: int
    body: bytes
    headers: Mapping[str, str]


class _Decoder:
    """Content-Encoding decoding with a bounded output, so a gzip bomb cannot inflate."""

    def __init__(self, encoding: str, url: str) -> None:
        self._url = url
        self._raw = encoding in ("", "identity")
        self._obj: zlib._Decompress | None = None
        self._deflate = encoding == "deflate"
        if encoding in ("gzip", "x-gzip"):
            self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif not (self._raw or self._deflate):
            raise FetchError(f"{url}: unsupported Content-Encoding {encoding!r}")

    def feed(self, chunk: bytes, room: int) -> bytes:
        """Decode ``chunk``, producing at most ``room`` bytes (more means over the cap)."""
        if self._raw:
            return chunk
        if self._obj is None:
            # "deflate" is meant to be zlib-wrapped, but some servers send raw deflate.
            wrapped = (
                len(chunk) >= 2 and chunk[0] & 0x0F == 8 and (chunk[0] << 8 | chunk[1]) % 31 == 0
            )
            self._obj = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        try:
            out = self._obj.decompress(chunk, room)
            while self._obj.unconsumed_tail and len(out) < room:
                out += self._obj.decompress(self._obj.unconsumed_tail, room - len(out))
        except zlib.error as exc:
            raise FetchError(f"{self._url}: corrupt compressed body ({exc})") from exc
        if self._obj.unconsumed_tail:
            out += b"\x00"  # more output is pending: signal "over the cap" without inflating it
        return out


class Fetcher:
    """Fetches http(s) URLs safely; share one instance between threads.

    Every exchange (redirects and retries included) ends within ``settings.deadline``
    seconds, and connects only to the addresses it checked (see digest.netpin).
    ``resolver`` is injectable for tests (DNS is the one thing they fake), and so is
    ``is_public``, the rule for which addresses need ``allow_private``.
    """

    def __init__(
        self,
        *,
        settings: FetchSettings = FetchSettings(),
        transport: httpx.BaseTransport | None = None,
        resolver: Resolver | None = None,
        is_public: AddressCheck = is_public_address,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._resolver = resolver or system_resolver
        self._is_public = is_public
        self._sleep = sleep
        self._global = threading.BoundedSemaphore(max(1, settings.concurrency))
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._hosts_lock = threading.Lock()
        # Two pools, so a connection opened for an allow_private source is never reused by
        # a source without it (the pool is keyed by host name, not by address).
        self._transport = transport
        self._clients: dict[bool, httpx.Client] = {}
        self._clients_lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None

    def _client(self, private: bool) -> httpx.Client:
        with self._clients_lock:
            client = self._clients.get(private)
            if client is None:
                client = self._clients[private] = self._make_client(self._transport)
            return client

    def _make_client(self, transport: httpx.BaseTransport | None) -> httpx.Client:
        s = self.settings
        limits = httpx.Limits(
            max_connections=max(1, s.concurrency),
            max_keepalive_connections=max(1, s.concurrency),
        )
        if transport is None and self._tls is None:
            self._tls = httpx.create_ssl_context(trust_env=False)  # loading CAs takes ~25 ms
        return httpx.Client(
            transport=transport or PinnedTransport(limits, self._tls),
            timeout=httpx.Timeout(s.timeout),
            follow_redirects=False,
            trust_env=False,
            headers={
                "User-Agent": s.user_agent,
                "Accept": ACCEPT,
                "Accept-Encoding": "gzip, deflate",
            },
        )

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._clients_lock:
            for client in self._clients.values():
                client.close()

    def fetch(
        self,
        url: str,
        *,
        allow_private: bool = False,
        etag: str | None = None,
        last_modified: str | None = None,
        deadline: float | None = None,
    ) -> Response:
        """GET ``url``, following redirects ourselves so every hop is checked.

        ``deadline`` is a ``time.monotonic()`` value (default: ``settings.deadline`` from
        now); past it the exchange stops with DeadlineExceeded, whatever the server does.
        """
        if deadline is None:
            deadline = time.monotonic() + self.settings.deadline
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        seen: set[str] = set()
        current = url
        with exchange(deadline) as ex:
            for _hop in range(self.settings.max_redirects + 1):
                hop = "" if current == url else f"redirect to {current}: "
                where = f"{url}: {hop}"
                target = self._check_url(current, ex, allow_private=allow_private, where=where)
                seen.add(str(target))
                result = self._get_with_retries(target, headers, ex, allow_private)
                if isinstance(result, Response):
                    return result
                try:
                    nxt = str(target.join(result))
                except (httpx.InvalidURL, ValueError) as exc:
                    raise FetchError(f"{url}: bad redirect Location {result!r} ({exc})") from exc
                if nxt in seen:
                    raise FetchError(f"{url}: redirect loop at {nxt}")
                current = nxt
        raise FetchError(f"{url}: too many redirects (more than {self.settings.max_redirects})")

    def post(
        self,
        url: str,
        *,
        json: object = None,
        form: Mapping[str, str] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        allow_private: bool = False,
        deadline: float | None = None,
    ) -> Response:
        """POST one body to ``url`` (an HTTP API) and return the answer, whatever its status.

        The body is ``json`` (serialised as application/json), ``form`` (URL-encoded) or
        ``content`` (these bytes; give their Content-Type in ``headers``), at most one.
        ``headers`` (Authorization, say) go with this request only. The checks are those of
        ``fetch``: scheme, the host's addresses checked and pinned (``allow_private``), the
        size cap on the answer, and the whole-exchange ``deadline`` (DeadlineExceeded).
        Unlike ``fetch``, a redirect is returned, not followed (the Authorization header
        must not travel to where a server points), and nothing is retried: a repeated POST
        can send a message twice, so retrying is the caller's decision.
        """
        if sum(body is not None for body in (json, form, content)) > 1:
            raise ValueError("post() takes one body: json, form or content")
        if deadline is None:
            deadline = time.monotonic() + self.settings.deadline
        sent = {"Accept": API_ACCEPT, **(headers or {})}
        with exchange(deadline) as ex:
            target = self._check_url(url, ex, allow_private=allow_private, where=f"{url}: ")
            with self._slot(target.host, ex):
                try:
                    with self._client(allow_private).stream(
                        "POST", target, json=json, data=form, content=content, headers=sent
                    ) as resp:
                        body = self._read_body(target, resp, ex)
                        return Response(str(target), resp.status_code, body, _headers(resp))
                except httpx.TransportError as exc:  # timeouts included
                    if ex.left() <= 0:
                        raise self._late(target) from exc
                    raise FetchError(f"{url}: {_failure(exc, self.settings.timeout)}") from exc

    def _late(self, url: httpx.URL | str) -> DeadlineExceeded:
        return DeadlineExceeded(f"{url}: no answer within {self.settings.deadline:g} s")

    def _check_url(self, url: str, ex: Exchange, *, allow_private: bool, where: str) -> httpx.URL:
        """``url`` parsed with its host's checked addresses pinned in ``ex``.

        FetchError (its message starting with ``where``) for a wrong scheme, no host, a
        metadata address (always), or a non-public address without ``allow_private``.
        """
        try:
            parsed = httpx.URL(url)
            host = parsed.raw_host.decode("ascii").lower()
        except (httpx.InvalidURL, ValueError) as exc:
            raise FetchError(f"{where}invalid URL ({exc})") from exc
        if parsed.scheme not in ALLOWED_SCHEMES:
            raise FetchError(
                f"{where}scheme {parsed.scheme or '(none)'!r} is not allowed (only http, https)"
            )
        if not host:
            raise FetchError(f"{where}no host in URL")
        if host.rstrip(".") in METADATA_HOSTS:
            raise FetchError(
                f"{where}host {host!r} is a cloud metadata service; it is never fetched"
            )
        addresses = [host] if parse_address(host) is not None else self._resolve(host, ex, where)
        if not addresses:
            raise FetchError(f"{where}host {host!r} has no address")
        meta = [a for a in addresses if is_metadata_address(a)]
        if meta:
            raise FetchError(
                f"{where}host {host!r} resolves to {meta[0]}, a metadata or link-local address;"
                " it is never fetched, allow_private or not"
            )
        bad = [a for a in addresses if not self._is_public(a)]
        if bad and not allow_private:
            raise FetchError(
                f"{where}host {host!r} resolves to non-public address {bad[0]};"
                " set allow_private for this source if that is intended"
            )
        ex.pins[host] = addresses
        return parsed

    def _resolve(self, host: str, ex: Exchange, where: str) -> list[str]:
        """``host``'s addresses; the lookup runs aside so a hung resolver meets the deadline."""
        out: list[list[str]] = []
        err: list[BaseException] = []

        def lookup() -> None:
            try:
                out.append(self._resolver(host))
            except (OSError, UnicodeError) as exc:
                err.append(exc)

        worker = threading.Thread(target=lookup, name=f"digest-dns-{host}", daemon=True)
        worker.start()
        worker.join(max(0.0, ex.left()))
        if err:
            raise FetchError(f"{where}cannot resolve host {host!r} ({err[0]})") from err[0]
        if not out:  # a deadline, not a refusal: collect reports the source as late
            raise DeadlineExceeded(
                f"no answer within {self.settings.deadline:g} s (resolving {host})"
            )
        return out[0]

    def _get_with_retries(
        self, url: httpx.URL, headers: dict[str, str], ex: Exchange, private: bool
    ) -> Response | str:
        """A Response, or the Location of a redirect; retries transient failures."""
        attempt = 0
        while True:
            with self._slot(url.host, ex):
                result = self._get_once(url, headers, ex, private)
            if not isinstance(result, _Retry):
                return result
            if attempt >= self.settings.retries:
                raise FetchError(f"{url}: {result.reason}") from result.cause
            delay = result.retry_after
            if delay is None:
                # Exponential backoff with jitter, so many sources do not retry in step.
                delay = min(0.5 * 2**attempt, RETRY_AFTER_CAP) + random.uniform(0, 0.25)
            if delay >= ex.left():
                raise FetchError(
                    f"{url}: {result.reason} (no time left to retry within"
                    f" {self.settings.deadline:g} s)"
                ) from result.cause
            attempt += 1
            self._sleep(delay)

    @contextmanager
    def _slot(self, host: str, ex: Exchange) -> Iterator[None]:
        """Hold one of the global and one of ``host``'s request slots (not while backing off)."""
        with self._hosts_lock:
            per_host = self._hosts.get(host)
            if per_host is None:
                per_host = self._hosts[host] = threading.BoundedSemaphore(
                    max(1, self.settings.per_host)
                )
        if not per_host.acquire(timeout=max(0.0, ex.left())):
            raise self._late(host)
        try:
            if not self._global.acquire(timeout=max(0.0, ex.left())):
                raise self._late(host)
            try:
                yield
            finally:
                self._global.release()
        finally:
            per_host.release()

    def _get_once(
        self, url: httpx.URL, headers: dict[str, str], ex: Exchange, private: bool
    ) -> Response | str | _Retry:
        try:
            with self._client(private).stream("GET", url, headers=headers) as resp:
                status = resp.status_code
                if status in REDIRECT_CODES:
                    location: str = resp.headers.get("location", "")
                    if not location:
                        raise FetchError(f"{url}: HTTP {status} redirect without Location")
                    return location
                if status in RETRY_CODES:
                    return _Retry(f"HTTP {status} {resp.reason_phrase}", _retry_after(resp))
                if status == 304:
                    return Response(str(url), 304, b"", _headers(resp))
                if not 200 <= status < 300:
                    raise FetchError(f"{url}: HTTP {status} {resp.reason_phrase}")
                body = self._read_body(url, resp, ex)
                return Response(str(url), status, body, _headers(resp))
        except httpx.TransportError as exc:  # timeouts included
            if ex.left() <= 0:
                raise self._late(url) from exc
            return _Retry(_failure(exc, self.settings.timeout), None, exc)

    def _read_body(self, url: httpx.URL, resp: httpx.Response, ex: Exchange) -> bytes:
        cap = self.settings.max_bytes
        encoding = resp.headers.get("content-encoding", "").strip().lower()
        declared = resp.headers.get("content-length", "")
        if encoding in ("", "identity") and declared.isdigit() and int(declared) > cap:
            raise FetchError(f"{url}: body of {declared} bytes is over the {cap} byte limit")
        decoder = _Decoder(encoding, str(url))
        parts: list[bytes] = []
        size = 0
        for chunk in resp.iter_raw():
            out = decoder.feed(chunk, cap - size + 1)
            size += len(out)
            if size > cap:
                raise FetchError(f"{url}: body is over the {cap} byte limit (after decoding)")
            parts.append(out)
            if ex.left() <= 0:
                raise self._late(url)
        return b"".join(parts)


@dataclass(frozen=True, slots=True)
class _Retry:
    """A failure worth another attempt: why, the server's Retry-After, the error behind it."""

    reason: str
    retry_after: float | None
    cause: BaseException | None = None


def _failure(exc: httpx.TransportError, timeout: float) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout:g}s"
    return f"connection failed ({type(exc).__name__}: {exc})"


def _headers(resp: httpx.Response) -> dict[str, str]:
    # The body is handed over decoded, so its encoding and length headers would now lie.
    drop = {"content-encoding", "content-length", "transfer-encoding"}
    return {k.lower(): v for k, v in resp.headers.items() if k.lower() not in drop}


def _retry_after(resp: httpx.Response) -> float | None:
    """Retry-After in seconds, capped; an HTTP date is measured against the Date header."""
    value = resp.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return min(float(value), RETRY_AFTER_CAP)
    try:
        when = email.utils.parsedate_to_datetime(value)
        sent = email.utils.parsedate_to_datetime(resp.headers.get("date", ""))
    except (TypeError, ValueError):
        return None
    return max(0.0, min((when - sent).total_seconds(), RETRY_AFTER_CAP))
