"""The readers' links: compact preference tokens (rotation, expiry, tampering) and the
footer's "why you get this"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from digest.exceptions import TokenError
from digest.subscribers.links import address_check, preferences_url, reason
from digest.tokens import (
    PREFERENCES_MAX_AGE,
    PREFERENCES_SALT,
    LinkSigner,
    preferences_token,
    read_preferences_token,
)

from conftest import Clock

OLD, NEW = "old-signing-key-0123456789", "new-signing-key-0123456789"


def test_preference_tokens_rotate_expire_and_refuse_tampering() -> None:
    clock = Clock()
    old = LinkSigner([OLD], salt=PREFERENCES_SALT, clock=clock)
    token = preferences_token(old, subscriber_id=42, check=address_check("A@example.org"))
    assert "example" not in token  # no address in the URL
    rotated = LinkSigner([NEW, OLD], salt=PREFERENCES_SALT, clock=clock)
    assert read_preferences_token(rotated, token) == (42, address_check("a@example.org"))
    with pytest.raises(TokenError, match="not valid"):
        read_preferences_token(LinkSigner([NEW], salt=PREFERENCES_SALT, clock=clock), token)
    with pytest.raises(TokenError, match="not valid"):
        read_preferences_token(LinkSigner([OLD], salt="another.purpose", clock=clock), token)
    forged = token.replace("42.", "43.", 1)
    with pytest.raises(TokenError, match="not valid"):
        read_preferences_token(rotated, forged)
    clock.now += timedelta(seconds=PREFERENCES_MAX_AGE + 1)
    with pytest.raises(TokenError, match="expired"):
        read_preferences_token(rotated, token)
    for junk in ("", ".", "x.y", "1.2.zz.mac"):
        with pytest.raises(TokenError):
            read_preferences_token(rotated, junk)


def test_preference_urls_and_the_reason_line() -> None:
    signer = LinkSigner([NEW], salt=PREFERENCES_SALT)
    url = preferences_url("https://news.example.org/", signer, subscriber_id=7, email="a@b.org")
    assert url.startswith("https://news.example.org/p/7.")
    march = datetime(2026, 3, 3, 23, 30, tzinfo=UTC)
    assert reason("web", march, "Europe/Berlin") == (
        "You signed up on 4 March 2026.",
        "4 March 2026",
    )
    assert reason("file", march, "UTC")[0] == "You have been on this list since 3 March 2026."
    assert reason("web", None, "UTC") == ("", "")
