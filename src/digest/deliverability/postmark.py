"""Postmark's bounce and spam-complaint webhooks.

Postmark authenticates a webhook only by the HTTP Basic credentials written into its URL
(https://user:password@host/hooks/postmark); digest compares them in constant time. Each
record has its own ID, so a retry or a replay is recognised.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping

from digest.deliverability.hooks import HookEvent, load_json, plain
from digest.exceptions import WebhookError

PROVIDER = "postmark"
# Postmark's bounce Type -> the policy's kind; any other type (AutoResponder, Subscribe,
# ManuallyDeactivated, ...) is not a bounce.
KINDS = {
    "HardBounce": "hard",
    "BadEmailAddress": "hard",
    "Transient": "soft",
    "SoftBounce": "soft",
    "DnsError": "soft",
    "Blocked": "soft",
    "DMARCPolicy": "soft",
    "SpamNotification": "soft",
    "SpamComplaint": "complaint",
}


def check_auth(headers: Mapping[str, str], credentials: str) -> None:
    """Refuse (401) unless the request's Basic credentials are ``credentials`` (user:pass)."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    try:
        given = base64.b64decode(value, validate=True) if scheme.lower() == "basic" else b""
    except (binascii.Error, ValueError):
        given = b""
    if not given or not hmac.compare_digest(given, credentials.encode()):
        raise WebhookError("postmark: wrong or missing Basic credentials", status=401)


def events(body: bytes) -> list[HookEvent]:
    """The bounce or complaint a Postmark webhook carries (one record per request)."""
    data = load_json(body, PROVIDER)
    if not isinstance(data, dict) or "RecordType" not in data:
        raise WebhookError("postmark: not a webhook record (no RecordType)", status=400)
    if data["RecordType"] not in ("Bounce", "SpamComplaint"):
        return []  # deliveries, opens, clicks: nothing for the bounce policy
    record_id = plain(data.get("ID")) or plain(data.get("MessageID"))
    if not record_id:
        raise WebhookError("postmark: the record has no ID", status=400)
    kind = KINDS.get(plain(data.get("Type")), "not_a_bounce")
    return [
        HookEvent(
            event_id=f"{data['RecordType']}:{record_id}",
            email=plain(data.get("Email"), 320),
            kind=kind,
            status=plain(data.get("TypeCode"), 20),
            reason=plain(data.get("Description")) or plain(data.get("Details")),
        )
    ]
