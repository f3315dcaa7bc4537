"""The readers' links: preference pages, sign-up confirmations, archive pages; and the
footer values filled in per reader at send time."""

from __future__ import annotations

import functools
import hashlib
from datetime import datetime
from zoneinfo import ZoneInfo

from digest.models import Subscriber
from digest.render.dates import day_label
from digest.render.personalise import Footer
from digest.store import Store
from digest.store.personal import Lookup
from digest.store.subscribers import address_key
from digest.tokens import LinkSigner, Signer, archive_token, preferences_token


def address_check(email: str) -> str:
    """A short hash of the address, bound into preference links."""
    return hashlib.sha256(b"digest.check:" + address_key(email).encode()).hexdigest()[:16]


def preferences_url(base_url: str, signer: LinkSigner, *, subscriber_id: int, email: str) -> str:
    token = preferences_token(signer, subscriber_id=subscriber_id, check=address_check(email))
    return f"{base_url.rstrip('/')}/p/{token}"


def confirm_url(base_url: str, signer: Signer, nonce: str, subscriber_id: int = 0) -> str:
    """The confirmation link; it names the subscriber too, so that a second click can say
    "you are already confirmed" once the nonce is used up."""
    payload: dict[str, object] = {"n": nonce}
    if subscriber_id:
        payload["s"] = subscriber_id
    return f"{base_url.rstrip('/')}/confirm/{signer.sign(payload)}"


def archive_url(base_url: str, edition_id: int, signer: Signer | None = None) -> str:
    """An edition's archive page; with ``signer`` (a private archive) it carries its key."""
    url = f"{base_url.rstrip('/')}/archive/{edition_id}"
    return f"{url}?k={archive_token(signer, edition_id)}" if signer else url


@functools.lru_cache(maxsize=4096)
def _reason(source: str, since: str, zone: str) -> tuple[str, str]:
    # Readers imported or synced together share one stored time: most sends hit the cache.
    return reason(source, datetime.fromisoformat(since) if since else None, zone)


def reason(source: str, since: datetime | None, zone: str) -> tuple[str, str]:
    """(why they get this, the day they joined) for the footer."""
    if since is None:
        return "", ""
    day = day_label(since.astimezone(ZoneInfo(zone)).date())
    if source == "web":
        return f"You signed up on {day}.", day
    return f"You have been on this list since {day}.", day


class FooterMaker:
    """Each reader's Footer, by a lookup of their address; made once per send."""

    def __init__(self, store: Store, signer: LinkSigner, *, base_url: str, zone: str) -> None:
        self._lookup = Lookup(store)
        self._signer = signer
        self._base = base_url
        self._zone = zone

    def __call__(self, subscriber: Subscriber) -> Footer:
        found = self._lookup(subscriber.email)
        if found is None:
            return Footer()
        subscriber_id, source, since = found
        why, day = _reason(source, since, self._zone)
        url = preferences_url(
            self._base, self._signer, subscriber_id=subscriber_id, email=subscriber.email
        )
        return Footer(preferences_url=url, reason=why, signed_up=day)

    def close(self) -> None:
        self._lookup.close()
