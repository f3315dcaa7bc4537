"""Lateness applies to retries (issue 32 item 5): a delivery that failed at its slot is not
retried past ``schedule.max_lateness_minutes``; it ends skipped as expired, counted."""

from __future__ import annotations

import json

from digest.testing.smtp import SMTPSink

from conftest import Project

SCHEDULE = (
    'schedule:\n  time: "07:00"\n  timezone: Europe/Berlin\n  lead_minutes: 60\n'
    "  max_lateness_minutes: 120\napproval:\n  auto_approve: true\n"
    "send:\n  connections: 1\n  retry_base_seconds: 60\n  retry_max_seconds: 120\n"
    "  retry_in_run_seconds: 0\nnotices:\n  to: [ops@news.example.org]\n"
)
NOTICE = b"\r\nX-Digest-Notice:"


def _tick(project: Project, utc: str) -> str:
    result = project.cli("tick", env={"DIGEST_NOW": utc})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_smtp_down_at_the_slot_and_back_three_hours_later_sends_nothing_late(
    project: Project,
) -> None:
    sink = SMTPSink()  # its port is taken; nothing answers on it until it starts
    project.write_config("smtp", {"host": sink.host, "port": sink.port}, extra=SCHEDULE)
    assert "built edition 1" in _tick(project, "2026-11-24T05:05:00+00:00")
    # 07:00 Berlin is 06:00 UTC: every reader is tried, the server is down, all deferred.
    _tick(project, "2026-11-24T06:00:00+00:00")
    # Still down at 07:00 UTC, within the 120 minutes: retried, still deferred.
    _tick(project, "2026-11-24T07:00:00+00:00")
    status = json.loads(project.cli("status", "1", "--json").stdout)
    assert status["deliveries"] == {"deferred": 3}, status
    with sink:
        # Back at 09:00 UTC, three hours after the slot: nobody gets a 07:00 edition now.
        out = _tick(project, "2026-11-24T09:00:00+00:00")
        assert "3 retries expired (past the maximum lateness)" in out
        readers = [m for m in sink.messages if NOTICE not in m.data]
        assert readers == []
        # The sent notice counts them with the edition's totals.
        (sent,) = [m for m in sink.messages if b"X-Digest-Notice: sent" in m.data]
        assert b"skipped: 3" in sent.data
    status = json.loads(project.cli("status", "1", "--json").stdout)
    assert status["deliveries"] == {"skipped": 3}, status
    assert status["state"] == "sent"
    text = project.cli("status", "1").stdout
    assert "skipped" in text
