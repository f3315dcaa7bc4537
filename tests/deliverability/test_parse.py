"""digest.deliverability.parse on returned mails of each family: what it finds and how it
classifies it (the public Python API; pure, no store)."""

from __future__ import annotations

import json

import pytest

from bouncemail import arf, dsn, vacation
from digest.deliverability import parse
from digest.exceptions import BounceError


def _one(data: bytes) -> tuple[str, str | None, str, str, str]:
    report = parse(data)
    [r] = report.recipients
    return report.kind, r.address, r.status, r.reason, r.kind


@pytest.mark.parametrize(
    ("status", "diagnostic", "expected"),
    [
        (
            "5.1.1",
            "550 5.1.1 <{to}>: Recipient address rejected: User unknown",
            ("5.1.1", "userunknown", "hard"),
        ),
        (
            "5.0.0",
            "550 Host or domain name not found. Name service error",
            ("5.0.0", "hostunknown", "hard"),
        ),
        ("5.2.2", "552 5.2.2 <{to}>: Mailbox full", ("5.2.2", "mailboxfull", "soft")),
        (
            "5.7.1",
            "554 5.7.1 Message rejected as spam by Content Filtering",
            ("5.7.1", "spamdetected", "soft"),
        ),
        (
            "5.7.1",
            "550 5.7.1 Client host rejected: blocked using zen.spamhaus.org",
            ("5.7.1", "blocked", "soft"),
        ),
        (
            "5.7.26",
            "550 5.7.26 Unauthenticated email is not accepted due to DMARC policy",
            ("5.7.26", "authfailure", "soft"),
        ),
        ("4.4.7", "Delivery time expired", ("4.4.7", "expired", "soft")),
        (
            "5.0.0",
            "550 5.2.1 The email account that you tried to reach is disabled",
            ("5.2.1", "suspend", "soft"),
        ),
        # Exchange Online's words for a recipient that does not exist.
        (
            "5.4.1",
            "550 5.4.1 Recipient address rejected: Access denied. AS(201806281)",
            ("5.4.1", "userunknown", "hard"),
        ),
        ("5.0.0", "reader wasn't found at example.org.", ("5.0.0", "userunknown", "hard")),
        # The sender, not the recipient, was refused.
        ("5.1.8", "553 5.1.8 Sender address rejected.", ("5.1.8", "rejected", "soft")),
        # A reply code only: the text decides; no status at all is derived from the reason.
        (
            "",
            "552 Message size exceeds fixed maximum message size",
            ("5.3.4", "mesgtoobig", "soft"),
        ),
    ],
)
def test_dsn_status_and_text_make_reason_and_kind(
    status: str, diagnostic: str, expected: tuple[str, str, str]
) -> None:
    data = dsn("reader@example.org", status=status, diagnostic=diagnostic)
    kind, address, *got = _one(data)
    assert address == "reader@example.org"
    assert tuple(got) == expected
    assert kind == expected[2]


def test_a_dsn_names_the_delivery_it_came_from() -> None:
    report = parse(dsn("reader@example.org"))
    assert report.delivery.message_id == "<ed1.r7@news.example.org>"
    assert report.delivery.headers == {"x-digest-edition": "7"}
    assert report.delivery.token == "d7-42"  # from To: bounces+d7-42@news.example.org


def test_an_alias_reports_the_address_the_sender_used() -> None:
    data = dsn("reader@example.org").replace(
        b"Final-Recipient: rfc822; reader@example.org",
        b"Original-Recipient: rfc822; alias@example.org\n"
        b"Final-Recipient: rfc822; reader@example.org",
    )
    [r] = parse(data).recipients
    assert (r.address, r.original) == ("reader@example.org", "alias@example.org")
    assert r.to_dict()["original_address"] == "alias@example.org"


def test_a_delayed_or_delivered_dsn_is_not_a_hard_bounce() -> None:
    delayed = dsn(
        "reader@example.org",
        status="4.4.1",
        action="delayed",
        diagnostic="Connection timed out; will retry",
    )
    assert _one(delayed)[-1] == "soft"
    delivered = dsn(
        "reader@example.org", status="2.0.0", action="delivered", diagnostic="250 2.0.0 Ok"
    )
    assert _one(delivered)[0] == "not_a_bounce"


