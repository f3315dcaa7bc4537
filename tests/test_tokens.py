"""Signed tokens: the cheap unsubscribe token, its rotation and expiry, and old tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from digest.exceptions import TokenError
from digest.tokens import (
    UNSUBSCRIBE_MAX_AGE,
    UNSUBSCRIBE_SALT,
    Signer,
    read_unsubscribe_token,
    unsubscribe_url,
)

NOW = datetime(2026, 11, 24, 6, tzinfo=UTC)
OLD, NEW = "old-key-0123456789abcdef", "new-key-0123456789abcdef"


def _signer(keys: list[str], at: datetime = NOW) -> Signer:
    return Signer(keys, salt=UNSUBSCRIBE_SALT, clock=lambda: at)


def _token(signer: Signer, email: str = "Anna@Example.org") -> str:
    return unsubscribe_url("https://news.example.org", signer, email).rsplit("/", 1)[1]


def test_the_cheap_token_names_the_address_and_survives_rotation() -> None:
    token = _token(_signer([OLD]))
    assert token.startswith("u1.")
    assert token.isascii()
    assert all(c.isalnum() or c in "-_." for c in token)
    assert read_unsubscribe_token(_signer([OLD]), token) == "anna@example.org"
    # Rotated: a new key signs, the old one still verifies what it signed.
    rotated = _signer([NEW, OLD])
    assert read_unsubscribe_token(rotated, token) == "anna@example.org"
    assert read_unsubscribe_token(rotated, _token(rotated)) == "anna@example.org"
    with pytest.raises(TokenError, match="not valid"):
        read_unsubscribe_token(_signer([NEW]), token)  # the old key was dropped


def test_a_tampered_token_is_refused() -> None:
    signer = _signer([OLD])
    token = _token(signer)
    body, _, *rest = token.split(".")
    forged = ".".join([body, _token(signer, "ben@example.org").split(".")[1], *rest])
    for bad in (forged, token[:-2], token + "x", "u1.nonsense", "u1..."):
        with pytest.raises(TokenError, match="not valid"):
            read_unsubscribe_token(signer, bad)


def test_the_token_expires_after_its_maximum_age() -> None:
    token = _token(_signer([OLD]))
    later = NOW + timedelta(seconds=UNSUBSCRIBE_MAX_AGE - 60)
    assert read_unsubscribe_token(_signer([OLD], later), token) == "anna@example.org"
    with pytest.raises(TokenError, match="expired"):
        read_unsubscribe_token(_signer([OLD], later + timedelta(minutes=2)), token)


def test_tokens_of_the_earlier_json_form_still_verify() -> None:
    signer = _signer([OLD])
    old_form = signer.sign({"e": "anna@example.org"})
    assert not old_form.startswith("u1.")
    assert read_unsubscribe_token(signer, old_form) == "anna@example.org"


def test_a_link_mailed_by_an_earlier_release_still_verifies_and_is_signed_alike() -> None:
    # Made by the release whose LinkSigner used hmac.HMAC objects; links in sent mail live on.
    mailed = "u1.YW5uYUBleGFtcGxlLm9yZw.6b0527e0.zobX4IwSjjHmkhgBWQyDYwVc"
    assert read_unsubscribe_token(_signer([OLD]), mailed) == "anna@example.org"
    assert _token(_signer([OLD]), "anna@example.org") == mailed
    with pytest.raises(TokenError, match="not valid"):
        read_unsubscribe_token(_signer([NEW]), mailed)
