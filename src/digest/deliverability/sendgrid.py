"""SendGrid's signed event webhook.

SendGrid signs timestamp + the raw body with ECDSA P-256 / SHA-256; the signature
(base64 DER) and timestamp come in X-Twilio-Email-Event-Webhook-* headers, and the
verification key is the base64 public key SendGrid shows for the webhook. An old
timestamp is refused; each event's sg_event_id is taken once.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from digest.deliverability.hooks import HookEvent, angle, check_fresh, load_json, plain
from digest.exceptions import ConfigError, WebhookError

PROVIDER = "sendgrid"
SIGNATURE = "x-twilio-email-event-webhook-signature"
TIMESTAMP = "x-twilio-email-event-webhook-timestamp"


def public_key(value: str) -> ec.EllipticCurvePublicKey:
    """The verification key as SendGrid shows it (base64 DER, or a PEM block)."""
    try:
        raw = value.strip().encode()
        key = (
            serialization.load_pem_public_key(raw)
            if raw.startswith(b"-----")
            else serialization.load_der_public_key(base64.b64decode(raw, validate=True))
        )
    except (ValueError, binascii.Error, TypeError) as exc:
        raise ConfigError(f"bounces.sendgrid_public_key is not a public key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ConfigError("bounces.sendgrid_public_key must be an ECDSA P-256 key")
    return key


def verify(
    headers: Mapping[str, str], body: bytes, key: ec.EllipticCurvePublicKey, *, now: datetime
) -> list[HookEvent]:
    """The bounces and complaints of a signed request; WebhookError if not SendGrid's."""
    timestamp = headers.get(TIMESTAMP, "")
    try:
        signature = base64.b64decode(headers.get(SIGNATURE, ""), validate=True)
        key.verify(signature, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature):
        raise WebhookError("sendgrid: the signature does not match the public key") from None
    check_fresh("sendgrid", timestamp, now)
    data = load_json(body, PROVIDER)
    if not isinstance(data, list):
        raise WebhookError("sendgrid: the body is not a list of events", status=400)
    return [e for item in data if isinstance(item, dict) and (e := _event(item)) is not None]


def _event(item: dict[str, object]) -> HookEvent | None:
    name = plain(item.get("event"))
    if name == "spamreport":
        kind = "complaint"
    elif name == "bounce":
        # SendGrid's "blocked" bounces are refusals for now (reputation, content).
        kind = "soft" if plain(item.get("type")) == "blocked" else "hard"
    else:
        return None  # delivered, deferred (still retrying), dropped, open, click, ...
    event_id = plain(item.get("sg_event_id"))
    if not event_id:
        return None
    return HookEvent(
        event_id=event_id,
        email=plain(item.get("email"), 320),
        kind=kind,
        status=plain(item.get("status"), 20),
        reason=plain(item.get("reason")),
        message_id=angle(plain(item.get("smtp-id"), 998)),
    )
