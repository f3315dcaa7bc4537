"""RFC 3834 automatic replies (vacation, out-of-office, "I have a new address"): never a
bounce, whatever they say about the mailbox."""

from __future__ import annotations

import re
from email.message import Message

from digest.deliverability import mime

_SUBJECT = re.compile(
    r"^(?:auto(?:matic)?[ -]?(?:reply|response|antwort|answer)|auto:|out of (?:the )?office|"
    r"vacation|on vacation|away from|abwesenheit|absence|r[ée]ponse automatique|"
    r"respuesta autom[aá]tica|resposta autom[aá]tica|risposta automatica|autoreply|"
    r"i am (?:out|away)|im urlaub|fuera de la oficina)",
    re.IGNORECASE,
)


# What an out-of-office text says, for auto-replies that carry no header saying so.
_BODY = re.compile(
    r"out of (?:the )?office|on (?:vacation|holiday|leave|annual leave|parental leave)|"
    r"away from (?:the |my )?(?:office|desk|e-?mail)|(?:limited|no) access to (?:my )?e-?mail|"
    r"i (?:am|'m) (?:currently )?(?:out|away|travell?ing|off)|i will (?:be back|return)|"
    r"(?:back|return(?:ing)?) (?:in the office )?on (?:monday|tuesday|wednesday|thursday|"
    r"friday|saturday|sunday|\d)|automatic(?:ally)? (?:reply|response|generated reply)",
    re.IGNORECASE,
)


def says_away(text: str) -> bool:
    """Whether a message's own text reads as an out-of-office reply."""
    return bool(_BODY.search(text[:2000]))


def is_read_receipt(msg: Message) -> bool:
    """An RFC 8098 message disposition notification ("your message was displayed")."""
    if (msg.get_param("report-type") or "") == "disposition-notification":
        return True
    return any(p.get_content_type() == "message/disposition-notification" for p in msg.walk())


def is_auto_reply(msg: Message) -> bool:
    """Marked as an automatic reply (Auto-Submitted: auto-replied, X-Autoreply, ...) or
    titled like one. An auto-generated notice (a DSN) is not an auto-reply."""
    submitted = mime.header(msg, "Auto-Submitted").strip().lower()
    if submitted.startswith("auto-replied"):
        return True
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress-Reply", "X-Vacation"):
        if msg.get(name) is not None:
            return True
    precedence = mime.header(msg, "Precedence").strip().lower()
    if precedence == "auto_reply":
        return True
    subject = mime.header(msg, "Subject").strip()
    return bool(_SUBJECT.match(subject))
