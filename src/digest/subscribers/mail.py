"""The double opt-in mail: one short message with the signed confirmation link."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

import jinja2

from digest.backends.base import Envelope
from digest.models import Publication
from digest.render.message import mailbox, make_message_id, sender_address

# Inline styles: many mail clients drop <style> blocks.
_STYLE = {
    "body": "margin:0;padding:24px 16px;background:#eef1f5;font-family:Helvetica,Arial,"
    "sans-serif;color:#1f2328",
    "card": "max-width:560px;margin:0 auto;background:#ffffff;padding:24px;border-radius:6px",
    "h1": "font-size:22px;line-height:28px;margin:0 0 12px",
    "p": "font-size:16px;line-height:24px;margin:0 0 16px",
    "button": "display:inline-block;background:#0b57d0;color:#ffffff;font-size:16px;"
    "font-weight:600;line-height:20px;padding:12px 28px;border-radius:6px;text-decoration:none",
    "small": "font-size:14px;line-height:20px;color:#57606a;margin:0 0 8px",
}
_HTML = jinja2.Environment(autoescape=True).from_string(
    """<!doctype html>
<html lang="{{ pub.language }}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Confirm your subscription</title></head>
<body style="{{ s.body }}"><div style="{{ s.card }}">
<h1 style="{{ s.h1 }}">Confirm your subscription to {{ pub.name }}</h1>
<p style="{{ s.p }}">Someone, hopefully you, asked to send {{ pub.name }} to {{ email }}.
Open this link and press the button to confirm:</p>
<p style="{{ s.p }}"><a href="{{ link }}" style="{{ s.button }}">Confirm my subscription</a></p>
<p style="{{ s.small }}">If it was not you, ignore this message: nothing will be sent to you.
The link works for 7 days.</p>
{% if pub.postal_address %}<p style="{{ s.small }}">{{ pub.postal_address }}</p>{% endif %}
</div></body></html>"""
)


def confirmation_envelope(
    publication: Publication, *, email: str, link: str, now: datetime
) -> Envelope:
    """The message that asks ``email`` to confirm; ``link`` opens the confirmation page.

    Nothing a visitor typed is in it (the form's name goes in no header and no body): the
    address is not confirmed yet, so whoever filled in the form may be a stranger using us
    to carry their words ("Cheap pills at ...") into someone's inbox.
    """
    text = (
        f"Confirm your subscription to {publication.name}\n\n"
        f"Someone, hopefully you, asked to send {publication.name} to {email}.\n"
        "Open this link and press the button to confirm:\n\n"
        f"{link}\n\n"
        "If it was not you, ignore this message: nothing will be sent to you.\n"
        "The link works for 7 days.\n"
        + (f"\n{publication.postal_address}\n" if publication.postal_address else "")
    )
    message_id = make_message_id(publication.sender_domain)
    msg = EmailMessage()
    msg["From"] = publication.sender
    msg["To"] = mailbox("", email)
    msg["Subject"] = f"Confirm your subscription to {publication.name}"
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    if publication.reply_to:
        msg["Reply-To"] = publication.reply_to
    msg.set_content(text, cte="quoted-printable")
    msg.add_alternative(
        _HTML.render(pub=publication, email=email, link=link, s=_STYLE),
        subtype="html",
        cte="quoted-printable",
    )
    return Envelope(
        sender=sender_address(publication),
        recipient=email,
        data=msg.as_bytes(policy=SMTP),
        message_id=message_id,
    )
