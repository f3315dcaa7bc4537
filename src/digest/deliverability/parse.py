"""One returned mail in, one Report out: which detector applies, in a fixed order.

Complaints first (an ARF report also carries the original, and an SES notice is JSON),
then RFC 3464 DSNs, then automatic replies, then prose bounces. Anything that is none of
these is ``not_a_bounce``; a bounce whose recipient cannot be found is ``unknown``.
Pure: bytes in, data out, no I/O.
"""

from __future__ import annotations

import re
from email import errors
from email.message import Message

from digest.deliverability import arf, autoreply, classify, dsn, mime, notices, text
from digest.deliverability import fallback as flufl
from digest.deliverability.model import (
    NOT_A_BOUNCE,
    UNKNOWN,
    Delivery,
    Recipient,
    Report,
    overall,
)
from digest.exceptions import BounceError

# A mail starts with a header field, or with an mbox "From " line.
_HEADER_START = re.compile(rb"(?:From |[!-9;-~]+:)")
_LINE_END = re.compile(rb"\r\n?")
_DELIVERED = ("delivered", "relayed", "expanded", "deliverable")


def parse(data: bytes) -> Report:
    """Classify one mail given as bytes. Raises BounceError if it is not a mail at all."""
    if not data.strip():
        raise BounceError("empty file, not a mail")
    # One line ending throughout: mail saved on Windows (CRLF) or old Macs (CR) reads the
    # same as on the wire's other end.
    data = _LINE_END.sub(b"\n", data)
    if not _HEADER_START.match(data.lstrip(b"\r\n")):
        raise BounceError("not a mail (it does not start with a header line)")
    msg = mime.load(data)
    if any(isinstance(d, errors.NoBoundaryInMultipartDefect) for d in msg.defects):
        raise BounceError("broken MIME: a multipart message without a boundary")
    try:
        original = mime.original_headers(msg)
        found = mime.delivery(msg, original)
        texts = mime.report_texts(msg)
        recipients, detector = _detect(msg, original, texts)
    except (errors.MessageError, ValueError, LookupError, UnicodeError) as exc:
        # The email package gives up on some damaged parts (a bad charset name, broken
        # base64 in an encoded word): one line about the file, never a traceback.
        raise BounceError(f"broken MIME ({exc})") from exc
    kinds = [r.kind for r in recipients]
    if not recipients:
        kind = UNKNOWN if detector == "unknown" else NOT_A_BOUNCE
    else:
        kind = overall(kinds)
    return Report(kind, tuple(recipients), found if found else Delivery(), detector)


def _detect(
    msg: Message, original: dict[str, str], texts: list[str]
) -> tuple[list[Recipient], str]:
    if arf.is_feedback(msg) or arf.is_jmrp(msg, original):
        return arf.complaint(msg, original), "arf"
    if unsubscribed := arf.apple_unsubscribe(msg):
        return unsubscribed, "arf"
    for body in texts:
        data = notices.ses_json(body)
        if data is not None:
            return notices.ses_recipients(data), "ses"
    blocks = dsn.blocks(msg, texts)
    if blocks:
        return [_from_block(b, texts, original) for b in blocks], "dsn"
    from_ = mime.header(msg, "From")
    report = "\n".join(mime.split_original(t)[0] for t in texts)
    subject = mime.header(msg, "Subject")
    replier = [a.lower() for a in mime.addresses(from_)][:1]
    if autoreply.is_read_receipt(msg):
        return [Recipient(a, "", "read", NOT_A_BOUNCE) for a in replier], "mdn"
    daemon = text.from_daemon(from_)
    if not daemon and (autoreply.is_auto_reply(msg) or autoreply.says_away(report)):
        # The replier is the reader we wrote to: name them, as not a bounce.
        return [Recipient(a, "", "vacation", NOT_A_BOUNCE) for a in replier], "autoreply"
    if not text.looks_like_bounce(from_, subject, msg.get_content_type(), report):
        return [], "none"
    if text.says_delivered(subject, report):
        return [], "delivered"
    exclude = {
        a.lower()
        for name in ("From", "To", "Return-Path", "Reply-To", "Sender")
        for a in mime.addresses(mime.header(msg, name))
    }
    exclude.update(a.lower() for a in mime.addresses(original.get("from", "")))
    fallback = mime.addresses(original.get("to", ""))
    failed = mime.addresses(mime.header(msg, "X-Failed-Recipients"))  # Exim names them
    found = text.recipients(report, exclude, fallback, failed=failed)
    if found:
        return [_from_text(f) for f in found], "text"
    named = [a for a in flufl.addresses(msg) if a not in exclude]
    if named:
        return [_from_text(text.Found(a, report[:2000])) for a in named], "flufl"
    return [], "unknown"


def _from_block(block: dsn.Block, texts: list[str], original: dict[str, str]) -> Recipient:
    if not block.final:
        # Final-Recipient without a usable address (``@host``): the prose names it.
        report = "\n".join(mime.split_original(t)[0] for t in texts)
        near = text.recipients(report, set(), mime.addresses(original.get("to", "")))
        block.final = near[0].address if near else ""
    if block.action in _DELIVERED:
        return Recipient(block.final, block.status or "2.0.0", "delivered", NOT_A_BOUNCE)
    # What the prose part says about this address: the diagnostic when the DSN gives
    # none, and the SMTP phase (in reply to DATA) in any case.
    report = "\n".join(mime.split_original(t)[0] for t in texts)
    near = text.recipients(report, set(), [])
    prose = next((f.diagnostic for f in near if f.address == block.final), "")
    diagnostic = block.diagnostic or prose or report[:2000]
    status = classify.find_status(block.status)
    comment = block.status.partition("(")[2].rstrip(")")  # "5.2.1 (mailbox disabled)"
    if comment:
        diagnostic = f"{diagnostic} ({comment})"
    code = classify.find_code(diagnostic)
    if status.endswith(".0.0") and classify.find_status(diagnostic):
        status = classify.find_status(diagnostic)  # the remote server was more precise
    if block.action == "delayed" and not status:
        status = "4.0.0"
    reason = classify.reason_for(status, diagnostic, code=code, context=prose)
    status = classify.status_for(reason, status, code)
    alias = block.original if block.original and block.original != block.final else None
    return Recipient(
        block.final,
        status,
        reason,
        classify.kind_for(reason, status, code),
        original=alias,
        diagnostic=diagnostic,
    )


def _from_text(found: text.Found) -> Recipient:
    status = classify.find_status(found.diagnostic)
    code = classify.find_code(found.diagnostic)
    reason = classify.reason_for(status, found.diagnostic, code=code)
    status = classify.status_for(reason, status, code)
    return Recipient(
        found.address,
        status,
        reason,
        classify.kind_for(reason, status, code),
        diagnostic=found.diagnostic,
    )
