"""Bounces without a DSN: the prose of qmail, Exim, Sendmail, Postfix, Exchange, DragonFly,
webmail providers and the rest, read for the failed addresses and what was said about them.

No per-MTA table of templates: the report part is cut where it starts quoting the original,
the addresses it names (other than the sender's, the bounce's own and the daemons') are the
recipients, and the text around each one is its diagnostic.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from digest.deliverability import mime

# Local parts that are never the failed recipient but the system writing about it.
_SYSTEM = re.compile(
    r"^(?:mailer-daemon|postmaster|mail-daemon|mailerdaemon|maildaemon|root|daemon|"
    r"no-?reply|noreply|bounces?|nobody|abuse|mdaemon|mail\.delivery\.system|"
    r"microsoftexchange[0-9a-f]*|double-bounce)(?:[+=-].*)?$",
    re.IGNORECASE,
)
_BOUNCE_FROM = re.compile(
    r"mailer[- ]?daemon|postmaster|mail ?delivery|delivery ?(?:status|subsystem|system)|"
    r"mail ?administrator|microsoftexchange|mail ?system|(?:^|<)<>|mdaemon|"
    r"bounce|returned|undeliver|nobody|failure",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|not (?:be )?delivered|delivery (?:status|failure|report|notification|"
    r"problem|failed|has failed|error|incomplete)|fail(?:ed|ure)|returned (?:mail|to sender)|"
    r"bounce|non[- ]?remis|nicht zustellbar|unzustellbar|error|warning: could not|"
    r"mail system error|could not send|rejected|delayed|problem|unable to deliver|"
    r"message status|unknown|quota|mail (?:delivery )?failed|nondeliverable|"
    r"notice|mensaje|échec|fallo|permanent",
    re.IGNORECASE,
)
# Sentences only a delivery failure notice writes (for notices with an ordinary From and
# Subject, such as a mobile carrier's "Re: your subject").
_BOUNCE_BODY = re.compile(
    r"could ?n[o']t be delivered|could not deliver|unable to deliver|undeliverable|"
    r"delivery (?:has |to the following .{0,30})?failed|was not delivered|"
    r"invalid (?:user|recipient) address|permanent (?:fatal )?error|"
    r"does not like recipient|returned to (?:the )?sender|no such user|user unknown|"
    r"mailbox (?:is )?full|not a member of this (?:mailing )?list|"
    r"error message below|failed to deliver|delivery status notification",
    re.IGNORECASE,
)
# A notice that says a message arrived, with nothing said about a failure.
_SUCCESS = re.compile(
    r"(?:was|were|has been|have been) (?:successfully )?(?:delivered|relayed)|"
    r"delivery (?:to the following recipients? )?(?:succeeded|was successful|complete)|"
    r"successfully delivered|delivery status notification \(success\)",
    re.IGNORECASE,
)
_FAILURE = re.compile(
    r"not (?:be )?delivered|undeliver|fail|error|reject|refused|unknown|could not|couldn't|"
    r"unable|delay|not yet|will (?:retry|try)|permanent|temporar",
    re.IGNORECASE,
)
_FROM_LINE = re.compile(r"^[> ]*from:(.*)$", re.IGNORECASE | re.MULTILINE)
_REPLY_QUOTE = re.compile(r"^(?:>|on .{5,120} wrote:\s*$)", re.IGNORECASE | re.MULTILINE)
# Lines that carry an SMTP reply, or a sentence about one recipient.
_DIAGNOSTIC_HINT = re.compile(
    r"\b[45]\d\d\b|\b[45]\.\d{1,3}\.\d{1,3}\b|said:|reason:|error|fail|unknown|"
    r"reject|refus|denied|full|quota|exist|invalid|expired|blocked|spam|policy",
    re.IGNORECASE,
)


@dataclass(slots=True)
class Found:
    """One recipient read from prose, with the text said about it."""

    address: str
    diagnostic: str


def looks_like_bounce(from_: str, subject: str, content_type: str, report: str) -> bool:
    """Whether a mail says it is a delivery failure notice: by its sender, its subject, its
    type, or a sentence of its report part."""
    if content_type == "multipart/report":
        return True
    if _BOUNCE_FROM.search(from_):
        return True
    head = report[:3000]
    if _REPLY_QUOTE.search(head):
        # A reply or a forward: a bounce only if it forwards one (the mail system's From
        # line is in the text).
        return any(_BOUNCE_FROM.search(line) for line in _FROM_LINE.findall(head))
    return bool(_BOUNCE_SUBJECT.search(subject) or _BOUNCE_BODY.search(head))


def says_delivered(subject: str, report: str) -> bool:
    """A success notice: it says the message was delivered and says nothing of a failure."""
    text = f"{subject}\n{report[:3000]}"
    return bool(_SUCCESS.search(text)) and not _FAILURE.search(text)


def from_daemon(from_: str) -> bool:
    """Whether a From header is a mail system's (MAILER-DAEMON, postmaster, ...)."""
    return bool(_BOUNCE_FROM.search(from_))


