"""The schedule under a frozen clock: `digest tick` builds, sends or expires what is due."""

from __future__ import annotations

import json

from digest.backends import memory

from conftest import Project

SCHEDULE = 'schedule:\n  time: "07:00"\n  timezone: Europe/Berlin\n  lead_minutes: 60\n'


def _tick(project: Project, utc: str) -> str:
    result = project.cli("tick", env={"DIGEST_NOW": utc})
    assert result.exit_code == 0, result.output
    return result.stdout


def _editions(project: Project) -> list[dict[str, object]]:
    result = json.loads(project.cli("status", "--json").stdout)
    assert isinstance(result, list)
    return result


def test_tick_builds_once_then_expires_unapproved(project: Project) -> None:
    project.write_config(extra=SCHEDULE)
    # 05:30 Berlin (UTC+1 in November): before the 06:00 build.
    assert "nothing due" in _tick(project, "2026-11-24T04:30:00+00:00")
    assert not project.state.exists() or _editions(project) == []
    out = _tick(project, "2026-11-24T05:10:00+00:00")
    assert "built edition 1" in out
    assert "exists" in _tick(project, "2026-11-24T05:20:00+00:00")
    assert len(_editions(project)) == 1
    out = _tick(project, "2026-11-24T06:00:00+00:00")
    assert "not approved in time; expired" in out
    assert _editions(project)[0]["state"] == "expired"
    assert memory.outbox == []


def test_tick_sends_approved_edition_once(project: Project) -> None:
    project.write_config(extra=SCHEDULE + "approval:\n  auto_approve: true\n")
    _tick(project, "2026-11-24T05:05:00+00:00")
    assert _editions(project)[0]["state"] == "approved"
    assert memory.outbox == []
    out = _tick(project, "2026-11-24T06:01:00+00:00")
    assert "sent 3" in out
    assert len(memory.outbox) == 3
    # A later tick the same day neither rebuilds nor resends.
    out = _tick(project, "2026-11-24T06:06:00+00:00")
    assert "nothing to send" in out
    assert len(memory.outbox) == 3
    assert len(_editions(project)) == 1


def test_slot_is_keyed_by_local_date(project: Project) -> None:
    project.write_config(extra=SCHEDULE)
    _tick(project, "2026-11-24T05:05:00+00:00")
    assert _editions(project)[0]["slot"] == "2026-11-24T07:00"
