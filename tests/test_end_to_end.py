"""The whole path through the CLI: feeds on a local HTTP server, delivery to a real SMTP server."""

from __future__ import annotations

import json
import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from urllib.parse import urlsplit

from digest.returnpath import ReturnPaths
from digest.store.returns import Returns
from digest.testing.smtp import SMTPSink
from digest.tokens import UNSUBSCRIBE_SALT, Signer, read_unsubscribe_token

from conftest import SECRET, Project


def _smtp_config(project: Project, smtp: SMTPSink) -> None:
    project.write_config("smtp", {"host": smtp.host, "port": smtp.port, "security": "none"})


def _build(project: Project) -> int:
    result = project.cli("build", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["state"] == "pending_approval"
    return int(data["id"])


def test_build_approve_send_delivers_valid_messages(
    project: Project, smtp_server: SMTPSink
) -> None:
    _smtp_config(project, smtp_server)
    edition = _build(project)
    assert project.cli("approve", str(edition), "--by", "Editor").exit_code == 0
    result = project.cli("send", str(edition))
    assert result.exit_code == 0, result.output
    assert "sent 3" in result.stdout

    received = {m.rcpt_tos[0]: m for m in smtp_server.messages}
    assert sorted(received) == ["anna@example.org", "ben@example.net", "dmitri@example.org"]
    signer = Signer([SECRET], salt=UNSUBSCRIBE_SALT)
    message_ids = set()
    for rcpt, raw in received.items():
        assert raw.mail_from == "brief@news.example.org"
        # CRLF on the wire, no bare LF, no line over 998 octets (RFC 5322 2.1.1).
        assert b"\n" not in raw.data.replace(b"\r\n", b"")
        assert max(len(line) for line in raw.data.split(b"\r\n")) <= 998
        msg = BytesParser(policy=policy.default).parsebytes(raw.data)
        assert isinstance(msg, EmailMessage)
        assert not msg.defects
        assert msg["From"] == "The Morning Brief <brief@news.example.org>"
        assert rcpt in msg["To"]
        assert msg["Subject"].startswith("The Morning Brief: ")
        assert msg["Date"]
        assert re.fullmatch(r"<[^@<>]+@news\.example\.org>", msg["Message-ID"])
        message_ids.add(msg["Message-ID"])
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg.get_content_type() == "multipart/alternative"
        parts = list(msg.iter_parts())
        assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
        text, html = (p.get_content() for p in parts)
        # The unsubscribe URL is this subscriber's own, signed, and in both parts.
        url = re.search(r"<(https://[^>]+)>", msg["List-Unsubscribe"]).group(1)  # type: ignore[union-attr]
        assert urlsplit(url).netloc == "news.example.org"
        token = urlsplit(url).path.rsplit("/", 1)[1]
        assert read_unsubscribe_token(signer, token) == rcpt
        assert url in text
        assert url.replace("&", "&amp;") in html
        # Both parts carry the stories, in the same order, and the tracking params are gone.
        assert "Putin poaches the neighbors" in text
        assert "Putin poaches the neighbors" in html
        assert "utm_source" not in html
        assert "Chipmakers race" in text
    assert len(message_ids) == 3
    dmitri = BytesParser(policy=policy.default).parsebytes(received["dmitri@example.org"].data)
    assert "Дмитрий Иванов" in str(dmitri["To"])

    status = json.loads(project.cli("status", str(edition), "--json").stdout)
    assert status["state"] == "sent"
    assert status["deliveries"] == {"sent": 3}
    assert [a["to"] for a in status["audit"]] == [
        "pending_approval",
        "approved",
        "sending",
        "sent",
    ]


def test_send_refuses_unapproved_and_rejected(project: Project, smtp_server: SMTPSink) -> None:
    _smtp_config(project, smtp_server)
    draft = _build(project)
    result = project.cli("send", str(draft))
    assert result.exit_code == 1
    assert "pending_approval" in result.output
    assert "digest approve" in result.output
    reject = project.cli("reject", str(draft), "--by", "Editor", "--reason", "typo in lead")
    assert reject.exit_code == 0, reject.output
    result = project.cli("send", str(draft))
    assert result.exit_code == 1
    assert "rejected" in result.output
    assert smtp_server.messages == []
    assert json.loads(project.cli("status", str(draft), "--json").stdout)["deliveries"] == {}


def test_second_send_of_sent_edition_sends_nothing(project: Project, smtp_server: SMTPSink) -> None:
    _smtp_config(project, smtp_server)
    edition = _build(project)
    project.cli("approve", str(edition), "--by", "Editor")
    assert project.cli("send", str(edition)).exit_code == 0
    assert len(smtp_server.messages) == 3
    again = project.cli("send", str(edition))
    assert again.exit_code == 0
    assert "sent 0" in again.stdout
    assert len(smtp_server.messages) == 3


def test_next_edition_skips_stories_already_mailed(project: Project) -> None:
    edition = _build(project)
    project.cli("approve", str(edition), "--by", "Editor")
    assert project.cli("send", str(edition)).exit_code == 0
    result = project.cli("build")
    assert result.exit_code == 1
    assert "no stories to send" in result.output


def test_unsubscribed_address_is_skipped(project: Project) -> None:
    from digest.backends import memory
    from digest.store import Store

    edition = _build(project)
    project.cli("approve", str(edition), "--by", "Editor")
    store = Store(project.state)
    from datetime import UTC, datetime

    store.suppress("Ben@example.net", reason="unsubscribed", now=datetime.now(UTC))
    store.close()
    result = project.cli("send", str(edition))
    assert "sent 2" in result.stdout
    # The send's subscriber sync turned the suppression into Ben's state: he is not a
    # recipient any more (and so not even a skipped row).
    assert "skipped 0" in result.stdout
    assert sorted(e.recipient for e in memory.outbox) == ["anna@example.org", "dmitri@example.org"]


def test_send_without_secret_refuses(project: Project) -> None:
    edition = _build(project)
    project.cli("approve", str(edition), "--by", "Editor")
    result = project.cli("send", str(edition), env={"DIGEST_SECRET": ""})
    assert result.exit_code == 1
    assert "DIGEST_SECRET is not set" in result.output


def test_each_sent_message_leads_back_to_its_delivery(
    project: Project, smtp_server: SMTPSink
) -> None:
    """What a bounce quotes (the Message-ID, with or without brackets) finds the delivery."""
    _smtp_config(project, smtp_server)
    edition = _build(project)
    assert project.cli("approve", str(edition), "--by", "Editor").exit_code == 0
    assert project.cli("send", str(edition)).exit_code == 0
    store = project.open_store()
    try:
        returns = Returns(store)
        for raw in smtp_server.messages:
            msg = BytesParser(policy=policy.default).parsebytes(raw.data)
            found = returns.by_message_id(msg["Message-ID"])
            assert found is not None
            assert (found.edition_id, found.email) == (edition, raw.rcpt_tos[0])
            assert returns.by_message_id(msg["Message-ID"].strip("<>")) == found
        assert returns.by_message_id("<nobody@news.example.org>") is None
        assert returns.by_message_id("") is None
    finally:
        store.close()


def test_a_return_path_per_message_names_its_delivery(
    project: Project, smtp_server: SMTPSink
) -> None:
    """email.return_path_domain: MAIL FROM is bounces+TOKEN@domain; a forged token is no one."""
    project.write_config(
        "smtp",
        {"host": smtp_server.host, "port": smtp_server.port, "security": "none"},
        extra="email:\n  return_path_domain: bounce.news.example.org\n",
    )
    edition = _build(project)
    assert project.cli("approve", str(edition), "--by", "Editor").exit_code == 0
    assert project.cli("send", str(edition)).exit_code == 0
    paths = ReturnPaths("bounce.news.example.org", [SECRET])
    store = project.open_store()
    try:
        returns = Returns(store)
        senders = set()
        for raw in smtp_server.messages:
            sender = raw.mail_from
            senders.add(sender)
            assert re.fullmatch(r"bounces\+[0-9a-f.]+@bounce\.news\.example\.org", sender)
            assert len(sender.partition("@")[0]) <= 64
            message_id = paths.message_id(sender.upper(), domain="news.example.org")
            assert message_id is not None
            found = returns.by_message_id(message_id)
            assert found is not None
            assert found.email == raw.rcpt_tos[0]
            # A bounce mailed to a guessed or altered return path names nobody.
            forged = sender.replace(sender[-30], "0" if sender[-30] != "0" else "1", 1)
            assert paths.message_id(forged, domain="news.example.org") is None
            other = ReturnPaths("bounce.news.example.org", ["another key"])
            assert other.message_id(sender, domain="news.example.org") is None
        assert len(senders) == 3
    finally:
        store.close()
