"""Small returned mails for the bounce tests, written as real servers write them
(RFC 3464 delivery status notifications, RFC 5965 feedback reports, RFC 3834 replies)."""

from __future__ import annotations

ORIGINAL = """\
From: The Morning Brief <brief@news.example.org>
To: {to}
Subject: The Morning Brief
Message-ID: {message_id}
X-Digest-Edition: 7

Today's stories.
"""


def dsn(
    to: str,
    *,
    status: str = "5.1.1",
    diagnostic: str = "550 5.1.1 <{to}>: Recipient address rejected: User unknown",
    action: str = "failed",
    bounce_to: str = "bounces+d7-42@news.example.org",
    message_id: str = "<ed1.r7@news.example.org>",
) -> bytes:
    """A Postfix-style delivery status notification for one recipient (about the message
    sent as ``message_id``)."""
    return f"""\
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: {bounce_to}
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{to}>: see below

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; {to}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {diagnostic.format(to=to)}

--b1
Content-Type: message/rfc822

{ORIGINAL.format(to=to, message_id=message_id)}
--b1--
""".encode()


def arf(to: str, *, feedback: str = "abuse") -> bytes:
    """An RFC 5965 feedback report: the reader pressed "this is spam"."""
    return f"""\
From: feedback@fbl.example.net
To: abuse@news.example.org
Subject: Abuse report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="f1"

--f1
Content-Type: text/plain

This is an email abuse report.

--f1
Content-Type: message/feedback-report

Feedback-Type: {feedback}
User-Agent: FBL/1.0
Version: 1
Original-Mail-From: <bounces@news.example.org>
Original-Rcpt-To: <{to}>

--f1
Content-Type: message/rfc822

{ORIGINAL.format(to=to, message_id="<ed1.r7@news.example.org>")}
--f1--
""".encode()


def vacation(sender: str) -> bytes:
    """An RFC 3834 out-of-office reply that talks about a full mailbox."""
    return f"""\
From: {sender}
To: brief@news.example.org
Subject: Out of office: The Morning Brief
Auto-Submitted: auto-replied

I am on holiday until Monday; my mailbox is full of sand.
""".encode()
