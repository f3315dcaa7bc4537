"""The collector pause used around bulk decoding and ranking restores what it found."""

from __future__ import annotations

import gc

import pytest

from digest.gcpause import fresh_only, paused, pausing


def test_the_collector_is_off_inside_and_back_on_after_even_on_an_error() -> None:
    inside = []

    @pausing
    def failing() -> None:
        inside.append(gc.isenabled())
        raise ValueError("boom")

    assert gc.isenabled()
    with pytest.raises(ValueError, match="boom"):
        failing()
    assert inside == [False]
    assert gc.isenabled()


def test_a_pause_inside_a_pause_or_under_a_disabled_collector_leaves_it_off() -> None:
    with paused():
        with paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_decorated_function_runs_paused_and_returns_its_value() -> None:
    @pausing
    def probe(x: int) -> tuple[int, bool]:
        return x * 2, gc.isenabled()

    assert probe(21) == (42, False)
    assert gc.isenabled()


def test_inside_fresh_only_collections_skip_what_was_alive_before_and_it_comes_back() -> None:
    alive = [[] for _ in range(100)]  # tracked by the collector, unlike bare objects
    before = gc.get_freeze_count()
    with fresh_only():
        assert gc.get_freeze_count() >= before + len(alive)
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1  # garbage made inside is still found
    assert gc.get_freeze_count() == 0
