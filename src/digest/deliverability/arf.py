"""Complaints: RFC 5965 Abuse Reporting Format feedback reports, and the older
Microsoft JMRP reports that only carry the original with an X-HmXmrOriginalRecipient."""

from __future__ import annotations

from email.message import Message

from digest.deliverability import dsn, mime
from digest.deliverability.model import COMPLAINT, Recipient

_RECIPIENT_FIELDS = ("original-rcpt-to", "removal-recipient")


def is_feedback(msg: Message) -> bool:
    """An ARF report (multipart/report; report-type=feedback-report, or a feedback part)."""
    if (msg.get_param("report-type") or "") == "feedback-report":
        return True
    return any(p.get_content_type() == "message/feedback-report" for p in msg.walk())


def is_jmrp(msg: Message, original: dict[str, str]) -> bool:
    """A Hotmail/Outlook JMRP complaint: the original comes back with its recipient
    in X-HmXmrOriginalRecipient."""
    return "x-hmxmroriginalrecipient" in original or bool(msg.get("X-HmXmrOriginalRecipient"))


def _report_fields(msg: Message) -> list[tuple[str, str]]:
    """The fields of the feedback report, in order (Original-Rcpt-To may repeat)."""
    for part in msg.walk():
        if part.get_content_type() != "message/feedback-report":
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            return [
                (k.lower(), str(v))
                for block in payload
                if isinstance(block, Message)
                for k, v in block.items()
            ]
        return dsn.field_list(mime.part_text(part))
    return []


def complaint(msg: Message, original: dict[str, str]) -> list[Recipient]:
    """The complaining recipient(s): Original-Rcpt-To or Removal-Recipient from the report,
    else the returned original's recipient; None where the report redacts it."""
    report = _report_fields(msg)
    feedback = next((v for k, v in report if k == "feedback-type"), "abuse").strip().lower()
    reason = f"feedback:{feedback}"
    found: list[str] = []
    for name, value in report:
        address = mime.clean_address(value)
        if name in _RECIPIENT_FIELDS and address and address not in found:
            found.append(address)
    if not found:
        for name in ("x-hmxmroriginalrecipient", "to"):
            found = [a.lower() for a in mime.addresses(original.get(name, "")) if "@" in a]
            if found:
                break
    if not found and msg.get("X-HmXmrOriginalRecipient"):
        found = [mime.clean_address(mime.header(msg, "X-HmXmrOriginalRecipient"))]
    redacted = not found or all(_redacted(a) for a in found)
    if redacted:
        return [Recipient(None, "", reason, COMPLAINT)]
    return [Recipient(a, "", reason, COMPLAINT) for a in found if not _redacted(a)]


def apple_unsubscribe(msg: Message) -> list[Recipient]:
    """Apple Mail's unsubscribe request (X-Apple-Unsubscribe: true): the reader asked to
    stop, from their own address, as a one-click opt-out does."""
    if mime.header(msg, "X-Apple-Unsubscribe").strip().lower() != "true":
        return []
    found = [a.lower() for a in mime.addresses(mime.header(msg, "From"))]
    return [Recipient(a, "", "feedback:opt-out", COMPLAINT) for a in found[:1]]


def _redacted(address: str) -> bool:
    local = address.split("@", 1)[0]
    return not local or set(local) <= {"x", "*", "."}
