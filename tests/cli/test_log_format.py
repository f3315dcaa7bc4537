"""`--log-format text|json` on the long-running commands: text lines start with a UTC
timestamp, json is one object per line (timestamp, level, event, edition, counts, message);
`digest tick` says the build's warnings; `digest status` says when it shows only the latest."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime
from typing import Any

from digest.models import RenderedEdition, Story
from digest.store import Revision

from conftest import Project, spawn_digest

NOW = datetime(2026, 11, 24, 6, tzinfo=UTC)

SCHEDULE = 'schedule:\n  time: "07:00"\n  timezone: Europe/Berlin\n  lead_minutes: 60\n'
AUTO = "approval:\n  auto_approve: true\n"
BUILD_TIME = "2026-11-24T05:00:00+00:00"  # 06:00 in Berlin, an hour before the slot
KEYS = ["timestamp", "level", "event", "edition", "counts", "message"]


def _failing_source(project: Project) -> None:
    project.feeds.route("/tech.atom", b"gone", status=404)


def _json_lines(text: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in text.splitlines()]
    for record in records:
        assert list(record) == KEYS
    return records


def test_tick_text_lines_are_timestamped_and_say_the_builds_warnings(project: Project) -> None:
    project.write_config(extra=SCHEDULE + AUTO)
    _failing_source(project)
    result = project.cli("tick", env={"DIGEST_NOW": BUILD_TIME})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines
    assert all(line.startswith("2026-11-24T05:00:00Z ") for line in lines), lines
    assert "2026-11-24T05:00:00Z slot 2026-11-24T07:00: built edition 1 (approved)" in lines
    warnings = [line for line in lines if line.startswith("2026-11-24T05:00:00Z warning: ")]
    source = "warning: slot 2026-11-24T07:00: edition 1: source Tech Wire: "
    assert any(source in line and "404" in line for line in warnings), lines


def test_tick_json_lines_carry_level_event_and_edition(project: Project) -> None:
    project.write_config(extra=SCHEDULE + AUTO)
    _failing_source(project)
    result = project.cli("tick", "--log-format", "json", env={"DIGEST_NOW": BUILD_TIME})
    assert result.exit_code == 0, result.output
    records = _json_lines(result.stdout)
    assert {r["timestamp"] for r in records} == {"2026-11-24T05:00:00Z"}
    assert {r["event"] for r in records} == {"tick"}
    built = next(r for r in records if r["message"].endswith("built edition 1 (approved)"))
    assert (built["level"], built["edition"]) == ("info", 1)
    warned = [r for r in records if r["level"] == "warning"]
    assert any(
        r["message"].startswith("slot 2026-11-24T07:00: edition 1: source Tech Wire")
        for r in warned
    )
    assert {r["edition"] for r in warned} == {1}


def test_send_json_log_line_has_the_counts(project: Project) -> None:
    assert project.cli("build").exit_code == 0
    assert project.cli("approve", "1", "--by", "Rosa").exit_code == 0
    result = project.cli("send", "1", "--log-format", "json")
    assert result.exit_code == 0, result.output
    (record,) = _json_lines(result.stdout)
    assert (record["event"], record["edition"], record["level"]) == ("send", 1, "info")
    assert record["counts"]["sent"] == 3
    assert record["counts"]["failed"] == 0


def test_run_and_serve_write_json_lines_from_the_start(project: Project) -> None:
    project.write_config(extra=SCHEDULE)
    for args in (
        ["run", "--log-format", "json"],
        ["serve", "--port", "0", "--log-format", "json"],
    ):
        child = spawn_digest(project, *args, now="2026-11-24T12:00:00+00:00")
        try:
            assert child.stdout is not None
            first = json.loads(child.stdout.readline())
        finally:
            child.send_signal(signal.SIGTERM)
            child.communicate(timeout=120)  # a loaded machine starts Python slowly
        assert list(first) == KEYS
        assert first["event"] == args[0]
        assert first["level"] in ("info", "warning")


def test_status_says_when_it_shows_only_the_latest_editions(project: Project) -> None:
    store = project.open_store()
    rendered = RenderedEdition(subject="s", preheader="p", html="<p>h</p>", text="t\n")
    story = Story(url="https://n.example/a", title="A", teaser="", source="Desk", published=NOW)
    for day in range(1, 52):  # 51 editions, one more than status shows by default
        with store.transaction() as tx:
            tx.insert_edition(
                slot=f"2026-10-{day % 31 + 1:02d}T07:00",
                revision=Revision([story], rendered, []),
                now=NOW,
                warnings=[],
            )
    store.close()
    plain = project.cli("status")
    assert plain.exit_code == 0, plain.output
    assert "showing the latest 50 editions; `digest status --all` lists every one" in plain.stdout
    ids = [line.split()[0] for line in plain.stdout.splitlines()[1:-1]]
    assert ids == [str(i) for i in range(51, 1, -1)]  # the newest 50
    every = project.cli("status", "--all", "--json")
    assert len(json.loads(every.stdout)) == 51
    assert "showing the latest" not in every.output
    cut = project.cli("status", "--json")
    assert len(json.loads(cut.stdout)) == 50
    assert "showing the latest 50 editions" in cut.stderr
