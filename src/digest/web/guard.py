"""What the public sign-up form lets through: sliding-window limits and the origin check.

Every check here looks only at the request (who sends it, from which page, for which
address), never at the list, so a refusal tells nothing about who is subscribed.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from digest.config.settings import SignupSettings


def client_key(host: str) -> str:
    """The unit one client is counted in: an IPv4 address, or an IPv6 /64.

    One IPv6 subscriber line is routinely given a whole /64, so counting whole IPv6
    addresses would let one machine pose as 2^64 clients.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # a proxy's unix socket or a test client: counted as given
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class Window:
    """At most ``limit`` events per ``seconds`` for each key; memory stays bounded."""

    def __init__(
        self,
        limit: int,
        seconds: float,
        *,
        keep: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.seconds, self.keep, self.clock = limit, seconds, keep, clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, key: str) -> int:
        """Seconds until ``key`` may act again; 0: allowed, and counted."""
        now = self.clock()
        with self._lock:
            if len(self._seen) > self.keep:  # forget quiet keys
                self._seen = {
                    k: v for k, v in self._seen.items() if v and v[-1] > now - self.seconds
                }
            hits = self._seen.setdefault(key, deque())
            while hits and hits[0] <= now - self.seconds:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(1, math.ceil(hits[0] + self.seconds - now))
            hits.append(now)
            return 0


@dataclass(frozen=True, slots=True)
class Limited:
    """Which limit a sign-up hit, and how long to wait."""

    what: str  # "client", "address" or "form"
    retry_after: int


class SignupGuard:
    """The sign-up form's limits (per client, per target address, for the whole form)."""

    def __init__(
        self, settings: SignupSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        seconds = settings.window_minutes * 60.0
        self.client = Window(settings.per_client, seconds, clock=clock)
        self.address = Window(settings.per_address, seconds, clock=clock)
        self.form = Window(settings.per_form, seconds, clock=clock)

    def check(self, *, host: str, email: str) -> Limited | None:
        """None when this sign-up may go ahead (it is then counted), else the limit hit.

        The client is checked first, so one noisy network cannot use up a stranger's
        address allowance or the whole form's.
        """
        if wait := self.client.wait(client_key(host)):
            return Limited("client", wait)
        if wait := self.address.wait(email.strip().casefold()):
            return Limited("address", wait)
        if wait := self.form.wait(""):
            return Limited("form", wait)
        return None


def origin_of(url: str) -> str:
    """``https://news.example.org`` for ``https://News.example.org/path``."""
    scheme, _, rest = url.partition("://")
    return f"{scheme.lower()}://{rest.split('/', 1)[0].lower()}"


def cross_site(headers: Mapping[str, str], *, own: set[str], allowed: set[str]) -> str:
    """The foreign origin a form POST came from, "" when it may be accepted.

    Browsers send ``Sec-Fetch-Site`` (all current ones) and ``Origin`` with a POST. A page
    on another site that makes its visitors' browsers post the form is refused unless its
    origin is listed; a request without either header is not from a browser page (curl, a
    server-side integration) and is left to the limits.
    """
    origin = headers.get("origin", "").strip().lower()
    site = headers.get("sec-fetch-site", "").strip().lower()
    if site in ("same-origin", "none"):
        return ""  # the browser itself says so ("none": typed or bookmarked)
    if origin:
        if origin in own or origin in allowed:
            return ""
        return origin  # "null" too: sandboxed frames and privacy-stripped redirects
    if site:  # cross-site or same-site without an Origin: nothing to compare
        return site
    return ""
