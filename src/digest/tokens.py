"""Signed, URL-safe tokens for links that trigger actions (unsubscribe, approval).

Unsubscribe links are made once per message, so they use a cheap token: an HMAC-SHA256
over the address and the signing time, computed in one pass from a prepared key (a few
microseconds, where a JSON-serialising signer took about fifty). Rotation and expiry work
as for the other tokens, and links signed by earlier versions keep verifying.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from digest.exceptions import ConfigError, TokenError

UNSUBSCRIBE_SALT = "digest.unsubscribe.v1"
APPROVAL_SALT = "digest.approval.v1"
SESSION_SALT = "digest.session.v1"
PREFERENCES_SALT = "digest.preferences.v1"
CONFIRM_SALT = "digest.confirm.v1"
ARCHIVE_SALT = "digest.archive.v1"
# Unsubscribe links must keep working long after the edition (RFC 8058 practice: >= 30 days).
UNSUBSCRIBE_MAX_AGE = 400 * 24 * 3600
# Preference and View-in-browser links live as long as the email that carries them.
PREFERENCES_MAX_AGE = UNSUBSCRIBE_MAX_AGE
# A sign-up confirmation link, like the pending sign-up it confirms, lasts a week.
CONFIRM_MAX_AGE = 7 * 24 * 3600


def secrets_from_env(name: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """Signing keys from the environment variable ``name``: the first signs, all verify.

    Several keys (separated by commas or whitespace) allow rotation without breaking links.
    """
    raw = (environ if environ is not None else os.environ).get(name, "")
    keys = [k for k in raw.replace(",", " ").split() if k]
    if not keys:
        raise ConfigError(
            f"environment variable {name} is not set; set it to a long random string, e.g. "
            "`export " + name + "=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')`"
        )
    if any(len(k) < 16 for k in keys):
        raise ConfigError(f"environment variable {name}: each key must be at least 16 characters")
    return keys


_INVALID = "this link is not valid (tampered with or from another site)"
FAST = "u1"  # the first part of the cheap unsubscribe tokens


def b64(data: bytes) -> str:
    """URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    """The bytes of a ``b64`` text (padding restored)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Signs and checks payloads for one purpose (salt)."""

    def __init__(
        self, keys: list[str], *, salt: str, clock: Callable[[], datetime] | None = None
    ) -> None:
        # itsdangerous signs with the last key and verifies with all of them.
        self._serializer = URLSafeTimedSerializer(
            list(reversed(keys)), salt=salt, signer=_clocked(clock) if clock else TimestampSigner
        )
        self._fast = LinkSigner(keys, salt=salt, clock=clock)

    def sign_text(self, text: str) -> str:
        """A cheap token for ``text``: ``u1.<text>.<time>.<mac>``, URL-safe (LinkSigner)."""
        return self._fast.sign(FAST, b64(text.encode()))

    def verify_text(self, token: str, *, max_age: int) -> str:
        """The text a ``sign_text`` token carries; TokenError if forged, altered or expired."""
        parts = self._fast.verify(token, max_age=max_age)
        try:
            if len(parts) != 2 or parts[0] != FAST:
                raise ValueError(token)
            return unb64(parts[1]).decode("utf-8")
        except (ValueError, UnicodeDecodeError) as exc:
            raise TokenError("this link is not valid (tampered with or from another site)") from exc

    def sign(self, payload: object) -> str:
        return str(self._serializer.dumps(payload))

    def verify(self, token: str, *, max_age: int) -> object:
        try:
            return self._serializer.loads(token, max_age=max_age)
        except SignatureExpired as exc:
            raise TokenError("this link has expired") from exc
        except BadSignature as exc:
            raise TokenError("this link is not valid (tampered with or from another site)") from exc


def unsubscribe_url(base_url: str, signer: Signer, email: str) -> str:
    return f"{base_url.rstrip('/')}/u/{signer.sign_text(email.lower())}"


def _clocked(clock: Callable[[], datetime]) -> type[TimestampSigner]:
    """A TimestampSigner whose "now" (for signing and for max_age) is ``clock``."""

    class ClockedSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(clock().timestamp())

    return ClockedSigner


def read_unsubscribe_token(signer: Signer, token: str) -> str:
    """The address an unsubscribe token was made for; TokenError if it is not valid.

    Both forms verify: the cheap ``u1.`` tokens and the JSON ones of digest 0.2.
    """
    if token.startswith(FAST + "."):
        email = signer.verify_text(token, max_age=UNSUBSCRIBE_MAX_AGE)
        if "@" not in email:
            raise TokenError("this link is not valid (it is not an unsubscribe link)")
        return email
    payload = signer.verify(token, max_age=UNSUBSCRIBE_MAX_AGE)
    if not (isinstance(payload, dict) and isinstance(payload.get("e"), str) and payload["e"]):
        raise TokenError("this link is not valid (it is not an unsubscribe link)")
    return str(payload["e"])


@dataclass(frozen=True, slots=True)
class ApprovalClaim:
    """What a proof's Review or Approve link vouches for: one editor, one revision."""

    edition_id: int
    revision: int
    editor: str  # the editor's e-mail address, lower case


