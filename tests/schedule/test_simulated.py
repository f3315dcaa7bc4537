"""Weeks of `digest tick` every 5 minutes under a moved clock: both 2026 DST changes,
outages, and waves in five zones (+13:00 Auckland, +09:00 Tokyo, +05:30 Kolkata, Berlin,
New York). Asserts D1-D5 of issue 17 on the ledger and the audit trail:

- D1: nothing is sent later than max_lateness_minutes after its wave's local time;
- D2: each wave is judged alone (a lost Auckland wave never cancels Berlin's);
- D3: the deadline is an absolute instant: right on both DST days (single zone, 03:00);
- D4: the deadline comes before the earliest wave the edition serves;
- D5: missed slots are recorded however long the outage.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from digest.app import App
from digest.schedule.tick import tick
from digest.slots import wall_time
from digest.store.ops import NoticeLog
from digest.testing.smtp import SMTPSink

from conftest import SECRET, Project

ZONES = {
    "kiri@example.nz": "Pacific/Auckland",
    "kenji@example.jp": "Asia/Tokyo",
    "priya@example.in": "Asia/Kolkata",
    "anna@example.org": "Europe/Berlin",
    "nora@example.com": "America/New_York",
}
LATE = timedelta(minutes=120)
STEP = timedelta(minutes=5)
EDITOR = "approval:\n  editors:\n    - {name: Rosa Diaz, email: rosa@news.example.org}\n"


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _feed(project: Project, now: datetime) -> None:
    """A feed with one story per hour of the last day: every build has unseen stories."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    items = "".join(
        f"<item><title>Story of {h:%d %B %H}:00 UTC</title>"
        f"<link>https://daily.example.org/{h:%Y-%m-%d-%H}</link>"
        f"<description>What happened at {h:%H}:00 on {h:%d %B}.</description>"
        f"<pubDate>{h:%a, %d %b %Y %H}:00:00 GMT</pubDate></item>"
        for h in (hour - timedelta(hours=i) for i in range(24))
    )
    rss = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>D</title>{items}</channel></rss>'
    )
    project.feeds.route("/daily.rss", rss.encode(), headers={"Content-Type": "application/rss+xml"})


def _setup(project: Project, schedule: str, approval: str, zones: dict[str, str]) -> None:
    (project.root / "subscribers.yaml").write_text(
        "".join(f"- email: {e}\n  timezone: {z}\n" for e, z in zones.items()), encoding="utf-8"
    )
    sources = (
        f"sources:\n  - name: Daily\n    url: {project.feeds.url('/daily.rss')}\n"
        "    allow_private: true\n"
    )
    project.write_config(sources=sources, extra=schedule + approval)


def _run(
    project: Project,
    start: str,
    end: str,
    outages: list[tuple[str, str]],
    before_tick: Callable[[datetime], None] = lambda _now: None,
) -> tuple[App, list[datetime]]:
    """Tick every 5 minutes from ``start`` to ``end`` except during ``outages``."""
    clock = [_utc(start)]
    app = App(project.config, clock=lambda: clock[0])
    down = [(_utc(a), _utc(b)) for a, b in outages]
    ticks: list[datetime] = []
    while clock[0] < _utc(end):
        if not any(a <= clock[0] < b for a, b in down):
            _feed(project, clock[0])
            before_tick(clock[0])
            tick(app, echo=lambda _line: None)
            ticks.append(clock[0])
        clock[0] += STEP
    return app, ticks


def _sent_rows(app: App) -> Iterator[tuple[str, dict[str, object]]]:
    for edition in app.store.list_editions(limit=1000):
        for row in app.store.delivery_rows(edition.id):
            yield edition.slot, row


def _wave(slot: str, zone: str) -> datetime:
    day, hhmm = slot.split("T")
    return wall_time(date.fromisoformat(day), time.fromisoformat(hhmm), zone)


def _first_tick_at_or_after(ticks: list[datetime], moment: datetime) -> datetime:
    return next(t for t in ticks if t >= moment)