def recipients(
    report: str, exclude: set[str], fallback: list[str], *, failed: Sequence[str] = ()
) -> list[Found]:
    """The failed recipients named in ``report`` (the prose before the quoted original).

    ``exclude`` holds the sender's and the bounce's own addresses; ``fallback`` the
    original's To addresses, used when the prose names nobody (some servers only say
    "your message could not be delivered").
    """
    wanted = {a.lower() for a in failed}
    spans = _spans(report, exclude - wanted, wanted)
    if not spans and not wanted:
        # Nobody but the sender is named: a mail someone sent to themself.
        spans = _spans(report, set(), wanted)
    if not spans:
        addresses = [a.lower() for a in fallback if a.lower() not in exclude][:1]
        return [Found(a, _whole(report)) for a in addresses]
    order: list[str] = []
    for _, _, address in spans:
        if address not in order:
            order.append(address)
    out: list[Found] = []
    for address in order:
        starts = [(s, e) for s, e, a in spans if a == address]
        texts = [_around(report, s, e, spans) for s, e in starts]
        text = max(texts, key=_score)
        if not _DIAGNOSTIC_HINT.search(text):
            text = _whole(report)
        out.append(Found(address, text))
    return out


def _spans(report: str, exclude: set[str], only: set[str]) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []
    for found in mime.ADDRESS.finditer(report):
        address = found.group(0).strip(".").lower()
        local = address.split("@", 1)[0]
        if only and address not in only:
            continue
        if address in exclude or _SYSTEM.match(local) or _not_a_recipient(report, found.start()):
            continue
        spans.append((found.start(), found.end(), address))
    return spans


_SENDER_CONTEXT = re.compile(
    r"(?:^\s*(?:from|sender|reply-to|return-path|mail from)\s*:|message-?id|msgid|"
    r"envelope-from|id <$|^\s*from\s+<?$)",
    re.IGNORECASE,
)


def _not_a_recipient(text: str, start: int) -> bool:
    """An address on a line that names the sender or a message id, not a recipient."""
    line_start = text.rfind("\n", 0, start) + 1
    return bool(_SENDER_CONTEXT.search(text[line_start:start]))


def _around(report: str, start: int, end: int, spans: list[tuple[int, int, str]]) -> str:
    """The text from the line of one address to the next other address, 800 characters at
    most: where each server writes what it said about that recipient."""
    line_start = report.rfind("\n", 0, start) + 1
    stop = len(report)
    own = report[start:end].strip(".").lower()
    for s, _, address in spans:
        if s > end and address != own:
            next_line = report.rfind("\n", 0, s) + 1
            stop = max(next_line, end)
            break
    return report[line_start : min(stop, line_start + 800)]


def _score(text: str) -> int:
    return len(_DIAGNOSTIC_HINT.findall(text))


def _whole(report: str) -> str:
    return report[:2000]
