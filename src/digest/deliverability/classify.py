"""From SMTP reply codes, enhanced status codes (RFC 3463) and text to a reason and a kind.

The reasons are Sisimai's names (userunknown, mailboxfull, filtered, ...), and so is the
hard/soft split: a bounce is hard only when the address itself is gone (userunknown,
hostunknown, hasmoved, or notaccept with a 5xx reply), because only then will a later mail
to it fail the same way. A full mailbox, a filter, a block list or a policy refusal is
"soft" even with a 5.x.x status: the next edition may well get through.
"""

from __future__ import annotations

import re

from digest.deliverability import reasons
from digest.deliverability.model import HARD, SOFT

HARD_REASONS = frozenset({"userunknown", "hostunknown", "hasmoved"})
# Statuses precise enough to trust over the text (RFC 3463 subject.detail).
_STATUS: dict[str, str] = {
    "1.1": "userunknown",
    "1.2": "hostunknown",
    "1.3": "userunknown",
    "1.4": "userunknown",
    "1.6": "hasmoved",
    "1.7": "rejected",
    "1.8": "rejected",
    "1.10": "notaccept",
    "2.1": "filtered",
    "2.2": "mailboxfull",
    "2.3": "exceedlimit",
    "2.4": "systemerror",
    "3.1": "systemfull",
    "3.2": "notaccept",
    "3.4": "mesgtoobig",
    "3.5": "systemerror",
    "4.1": "networkerror",
    "4.2": "networkerror",
    "4.3": "systemerror",
    "4.4": "hostunknown",
    "4.5": "networkerror",
    "4.6": "networkerror",
    "4.7": "expired",
    "5.3": "exceedlimit",
    "6.0": "contenterror",
    "6.1": "contenterror",
    "6.2": "contenterror",
    "6.3": "contenterror",
    "6.5": "contenterror",
    "7.9": "securityerror",
    "7.10": "securityerror",
    "7.11": "securityerror",
    "7.13": "suspend",
    "7.14": "securityerror",
    "7.20": "authfailure",
    "7.21": "authfailure",
    "7.22": "authfailure",
    "7.23": "authfailure",
    "7.24": "authfailure",
    "7.25": "requireptr",
    "7.26": "authfailure",
    "7.27": "notaccept",
}
# Statuses that say little: the text decides, and these are only the fallback.
_VAGUE: dict[str, str] = {
    "0.0": "undefined",
    "1.0": "userunknown",
    "2.0": "filtered",
    "3.0": "systemerror",
    "4.0": "networkerror",
    "5.0": "syntaxerror",
    "5.1": "syntaxerror",
    "5.2": "syntaxerror",
    "5.4": "syntaxerror",
    "7.0": "securityerror",
    "7.1": "rejected",
    "7.8": "securityerror",
}
# Reasons the text may replace even when the status looked precise: these statuses are
# used loosely by real servers (5.1.1 for a block, 5.2.1 for a full mailbox).
_LOOSE = frozenset({"userunknown", "networkerror", "systemerror", "hostunknown", "filtered"})
# Text that names the cause so plainly that it wins over any status code.
_PLAIN = frozenset(
    {
        "mailboxfull",
        "suspend",
        "mesgtoobig",
        "virusdetected",
        "authfailure",
        "requireptr",
        "mailererror",
        "notaccept",
    }
)
# Refused only after the message was sent (in reply to DATA): the address exists, a filter
# behind it said no to this message.
_AFTER_DATA = re.compile(
    r"(?:in reply to|after) (?:the )?(?:end of )?data|>>> data\b|smtp command\W+data\b|"
    r"after end of data|after data",
    re.IGNORECASE,
)
_AFTER_MAIL_FROM = re.compile(r"(?:in reply to|after) mail from\b", re.IGNORECASE)
_ADDRESS_STATUS = frozenset({"1.1", "1.2", "1.3", "1.4"})
_STATUS_RE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_CODE_RE = re.compile(r"(?<![\d.-])([245][0-5]\d)(?:[ -]|$)")


def find_status(text: str) -> str:
    """The first enhanced status code (X.Y.Z) in ``text``, or ""."""
    found = _STATUS_RE.search(text)
    return ".".join(found.groups()) if found else ""


def find_code(text: str) -> str:
    """The first SMTP reply code (4xx/5xx) in ``text``, or ""."""
    for found in _CODE_RE.finditer(text):
        if found.group(1)[0] in "45":
            return found.group(1)
    return ""


def reason_for(status: str, text: str, *, code: str = "", context: str = "") -> str:
    """The reason of one failed recipient from its status, reply code and diagnostic text.

    ``context`` is the prose around the recipient, read only for the SMTP phase.
    """
    reason = _reason(status, text, code)
    detail = status.split(".", 1)[1] if status.count(".") == 2 else ""
    after_data = _AFTER_DATA.search(f"{text}\n{context}")
    if reason == "userunknown" and detail not in _ADDRESS_STATUS and after_data:
        return "filtered"
    if reason in HARD_REASONS and _AFTER_MAIL_FROM.search(f"{text}\n{context}"):
        return "rejected"  # refused at MAIL FROM: the sender, not the recipient
    if reason == "hostunknown" and (status or code).startswith("4"):
        return "networkerror"  # a lookup that failed for now, not a domain that is gone
    return reason


def _reason(status: str, text: str, code: str) -> str:
    detail = status.split(".", 1)[1] if status.count(".") == 2 else ""
    precise = _STATUS.get(detail)
    by_text = reasons.match(text) if text else None
    if by_text in _PLAIN:
        return by_text
    if precise and (precise not in _LOOSE or by_text is None):
        return precise
    if by_text:
        return by_text
    if precise:
        return precise
    if detail in _VAGUE:
        return _VAGUE[detail]
    return "onhold" if not (status or code) else "undefined"


def kind_for(reason: str, status: str, code: str = "") -> str:
    """Hard when the address is gone; any other failure is soft."""
    if reason in HARD_REASONS:
        return HARD
    permanent = status.startswith("5") or (not status and code.startswith("5"))
    if reason == "notaccept" and permanent:
        return HARD
    return SOFT


def status_for(reason: str, status: str, code: str) -> str:
    """The status to report: the given one, else one implied by the reason and reply."""
    if status:
        return status
    temporary = code.startswith("4")
    implied = {
        "userunknown": "5.1.1",
        "hostunknown": "5.1.2",
        "hasmoved": "5.1.6",
        "mailboxfull": "4.2.2" if temporary else "5.2.2",
        "mesgtoobig": "5.3.4",
        "expired": "4.4.7",
        "suspend": "5.2.1",
    }.get(reason)
    if implied:
        return implied
    return ("4" if temporary else "5") + ".0.0"