def test_after_data_user_unknown_is_a_filter_but_5_1_1_stays_hard() -> None:
    prose = "in reply to end of DATA command"
    filtered = dsn("reader@example.org", status="5.0.0", diagnostic=f"550 Unknown user ({prose})")
    assert _one(filtered)[3:] == ("filtered", "soft")
    gone = dsn("reader@example.org", status="5.1.1", diagnostic=f"550 5.1.1 User unknown ({prose})")
    assert _one(gone)[3:] == ("userunknown", "hard")


def test_a_temporary_dns_failure_is_not_a_gone_domain() -> None:
    data = dsn("reader@example.org", status="4.4.3", diagnostic="Host or domain name not found")
    assert _one(data)[3:] == ("networkerror", "soft")


def test_a_refusal_at_mail_from_is_about_the_sender() -> None:
    data = dsn(
        "reader@example.org",
        status="5.1.0",
        diagnostic="553 5.1.0 sender domain does not exist (in reply to MAIL FROM command)",
    )
    assert _one(data)[3:] == ("rejected", "soft")


def test_arf_complaints_and_redacted_ones() -> None:
    assert _one(arf("reader@example.org")) == (
        "complaint",
        "reader@example.org",
        "",
        "feedback:abuse",
        "complaint",
    )
    assert _one(arf("reader@example.org", feedback="opt-out"))[3] == "feedback:opt-out"
    redacted = arf("xxxxxxx@example.org")
    assert _one(redacted)[1] is None


QMAIL = b"""\
From: MAILER-DAEMON@mx.example.net
To: bounces@news.example.org
Subject: failure notice

Hi. This is the qmail-send program at mx.example.net.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<reader@example.org>:
192.0.2.1 does not like recipient.
Remote host said: 550 5.1.1 <reader@example.org>... No such user here
Giving up on 192.0.2.1.

<second@example.net>:
Remote host said: 552 Requested mail action aborted: mailbox is full

--- Below this line is a copy of the message.

From: The Morning Brief <brief@news.example.org>
To: reader@example.org
Message-ID: <ed1.r8@news.example.org>
"""


def test_prose_bounces_give_each_recipient_its_own_reason() -> None:
    report = parse(QMAIL)
    got = [(r.address, r.status, r.reason, r.kind) for r in report.recipients]
    assert got == [
        ("reader@example.org", "5.1.1", "userunknown", "hard"),
        ("second@example.net", "5.2.2", "mailboxfull", "soft"),
    ]
    assert report.kind == "hard"  # the most severe of its recipients
    assert report.delivery.message_id == "<ed1.r8@news.example.org>"


def test_exim_names_the_failed_recipients_in_a_header() -> None:
    data = (
        b"From: Mail Delivery System <Mailer-Daemon@mx.example.net>\n"
        b"To: brief@news.example.org\nX-Failed-Recipients: reader@example.org\n"
        b"Subject: Mail delivery failed: returning message to sender\n\n"
        b"This message was created automatically by mail delivery software.\n\n"
        b"  reader@example.org\n    SMTP error from remote mail server after RCPT TO:"
        b"<reader@example.org>:\n    550 5.1.1 unknown user; see also postmaster@example.org\n"
    )
    assert _one(data)[1:] == ("reader@example.org", "5.1.1", "userunknown", "hard")


def _ses(kind: str, body: dict[str, object]) -> bytes:
    message = json.dumps({"notificationType": kind, **body, "mail": {"messageId": "0101"}})
    sns = json.dumps({"Type": "Notification", "Message": message})
    # SNS e-mail wraps long lines with "!" and a newline; the parser joins them again.
    wrapped = sns[:60] + "!\n " + sns[60:]
    return (
        b"From: AWS Notifications <no-reply@sns.amazonaws.com>\n"
        b"Subject: AWS Notification Message\n\n" + wrapped.encode()
    )


