"""Shared limits in the database and the send lease, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.config.settings import SendSettings, parse_rate
from digest.delivery.lease import Lease
from digest.delivery.throttle import Limits, Want
from digest.exceptions import LockedError
from digest.store import Store


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def clock(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path, state_url: str) -> Iterator[Store]:
    store = Store(url=state_url) if state_url else Store(tmp_path / "state.db")
    yield store
    store.close()


def _limits(store: Store, t: FakeTime, **options: object) -> Limits:
    return Limits(store, SendSettings(**options), busy_seconds=30, clock=t.clock)  # type: ignore[arg-type]


def _take(limits: Limits, n: int, domain: str = "example.org", start: int = 0) -> list[str]:
    wants = [Want(f"1:r{i}@{domain}:1", f"r{i}@{domain}") for i in range(start, start + n)]
    return limits.acquire(wants).granted


def _release(store: Store, limits: Limits, holders: list[str], at: float) -> None:
    assert limits.permits is not None
    sql, params = limits.permits.release_statement(holders, at=at)
    raw = limits.permits.raw
    raw.transaction(lambda cur: cur.execute(raw.sql(sql), params))


def test_a_window_is_shared_by_every_worker_and_counts_until_a_window_after_release(
    store: Store,
) -> None:
    t = FakeTime()
    one, two = (
        _limits(store, t, window_messages=3, window_seconds=10),
        _limits(store, t, window_messages=3, window_seconds=10),
    )
    assert len(_take(one, 2)) == 2
    granted = _take(two, 2, start=2)
    assert len(granted) == 1  # the other worker's two permits count
    refused = two.acquire([Want("1:late@example.org:1", "late@example.org")])
    assert refused.granted == []
    assert refused.full == {"window"}
    t.now += 25  # still busy: a permit counts until released (or its busy bound, 30 s)
    assert _take(one, 1, start=9) == []
    _release(store, one, ["1:r0@example.org:1", "1:r1@example.org:1", granted[0]], t.now)
    t.now += 9.9
    assert _take(one, 1, start=9) == []
    t.now += 0.2  # a window after the release
    assert len(_take(one, 3, start=9)) == 3
    one.close()
    two.close()


def test_a_dead_workers_busy_permits_count_until_their_bound(store: Store) -> None:
    t = FakeTime()
    limits = _limits(store, t, rate_per_second=2)
    assert len(_take(limits, 2)) == 2  # never released: the worker died
    t.now += 30.5  # busy bound (30 s) passed, but not a window (1 s) after it
    assert _take(limits, 1, start=5) == []
    t.now += 1
    assert len(_take(limits, 1, start=5)) == 1
    limits.close()


def test_domain_limits_hold_back_only_that_domain(store: Store) -> None:
    t = FakeTime()
    limits = _limits(store, t, domain_limits={"gmail.com": "2/min", "default": "100/min"})
    wants = [Want(f"1:g{i}@gmail.com:1", f"g{i}@gmail.com") for i in range(3)]
    wants += [Want("1:a@example.org:1", "a@example.org")]
    grant = limits.acquire(wants)
    assert grant.granted == ["1:g0@gmail.com:1", "1:g1@gmail.com:1", "1:a@example.org:1"]
    assert grant.full == {"domain:gmail.com"}
    # Both gmail permits are still busy: look again soon (they end when their messages do).
    assert t.now < grant.retry_at["1:g2@gmail.com:1"] <= t.now + 1
    _release(store, limits, ["1:g0@gmail.com:1", "1:g1@gmail.com:1"], t.now)
    later = limits.acquire([Want("1:g2@gmail.com:1", "g2@gmail.com")])
    assert later.retry_at["1:g2@gmail.com:1"] == pytest.approx(t.now + 60)
    assert not limits.is_shared("domain:gmail.com")
    limits.close()


def test_rates_are_parsed_with_their_unit() -> None:
    assert parse_rate("600/min") == (600, 60.0)
    assert parse_rate("100/30s") == (100, 30.0)
    assert parse_rate("5000/h") == (5000, 3600.0)
    assert parse_rate("20000/day") == (20000, 86400.0)
    with pytest.raises(ValueError, match="not a rate"):
        parse_rate("fast")


def test_a_second_holder_is_refused_while_the_first_lives(store: Store) -> None:
    t = FakeTime()
    first = Lease(store, "send edition 1", ttl=60, clock=t.clock, owner="hostA:1")
    first.acquire()
    second = Lease(store, "send edition 1", ttl=60, clock=t.clock, owner="hostB:2")
    with pytest.raises(LockedError, match="held by process hostA:1"):
        second.acquire()
    t.now += 61  # the first stopped renewing: its lease lapsed
    second.acquire()
    with pytest.raises(LockedError, match="lost its lease"):
        first.renew()
    second.release()


def test_renewing_extends_the_lease(store: Store) -> None:
    t = FakeTime()
    holder = Lease(store, "slot x", ttl=60, clock=t.clock, owner="hostA:1")
    holder.acquire()
    for _ in range(5):
        t.now += 30
        holder.renew()
    other = Lease(store, "slot x", ttl=60, clock=t.clock, owner="hostB:2")
    with pytest.raises(LockedError):
        other.acquire()
    holder.release()
    other.acquire()


def test_a_lease_renews_itself_while_its_holder_waits(store: Store) -> None:
    from conftest import wait_for

    holder = Lease(store, "send edition 3", ttl=0.4)
    holder.acquire()
    try:
        # Twice the lease's life, with the holder doing nothing: the thread renews it.
        renewals = []

        def renewed() -> bool:
            renewals.append(holder._renewed)
            return len(set(renewals)) >= 3

        wait_for(renewed, what="three renewals")
        other = Lease(store, "send edition 3", ttl=0.4, owner="elsewhere:1")
        with pytest.raises(LockedError):
            other.acquire()
        assert not holder.lost.is_set()
    finally:
        holder.release()


def test_a_dead_process_on_this_host_loses_the_lease_at_once(store: Store) -> None:
    import socket
    import subprocess
    import sys

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    dead = Lease(store, "send edition 2", ttl=3600, owner=f"{socket.gethostname()}:{gone}")
    dead.acquire()
    dead._done.set()
    Lease(store, "send edition 2", ttl=3600).acquire()