WAVES = 'schedule:\n  deliver_at: "07:00 local"\n  timezone: Europe/Berlin\n  lead_minutes: 60\n'
AT_DEADLINE_SEND = EDITOR + "  deadline_minutes: 30\n  at_deadline: send\n"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("start", "end", "short_outage", "long_outage", "missed"),
    [
        # Spring: Berlin (29 March) and Auckland (5 April, to +12:00) change.
        (
            "2026-03-26T14:00",
            "2026-04-07T14:00",
            ("2026-03-30T16:00", "2026-03-31T00:30"),
            ("2026-04-01T12:00", "2026-04-05T20:00"),
            ["2026-04-02T07:00", "2026-04-03T07:00", "2026-04-04T07:00", "2026-04-05T07:00"],
        ),
        # Autumn: Berlin (25 October) and New York (1 November) change; Auckland is +13:00.
        (
            "2026-10-22T14:00",
            "2026-11-04T14:00",
            ("2026-10-29T16:00", "2026-10-30T00:30"),
            ("2026-10-30T12:00", "2026-11-02T20:00"),
            ["2026-10-31T07:00", "2026-11-01T07:00", "2026-11-02T07:00"],
        ),
    ],
)
def test_waves_across_dst_and_outages(
    project: Project,
    monkeypatch: pytest.MonkeyPatch,
    start: str,
    end: str,
    short_outage: tuple[str, str],
    long_outage: tuple[str, str],
    missed: list[str],
) -> None:
    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    _setup(project, WAVES, AT_DEADLINE_SEND, ZONES)
    app, ticks = _run(project, start, end, [short_outage, long_outage])
    editions = app.store.list_editions(limit=1000)
    assert editions, "nothing was built"

    # At most one edition per slot is ever sent; every reader gets at most one per slot.
    sent_per_slot = Counter(e.slot for e in editions if e.state in ("sending", "sent"))
    assert all(n == 1 for n in sent_per_slot.values()), sent_per_slot
    per_reader = Counter((slot, r["email"]) for slot, r in _sent_rows(app) if r["state"] == "sent")
    assert all(n == 1 for n in per_reader.values())

    # D1: nothing later than the maximum lateness after its own wave (and nothing early).
    for slot, row in _sent_rows(app):
        if row["state"] != "sent":
            continue
        wave = _wave(slot, ZONES[str(row["email"])])
        sent_at = row["sent_at"]
        assert isinstance(sent_at, datetime)
        assert wave <= sent_at <= wave + LATE, (slot, row["email"], sent_at, wave)

    # Slots the outages did not touch go out exactly at each wave, DST days included.
    outage_hit = {_slot_after(short_outage[1])}
    for slot, row in _sent_rows(app):
        if slot not in outage_hit and row["state"] == "sent":
            assert row["sent_at"] == _wave(slot, ZONES[str(row["email"])]), (slot, row["email"])

    # D2: after the short outage, Auckland's and Tokyo's waves are lost, the rest are sent.
    hit = next(e for e in editions if e.slot in outage_hit)
    states = {r["email"]: r["state"] for r in app.store.delivery_rows(hit.id)}
    assert states == {
        "kiri@example.nz": "skipped",
        "kenji@example.jp": "skipped",
        "priya@example.in": "sent",
        "anna@example.org": "sent",
        "nora@example.com": "sent",
    }
    assert app.store.slot_status(hit.slot) is None  # the slot was not "missed"

    # D3/D4: each deadline is 30 minutes before the earliest wave still to come at the build,
    # settled at the first tick after it, never in the tick that built the edition.
    for edition in editions:
        trail = app.store.audit_trail(edition.id)
        settled = next(a for a in trail if a.via == "deadline")
        deadline = app.schedule.deadline(edition)
        ahead = min(
            w.at for w in app.schedule.slot_for(edition.slot).waves if w.at > edition.created_at
        )
        assert deadline == ahead - timedelta(minutes=30)
        assert settled.at == _first_tick_at_or_after(ticks, deadline)
        assert edition.created_at < deadline < ahead

    # D5: every slot lost in the long outage is recorded as missed, however long it was.
    logged = {slot for slot, status, _ in app.store.logged_slots(limit=100) if status == "missed"}
    assert logged == set(missed)
    assert not {e.slot for e in editions} & set(missed)


def _slot_after(outage_end: str) -> str:
    """The slot (Berlin date) whose later waves follow the short outage's end."""
    end = _utc(outage_end).astimezone(ZoneInfo("Europe/Berlin"))
    return f"{end.date().isoformat()}T07:00"


SINGLE = 'schedule:\n  time: "03:00"\n  timezone: Europe/Berlin\n  lead_minutes: 60\n'


@pytest.mark.parametrize(
    ("start", "slot", "deadline_utc", "send_utc"),
    [
        # 29 March: 03:00 CEST is 01:00 UTC; the old wall-clock deadline fell after it.
        ("2026-03-28T12:00", "2026-03-29T03:00", "2026-03-29T00:30", "2026-03-29T01:00"),
        # 25 October: 03:00 CET is 02:00 UTC; the old deadline fell before the build.
        ("2026-10-24T12:00", "2026-10-25T03:00", "2026-10-25T01:30", "2026-10-25T02:00"),
    ],
)
@pytest.mark.parametrize("policy", ["skip", "send"])
def test_deadline_on_dst_days_is_the_right_instant(
    project: Project,
    monkeypatch: pytest.MonkeyPatch,
    start: str,
    slot: str,
    deadline_utc: str,
    send_utc: str,
    policy: str,
) -> None:
    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    zones = {"anna@example.org": "Europe/Berlin", "priya@example.in": "Asia/Kolkata"}
    _setup(project, SINGLE, EDITOR + f"  deadline_minutes: 30\n  at_deadline: {policy}\n", zones)
    start_at = _utc(start)
    app, _ticks = _run(project, start, (start_at + timedelta(hours=20)).isoformat()[:16], [])
    edition = next(e for e in app.store.list_editions() if e.slot == slot)
    assert app.schedule.deadline(edition) == _utc(deadline_utc)
    settled = next(a for a in app.store.audit_trail(edition.id) if a.via == "deadline")
    assert settled.at == _utc(deadline_utc)
    assert settled.at > edition.created_at
    rows = app.store.delivery_rows(edition.id)
    if policy == "skip":
        assert settled.to_state == "expired"
        assert rows == []
    else:
        assert settled.to_state == "approved"
        assert {r["sent_at"] for r in rows} == {_utc(send_utc)}


