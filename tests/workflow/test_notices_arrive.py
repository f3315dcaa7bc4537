"""Notices that always arrive (issue 32): the `sent` notice once per edition whoever ends it,
with the whole edition's figures; notices for a missed slot, proofs that could not be mailed
and a halted schedule; a dead mail server's notices through `notices.backend`, once, not
every tick. Every message is read where a real server (aiosmtpd) or the outbox put it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from digest import notices
from digest.app import App
from digest.testing.smtp import SMTPSink

from conftest import EDITORS, Project
from sending import subscribers

ROSA = "rosa@news.example.org"
SAM = "sam@news.example.org"
OPS = "ops@news.example.org"


@pytest.fixture
def sink() -> Iterator[SMTPSink]:
    with SMTPSink() as server:
        yield server


def _parse(data: bytes) -> EmailMessage:
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def _at_sink(sink: SMTPSink, event: str) -> list[EmailMessage]:
    found = [_parse(m.data) for m in sink.messages]
    return [m for m in found if m["X-Digest-Notice"] == event]


def _in_outbox(folder: Path, event: str) -> list[EmailMessage]:
    found = [_parse(p.read_bytes()) for p in sorted(folder.glob("new/*"))]
    return [m for m in found if m["X-Digest-Notice"] == event]


def _body(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def _closed_port() -> int:
    """A loopback port nobody listens on: a dead mail server."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_workers_that_end_a_send_notice_it_once_with_every_delivery(
    project: Project, sink: SMTPSink
) -> None:
    emails = subscribers(project, 90)
    config = {"host": sink.host, "port": sink.port}
    project.write_config("smtp", config, extra=EDITORS + "send:\n  connections: 2\n")
    assert project.cli("build").exit_code == 0
    assert project.cli("approve", "1", "--by", "Rosa Diaz").exit_code == 0
    result = project.cli("send", "1", "--workers", "3")
    assert result.exit_code == 0, result.output
    notices = _at_sink(sink, "sent")
    assert sorted(str(m["To"]) for m in notices) == [ROSA, SAM]  # once per editor
    body = _body(notices[0])
    # The whole edition, not only the deliveries of the process that ended it.
    assert f"  sent: {len(emails)}" in body
    assert "Started " in body
    assert "ended " in body
    # A worker started later finds nothing to do and mails nothing.
    assert project.cli("worker", "--once").exit_code == 0
    assert len(_at_sink(sink, "sent")) == 2


def test_an_edition_whose_notice_never_went_is_noticed_by_the_next_tick(
    project: Project, sink: SMTPSink
) -> None:
    # The process that ended the send did not mail the notice (here: notices were off; a
    # worker killed right after ending it is the same to the next tick).
    config = {"host": sink.host, "port": sink.port}
    quiet = "notices:\n  events: [expired]\n"
    project.write_config("smtp", config, extra=EDITORS + quiet)
    assert project.cli("build").exit_code == 0
    assert project.cli("approve", "1", "--by", "Rosa Diaz").exit_code == 0
    assert project.cli("send", "1").exit_code == 0
    assert _at_sink(sink, "sent") == []
    project.write_config("smtp", config, extra=EDITORS)
    assert project.cli("tick").exit_code == 0
    notices = _at_sink(sink, "sent")
    assert sorted(str(m["To"]) for m in notices) == [ROSA, SAM]
    assert "  sent: 3" in _body(notices[0])
    assert project.cli("tick").exit_code == 0
    assert len(_at_sink(sink, "sent")) == 2


