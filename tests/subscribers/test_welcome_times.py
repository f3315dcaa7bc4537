"""What the welcome mail says about when editions come, on the reader's own clock."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from digest.subscribers.welcome import Timetable, known_zone, reader_zones, when

NOW = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)  # Tuesday, 07:00 in Berlin
EVERY_DAY = frozenset(range(7))
MON_WED_FRI = frozenset({0, 2, 4})


def table(times: tuple[time, ...], days: frozenset[int], *, local: bool = False) -> Timetable:
    return Timetable(times=times, days=days, zone="Europe/Berlin", local=local, lead=timedelta())


@pytest.mark.parametrize(
    ("times", "days", "zone", "every", "first"),
    [
        ((time(7),), EVERY_DAY, "", "every day at 07:00", "Tuesday, 24 November 2026 at 07:00"),
        (
            (time(7),),
            frozenset(range(5)),
            "Asia/Tokyo",
            "every weekday at 15:00",
            "Tuesday, 24 November 2026 at 15:00",
        ),
        # 07:00 in Berlin is 22:00 the day before in Los Angeles: the weekdays move too.
        (
            (time(7), time(17)),
            MON_WED_FRI,
            "America/Los_Angeles",
            "on Mondays, Wednesdays and Fridays at 08:00; on Tuesdays, Thursdays and Sundays"
            " at 22:00",
            "Tuesday, 24 November 2026 at 22:00",
        ),
        (
            (time(7),),
            frozenset({6}),
            "",
            "on Sundays at 07:00",
            "Sunday, 29 November 2026 at 07:00",
        ),
    ],
)
def test_the_schedule_on_the_readers_clock(
    times: tuple[time, ...], days: frozenset[int], zone: str, every: str, first: str
) -> None:
    told = when(table(times, days), zone, NOW)
    assert (told.every, told.first, told.zone) == (every, first, zone or "Europe/Berlin")


def test_local_delivery_keeps_the_send_time_and_days_on_every_clock() -> None:
    told = when(table((time(7),), MON_WED_FRI, local=True), "America/Los_Angeles", NOW)
    # It is Monday 22:00 in Los Angeles: Monday's 07:00 there has passed, Wednesday's is next.
    assert told.every == "on Mondays, Wednesdays and Fridays at 07:00"
    assert told.first == "Wednesday, 25 November 2026 at 07:00"


def test_only_zones_people_live_in_are_offered_and_accepted() -> None:
    zones = reader_zones()
    assert zones[0] == "UTC"
    assert "Europe/Berlin" in zones
    assert "America/Argentina/Buenos_Aires" in zones
    for name in ("Etc/GMT+5", "EST5EDT", "posix/Europe/Berlin", "Mars/Base", "", "../etc"):
        assert not known_zone(name), name
    assert known_zone("Asia/Kolkata")
