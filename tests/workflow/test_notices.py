"""Notices to the editors through the configured backend, each received by a real aiosmtpd
server: an edition expired unapproved, a send finished (counts) or stopped (why, and the
command to resume), a source failing `fetch.failure_alert` runs in a row."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from digest.testing.smtp import SMTPSink

from conftest import EDITORS, Project, spawn_digest, wait_for

ROSA = "rosa@news.example.org"
SAM = "sam@news.example.org"


@pytest.fixture
def sink() -> Iterator[SMTPSink]:
    with SMTPSink() as server:
        yield server


def _notices(sink: SMTPSink, event: str) -> list[EmailMessage]:
    found = []
    for received in sink.messages:
        msg = message_from_bytes(received.data, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        if msg["X-Digest-Notice"] == event:
            found.append(msg)
    return found


def _body(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def _setup(project: Project, sink: SMTPSink, extra: str = "") -> None:
    project.write_config("smtp", {"host": sink.host, "port": sink.port}, extra=EDITORS + extra)


def test_an_edition_expired_unapproved_is_noticed(project: Project, sink: SMTPSink) -> None:
    _setup(project, sink, "  deadline_minutes: 30\n" + 'schedule:\n  time: "07:00"\n')
    assert project.cli("tick", env={"DIGEST_NOW": "2026-11-24T05:00:00+00:00"}).exit_code == 0
    assert _notices(sink, "expired") == []
    out = project.cli("tick", env={"DIGEST_NOW": "2026-11-24T05:30:00+00:00"}).stdout
    assert "edition 1 is expired; nothing sent" in out
    notices = _notices(sink, "expired")
    assert sorted(str(m["To"]) for m in notices) == [ROSA, SAM]
    msg = notices[0]
    assert msg["Subject"] == "[The Morning Brief] Edition 1 expired: nothing was sent"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert "not approved by its approval deadline" in _body(msg)
    # Later ticks do not mail it again.
    project.cli("tick", env={"DIGEST_NOW": "2026-11-24T05:35:00+00:00"})
    assert len(_notices(sink, "expired")) == 2


def test_a_finished_send_is_noticed_with_counts(project: Project, sink: SMTPSink) -> None:
    _setup(project, sink)
    assert project.cli("build").exit_code == 0
    assert project.cli("approve", "1", "--by", "Rosa Diaz").exit_code == 0
    assert project.cli("send", "1").exit_code == 0
    notices = _notices(sink, "sent")
    assert sorted(str(m["To"]) for m in notices) == [ROSA, SAM]
    body = _body(notices[0])
    assert "Edition 1 for slot 2026-11-24T07:00 finished sending." in body
    assert "sent 3" in body
    assert "  sent: 3" in body
    assert project.cli("send", "1").exit_code == 0  # nothing new: no second notice
    assert len(_notices(sink, "sent")) == 2


@pytest.mark.slow
def test_a_stopped_send_is_noticed_with_the_command_to_resume(
    project: Project, sink: SMTPSink
) -> None:
    # One message an hour: after the first reader, `digest send` waits; SIGTERM stops it.
    throttle = "send:\n  window_messages: 1\n  window_seconds: 3600\n"
    _setup(project, sink, throttle)
    assert project.cli("build").exit_code == 0
    assert project.cli("approve", "1", "--by", "Rosa Diaz").exit_code == 0
    proofs = len(sink.messages)
    proc = spawn_digest(project, "send", "1")
    wait_for(lambda: len(sink.messages) > proofs, what="the first reader's message")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    notices = _notices(sink, "stopped")
    assert sorted(str(m["To"]) for m in notices) == [ROSA, SAM]
    body = _body(notices[0])
    assert "Why: interrupted (SIGTERM or Ctrl-C)" in body
    assert "To resume (nobody gets it twice): digest send 1" in body
    project.write_config("smtp", {"host": sink.host, "port": sink.port}, extra=EDITORS)
    assert project.cli("send", "1").exit_code == 0
    assert len(_notices(sink, "sent")) == 2


def test_a_failing_source_is_noticed_once_per_run_of_failures(
    project: Project, sink: SMTPSink
) -> None:
    project.write_config(
        "smtp",
        {"host": sink.host, "port": sink.port},
        sources=(
            f"sources:\n  - name: World Desk\n    url: {project.feeds.url('/world.rss')}\n"
            "    allow_private: true\n"
            "  - name: Dead Desk\n    url: http://127.0.0.1:9/feed.rss\n    allow_private: true\n"
        ),
        extra=EDITORS + "fetch:\n  retries: 0\n  failure_alert: 2\n",
    )
    assert project.cli("build").exit_code == 0
    assert _notices(sink, "source_failing") == []
    assert project.cli("build").exit_code == 0  # the second failure in a row
    notices = _notices(sink, "source_failing")
    assert sorted(str(m["To"]) for m in notices) == [ROSA, SAM]
    assert notices[0]["Subject"] == "[The Morning Brief] Source Dead Desk failed 2 runs in a row"
    assert "http://127.0.0.1:9/feed.rss" in _body(notices[0])
    assert project.cli("build").exit_code == 0  # still failing: the same run of failures
    assert len(_notices(sink, "source_failing")) == 2


def test_notices_go_where_the_config_says(project: Project, sink: SMTPSink) -> None:
    _setup(project, sink, "notices:\n  events: [expired]\n  to: [desk@news.example.org]\n")
    assert project.cli("build").exit_code == 0
    assert project.cli("approve", "1", "--by", "Rosa Diaz").exit_code == 0
    assert project.cli("send", "1").exit_code == 0
    assert _notices(sink, "sent") == []  # switched off
    bad = project.cli("check", "--offline")
    assert bad.exit_code == 0, bad.output
    project.write_config(extra="notices:\n  events: [exploded]\n")
    result = project.cli("check")
    assert result.exit_code == 1
    assert "unknown notice event 'exploded'" in result.output


def test_a_bad_subscriber_line_never_stops_the_schedule(project: Project, sink: SMTPSink) -> None:
    """The tick goes on with the last good list, names the line each time and mails the
    editors once; commands run by hand still refuse the broken file."""
    _setup(project, sink, 'schedule:\n  time: "07:00"\n')
    assert project.cli("subscribers", "sync").exit_code == 0  # the last good list
    subscribers = project.root / "subscribers.yaml"
    subscribers.write_text(
        subscribers.read_text(encoding="utf-8") + "  - email: not an address\n", encoding="utf-8"
    )
    build = project.cli("tick", env={"DIGEST_NOW": "2026-11-24T05:00:00+00:00"})
    assert build.exit_code == 0, build.output
    assert "subscribers.yaml" in build.output
    assert "the last good subscriber list is used" in build.output
    assert "edition 1" in build.output  # the slot's edition was built all the same
    notices = _notices(sink, "subscribers_broken")
    assert sorted(str(m["To"]) for m in notices) == [ROSA, SAM]
    assert "subscribers.yaml" in _body(notices[0])
    again = project.cli("tick", env={"DIGEST_NOW": "2026-11-24T05:05:00+00:00"})
    assert again.exit_code == 0, again.output
    assert "the last good subscriber list is used" in again.output
    assert len(_notices(sink, "subscribers_broken")) == 2  # not mailed again
    refused = project.cli("subscribers", "sync")
    assert refused.exit_code == 1
    assert "subscribers.yaml" in refused.output