def test_a_missed_slot_is_noticed_once(project: Project, sink: SMTPSink) -> None:
    config = {"host": sink.host, "port": sink.port}
    schedule = 'schedule:\n  time: "07:00"\n  max_lateness_minutes: 60\n'
    project.write_config("smtp", config, extra=EDITORS + schedule)
    # The first tick ever, the evening before; then digest was down until noon.
    assert project.cli("tick", env={"DIGEST_NOW": "2026-11-23T20:00:00+00:00"}).exit_code == 0
    noon = {"DIGEST_NOW": "2026-11-24T11:00:00+00:00"}
    out = project.cli("tick", env=noon).stdout
    assert "missed" in out
    notices = _at_sink(sink, "missed")
    assert sorted(str(m["To"]) for m in notices) == [ROSA, SAM]
    assert notices[0]["Subject"] == "[The Morning Brief] No edition for slot 2026-11-24T07:00"
    assert "Nothing is sent late" in _body(notices[0])
    assert project.cli("tick", env={"DIGEST_NOW": "2026-11-24T11:05:00+00:00"}).exit_code == 0
    assert len(_at_sink(sink, "missed")) == 2


def test_a_dead_mail_server_is_reported_through_notices_backend_once(project: Project) -> None:
    outbox = project.root / "notices-out"
    fallback = f"notices:\n  to: [{OPS}]\n  backend:\n    name: outbox\n    options:\n"
    fallback += f"      path: {outbox}\n"
    dead = {"host": "127.0.0.1", "port": _closed_port(), "timeout": 2}
    project.write_config("smtp", dead, extra=EDITORS + fallback)
    # Proofs cannot be mailed: the build says so and the editors hear it another way.
    built = project.cli("build")
    assert built.exit_code == 0, built.output
    proof = _in_outbox(outbox, "proof_failed")
    assert [str(m["To"]) for m in proof] == [OPS]
    assert "Proofs of edition 1 could not be mailed" in str(proof[0]["Subject"])
    assert "digest proof 1" in _body(proof[0])
    # Asked for again while the server is still down: the editors are not told twice.
    assert project.cli("proof", "1").exit_code == 1
    assert len(_in_outbox(outbox, "proof_failed")) == 1


def test_a_stopped_send_is_noticed_once_per_cause_not_once_per_tick(
    project: Project, sink: SMTPSink
) -> None:
    project.write_config("smtp", {"host": sink.host, "port": sink.port}, extra=EDITORS)
    app = App(project.config)
    try:
        for deferred in (12, 40, 97):  # each tick's run stops for the same reason
            why = f"smtp 127.0.0.1:2525: cannot connect; {deferred} readers deferred"
            app.context.notify(notices.stopped(1, "2026-11-24T07:00", why))
        app.context.notify(notices.stopped(1, "2026-11-24T07:00", "interrupted (SIGTERM)"))
    finally:
        app.close()
    stopped = _at_sink(sink, "stopped")
    assert sorted(str(m["To"]) for m in stopped) == [ROSA, ROSA, SAM, SAM]
    assert "12 readers deferred" in _body(stopped[0])


def test_a_halted_schedule_is_noticed_once(project: Project, sink: SMTPSink) -> None:
    gone = f"sources:\n  - name: Gone\n    url: {project.feeds.url('/gone.rss')}\n"
    gone += "    allow_private: true\n"
    config = {"host": sink.host, "port": sink.port}
    project.write_config("smtp", config, extra=EDITORS, sources=gone)
    for minute in ("05", "10", "15"):  # every tick fails the same way
        now = {"DIGEST_NOW": f"2026-11-24T05:{minute}:00+00:00"}
        ticked = project.cli("tick", env=now)
        assert ticked.exit_code == 1, ticked.output
        assert "Traceback" not in ticked.output
    halted = _at_sink(sink, "halted")
    assert sorted(str(m["To"]) for m in halted) == [ROSA, SAM]
    body = _body(halted[0])
    assert "nothing is built, expired or sent" in body
    assert "no stories to send (source Gone" in body


def test_without_a_fallback_a_dead_mail_server_is_a_warning_line(project: Project) -> None:
    dead = {"host": "127.0.0.1", "port": _closed_port(), "timeout": 2}
    project.write_config("smtp", dead, extra=EDITORS)
    built = project.cli("build")
    assert built.exit_code == 0
    assert "notice 'Proofs of edition 1 could not be mailed' not sent" in built.output
