"""The schedule under a frozen clock: tick, DST, lateness, waves, restarts and races."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from email.parser import BytesParser
from email.policy import default as email_policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from digest.app import App
from digest.backends import memory
from digest.schedule.tick import tick
from digest.testing.smtp import SMTPSink

from conftest import ROOT, SECRET, Project, spawn_digest, wait_for

SCHEDULE = 'schedule:\n  time: "07:00"\n  timezone: Europe/Berlin\n  lead_minutes: 60\n'
AUTO = "approval:\n  auto_approve: true\n"


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
    assert "built edition 1" in _tick(project, "2026-11-24T05:10:00+00:00")
    assert "built" not in _tick(project, "2026-11-24T05:20:00+00:00")
    assert len(_editions(project)) == 1
    out = _tick(project, "2026-11-24T06:00:00+00:00")
    assert "edition 1 is expired; nothing sent" in out
    assert _editions(project)[0]["state"] == "expired"
    assert memory.outbox == []


def test_tick_sends_approved_edition_once(project: Project) -> None:
    project.write_config(extra=SCHEDULE + AUTO)
    _tick(project, "2026-11-24T05:05:00+00:00")
    assert _editions(project)[0]["state"] == "approved"
    assert memory.outbox == []
    assert "sent 3" in _tick(project, "2026-11-24T06:01:00+00:00")
    assert len(memory.outbox) == 3
    # Later ticks the same day neither rebuild nor resend.
    assert "nothing due" in _tick(project, "2026-11-24T06:06:00+00:00")
    assert len(memory.outbox) == 3
    assert [e["slot"] for e in _editions(project)] == ["2026-11-24T07:00"]


def _daily_feed(project: Project, day: date) -> None:
    item = (
        f"<item><title>News of {day:%d %B}</title>"
        f"<link>https://daily.example.org/{day.isoformat()}</link>"
        f"<description>What happened on {day.isoformat()}.</description>"
        f"<pubDate>{datetime.combine(day, datetime.min.time()):%a, %d %b %Y} 00:30:00 GMT</pubDate>"
        "</item>"
    )
    channel = f"<channel><title>Daily</title>{item}</channel>"
    rss = f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'
    project.feeds.route("/daily.rss", rss.encode(), headers={"Content-Type": "application/rss+xml"})


def _simulate(project: Project, start: datetime, days: int, step_minutes: int) -> App:
    clock = [start]
    app = App(project.config, clock=lambda: clock[0])
    lines: list[str] = []
    while clock[0] < start + timedelta(days=days):
        _daily_feed(project, clock[0].astimezone(ZoneInfo("Europe/Berlin")).date())
        tick(app, echo=lines.append)
        clock[0] += timedelta(minutes=step_minutes)
    return app


def _daily_sources(project: Project) -> str:
    return (
        f"sources:\n  - name: Daily\n    url: {project.feeds.url('/daily.rss')}\n"
        "    allow_private: true\n"
    )


@pytest.mark.parametrize(
    ("start", "at", "expected_local"),
    [
        ("2026-03-27T12:00:00+00:00", "07:00", {"07:00"}),  # spring forward on 29 March
        ("2026-10-23T12:00:00+00:00", "07:00", {"07:00"}),  # fall back on 25 October
        ("2026-03-27T12:00:00+00:00", "02:30", {"02:30", "03:30"}),  # 02:30 does not exist
        ("2026-10-23T12:00:00+00:00", "02:30", {"02:30"}),  # 02:30 happens twice
    ],
)
def test_daily_slot_runs_once_per_local_date_across_dst(
    project: Project, start: str, at: str, expected_local: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    schedule = f'schedule:\n  time: "{at}"\n  timezone: Europe/Berlin\n  lead_minutes: 30\n'
    project.write_config(sources=_daily_sources(project), extra=schedule + AUTO)
    app = _simulate(project, datetime.fromisoformat(start), days=4, step_minutes=15)
    editions = app.store.list_editions()
    slots = Counter(e.slot for e in editions)
    assert all(n == 1 for n in slots.values()), slots
    assert len(slots) == 4
    berlin = ZoneInfo("Europe/Berlin")
    sent_local = set()
    for edition in editions:
        rows = app.store.delivery_rows(edition.id)
        assert len(rows) == 3
        assert {r["state"] for r in rows} == {"sent"}
        moments = {r["sent_at"].astimezone(berlin) for r in rows}
        assert len(moments) == 1
        moment = moments.pop()
        assert moment.date().isoformat() == edition.slot[:10]
        sent_local.add(f"{moment:%H:%M}")
    assert sent_local == expected_local
    assert Counter(e.recipient for e in memory.outbox) == {
        "anna@example.org": 4,
        "ben@example.net": 4,
        "dmitri@example.org": 4,
    }


def test_missed_slot_after_an_outage_expires_and_the_next_runs(project: Project) -> None:
    project.write_config(
        sources=_daily_sources(project),
        extra=SCHEDULE.replace("lead_minutes: 60", "lead_minutes: 60\n  max_lateness_minutes: 120")
        + AUTO,
    )
    _daily_feed(project, date(2026, 11, 24))
    assert "nothing due" in _tick(project, "2026-11-23T12:00:00+00:00")  # installed the day before
    # Down from 04:00 to 11:00 UTC: the 07:00 Berlin slot (06:00 UTC) is 5 h late by then.
    out = _tick(project, "2026-11-24T11:00:00+00:00")
    assert "slot 2026-11-24T07:00: missed" in out
    assert _editions(project) == []
    assert "missed" in project.cli("status").stdout
    assert "missed" not in _tick(project, "2026-11-24T11:30:00+00:00")
    _daily_feed(project, date(2026, 11, 25))
    assert "built edition 1" in _tick(project, "2026-11-25T05:10:00+00:00")
    assert "sent 3" in _tick(project, "2026-11-25T06:00:00+00:00")
    assert [(e["slot"], e["state"]) for e in _editions(project)] == [("2026-11-25T07:00", "sent")]


def test_waves_deliver_at_seven_local_in_each_zone(project: Project) -> None:
    (project.root / "subscribers.yaml").write_text(
        "- email: kenji@example.jp\n  timezone: Asia/Tokyo\n"
        "- email: anna@example.org\n  timezone: Europe/Berlin\n"
        "- email: nora@example.com\n  timezone: America/New_York\n"
        "- email: zone-less@example.org\n"
    )
    project.write_config(
        extra='schedule:\n  deliver_at: "07:00 local"\n  timezone: Europe/Berlin\n' + AUTO
    )
    times = [
        "2026-11-23T21:05:00+00:00",
        "2026-11-23T22:00:00+00:00",
        "2026-11-24T06:00:00+00:00",
        "2026-11-24T12:00:00+00:00",
    ]
    for moment in times:
        _tick(project, moment)
    edition = _editions(project)[0]
    assert edition["slot"] == "2026-11-24T07:00"
    assert edition["state"] == "sent"
    with sqlite3.connect(project.state) as db:
        rows = dict(db.execute("SELECT email, sent_at FROM deliveries").fetchall())
    zones = {
        "kenji@example.jp": "Asia/Tokyo",
        "anna@example.org": "Europe/Berlin",
        "nora@example.com": "America/New_York",
        "zone-less@example.org": "Europe/Berlin",
    }
    for email, zone in zones.items():
        local = datetime.fromisoformat(rows[email]).astimezone(ZoneInfo(zone))
        assert (local.date().isoformat(), f"{local:%H:%M}") == ("2026-11-24", "07:00"), email


def test_quiet_hours_hold_sending(project: Project) -> None:
    project.write_config(extra=SCHEDULE + '  quiet_hours: "06:30-07:30"\n' + AUTO)
    _tick(project, "2026-11-24T05:05:00+00:00")
    assert "quiet hours" in _tick(project, "2026-11-24T06:00:00+00:00")
    assert memory.outbox == []
    assert "sent 3" in _tick(project, "2026-11-24T06:31:00+00:00")


def _spawn(project: Project, now: str, *args: str) -> subprocess.Popen[str]:
    return spawn_digest(project, *args, now=now)


def _wait(predicate: Callable[[], object]) -> None:
    wait_for(predicate, what="the scheduler")


def _states(project: Project) -> list[str]:
    """Edition states; none while the state file (or its schema) does not exist yet."""
    if not project.state.exists():
        return []
    with sqlite3.connect(project.state) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "editions" not in tables:
            return []
        return [r[0] for r in db.execute("SELECT state FROM editions ORDER BY id")]


def _next_tick(project: Project) -> float:
    with sqlite3.connect(project.state) as db:
        row = db.execute("SELECT next_run_time FROM apscheduler_jobs").fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


def _wait_ticks(project: Project, count: int) -> None:
    """Wait until the running scheduler has run ``count`` more ticks (its job store says)."""
    start = _next_tick(project)
    _wait(lambda: _next_tick(project) >= start + count)


def test_run_killed_between_build_and_send_sends_once_after_restart(project: Project) -> None:
    with SMTPSink() as sink:
        project.write_config(
            "smtp",
            {"host": sink.host, "port": sink.port},
            extra=SCHEDULE + "  tick_seconds: 1\n" + AUTO,
        )
        first = _spawn(project, "2026-11-24T05:30:00+00:00", "run")
        _wait(lambda: _states(project) == ["approved"])
        first.kill()
        first.communicate()
        with sqlite3.connect(project.state) as db:
            assert db.execute("SELECT id FROM apscheduler_jobs").fetchall() == [("digest-tick",)]
        second = _spawn(project, "2026-11-24T06:00:30+00:00", "run")
        _wait(lambda: _states(project) == ["sent"])
        _wait_ticks(project, 2)  # two more ticks: nothing more may go out
        second.send_signal(signal.SIGTERM)
        out, err = second.communicate(timeout=30)
        assert second.returncode == 0, out + err
        counts = Counter(r for m in sink.messages for r in m.rcpt_tos)
    assert counts == {"anna@example.org": 1, "ben@example.net": 1, "dmitri@example.org": 1}


def test_tick_and_run_racing_for_one_slot_send_once(project: Project) -> None:
    with SMTPSink() as sink:
        project.write_config(
            "smtp",
            {"host": sink.host, "port": sink.port},
            extra=SCHEDULE + "  tick_seconds: 1\n" + AUTO,
        )
        now = "2026-11-24T06:00:30+00:00"  # build and send both due at once
        runner = _spawn(project, now, "run")
        ticks = [_spawn(project, now, "tick") for _ in range(3)]
        for t in ticks:
            out, err = t.communicate(timeout=60)
            assert t.returncode == 0, out + err
        _wait(lambda: _states(project) == ["sent"])
        _wait_ticks(project, 2)
        runner.send_signal(signal.SIGTERM)
        runner.communicate(timeout=30)
        counts = Counter(r for m in sink.messages for r in m.rcpt_tos)
    assert _states(project) == ["sent"]
    assert counts == {"anna@example.org": 1, "ben@example.net": 1, "dmitri@example.org": 1}


def test_second_scheduler_on_the_same_database_is_refused(project: Project) -> None:
    project.write_config(extra=SCHEDULE + "  tick_seconds: 1\n")
    first = _spawn(project, "2026-11-24T03:00:00+00:00", "run")
    try:
        _wait(lambda: "scheduler" in _locks(project))
        second = project.cli("run")
        assert second.exit_code == 1
        assert "held by process" in second.output
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)
    assert first.returncode == 0


def _locks(project: Project) -> set[str]:
    if not project.state.exists():
        return set()
    with sqlite3.connect(project.state) as db:
        try:
            return {r[0] for r in db.execute("SELECT name FROM locks")}
        except sqlite3.OperationalError:
            return set()


def _verify(units: Path) -> subprocess.CompletedProcess[str]:
    files = sorted(str(p) for p in units.iterdir() if p.suffix in (".service", ".timer"))
    return subprocess.run(
        ["systemd-analyze", "verify", *files], capture_output=True, text=True, check=False
    )


def _units_for_this_machine(tmp_path: Path) -> Path:
    # verify checks that ExecStart and EnvironmentFile exist: point them at real files.
    digest = Path(sys.executable).parent / "digest"
    (tmp_path / "secrets.env").write_text("")
    for unit in sorted((ROOT / "cron").iterdir()):
        if unit.suffix in (".service", ".timer"):
            text = unit.read_text()
            text = text.replace("/srv/digest/.venv/bin/digest", str(digest))
            text = text.replace("/srv/digest", str(ROOT))
            text = text.replace("/etc/digest/digest.env", str(tmp_path / "secrets.env"))
            (tmp_path / unit.name).write_text(text)
    return tmp_path


def test_systemd_units_verify(tmp_path: Path) -> None:
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze is missing; .ci/run installs the systemd package")
    units = _units_for_this_machine(tmp_path)
    result = _verify(units)
    assert result.returncode == 0, result.stdout + result.stderr
    # The check can fail: a typo in a unit is reported.
    broken = units / "digest-tick.service"
    broken.write_text(broken.read_text().replace("ExecStart=", "ExecStrat="))
    assert _verify(units).returncode != 0


def test_crontab_calls_tick() -> None:
    lines = [x for x in (ROOT / "cron" / "crontab").read_text().splitlines() if x and x[0] != "#"]
    assert any("digest tick" in x and x.split()[0] == "*/5" for x in lines)


def test_slot_key_utc_conversion() -> None:
    from digest.slots import wall_time

    assert wall_time(date(2026, 3, 29), datetime(2000, 1, 1, 2, 30).time(), "Europe/Berlin") == (
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    )


def test_thin_day_is_recorded_once_not_rebuilt_every_tick(project: Project) -> None:
    project.write_config(extra=SCHEDULE + "ranking:\n  min_stories: 10\n  thin_day_policy: skip\n")
    out = _tick(project, "2026-11-24T05:05:00+00:00")
    assert "slot 2026-11-24T07:00: no edition: thin day" in out
    assert "thin day" not in _tick(project, "2026-11-24T05:10:00+00:00")
    assert _editions(project) == []
    assert "thin day" in project.cli("status").stdout


def test_proofs_wait_for_the_end_of_quiet_hours(project: Project) -> None:
    from conftest import EDITORS

    quiet = SCHEDULE + '  quiet_hours: "05:00-06:30"\n'
    project.write_config(extra=quiet + EDITORS)
    out = _tick(project, "2026-11-24T05:00:00+00:00")  # 06:00 Berlin: built in quiet hours
    assert "built edition 1" in out
    assert "proofs of edition 1 held until quiet hours end at Tue 24 Nov 2026 06:30 CET" in out
    assert memory.outbox == []
    assert "proofs" not in _tick(project, "2026-11-24T05:20:00+00:00")
    out = _tick(project, "2026-11-24T05:30:00+00:00")  # 06:30 Berlin: quiet hours are over
    assert "proofs of edition 1 sent (held during quiet hours)" in out
    assert sorted(e.recipient for e in memory.outbox) == [
        "rosa@news.example.org",
        "sam@news.example.org",
    ]
    assert "proofs" not in _tick(project, "2026-11-24T05:35:00+00:00")
    assert len(memory.outbox) == 2


def test_proofs_go_out_in_quiet_hours_when_the_deadline_comes_first(project: Project) -> None:
    from conftest import EDITORS

    quiet = SCHEDULE + '  quiet_hours: "05:00-06:30"\n'
    project.write_config(extra=quiet + EDITORS + "  deadline_minutes: 45\n")
    out = _tick(project, "2026-11-24T05:00:00+00:00")
    assert (
        "proofs of edition 1 sent inside quiet hours: the approval deadline "
        "(Tue 24 Nov 2026 06:15 CET (Europe/Berlin)) comes before they end"
    ) in out
    assert len(memory.outbox) == 2


def test_the_date_line_is_the_day_readers_get_it(project: Project) -> None:
    (project.root / "subscribers.yaml").write_text(
        "- email: kiri@example.nz\n  timezone: Pacific/Auckland\n"
        "- email: anna@example.org\n  timezone: Europe/Berlin\n"
    )
    project.write_config(
        extra='schedule:\n  deliver_at: "07:00 local"\n  timezone: Europe/Berlin\n' + AUTO
    )
    # 18:00 UTC on the 23rd is 19:00 in Berlin, but already 07:00 on the 24th in Auckland.
    assert "built edition 1" in _tick(project, "2026-11-23T17:00:00+00:00")
    detail = json.loads(project.cli("status", "1", "--json").stdout)
    assert detail["slot"] == "2026-11-24T07:00"
    _tick(project, "2026-11-23T18:00:00+00:00")
    kiri = next(e for e in memory.outbox if e.recipient == "kiri@example.nz")
    assert b"Tuesday, 24 November 2026" in kiri.data
    assert b"Monday, 23 November 2026" not in kiri.data


def test_a_single_zone_send_dates_each_copy_by_its_readers_day(project: Project) -> None:
    (project.root / "subscribers.yaml").write_text(
        "- email: lee@example.com\n  timezone: America/Los_Angeles\n"
        "- email: anna@example.org\n  timezone: Europe/Berlin\n"
        "- email: kiri@example.nz\n  timezone: Pacific/Auckland\n"
    )
    project.write_config(extra=SCHEDULE + AUTO)
    assert "built edition 1" in _tick(project, "2026-11-24T05:00:00+00:00")
    # 07:00 in Berlin is 22:00 the evening before in Los Angeles, 19:00 the same day in
    # Auckland: each copy carries the day its reader gets it, in the text and the HTML.
    _tick(project, "2026-11-24T06:00:00+00:00")
    days = {
        "lee@example.com": "Monday, 23 November 2026",
        "anna@example.org": "Tuesday, 24 November 2026",
        "kiri@example.nz": "Tuesday, 24 November 2026",
    }
    assert sorted(e.recipient for e in memory.outbox) == sorted(days)
    for sent in memory.outbox:
        message = BytesParser(policy=email_policy).parsebytes(sent.data)
        text, html = (part.get_content() for part in message.iter_parts())
        day, other = days[sent.recipient], {*days.values()} - {days[sent.recipient]}
        assert f"\r\n{day}\r\n" in text
        assert f'<p class="dl">{day}</p>' in html
        assert not any(o in text or o in html for o in other)