def approval_token(signer: Signer, *, edition_id: int, revision: int, editor: str) -> str:
    return signer.sign({"ed": edition_id, "r": revision, "by": editor.lower()})


def read_approval_token(signer: Signer, token: str, *, max_age: int) -> ApprovalClaim:
    """The claim in a proof link; TokenError if tampered with, expired or not a proof link."""
    payload = signer.verify(token, max_age=max_age)
    if not (
        isinstance(payload, dict)
        and isinstance(payload.get("ed"), int)
        and isinstance(payload.get("r"), int)
        and isinstance(payload.get("by"), str)
    ):
        raise TokenError("this link is not valid (it is not a proof link)")
    return ApprovalClaim(edition_id=payload["ed"], revision=payload["r"], editor=payload["by"])


class LinkSigner:
    """Compact signed tokens for links made for every message of a send.

    "PART.PART.TIME.MAC": an HMAC-SHA256 (cut to 144 bits) under a key derived once from each
    signing key and the purpose, so a million-reader send pays microseconds per link rather
    than itsdangerous's per-call serialising and key derivation. The first key signs, all
    verify (rotation); a maximum age applies, as for every other link.
    """

    def __init__(
        self, keys: list[str], *, salt: str, clock: Callable[[], datetime] | None = None
    ) -> None:
        # HMAC-SHA256 (RFC 2104) with both padded keys hashed once per key (the first
        # signs): a token then costs two hash copies and a few C calls, no Python frames.
        self._keys = [
            _padded(hmac.new(k.encode(), salt.encode(), hashlib.sha256).digest()) for k in keys
        ]
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock().timestamp() if self._clock else time.time())

    @staticmethod
    def _mac(key: tuple[hashlib._Hash, hashlib._Hash], body: str) -> str:
        inner = key[0].copy()
        inner.update(body.encode())
        outer = key[1].copy()
        outer.update(inner.digest())
        return base64.urlsafe_b64encode(outer.digest()[:18]).decode()

    def sign(self, *parts: str) -> str:
        for p in parts:
            if "." in p or not p:
                raise ValueError("token parts must be non-empty and without dots")
        body = ".".join((*parts, format(self._now(), "x")))
        return f"{body}.{self._mac(self._keys[0], body)}"

    def verify(self, token: str, *, max_age: int) -> list[str]:
        body, _, mac = token.rpartition(".")
        if not body or not any(hmac.compare_digest(mac, self._mac(k, body)) for k in self._keys):
            raise TokenError("this link is not valid (tampered with or from another site)")
        *parts, stamp = body.split(".")
        try:
            age = self._now() - int(stamp, 16)
        except ValueError:
            raise TokenError(
                "this link is not valid (tampered with or from another site)"
            ) from None
        if not 0 <= age <= max_age:
            raise TokenError("this link has expired")
        return parts


def _padded(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """SHA-256 states after HMAC's inner and outer pads of ``key`` (shorter than a block)."""
    block = key.ljust(64, b"\0")
    return (
        hashlib.sha256(bytes(b ^ 0x36 for b in block)),
        hashlib.sha256(bytes(b ^ 0x5C for b in block)),
    )


def preferences_token(signer: LinkSigner, *, subscriber_id: int, check: str) -> str:
    """A reader's preference link: their id, and ``check`` (a short hash of the address),
    so a link never opens another reader's page. No address appears in the URL."""
    return signer.sign(str(subscriber_id), check)


def read_preferences_token(signer: LinkSigner, token: str) -> tuple[int, str]:
    """(subscriber id, check) of a preference link; TokenError if it is not valid."""
    parts = signer.verify(token, max_age=PREFERENCES_MAX_AGE)
    if len(parts) != 2 or not parts[0].isdigit():
        raise TokenError("this link is not valid (it is not a preference link)")
    return int(parts[0]), parts[1]


def read_nonce_token(signer: Signer, token: str) -> str:
    """The sign-up a confirmation link confirms; TokenError if tampered with or expired."""
    payload = signer.verify(token, max_age=CONFIRM_MAX_AGE)
    if not (isinstance(payload, dict) and isinstance(payload.get("n"), str) and payload["n"]):
        raise TokenError("this link is not valid (it is not a confirmation link)")
    return str(payload["n"])


def read_confirm_token(signer: Signer, token: str) -> tuple[str, int]:
    """(nonce, subscriber id) of a confirmation link; the id is 0 in links made before it
    was carried (it tells a second click who was confirmed). TokenError like the nonce's."""
    nonce = read_nonce_token(signer, token)
    payload = signer.verify(token, max_age=CONFIRM_MAX_AGE)
    subscriber = payload.get("s") if isinstance(payload, dict) else None
    return nonce, subscriber if isinstance(subscriber, int) else 0


def archive_token(signer: Signer, edition_id: int) -> str:
    """The View-in-browser key of one edition (the same for every reader of it)."""
    return signer.sign({"a": edition_id})


def read_archive_token(signer: Signer, token: str) -> int:
    payload = signer.verify(token, max_age=PREFERENCES_MAX_AGE)
    if not (isinstance(payload, dict) and isinstance(payload.get("a"), int)):
        raise TokenError("this link is not valid (it is not an archive link)")
    return int(payload["a"])
