"""Slots that cannot double-send: `digest build` targets the next slot whose send time has
not passed, a new build supersedes the slot's pending or approved edition, one edition per
slot is ever sent, and passed slots are explained."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from conftest import FIXTURES, Project, reader_mail

BERLIN = 'schedule:\n  time: "07:00"\n  timezone: Europe/Berlin\n'


def _build(project: Project, now: str, *args: str) -> dict[str, Any]:
    result = project.cli("build", "--json", *args, env={"DIGEST_NOW": now})
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def _states(project: Project) -> dict[int, str]:
    return {e["id"]: e["state"] for e in json.loads(project.cli("status", "--json").stdout)}


def test_two_builds_and_two_approvals_send_one_edition_per_slot(project: Project) -> None:
    project.write_config(extra=BERLIN)
    first = _build(project, "2026-11-24T04:00:00+00:00")
    assert first["slot"] == "2026-11-24T07:00"
    again = project.cli("build", env={"DIGEST_NOW": "2026-11-24T04:10:00+00:00"})
    assert again.exit_code == 0, again.output
    assert "it supersedes edition 1 (pending_approval), which will never be sent" in again.stdout
    assert _states(project) == {1: "superseded", 2: "pending_approval"}
    refused = project.cli("approve", "1", "--by", "Rosa")
    assert refused.exit_code == 1
    assert "superseded by a newer edition for slot 2026-11-24T07:00; approve edition 2" in (
        refused.output
    )
    assert project.cli("approve", "2", "--by", "Rosa").exit_code == 0
    # An approved edition is superseded too: only the newest of a slot can ever be sent.
    third = _build(project, "2026-11-24T04:20:00+00:00")
    assert third["superseded"] == [2]
    assert project.cli("approve", "3", "--by", "Rosa").exit_code == 0
    assert _states(project) == {1: "superseded", 2: "superseded", 3: "approved"}
    for old in ("1", "2"):
        sent = project.cli("send", old)
        assert sent.exit_code == 1
        assert "is superseded" in sent.output
    assert project.cli("send", "3").exit_code == 0
    assert Counter(e.recipient for e in reader_mail()) == {
        "anna@example.org": 1,
        "ben@example.net": 1,
        "dmitri@example.org": 1,
    }
    # The slot is sent: building for it again is refused, and `build` moves to the next one.
    taken = project.cli("build", "--slot", "2026-11-24T07:00")
    assert taken.exit_code == 1
    assert "slot 2026-11-24T07:00 already has edition 3 (sent)" in taken.output
    later_feed = (FIXTURES / "e2e" / "later.rss").read_bytes()
    project.feeds.route("/world.rss", later_feed, headers={"Content-Type": "application/rss+xml"})
    later = _build(project, "2026-11-24T04:30:00+00:00")
    assert later["slot"] == "2026-11-25T07:00"
    assert later["superseded"] == []
    status = project.cli("status").stdout
    assert status.count("superseded") == 2


def test_the_scheduler_sends_only_the_newest_edition(project: Project) -> None:
    project.write_config(extra=BERLIN + "approval:\n  auto_approve: true\n")
    _build(project, "2026-11-24T04:00:00+00:00")
    _build(project, "2026-11-24T04:30:00+00:00")
    out = project.cli("tick", env={"DIGEST_NOW": "2026-11-24T06:00:00+00:00"}).stdout
    assert "edition 2 is sent: sent 3" in out
    assert _states(project) == {1: "superseded", 2: "sent"}
    assert len(reader_mail()) == 3


def test_build_after_the_send_time_targets_the_next_slot(project: Project) -> None:
    project.write_config(extra=BERLIN)
    result = project.cli("build", env={"DIGEST_NOW": "2026-11-24T19:00:00+00:00"})  # 20:00
    assert result.exit_code == 0, result.output
    assert "edition 1 built for slot 2026-11-25T07:00 (sends Wed 25 Nov 2026 07:00 CET " in (
        result.stdout
    )
    assert "`digest approve 1 --by NAME` by Wed 25 Nov 2026 07:00 CET (Europe/Berlin)" in (
        result.stdout
    )


def test_approving_after_the_slot_time_says_send_now(project: Project) -> None:
    project.write_config(extra=BERLIN)
    _build(project, "2026-11-24T06:20:00+00:00", "--slot", "2026-11-24T07:00")  # 07:20 Berlin
    result = project.cli(
        "approve", "1", "--by", "Rosa", env={"DIGEST_NOW": "2026-11-24T06:30:00+00:00"}
    )
    assert result.exit_code == 0, result.output
    assert "its slot's send time (Tue 24 Nov 2026 07:00 CET (Europe/Berlin)) has passed: send " in (
        result.stdout
    )
    assert "send now with `digest send 1`" in result.stdout
    assert "until Tue 24 Nov 2026 09:00 CET" in result.stdout


def test_approving_after_the_maximum_lateness_says_expired(project: Project) -> None:
    project.write_config(extra=BERLIN)
    _build(project, "2026-11-24T06:20:00+00:00", "--slot", "2026-11-24T07:00")
    result = project.cli(
        "approve", "1", "--by", "Rosa", env={"DIGEST_NOW": "2026-11-24T09:30:00+00:00"}
    )
    assert result.exit_code == 0, result.output
    assert "expired: its slot 2026-11-24T07:00 passed" in result.stdout
    assert _states(project) == {1: "expired"}
    assert project.cli("send", "1").exit_code == 1
    assert reader_mail() == []
    over = project.cli(
        "build", "--slot", "2026-11-24T07:00", env={"DIGEST_NOW": "2026-11-24T09:30:00+00:00"}
    )
    assert over.exit_code == 1
    assert "slot 2026-11-24T07:00 is over" in over.output


def test_a_bad_slot_is_one_line(project: Project) -> None:
    result = project.cli("build", "--slot", "tomorrow")
    assert result.exit_code == 1
    assert "slot 'tomorrow' is not YYYY-MM-DDTHH:MM" in result.output


def test_tick_explains_nothing_due(project: Project) -> None:
    project.write_config(extra=BERLIN)
    out = project.cli("tick", env={"DIGEST_NOW": "2026-11-24T12:00:00+00:00"}).stdout
    assert out.strip() == (  # each tick line starts with its UTC time
        "2026-11-24T12:00:00Z nothing due; next: slot 2026-11-25T07:00 builds at "
        "Wed 25 Nov 2026 06:00 CET (Europe/Berlin), sends at Wed 25 Nov 2026 07:00 CET "
        "(Europe/Berlin)"
    )
    _build(project, "2026-11-24T12:00:00+00:00")
    out = project.cli("tick", env={"DIGEST_NOW": "2026-11-24T12:05:00+00:00"}).stdout
    assert "; edition 1 (2026-11-25T07:00) awaits approval until Wed 25 Nov 2026 07:00 CET" in out
    data = json.loads(
        project.cli("tick", "--json", env={"DIGEST_NOW": "2026-11-24T12:10:00+00:00"}).stdout
    )
    assert data["done"] == []
    assert data["next"]["slot"] == "2026-11-25T07:00"
    assert data["next"]["waves"] == [{"zone": "Europe/Berlin", "at": "2026-11-25T06:00:00+00:00"}]