def test_amazon_ses_notices() -> None:
    bounce = _ses(
        "Bounce",
        {
            "bounce": {
                "bounceType": "Permanent",
                "bouncedRecipients": [
                    {
                        "emailAddress": "reader@example.org",
                        "status": "5.1.1",
                        "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                    }
                ],
            }
        },
    )
    assert _one(bounce)[1:] == ("reader@example.org", "5.1.1", "userunknown", "hard")
    complaint = _ses(
        "Complaint",
        {
            "complaint": {
                "complaintFeedbackType": "abuse",
                "complainedRecipients": [{"emailAddress": "reader@example.org"}],
            }
        },
    )
    assert _one(complaint)[-1] == "complaint"
    delivery = _ses("Delivery", {"delivery": {"recipients": ["reader@example.org"]}})
    assert _one(delivery)[0] == "not_a_bounce"


@pytest.mark.parametrize(
    "data",
    [
        vacation("reader@example.org"),
        # No header says so, but the text does; and it says "mailbox", "full", "no longer".
        b"From: reader@example.org\nSubject: Re: The Morning Brief\n\n"
        b"I am out of the office until Monday with no access to email; my mailbox is full.\n",
        # A read receipt (RFC 8098).
        b"From: reader@example.org\nSubject: Read: The Morning Brief\n"
        b"Content-Type: multipart/report; report-type=disposition-notification; boundary=m\n\n"
        b"--m\nContent-Type: text/plain\n\nYour message was displayed.\n--m\n"
        b"Content-Type: message/disposition-notification\n\n"
        b"Final-Recipient: rfc822; reader@example.org\n"
        b"Disposition: manual-action/MDN-sent-manually; displayed\n--m--\n",
        # A success notice without a DSN part.
        b"From: postmaster@mx.example.net\nSubject: Delivery Status Notification (Success)\n\n"
        b"This is an automatically generated Delivery Status Notification.\n\n"
        b"Your message has been successfully delivered to reader@example.org.\n",
        # An ordinary mail.
        b"From: reader@example.org\nSubject: Question\n\nWhere do I change my topics?\n",
        # A reader's reply whose subject says "error" and whose text names an address.
        b"From: reader@example.org\nSubject: Re: an error in today's issue\n\n"
        b"The user unknown to you is my colleague colleague@example.net.\n\n"
        b"On Mon, 23 Nov 2026, The Morning Brief <brief@news.example.org> wrote:\n"
        b"> Today's stories.\n",
    ],
)
def test_replies_receipts_and_notices_are_never_bounces(data: bytes) -> None:
    report = parse(data)
    assert report.kind == "not_a_bounce"
    assert all(r.kind == "not_a_bounce" for r in report.recipients)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty file, not a mail"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not a mail (it does not start with a header line)"),
        (b"From: a@example.org\nContent-Type: multipart/mixed\n\nx\n", "broken MIME"),
    ],
)
def test_what_is_not_a_mail_raises_one_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(BounceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(data)


@pytest.mark.parametrize("ending", [b"\r\n", b"\r"])
def test_crlf_and_cr_line_endings_read_the_same(ending: bytes) -> None:
    as_saved = parse(QMAIL.replace(b"\n", ending))
    assert as_saved.recipients == parse(QMAIL).recipients
    assert len(as_saved.recipients) == 2


def test_a_crashing_third_party_detector_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    # No From at all: one of flufl.bounce's detectors raises on it; the mail is "unknown".
    report = parse(b"Subject: Undeliverable\n\nSomething went wrong.\n")
    assert report.kind == "unknown"
    assert capfd.readouterr().err == ""


def test_damaged_headers_and_charsets_are_read_around() -> None:
    # Encoded words with broken base64 and with a charset name whose byte was flipped:
    # found by fuzzing the corpus, each used to escape as a traceback.
    data = QMAIL.replace(
        b"Subject: failure notice", b"Subject: =?\xffso-8859-15?Q?failure_notice?="
    ).replace(b"From: MAILER-DAEMON@", b"From: =?utf-8?B?YWJjZGVmZ2?= <MAILER-DAEMON@")
    report = parse(data.replace(b"mx.example.net\n", b"mx.example.net>\n", 1))
    assert [r.address for r in report.recipients] == ["reader@example.org", "second@example.net"]
