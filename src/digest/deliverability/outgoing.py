"""Standard Webhooks signatures for the webhooks digest sends (standardwebhooks.com).

The receiver checks ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``
under the shared secret (``whsec_`` + base64 key bytes), and rejects an old
``webhook-timestamp`` and a ``webhook-id`` it has seen: the id stays the same on retries.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from digest.exceptions import ConfigError

PREFIX = "whsec_"


def secret_key(value: str, *, where: str) -> bytes:
    """The key bytes of a ``whsec_...`` secret (the prefix is optional); ConfigError
    naming ``where`` (the variable) otherwise."""
    raw = value.strip().removeprefix(PREFIX)
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) < 16:
        raise ConfigError(f"{where} is not a webhook secret: use whsec_ and 16+ base64 bytes")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header's value."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(key: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers, plus the body's type."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, msg_id, timestamp, body),
        "Content-Type": "application/json",
    }
