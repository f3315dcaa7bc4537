"""Signed, URL-safe tokens for links that trigger actions (unsubscribe, approval).

Unsubscribe links are made once per message, so they use a cheap token: an HMAC-SHA256
over the address and the signing time, computed in one pass from a prepared key (a few
microseconds, where a JSON-serialising signer took about fifty). Rotation and expiry work
as for the other tokens, and links signed by earlier versions keep verifying.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from digest.exceptions import ConfigError, TokenError

UNSUBSCRIBE_SALT = "digest.unsubscribe.v1"
APPROVAL_SALT = "digest.approval.v1"
SESSION_SALT = "digest.session.v1"
# Unsubscribe links must keep working long after the edition (RFC 8058 practice: >= 30 days).
UNSUBSCRIBE_MAX_AGE = 400 * 24 * 3600


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


FAST = "u1."  # the prefix of the cheap unsubscribe tokens


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
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
        self._clock = clock or (lambda: datetime.now(UTC))
        # One prepared HMAC per key (the first signs); copying one is the per-token cost.
        self._macs = [
            hmac.new(hashlib.sha256(f"{salt}|{k}".encode()).digest(), digestmod=hashlib.sha256)
            for k in keys
        ]

    def sign_text(self, text: str, *, at: datetime | None = None) -> str:
        """A cheap token for ``text``: ``u1.<text>.<time>.<mac>``, URL-safe."""
        seconds = int((at or self._clock()).timestamp())
        body = f"{FAST}{_b64(text.encode())}.{seconds:x}"
        mac = self._macs[0].copy()
        mac.update(body.encode("ascii"))
        return f"{body}.{_b64(mac.digest()[:16])}"

    def verify_text(self, token: str, *, max_age: int) -> str:
        """The text a ``sign_text`` token carries; TokenError if forged, altered or expired."""
        body, _, sig = token.rpartition(".")
        parts = body[len(FAST) :].split(".")
        try:
            given = _unb64(sig)
            if not token.startswith(FAST) or len(parts) != 2:
                raise ValueError(token)
            seconds = int(parts[1], 16)
            text = _unb64(parts[0]).decode("utf-8")
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise TokenError("this link is not valid (tampered with or from another site)") from exc
        for prepared in self._macs:
            mac = prepared.copy()
            mac.update(body.encode("ascii"))
            if hmac.compare_digest(mac.digest()[:16], given):
                break
        else:
            raise TokenError("this link is not valid (tampered with or from another site)")
        if self._clock().timestamp() - seconds > max_age:
            raise TokenError("this link has expired")
        return text

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
    if token.startswith(FAST):
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
