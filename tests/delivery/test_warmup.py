"""send.warmup: a daily cap that grows day by day, through `digest send` across simulated
days (only the clock is mocked: DIGEST_NOW); readers over the cap wait for the next day."""

from __future__ import annotations

import json
from datetime import date

import pytest

from digest.backends import memory
from digest.config.settings import WarmupSettings, warmup_cap

from conftest import Project
from sending import approved, ledger, project, rows
from sending import subscribers as _subscribers

__all__ = ["project"]  # the fixture: the shared project on both databases

DAY1 = "2026-11-24T06:00:00+00:00"  # conftest's NOW
DAY1_EVENING = "2026-11-24T21:00:00+00:00"
DAY2 = "2026-11-25T06:00:00+00:00"
WARMUP = "send:\n  warmup:\n    start_date: '2026-11-24'\n    schedule: [2, 4]\n"


def test_readers_over_the_days_cap_wait_for_the_next_day(project: Project) -> None:
    emails = _subscribers(project, 5)
    project.write_config(extra=WARMUP)
    edition = approved(project)

    first = project.cli("send", str(edition), env={"DIGEST_NOW": DAY1})
    assert first.exit_code == 0, first.output
    states = ledger(project, edition)
    assert sorted(states.values()) == ["pending"] * 3 + ["sent"] * 2
    assert len(memory.outbox) == 2
    waiting = [r for r in rows(project, edition).values() if r["state"] == "pending"]
    dues = {str(r["next_attempt_at"])[:19] for r in waiting}
    assert dues <= {"2026-11-25 00:00:00", "2026-11-25 00:00:01"}, dues  # the next UTC day
    status = json.loads(project.cli("status", str(edition), "--json").stdout)
    assert status["state"] == "sending"  # not done: the rest goes tomorrow

    # Later the same day the cap is still used up, whichever run asks.
    again = project.cli("send", str(edition), env={"DIGEST_NOW": DAY1_EVENING})
    assert again.exit_code == 0, again.output
    assert len(memory.outbox) == 2

    # Day 2 allows 4: the three who waited go, each once, and the edition is done.
    second = project.cli("send", str(edition), env={"DIGEST_NOW": DAY2})
    assert second.exit_code == 0, second.output
    assert set(ledger(project, edition).values()) == {"sent"}
    assert sorted(e.recipient for e in memory.outbox) == sorted(emails)
    assert json.loads(project.cli("status", str(edition), "--json").stdout)["state"] == "sent"


def test_growth_caps_day_by_day_until_the_target() -> None:
    w = WarmupSettings(start_date="2026-12-01", first_day=50, growth=2.0, target=1000)
    caps = [warmup_cap(w, date(2026, 12, d)) for d in range(1, 8)]
    assert caps == [50, 100, 200, 400, 800, None, None]  # 1,600 >= target: warm-up over
    assert warmup_cap(w, date(2026, 11, 20)) == 50  # before the start: day 1
    assert warmup_cap(WarmupSettings(), date(2026, 12, 1)) is None  # no warm-up set
    listed = WarmupSettings(start_date="2026-12-01", schedule=(10, 20))
    assert [warmup_cap(listed, date(2026, 12, d)) for d in (1, 2, 3)] == [10, 20, None]


@pytest.mark.parametrize(
    ("warmup", "message"),
    [
        ("start_date: tomorrow", "send.warmup.start_date must be a date like 2026-12-01"),
        ("start_date: '2026-12-01'\n    growth: 0.5", "growth at least 1"),
        ("start_date: '2026-12-01'\n    schedule: [10, -1]", "schedule must list positive"),
        ("start: '2026-12-01'", "unknown key 'start' in send.warmup"),
    ],
)
def test_a_bad_warmup_is_one_line_naming_the_file(
    project: Project, warmup: str, message: str
) -> None:
    project.write_config(extra=f"send:\n  warmup:\n    {warmup}\n")
    result = project.cli("status")
    assert result.exit_code != 0
    assert message in result.output
    assert "digest.yaml" in result.output
    assert "Traceback" not in result.output
