"""What a provider's webhook says, as the bounce policy reads it.

Each provider module (sns, postmark, mailgun, sendgrid) checks its request's own
authentication and turns its JSON into HookEvents: the same hard / soft / complaint kinds
the DSN and ARF readers give, applied by the same policy (digest.store.bounces).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from digest.exceptions import WebhookError

MAX_BODY = 1_000_000  # bytes: SendGrid batches up to ~1,000 events, a few hundred bytes each
MAX_AGE = 300  # seconds a signed timestamp may be old (or ahead) before it counts as a replay


@dataclass(frozen=True, slots=True)
class HookEvent:
    """One recipient's bounce or complaint, as a provider reported it.

    ``event_id`` is what makes it unique at the provider (an SNS MessageId, a SendGrid
    sg_event_id): the same id seen again is a replay and changes nothing.
    """

    event_id: str
    email: str
    kind: str  # hard, soft, complaint; anything else is recorded as seen and ignored
    status: str = ""
    reason: str = ""
    message_id: str = ""  # the Message-ID digest sent it with, when the provider says


def load_json(body: bytes, provider: str) -> Any:
    """The body as JSON, or a 400 naming the provider."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookError(f"{provider}: the body is not JSON", status=400) from None


def check_fresh(provider: str, timestamp: str, now: datetime) -> None:
    """Refuse a signed timestamp (Unix seconds) more than MAX_AGE from ``now``: a replay."""
    try:
        age = now.timestamp() - float(timestamp)
    except ValueError:
        raise WebhookError(f"{provider}: the timestamp is not a number", status=400) from None
    if abs(age) > MAX_AGE:
        raise WebhookError(f"{provider}: the timestamp is {int(age)} s off; refused as a replay")


def plain(value: Any, limit: int = 200) -> str:
    """A JSON value as a short single-line string ("" for null or a container)."""
    if value is None or isinstance(value, dict | list):
        return ""
    return " ".join(str(value).split())[:limit]


def angle(message_id: str) -> str:
    """A Message-ID in angle brackets, as digest stores it ("" stays "")."""
    value = message_id.strip()
    if value and not value.startswith("<"):
        value = f"<{value}>"
    return value
