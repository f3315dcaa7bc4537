"""Issue 29's loop end to end, real servers on loopback: an edition sent through aiosmtpd;
bounces and complaints for some of its readers delivered into a Maildir and into an IMAP
server over TLS; ONE `digest tick` suppresses them, `digest status` shows the figures, the
editors' threshold notice arrives at the sink, and the next edition skips them."""

from __future__ import annotations

import json
from email import policy
from email.parser import BytesParser

from test_bounce_imap import ENV, PASSWORD, imap_config

from bouncemail import dsn
from digest.testing.imap import IMAPServer
from digest.testing.smtp import SMTPSink

from conftest import Project, reader_mail

READERS = [f"reader{n}@example.org" for n in range(1, 11)]
EDITOR = "rosa@news.example.org"


def feedback_report(original: bytes, return_path: str) -> bytes:
    """An ARF report as a mailbox provider's feedback loop sends it: the original's headers
    quoted, the reader's address redacted (as Yahoo and AOL do), the return path named."""
    parsed = BytesParser(policy=policy.compat32).parsebytes(original, headersonly=True)
    quoted = "\n".join(
        f"{name}: {'redacted@example.org' if name == 'To' else ' '.join(str(value).split())}"
        for name, value in parsed.items()
    )
    return f"""\
From: Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.com>
To: {return_path}
Subject: FW: The Morning Brief
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="fbl"

--fbl
Content-Type: text/plain

This is an email abuse report for an email message received from IP 192.0.2.25.

--fbl
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: Yahoo!-Mail-Feedback/2.0
Version: 1
Original-Mail-From: <{return_path}>
Arrival-Date: Tue, 24 Nov 2026 06:05:00 +0000
Reported-Domain: news.example.org

--fbl
Content-Type: text/rfc822-headers

{quoted}

--fbl--
""".encode()


def sent_notices(smtp: SMTPSink, event: str) -> list[str]:
    """The bodies of the notices of ``event`` the editor got."""
    out = []
    for m in smtp.messages:
        msg = BytesParser(policy=policy.default).parsebytes(m.data)
        if msg["X-Digest-Notice"] == event and m.rcpt_tos == [EDITOR]:
            out.append(msg.get_content())
    return out


