"""A bounce finds the delivery it came from (return path token or quoted Message-ID) and the
policy applies to the address digest sent to, whatever address the report names."""

from __future__ import annotations

import json
from email import policy
from email.parser import BytesParser
from typing import Any

from bouncemail import arf, dsn
from digest.testing.smtp import SMTPSink

from conftest import Project


def _send(project: Project, smtp: SMTPSink) -> dict[str, tuple[str, str]]:
    """Build, approve and send; each reader's (return path, Message-ID)."""
    project.write_config(
        "smtp",
        {"host": smtp.host, "port": smtp.port, "security": "none"},
        extra="email:\n  return_path_domain: bounce.news.example.org\n",
    )
    built = project.cli("build", "--json")
    assert built.exit_code == 0, built.output
    edition = str(json.loads(built.stdout)["id"])
    assert project.cli("approve", edition, "--by", "Editor").exit_code == 0
    assert project.cli("send", edition).exit_code == 0
    sent = {}
    for raw in smtp.messages:
        msg = BytesParser(policy=policy.default).parsebytes(raw.data)
        sent[raw.rcpt_tos[0]] = (raw.mail_from, str(msg["Message-ID"]))
    return sent


def _import(project: Project, *paths: str) -> list[dict[str, Any]]:
    result = project.cli("bounces", "import", *paths, "--json")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def _state(project: Project, email: str) -> str:
    shown = project.cli("subscribers", "show", email)
    assert shown.exit_code == 0, shown.output
    return str(json.loads(shown.stdout)["subscriber"]["state"])


def test_a_bounce_finds_its_reader_by_return_path_or_message_id(
    project: Project, smtp_server: SMTPSink
) -> None:
    sent = _send(project, smtp_server)
    anna_path, _ = sent["anna@example.org"]
    _, ben_id = sent["ben@example.net"]
    folder = project.root / "returned"
    folder.mkdir()
    # A forward's final address in the report, the original quoted as something else:
    # the return path alone says it was Anna's message.
    (folder / "1.eml").write_bytes(
        dsn("anna.s@forward.example", bounce_to=anna_path, message_id="<lost@elsewhere>")
    )
    # No return path (mailed back to the sender), but the original's Message-ID quoted.
    (folder / "2.eml").write_bytes(
        dsn("b.okafor@alias.example", bounce_to="brief@news.example.org", message_id=ben_id)
    )
    # A forged return path names nobody: the report's own address (not a reader) is used.
    forged = anna_path.replace("@", "0@", 1)
    (folder / "3.eml").write_bytes(
        dsn("dmitri.x@example.org", bounce_to=forged, message_id="<nobody@x>")
    )
    rows = _import(project, str(folder / "1.eml"), str(folder / "2.eml"), str(folder / "3.eml"))
    assert rows[0]["delivery"]["email"] == "anna@example.org"
    assert rows[0]["action"] == "suppressed"
    assert rows[1]["delivery"]["email"] == "ben@example.net"
    assert rows[1]["delivery"]["message_id"] == ben_id
    assert "email" not in (rows[2]["delivery"] or {})
    assert _state(project, "anna@example.org") == "bounced"
    assert _state(project, "ben@example.net") == "bounced"
    assert _state(project, "dmitri@example.org") == "active"


def test_tick_reads_the_return_paths_maildir_once_and_files_what_it_read(
    project: Project, smtp_server: SMTPSink
) -> None:
    sent = _send(project, smtp_server)
    maildir = project.root / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    config = project.config.read_text(encoding="utf-8")
    project.config.write_text(config + "bounces:\n  maildir: Maildir\n", encoding="utf-8")
    anna_path, _ = sent["anna@example.org"]
    (maildir / "new" / "1.host").write_bytes(dsn("anna.s@forward.example", bounce_to=anna_path))
    (maildir / "new" / "2.host").write_bytes(arf("ben@example.net"))
    (maildir / "new" / "3.host").write_bytes(b"")  # not a mail
    first = project.cli("tick")
    assert first.exit_code == 0, first.output
    assert "bounces: 2 read from bounces.maildir (2 suppressed)" in first.output
    assert "3.host" in first.output  # the unreadable one is named, and filed
    assert sorted(p.name for p in (maildir / "cur").iterdir()) == [
        "1.host:2,S",
        "2.host:2,S",
        "3.host:2,S",
    ]
    assert not list((maildir / "new").iterdir())
    assert _state(project, "anna@example.org") == "bounced"
    assert _state(project, "ben@example.net") == "complained"
    second = project.cli("tick")
    assert second.exit_code == 0, second.output
    assert "bounces:" not in second.output


def test_a_maildir_that_is_not_one_is_a_warning_not_a_stopped_tick(project: Project) -> None:
    config = project.config.read_text(encoding="utf-8")
    project.config.write_text(config + "bounces:\n  maildir: nowhere\n", encoding="utf-8")
    result = project.cli("tick")
    assert result.exit_code == 0, result.output
    assert "bounces.maildir:" in result.output
    assert "has no new/ folder" in result.output
