"""Mailgun's event webhooks (failed, complained).

Mailgun signs each request: ``signature`` is the hex HMAC-SHA256 of timestamp + token
under the webhook signing key. The signature does not cover the event itself, so a
captured request could carry another event: an old timestamp is refused, and each token is
taken once (the caller records it), as Mailgun's documentation asks.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

from digest.deliverability.hooks import HookEvent, angle, check_fresh, load_json, plain
from digest.exceptions import WebhookError

PROVIDER = "mailgun"


def verify(body: bytes, key: str, *, now: datetime) -> tuple[str, list[HookEvent]]:
    """The request's token (to take once) and its events; WebhookError if not Mailgun's."""
    data = load_json(body, PROVIDER)
    signature = data.get("signature") if isinstance(data, dict) else None
    if not isinstance(signature, dict):
        raise WebhookError("mailgun: no signature object in the body", status=400)
    timestamp = plain(signature.get("timestamp"))
    token = plain(signature.get("token"))
    given = plain(signature.get("signature"))
    expected = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not token or not hmac.compare_digest(given.encode(), expected.encode()):
        raise WebhookError("mailgun: the signature does not match the signing key")
    check_fresh("mailgun", timestamp, now)
    return token, _events(data.get("event-data"), token)


def _events(event: Any, token: str) -> list[HookEvent]:
    if not isinstance(event, dict):
        raise WebhookError("mailgun: no event-data object in the body", status=400)
    name = plain(event.get("event"))
    if name == "complained":
        kind = "complaint"
    elif name == "failed":
        kind = "hard" if plain(event.get("severity")) == "permanent" else "soft"
    else:
        return []  # delivered, opened, clicked, unsubscribed: not bounces
    status = event.get("delivery-status")
    status = status if isinstance(status, dict) else {}
    message = event.get("message")
    headers = message.get("headers") if isinstance(message, dict) else None
    message_id = plain(headers.get("message-id"), 998) if isinstance(headers, dict) else ""
    return [
        HookEvent(
            event_id=plain(event.get("id")) or token,
            email=plain(event.get("recipient"), 320),
            kind=kind,
            status=plain(status.get("code"), 20),
            reason=plain(status.get("description")) or plain(status.get("message")),
            message_id=angle(message_id),
        )
    ]
