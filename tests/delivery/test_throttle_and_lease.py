"""Throttle windows under a fake clock, and the send lease on a real store."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from digest.delivery.lease import Lease
from digest.delivery.throttle import Throttle, Window
from digest.exceptions import LockedError
from digest.store import Store


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_window_never_holds_more_than_its_limit() -> None:
    t = FakeTime()
    window = Window(3, 10.0, clock=t.clock, sleep=t.sleep)
    starts = []
    for _ in range(7):
        window.acquire()
        starts.append(t.now)
        window.release()
    # Any 10 s span of the permits (counted until 10 s after release) holds at most 3.
    assert starts[:3] == [1000.0] * 3
    assert starts[3] >= 1010.0
    assert all(sum(1 for s in starts if a <= s < a + 10) <= 3 for a in starts)


def test_a_held_permit_counts_until_released() -> None:
    t = FakeTime()
    window = Window(1, 5.0, clock=t.clock, sleep=t.sleep)
    window.acquire()
    released = threading.Event()

    def later() -> None:
        window.acquire()
        released.set()

    t.now += 100  # however long the message takes, the permit is still busy
    window.release()
    later()
    assert released.is_set()
    assert t.now >= 1105.0


def test_window_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="limit >= 1"):
        Window(0, 1.0)


def test_throttle_takes_every_window() -> None:
    t = FakeTime()
    throttle = Throttle(
        [
            Window(2, 1.0, clock=t.clock, sleep=t.sleep),
            Window(3, 60.0, clock=t.clock, sleep=t.sleep),
        ]
    )
    for _ in range(4):
        throttle.acquire()
        throttle.release()
    assert t.now >= 1060.0  # the 4th waits for the minute window, not just the second one


def test_a_second_holder_is_refused_while_the_first_lives(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
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
    store.close()


def test_renewing_extends_the_lease(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
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
    store.close()


def test_a_dead_process_on_this_host_loses_the_lease_at_once(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    store = Store(tmp_path / "state.db")
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    dead = Lease(store, "send edition 2", ttl=3600, owner=f"{socket.gethostname()}:{gone}")
    dead.acquire()
    Lease(store, "send edition 2", ttl=3600).acquire()
    store.close()
