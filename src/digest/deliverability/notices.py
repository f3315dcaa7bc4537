"""Provider JSON notices sent by mail (Amazon SES through SNS e-mail subscriptions):
bounces, complaints and delivery notices, with the per-recipient fields SES gives."""

from __future__ import annotations

import json
import re
from typing import Any

from digest.deliverability import classify
from digest.deliverability.model import COMPLAINT, NOT_A_BOUNCE, Recipient

# SNS e-mail wraps long lines with "!" + newline + space; the JSON needs them joined again.
_WRAP = re.compile(r"!\r?\n ")


def ses_json(text: str) -> dict[str, Any] | None:
    """The SES notification in ``text``, unwrapped from an SNS envelope, or None."""
    start = text.find("{")
    if start < 0 or ("notificationType" not in text and "eventType" not in text):
        return None
    body = _WRAP.sub("", text[start:])
    try:
        data, _ = json.JSONDecoder().raw_decode(body)
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("Message"), str):
        try:
            data = json.loads(data["Message"])
        except ValueError:
            return None
    if not isinstance(data, dict):
        return None
    kind = data.get("notificationType") or data.get("eventType")
    return data if kind in ("Bounce", "Complaint", "Delivery") else None


def ses_recipients(data: dict[str, Any]) -> list[Recipient]:
    """Recipients of an SES notice: bounced (with SES's own type), complained or delivered."""
    kind = data.get("notificationType") or data.get("eventType")
    out: list[Recipient] = []
    if kind == "Complaint":
        complaint = data.get("complaint") or {}
        feedback = str(complaint.get("complaintFeedbackType") or "abuse")
        for item in complaint.get("complainedRecipients") or []:
            address = str(item.get("emailAddress", "")).lower() or None
            out.append(Recipient(address, "", f"feedback:{feedback}", COMPLAINT))
        return out
    if kind == "Delivery":
        delivery = data.get("delivery") or {}
        for address in delivery.get("recipients") or []:
            out.append(Recipient(str(address).lower(), "2.0.0", "delivered", NOT_A_BOUNCE))
        return out
    bounce = data.get("bounce") or {}
    permanent = bounce.get("bounceType") == "Permanent"
    subtype = str(bounce.get("bounceSubType") or "")
    for item in bounce.get("bouncedRecipients") or []:
        diagnostic = str(item.get("diagnosticCode") or "")
        status = str(item.get("status") or "") or classify.find_status(diagnostic)
        code = classify.find_code(diagnostic)
        text = f"{diagnostic} {subtype}"
        if not status:
            status = "5.0.0" if permanent else "4.0.0"
        reason = _SUBTYPE.get(subtype) or classify.reason_for(status, text, code=code)
        out.append(
            Recipient(
                str(item.get("emailAddress", "")).lower() or None,
                status,
                reason,
                classify.kind_for(reason, status, code),
                diagnostic=diagnostic,
            )
        )
    return out


_SUBTYPE = {
    "NoEmail": "userunknown",
    "Suppressed": "suppressed",
    "MailboxFull": "mailboxfull",
    "MessageTooLarge": "mesgtoobig",
    "ContentRejected": "contenterror",
    "AttachmentRejected": "securityerror",
}
