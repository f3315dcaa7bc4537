"""What a returned mail says: the kinds, one recipient's verdict and the whole report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HARD = "hard"
SOFT = "soft"
COMPLAINT = "complaint"
NOT_A_BOUNCE = "not_a_bounce"
UNKNOWN = "unknown"
KINDS = (HARD, SOFT, COMPLAINT, NOT_A_BOUNCE, UNKNOWN)
# Most severe first: the kind of a message whose recipients differ.
_SEVERITY = {COMPLAINT: 0, HARD: 1, SOFT: 2, UNKNOWN: 3, NOT_A_BOUNCE: 4}


@dataclass(frozen=True, slots=True)
class Recipient:
    """One address the report is about, with its status, reason and kind.

    ``address`` is None when the report withholds it (a redacted complaint);
    ``original`` is the address the sender used when the report names another one
    (an alias or a forward).
    """

    address: str | None
    status: str
    reason: str
    kind: str
    original: str | None = None
    diagnostic: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "status": self.status,
            "reason": self.reason,
            "kind": self.kind,
            **({"original_address": self.original} if self.original else {}),
        }


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the returned original tells about the delivery it came from."""

    message_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # X-Digest-* of the original
    token: str | None = None  # the VERP token of bounces+TOKEN@domain

    def __bool__(self) -> bool:
        return bool(self.message_id or self.headers or self.token)

    def to_dict(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "headers": dict(self.headers), "token": self.token}


@dataclass(frozen=True, slots=True)
class Report:
    """The verdict on one mail: its kind, its recipients and the delivery it points to."""

    kind: str
    recipients: tuple[Recipient, ...]
    delivery: Delivery
    detector: str  # which detector read it (dsn, arf, text, ...): for figures and debugging

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "recipients": [r.to_dict() for r in self.recipients],
            "delivery": self.delivery.to_dict() if self.delivery else None,
        }


def overall(kinds: list[str]) -> str:
    """The kind of a message from its recipients' kinds: the most severe one."""
    return min(kinds, key=_SEVERITY.__getitem__) if kinds else NOT_A_BOUNCE
