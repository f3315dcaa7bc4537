"""RFC 3464 delivery status notifications: per-recipient Final-Recipient, Action, Status.

Read from a message/delivery-status part, or from the same fields written into a text
part (several MTAs do that). A recipient with Action delivered/relayed/expanded is a
delivery notice, not a bounce.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from digest.deliverability import mime

_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)[ \t]*:[ \t]*(.*)$")
_PER_RECIPIENT = ("final-recipient", "original-recipient", "x-actual-recipient")


@dataclass(slots=True)
class Block:
    """One per-recipient block of a DSN."""

    final: str
    original: str
    action: str
    status: str
    diagnostic: str
    remote: str


def fields(text: str) -> list[dict[str, str]]:
    """Blank-line separated blocks of ``Name: value`` fields (continuation lines folded)."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.rstrip()
        if not line.strip():
            if current:
                blocks.append(current)
            current, last = {}, ""
            continue
        if line[:1] in " \t" and last:
            current[last] += " " + line.strip()
            continue
        found = _FIELD.match(line)
        if found is None:
            last = ""
            continue
        name = found.group(1).lower()
        if name in current and name in _PER_RECIPIENT:
            blocks.append(current)  # a new recipient without a blank line before it
            current = {}
        last = name
        current[name] = found.group(2).strip()
    if current:
        blocks.append(current)
    return blocks


def field_list(text: str) -> list[tuple[str, str]]:
    """Every ``Name: value`` field of ``text`` in order, repeated names kept."""
    out: list[tuple[str, str]] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        if raw[:1] in " \t" and out:
            out[-1] = (out[-1][0], out[-1][1] + " " + raw.strip())
            continue
        found = _FIELD.match(raw.rstrip())
        if found:
            out.append((found.group(1).lower(), found.group(2).strip()))
    return out


def _status_part(msg: Message) -> str | None:
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            payload = part.get_payload()
            if isinstance(payload, list):
                return "\n\n".join(
                    "\n".join(f"{k}: {v}" for k, v in block.items())
                    for block in payload
                    if isinstance(block, Message)
                )
            return mime.part_text(part)
    return None


def blocks(msg: Message, texts: list[str]) -> list[Block]:
    """The per-recipient blocks of the DSN in ``msg``, or of DSN fields in its texts."""
    status = _status_part(msg)
    sources = [status] if status is not None else texts
    found: list[Block] = []
    for source in sources:
        for block in fields(source):
            final = block.get("final-recipient") or block.get("x-actual-recipient") or ""
            original = block.get("original-recipient", "")
            if not (final or original) or "@" not in final + original:
                continue
            found.append(
                Block(
                    final=mime.clean_address(final) or mime.clean_address(original),
                    original=mime.clean_address(original),
                    action=block.get("action", "").lower().strip(),
                    status=block.get("status", "").strip(),
                    diagnostic=_diagnostic(block.get("diagnostic-code", "")),
                    remote=block.get("remote-mta", ""),
                )
            )
        if found:
            break
    return found


def _diagnostic(value: str) -> str:
    """The text of a Diagnostic-Code without its type (``smtp;``)."""
    kind, sep, rest = value.partition(";")
    return rest.strip() if sep and len(kind) < 16 and " " not in kind.strip() else value.strip()
