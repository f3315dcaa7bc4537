"""The CLI surface: help for every command, preview, status, check, dry runs, the scheduler jobs."""

from __future__ import annotations

import hashlib
import json
import re
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli

from conftest import Project

COMMANDS = sorted(cli.commands)


def test_every_command_is_there() -> None:
    expected = {
        "approve",
        "build",
        "check",
        "collect",
        "demo",
        "preview",
        "reject",
        "run",
        "send",
        "status",
    }
    assert expected <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert f"Usage: cli {command}" in result.output or f"Usage: digest {command}" in result.output
    assert cli.commands[command].help


def test_collect_json_shape(project: Project) -> None:
    result = project.cli("collect", "--json")
    assert result.exit_code == 0, result.output
    stories = json.loads(result.stdout)
    assert len(stories) == 5
    for story in stories:
        assert {"url", "title", "teaser", "source", "published", "section", "image"} <= set(story)
    lead = next(s for s in stories if "Putin" in s["title"])
    assert lead["url"] == "https://world.example.org/2026/11/putin-poaches"
    assert (
        lead["image"]
        == {
            "url": "https://images.example.org/putin.jpg",
            "alt": "Russian President Vladimir Putin.",
            "caption": "Russian President Vladimir Putin.",
            "credit": "Reuters",
        }
        or lead["image"]["url"] == "https://images.example.org/putin.jpg"
    )
    assert lead["published"] == "2026-11-24T05:00:00+00:00"
    tech = [s for s in stories if s["source"] == "Tech Wire"]
    assert {s["section"] for s in tech} == {"Technology"}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_preview_without_edition_stores_nothing(project: Project, tmp_path: Path) -> None:
    edition = json.loads(project.cli("build", "--json").stdout)["id"]
    before = {p.name: _digest(p) for p in project.state.parent.iterdir()}
    out = tmp_path / "out"
    result = project.cli("preview", "--out", str(out))
    assert result.exit_code == 0, result.output
    after = {p.name: _digest(p) for p in project.state.parent.iterdir()}
    assert after == before
    assert sorted(p.name for p in out.iterdir()) == ["preview.eml", "preview.html", "preview.txt"]
    status = json.loads(project.cli("status", "--json").stdout)
    assert [e["id"] for e in status] == [edition]


def test_preview_with_no_state_file_creates_none(project: Project, tmp_path: Path) -> None:
    result = project.cli("preview", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert not project.state.exists()


def test_preview_of_edition_as_subscriber(project: Project, tmp_path: Path) -> None:
    edition = json.loads(project.cli("build", "--json").stdout)["id"]
    out = tmp_path / "p"
    result = project.cli(
        "preview", str(edition), "--subscriber", "ben@example.net", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    msg = BytesParser(policy=policy.default).parsebytes(
        (out / f"edition-{edition}.eml").read_bytes()
    )
    assert "ben@example.net" in msg["To"]
    html = (out / f"edition-{edition}.html").read_text()
    assert "Ben Okafor" in html or "ben@example.net" in html
    assert "__DIGEST_" not in html
    assert "__DIGEST_" not in (out / f"edition-{edition}.txt").read_text()


def test_preview_unknown_subscriber(project: Project) -> None:
    result = project.cli("preview", "--subscriber", "nobody@example.org")
    assert result.exit_code == 1
    assert "nobody@example.org is neither a subscriber nor in" in result.output


def test_dry_run_touches_no_ledger_and_no_server(project: Project) -> None:
    from digest.backends import memory

    edition = json.loads(project.cli("build", "--json").stdout)["id"]
    project.cli("approve", str(edition), "--by", "Editor")
    before = json.loads(project.cli("status", str(edition), "--json").stdout)
    result = project.cli("send", str(edition), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would go to 3 subscriber(s)" in result.stdout
    after = json.loads(project.cli("status", str(edition), "--json").stdout)
    assert after == before
    assert after["state"] == "approved"
    assert memory.outbox == []


def test_status_lists_editions_and_trail(project: Project) -> None:
    assert "no editions yet" in project.cli("status").stdout
    edition = json.loads(project.cli("build", "--json").stdout)["id"]
    project.cli("approve", str(edition), "--by", "Rosa")
    listing = project.cli("status").stdout.splitlines()
    # A table with headers, times labelled with their zone (issue 17 changed the layout).
    assert listing[0].split() == [
        "edition",
        "slot",
        "send",
        "time",
        "(Europe/Berlin)",
        "state",
        "stories",
        "deliveries",
        "bounces",
        "(hard/soft)",
        "complaints",
    ]
    assert listing[1].split()[:9] == [
        str(edition),
        "2026-11-24T07:00",
        "Tue",
        "24",
        "Nov",
        "2026",
        "07:00",
        "CET",
        "approved",
    ]
    detail = project.cli("status", str(edition)).stdout
    assert re.search(r"pending_approval -> approved\s+Rosa\s+cli", detail), detail
    assert "deliveries:" in detail
    assert "{" not in detail


def test_approve_twice_is_refused(project: Project) -> None:
    edition = json.loads(project.cli("build", "--json").stdout)["id"]
    assert project.cli("approve", str(edition), "--by", "Rosa").exit_code == 0
    again = project.cli("approve", str(edition), "--by", "Rosa")
    assert again.exit_code == 1
    assert "is approved" in again.output


def test_check_reports_everything(project: Project) -> None:
    result = project.cli("check")
    assert result.exit_code == 0, result.output
    for word in ("config:", "subscribers: 3", "sources: 2", "templates:", "backend: memory"):
        assert word in result.stdout


def test_check_reports_template_syntax_error(project: Project) -> None:
    templates = project.root / "mytemplates"
    templates.mkdir()
    (templates / "digest.txt.j2").write_text("Hello\n{% for x in %}\n")
    project.write_config(extra="templates_dir: mytemplates\n")
    result = project.cli("check")
    assert result.exit_code == 1
    assert f"{templates / 'digest.txt.j2'}:2" in result.output


def test_auto_approve_config(project: Project) -> None:
    project.write_config(extra="approval:\n  auto_approve: true\n")
    result = project.cli("build")
    assert result.exit_code == 0
    assert "approved automatically" in result.stdout
    assert "state: approved" in result.stdout


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert "digest, version" in result.output