def test_one_tick_closes_the_loop(
    project: Project, smtp_server: SMTPSink, tls_cert: tuple[str, str]
) -> None:
    lines = "".join(f"  - email: {r}\n" for r in READERS)
    (project.root / "subscribers.yaml").write_text("subscribers:\n" + lines, encoding="utf-8")
    maildir = project.root / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    with IMAPServer(user="bounces", password=PASSWORD, cert=tls_cert) as imap:
        extra = (
            "email:\n  return_path_domain: bounce.news.example.org\n"
            f"notices:\n  to: [{EDITOR}]\n"
            + imap_config(imap.port, tls_cert[0])
            + "  maildir: Maildir\n"
        )
        project.write_config(
            "smtp",
            {"host": smtp_server.host, "port": smtp_server.port, "security": "none"},
            extra=extra,
        )
        built = project.cli("build", "--json")
        assert built.exit_code == 0, built.output
        first = str(json.loads(built.stdout)["id"])
        assert project.cli("approve", first, "--by", "Editor").exit_code == 0
        assert project.cli("send", first).exit_code == 0
        sent = {m.rcpt_tos[0]: m for m in smtp_server.messages if m.rcpt_tos[0] in READERS}
        assert sorted(sent) == sorted(READERS)

        def message_id(reader: str) -> str:
            parsed = BytesParser(policy=policy.default).parsebytes(sent[reader].data)
            return str(parsed["Message-ID"])

        # Maildir: a hard bounce to reader1's VERP return path, a soft one for reader4.
        (maildir / "new" / "1.mx").write_bytes(
            dsn(READERS[0], bounce_to=sent[READERS[0]].mail_from, message_id="<gone@x>")
        )
        (maildir / "new" / "2.mx").write_bytes(
            dsn(
                READERS[3],
                bounce_to=sent[READERS[3]].mail_from,
                status="4.2.2",
                diagnostic="452 4.2.2 <{to}>: Mailbox full",
                action="delayed",
                message_id=message_id(READERS[3]),
            )
        )
        # IMAP: a hard bounce mailed back to the sender naming only the Message-ID, and a
        # feedback-loop complaint with the reader's address redacted.
        imap.deliver(
            dsn(
                "r2.forwarded@mx.example.net",
                bounce_to="brief@news.example.org",
                message_id=message_id(READERS[1]),
            )
        )
        imap.deliver(feedback_report(sent[READERS[2]].data, sent[READERS[2]].mail_from))

        ticked = project.cli("tick", env=ENV)
        assert ticked.exit_code == 0, ticked.output
        assert "warning: bounces" not in ticked.output
        assert "2 read from bounces.maildir (1 counted, 1 suppressed)" in ticked.output
        assert "2 read from bounces.imap (2 suppressed)" in ticked.output
        assert imap.messages("INBOX") == []
        assert not list((maildir / "new").iterdir())

        def state(reader: str) -> str:
            shown = project.cli("subscribers", "show", reader)
            return str(json.loads(shown.stdout)["subscriber"]["state"])

        assert [state(r) for r in READERS[:5]] == [
            "bounced",
            "bounced",
            "complained",
            "active",
            "active",
        ]
        status = json.loads(project.cli("status", first, "--json").stdout)
        assert status["returns"] == {
            "hard_bounces": 2,
            "soft_bounces": 1,
            "complaints": 1,
            "hard_bounce_rate": 0.2,
            "soft_bounce_rate": 0.1,
            "complaint_rate": 0.1,
        }
        listed = project.cli("status")
        assert "2 (20.0%) / 1 (10.0%)" in listed.output
        [alert] = sent_notices(smtp_server, "bounce_alert")
        assert f"Edition {first}" in alert
        assert "2 hard bounces (20.0%), 1 soft (10.0%), 1 complaint (10.0%) of 10 sent" in alert

        # Once per edition: more bounces for it later do not mail the editors again.
        (maildir / "new" / "3.mx").write_bytes(
            dsn(READERS[4], bounce_to=sent[READERS[4]].mail_from)
        )
        again = project.cli("tick", env=ENV)
        assert "1 read from bounces.maildir (1 suppressed)" in again.output
        assert len(sent_notices(smtp_server, "bounce_alert")) == 1

        # The next edition skips every suppressed reader; its sent notice reports the figures
        # of the edition before it.
        smtp_server.messages.clear()
        later_feed = f"sources:\n  - name: Late\n    url: {project.feeds.url('/later.rss')}\n"
        smtp = {"host": smtp_server.host, "port": smtp_server.port, "security": "none"}
        project.write_config(
            "smtp", smtp, extra=extra, sources=later_feed + "    allow_private: true\n"
        )
        later = project.cli("build", "--slot", "2026-11-25T07:00", "--json")
        assert later.exit_code == 0, later.output
        second = str(json.loads(later.stdout)["id"])
        assert project.cli("approve", second, "--by", "Editor").exit_code == 0
        assert project.cli("send", second).exit_code == 0
        got = sorted(m.rcpt_tos[0] for m in smtp_server.messages if m.rcpt_tos[0] in READERS)
        assert got == sorted([READERS[3], *READERS[5:]])
        [notice] = sent_notices(smtp_server, "sent")
        assert f"edition {first}: 3 hard bounces (30.0%)" in notice


def test_the_figures_on_sqlite_and_postgresql(project: Project, state_url: str) -> None:
    """The per-edition figures (a join of the ledger and the bounce evidence on the
    Message-ID) on both engines, through `digest bounces import` and `digest status`."""
    project.state_url = state_url
    project.write_config(
        extra=f"notices:\n  to: [{EDITOR}]\nemail:\n  return_path_domain: bounce.news.example.org\n"
    )
    assert project.cli("build").exit_code == 0
    assert project.cli("approve", "1", "--by", "Editor").exit_code == 0
    assert project.cli("send", "1").exit_code == 0
    sent = {e.recipient: e for e in reader_mail()}
    folder = project.root / "returned"
    folder.mkdir()
    anna = sent["anna@example.org"]
    (folder / "1.eml").write_bytes(dsn("anna@example.org", bounce_to=anna.sender))
    (folder / "1-again.eml").write_bytes(dsn("anna@example.org", bounce_to=anna.sender))
    imported = project.cli("bounces", "import", str(folder))
    assert imported.exit_code == 0, imported.output
    returns = json.loads(project.cli("status", "1", "--json").stdout)["returns"]
    assert (returns["hard_bounces"], returns["complaints"]) == (1, 0)
    assert returns["hard_bounce_rate"] == round(1 / 3, 6)
    listed = json.loads(project.cli("status", "--json").stdout)
    assert listed[0]["returns"] == returns
