"""Pure slot arithmetic: waves as UTC instants, the next slot, the wave a deadline serves,
quiet hours that make a wave unsendable, labels that name their zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from digest.slots import (
    local_label,
    make_slot,
    next_slot,
    served_wave,
    unsendable_waves,
    wall_time,
)

ZONES = ("Pacific/Auckland", "Asia/Kolkata", "Europe/Berlin", "America/New_York")
LEAD = timedelta(minutes=60)
LATE = timedelta(minutes=120)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_waves_are_instants_sorted_from_the_earliest_zone() -> None:
    slot = make_slot(date(2026, 3, 29), time(7), zone="Europe/Berlin", lead=LEAD, wave_zones=ZONES)
    assert [(w.zone, w.at) for w in slot.waves] == [
        ("Pacific/Auckland", _utc("2026-03-28T18:00")),  # +13:00
        ("Asia/Kolkata", _utc("2026-03-29T01:30")),  # +05:30
        ("Europe/Berlin", _utc("2026-03-29T05:00")),  # CEST from today
        ("America/New_York", _utc("2026-03-29T11:00")),
    ]
    assert slot.build_at == _utc("2026-03-28T17:00")
    assert slot.wave("Asia/Tokyo") == _utc("2026-03-29T05:00")  # no such wave: the slot's own
    assert tuple(w.zone for w in slot.live_waves(_utc("2026-03-29T03:00"), LATE)) == ZONES[1:]


def test_the_deadline_serves_the_first_wave_still_to_come() -> None:
    slot = make_slot(date(2026, 3, 29), time(7), zone="Europe/Berlin", lead=LEAD, wave_zones=ZONES)
    assert served_wave(slot, _utc("2026-03-28T17:00"), LATE) == _utc("2026-03-28T18:00")
    # Built after an outage: Auckland's wave is gone, Kolkata's is the first it serves.
    assert served_wave(slot, _utc("2026-03-29T00:30"), LATE) == _utc("2026-03-29T01:30")
    # Every wave already due: the last moment the earliest sendable one may go out.
    assert served_wave(slot, _utc("2026-03-29T12:00"), LATE) == _utc("2026-03-29T13:00")


def test_next_slot_is_the_first_whose_send_time_has_not_passed() -> None:
    found = next_slot(
        _utc("2026-11-24T06:00"),
        zone="Europe/Berlin",
        times=(time(7),),
        days=frozenset(range(7)),
        lead=LEAD,
    )
    assert found.key == "2026-11-24T07:00"  # 07:00 Berlin is now: not passed yet
    later = next_slot(
        _utc("2026-11-24T06:01"),
        zone="Europe/Berlin",
        times=(time(7),),
        days=frozenset(range(7)),
        lead=LEAD,
    )
    assert later.key == "2026-11-25T07:00"
    weekdays = next_slot(
        _utc("2026-11-27T07:00"),
        zone="Europe/Berlin",
        times=(time(7),),
        days=frozenset(range(5)),
        lead=LEAD,
        skip=["2026-11-30T07:00"],
    )
    assert weekdays.key == "2026-12-01T07:00"  # Friday after 07:00: Monday is skipped


def test_quiet_hours_that_outlast_the_lateness_make_a_wave_unsendable() -> None:
    window = (time(6), time(9, 30))
    found = unsendable_waves(
        zone="Europe/Berlin",
        times=[time(7)],
        wave_zones=ZONES,
        window=window,
        lateness=LATE,
        start=date(2026, 1, 1),
    )
    # Berlin's 07:00 always; Kolkata's 07:00 is 02:30/03:30 in Berlin: never quiet.
    assert [(z, at) for z, at, _ in found] == [("Europe/Berlin", time(7))]
    assert (
        unsendable_waves(
            zone="Europe/Berlin",
            times=[time(7)],
            wave_zones=(),
            window=(time(6), time(8)),
            lateness=LATE,
            start=date(2026, 1, 1),
        )
        == []
    )


def test_labels_name_the_zone() -> None:
    moment = wall_time(date(2026, 10, 25), time(2, 30), "Europe/Berlin")
    assert moment == _utc("2026-10-25T00:30")  # the first of the two 02:30s
    assert local_label(moment, "Europe/Berlin") == "Sun 25 Oct 2026 02:30 CEST (Europe/Berlin)"
    assert local_label(moment, "Asia/Kolkata", with_zone=False) == "Sun 25 Oct 2026 06:00 IST"
