"""`digest reschedule`: an edition's send time moved within its slot's lateness, audited,
honoured by the scheduler; anything else refused in one line."""

from __future__ import annotations

import json

from digest.backends import memory

from conftest import Project

SCHEDULE = 'schedule:\n  time: "07:00"\n  timezone: Europe/Berlin\n  lead_minutes: 60\n'
AUTO = "approval:\n  auto_approve: true\n"


def _cli(project: Project, utc: str, *args: str) -> tuple[int, str]:
    result = project.cli(*args, env={"DIGEST_NOW": utc})
    return result.exit_code, result.output


def _status(project: Project) -> dict[str, object]:
    data = json.loads(project.cli("status", "1", "--json").stdout)
    assert isinstance(data, dict)
    return data


def test_the_scheduler_sends_at_the_moved_time(project: Project) -> None:
    project.write_config(extra=SCHEDULE + AUTO)
    assert _cli(project, "2026-11-24T05:05:00+00:00", "tick")[0] == 0  # 06:05 Berlin: built
    assert _status(project)["state"] == "approved"
    code, out = _cli(
        project, "2026-11-24T05:10:00+00:00", "reschedule", "1", "07:40", "--by", "Rosa Diaz"
    )
    assert code == 0, out
    assert out == (
        "edition 1 now goes at Tue 24 Nov 2026 07:40 CET (Europe/Berlin); moved by Rosa Diaz\n"
    )
    # 07:00 and 07:39 Berlin: the slot's time has come, the moved one not yet.
    for utc in ("2026-11-24T06:00:00+00:00", "2026-11-24T06:39:00+00:00"):
        assert _cli(project, utc, "tick")[0] == 0
        assert memory.outbox == []
        assert _status(project)["state"] == "approved"
    code, out = _cli(project, "2026-11-24T06:40:00+00:00", "tick")
    assert code == 0, out
    assert _status(project)["state"] == "sent"
    assert sorted(e.recipient for e in memory.outbox) == [
        "anna@example.org",
        "ben@example.net",
        "dmitri@example.org",
    ]
    moved = [a for a in _status(project)["audit"] if "send time moved" in a["note"]]  # type: ignore[union-attr]
    assert [(a["by"], a["via"], a["note"]) for a in moved] == [
        (
            "Rosa Diaz",
            "cli",
            "send time moved to Tue 24 Nov 2026 07:40 CET (Europe/Berlin) (slot time "
            "Tue 24 Nov 2026 07:00 CET (Europe/Berlin))",
        )
    ]


def test_moves_outside_the_lateness_or_too_late_are_refused(project: Project) -> None:
    project.write_config(extra=SCHEDULE + AUTO)
    at = "2026-11-24T05:10:00+00:00"
    assert _cli(project, "2026-11-24T05:05:00+00:00", "tick")[0] == 0
    window = "send window, Tue 24 Nov 2026 07:00 CET to Tue 24 Nov 2026 09:00 CET (Europe/Berlin)"
    for wanted in ("09:01", "06:59"):
        code, out = _cli(project, at, "reschedule", "1", wanted, "--by", "Rosa")
        assert code == 1
        assert out == (
            f"Error: {wanted} is outside edition 1's {window} (its slot's time up to "
            "schedule.max_lateness_minutes); nothing was changed\n"
        )
    code, out = _cli(project, at, "reschedule", "1", "7:6x", "--by", "Rosa")
    assert (code, out) == (
        1,
        "Error: '7:6x' is not a time: give HH:MM in Europe/Berlin (e.g. 07:30)\n",
    )
    # 07:30 Berlin: 07:10 has passed.
    code, out = _cli(project, "2026-11-24T06:30:00+00:00", "reschedule", "1", "07:10", "--by", "R")
    assert code == 1
    assert "07:10 CET (Europe/Berlin) has passed; give a later time" in out
    assert not [a for a in _status(project)["audit"] if "moved" in a["note"]]  # type: ignore[union-attr]
    # Once sent, nothing moves.
    assert _cli(project, "2026-11-24T06:00:00+00:00", "tick")[0] == 0
    code, out = _cli(project, "2026-11-24T06:10:00+00:00", "reschedule", "1", "08:00", "--by", "R")
    assert code == 1
    assert "edition 1 is sent: only an edition not yet sending can move its send time" in out
    code, out = _cli(project, at, "reschedule", "9", "08:00", "--by", "R")
    assert code == 1
    assert len(out.strip().splitlines()) == 1