@pytest.mark.slow
def test_a_bad_subscriber_line_never_stops_the_next_slots(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    zones = {"anna@example.org": "Europe/Berlin", "nora@example.com": "America/New_York"}
    _setup(project, SINGLE, EDITOR + "  deadline_minutes: 30\n  at_deadline: send\n", zones)
    subscribers = project.root / "subscribers.yaml"
    good = subscribers.read_text(encoding="utf-8")

    def break_the_file(now: datetime) -> None:
        # An hour after the first slot, someone saves a line without an address.
        if now == _utc("2026-06-10T03:00"):
            subscribers.write_text(good + "- name: No Address\n", encoding="utf-8")

    app, _ticks = _run(project, "2026-06-09T12:00", "2026-06-12T12:00", [], break_the_file)
    sent = Counter(slot for slot, row in _sent_rows(app) if row["state"] == "sent")
    # Every slot after the mistake still went out, to the last good list.
    assert sent == {"2026-06-10T03:00": 2, "2026-06-11T03:00": 2, "2026-06-12T03:00": 2}
    broken = [n for n in NoticeLog(app.store).recent() if n.kind == "subscribers_broken"]
    assert [n.status for n in broken] == ["sent"]  # one notice for the one mistake
    assert broken[0].recipients == "rosa@news.example.org"


@pytest.mark.slow
def test_an_smtp_outage_across_a_slot_sends_nothing_later_than_the_lateness(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    zones = {"anna@example.org": "Europe/Berlin", "nora@example.com": "America/New_York"}
    (project.root / "subscribers.yaml").write_text(
        "".join(f"- email: {e}\n  timezone: {z}\n" for e, z in zones.items()), encoding="utf-8"
    )
    sinks = [SMTPSink()]
    sinks[0].start()
    port = sinks[0].port
    sources = (
        f"sources:\n  - name: Daily\n    url: {project.feeds.url('/daily.rss')}\n"
        "    allow_private: true\n"
    )
    retries = "send:\n  retry_base_seconds: 60\n  retry_max_seconds: 300\n"
    retries += "  retry_in_run_seconds: 0\n"
    schedule = SINGLE + "  max_lateness_minutes: 120\n"
    approval = EDITOR + "  deadline_minutes: 30\n  at_deadline: send\n"
    project.write_config(
        "smtp",
        {"host": sinks[0].host, "port": port},
        sources=sources,
        extra=schedule + approval + retries,
    )
    # The mail server is down from before the second slot (01:00 UTC) until 4 h after it.
    down = (_utc("2026-06-11T00:30"), _utc("2026-06-11T05:00"))

    def server(now: datetime) -> None:
        running = sinks[-1]._running
        if down[0] <= now < down[1] and running:
            sinks[-1].stop()
        elif not down[0] <= now < down[1] and not running:
            sinks.append(SMTPSink(port=port))
            sinks[-1].start()

    try:
        app, _ticks = _run(project, "2026-06-09T12:00", "2026-06-12T12:00", [], server)
    finally:
        sinks[-1].stop()
    states: dict[str, Counter[str]] = {}
    for slot, row in _sent_rows(app):
        states.setdefault(slot, Counter())[str(row["state"])] += 1
        if row["state"] == "sent":  # D1 holds through the outage: nothing late
            sent_at, wave = row["sent_at"], _wave(slot, "Europe/Berlin")
            assert isinstance(sent_at, datetime)
            assert wave <= sent_at <= wave + LATE, (slot, row["email"], sent_at)
    assert states["2026-06-10T03:00"] == {"sent": 2}
    assert states["2026-06-11T03:00"] == {"skipped": 2}  # tried, then expired: not sent late
    assert states["2026-06-12T03:00"] == {"sent": 2}  # the next slot goes out on time
    received = [r for s in sinks for m in s.messages for r in m.rcpt_tos]
    assert sorted(r for r in received if r in zones) == sorted([*zones, *zones])
