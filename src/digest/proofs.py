"""Proofs: the pending edition mailed to each editor with its warnings and signed review links."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from zoneinfo import ZoneInfo

import jinja2

from digest.backends.base import Backend, Envelope
from digest.config.settings import EditorSettings, Settings
from digest.exceptions import BackendError, ConfigError
from digest.models import Edition
from digest.render import placeholders
from digest.render.dates import date_label
from digest.render.message import clean_name, mailbox, make_message_id, sender_address
from digest.slots import local_label, slot_day
from digest.tokens import APPROVAL_SALT, Signer, approval_token, secrets_from_env

_BANNER = jinja2.Environment(autoescape=True).from_string(
    """<div style="font-family:sans-serif;background:#fff4d6;border:2px solid #d9a400;
padding:12px 16px;margin:0 0 12px 0;color:#222">
<p style="{{ p }}"><strong>Proof</strong> of edition {{ e.id }}, revision {{ e.revision }}
({{ e.slot }}): not yet sent to subscribers.</p>
<p style="{{ p }}">Subject: {{ e.rendered.subject }}<br>
Preheader: {{ e.rendered.preheader }}</p>
{% if e.warnings %}<p style="{{ p }}">Warnings:</p><ul style="{{ p }}">
{% for w in e.warnings %}<li>{{ w }}</li>{% endfor %}</ul>
{% else %}<p style="{{ p }}">No warnings.</p>{% endif %}
{% if deadline_line %}<p style="{{ p }}">{{ deadline_line }}</p>{% endif %}
<p style="{{ p }}"><a href="{{ review }}" style="font-weight:bold">Review</a>
&nbsp;|&nbsp; <a href="{{ approve }}" style="font-weight:bold">Approve</a>
&nbsp;(links expire {{ expires }}; they open a page, nothing changes until you confirm)</p>
</div>"""
)
_BODY_OPEN = re.compile(r"<body[^>]*>", re.IGNORECASE)


def edition_date_line(edition: Edition, zone: str) -> str:
    """The date line an editor sees: the slot's date (else the day it was built, in
    ``zone``); each reader's copy carries the day they get it, in their own zone."""
    day = slot_day(edition.slot) or edition.created_at.astimezone(ZoneInfo(zone)).date()
    return date_label(day)


def review_links(
    settings: Settings, signer: Signer, edition: Edition, editor: str
) -> dict[str, str]:
    """The Review and Approve URLs for one editor, bound to the edition's current revision."""
    token = approval_token(signer, edition_id=edition.id, revision=edition.revision, editor=editor)
    base = f"{settings.publication.base_url.rstrip('/')}/e/{edition.id}"
    return {"review": f"{base}?t={token}", "approve": f"{base}/approve?t={token}"}


def approval_signer(
    settings: Settings,
    *,
    clock: Callable[[], datetime],
    environ: Mapping[str, str] | None = None,
) -> Signer:
    """The signer of proof links (its own salt, the keys of ``secret_env``)."""
    return Signer(secrets_from_env(settings.secret_env, environ), salt=APPROVAL_SALT, clock=clock)


def proof_envelope(
    settings: Settings,
    edition: Edition,
    editor: EditorSettings,
    *,
    signer: Signer,
    now: datetime,
    deadline: datetime | None = None,
) -> Envelope:
    """One editor's proof: the edition as a subscriber sees it, under a banner with the links."""
    links = review_links(settings, signer, edition, editor.email)
    zone = settings.schedule.timezone
    expires = local_label(now + timedelta(hours=settings.approval.link_hours), zone)
    policy = settings.approval.at_deadline
    passed = " (already passed)" if deadline is not None and deadline <= now else ""
    deadline_line = (
        f"Approve by {local_label(deadline, zone)}{passed}; then it is "
        + ("sent anyway (approval.at_deadline: send)." if policy == "send" else "not sent.")
        if deadline is not None
        else ""
    )
    needed = settings.approval.approvals_needed
    if needed > 1:
        deadline_line += f" It needs {needed} editors' approvals."
    name = clean_name(editor.name)
    values = placeholders.values_for(
        name=name,
        email=editor.email,
        unsubscribe_url=f"{settings.publication.base_url.rstrip('/')}/u/proof",
        date_line=edition_date_line(edition, settings.publication.timezone),
    )
    banner = _BANNER.render(
        e=edition,
        review=links["review"],
        approve=links["approve"],
        expires=expires,
        deadline_line=deadline_line,
        p="margin:0 0 6px 0",
    )
    body = placeholders.substitute(
        edition.rendered.html,
        {k: html.escape(v, quote=True) for k, v in values.items()},
        edition.rendered.marker,
    )
    match = _BODY_OPEN.search(body)
    at = match.end() if match else 0
    body = body[:at] + banner + body[at:]
    warnings = "".join(f"  - {w}\n" for w in edition.warnings) or "  none\n"
    text = (
        f"PROOF of edition {edition.id}, revision {edition.revision} ({edition.slot}): "
        f"not yet sent to subscribers.\n\nSubject: {edition.rendered.subject}\n"
        f"Preheader: {edition.rendered.preheader}\nWarnings:\n{warnings}"
        + (f"{deadline_line}\n" if deadline_line else "")
        + f"\nReview: {links['review']}\nApprove: {links['approve']}\n"
        f"(links expire {expires}; they open a page, nothing changes until you confirm)\n\n"
        + "-" * 60
        + "\n\n"
        + placeholders.substitute(edition.rendered.text, values, edition.rendered.marker)
    )
    pub = settings.publication
    message_id = make_message_id(pub.sender_domain)
    msg = EmailMessage()
    msg["From"] = pub.sender
    msg["To"] = mailbox(name, editor.email)
    msg["Subject"] = f"[Proof r{edition.revision}] {edition.rendered.subject}"
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id
    msg["X-Digest-Proof"] = f"edition={edition.id}; revision={edition.revision}"
    msg.set_content(text, cte="quoted-printable")
    msg.add_alternative(body, subtype="html", cte="quoted-printable")
    return Envelope(
        sender=sender_address(pub),
        recipient=editor.email,
        data=msg.as_bytes(policy=SMTP),
        message_id=message_id,
    )


def send_proofs(
    settings: Settings,
    edition: Edition,
    *,
    now: datetime,
    backend: Callable[[], Backend],
    deadline: datetime | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """Mail the proof to every editor; return one line per problem (the edition stays pending).

    ``deadline`` (workflow.deadline) is printed in the schedule's zone, named.

    A failed proof never loses the edition: it is stored and pending, and `digest proof`
    sends the proofs again.
    """
    editors = settings.approval.editors
    if not editors:
        return []
    retry = f"; fix it and run `digest proof {edition.id}`"
    try:
        signer = approval_signer(settings, clock=lambda: now, environ=environ)
        connection = backend()
        envelopes = [
            proof_envelope(settings, edition, e, signer=signer, now=now, deadline=deadline)
            for e in editors
        ]
    except (ConfigError, BackendError) as exc:
        return [f"proofs of edition {edition.id} not sent: {exc}{retry}"]
    problems: list[str] = []
    try:
        with connection:
            for editor, envelope in zip(editors, envelopes, strict=True):
                try:
                    connection.send(envelope)
                except BackendError as exc:
                    problems.append(
                        f"proof of edition {edition.id} to {editor.email}: {exc}{retry}"
                    )
    except BackendError as exc:  # open() or close() failed: the server is unreachable
        problems.append(f"proofs of edition {edition.id} not sent: {exc}{retry}")
    return problems
