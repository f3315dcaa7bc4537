"""`digest subscribers ...` and `digest archive export` through the CLI: output, JSON, exit
codes, and every bad input as one line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from digest.cli import cli

from conftest import Project


def _json(project: Project, *args: str) -> object:
    result = project.cli(*args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    "args",
    [
        ["subscribers"],
        *[
            ["subscribers", c]
            for c in ("list", "add", "remove", "import", "export", "show", "erase", "sync")
        ],
        ["archive"],
        ["archive", "export"],
    ],
)
def test_help(project: Project, args: list[str]) -> None:
    result = project.cli(*args, "--help")
    assert result.exit_code == 0
    assert "Usage: " in result.output
    assert cli.commands[args[0]] is not None


def test_add_list_remove_show(project: Project) -> None:
    project.write_config(extra="subscribers_sync: add\n")
    topics = ["--topic", "World", "--topic", "Technology"]
    added = project.cli(
        "subscribers",
        "add",
        "Zoe@Example.com",
        "--name",
        "Zoe",
        *topics,
        "--timezone",
        "Asia/Tokyo",
    )
    assert added.exit_code == 0, added.output
    assert "Zoe@Example.com: active, topics World, Technology" in added.stdout
    rows = _json(project, "subscribers", "list", "--json")
    assert rows == [
        {
            **rows[0],
            "email": "Zoe@Example.com",
            "topics": ["World", "Technology"],  # type: ignore[index]
            "timezone": "Asia/Tokyo",
            "source": "cli",
            "state": "active",
        }
    ]
    again = project.cli("subscribers", "add", "zoe@example.com", "--name", "Zoë")
    assert again.exit_code == 0
    assert _json(project, "subscribers", "list", "--json")[0]["name"] == "Zoë"  # type: ignore[index]
    plain = project.cli("subscribers", "list")
    assert plain.stdout.startswith("Zoe@Example.com  active  World, Technology  Zoë")
    removed = project.cli("subscribers", "remove", "ZOE@example.com")
    assert removed.exit_code == 0
    assert "unsubscribed" in removed.stdout
    assert _json(project, "subscribers", "list", "--json") == []
    assert len(_json(project, "subscribers", "list", "--json", "--state", "unsubscribed")) == 1  # type: ignore[arg-type]
    shown = _json(project, "subscribers", "show", "zoe@example.com")
    assert isinstance(shown, dict)
    assert shown["subscriber"]["state"] == "unsubscribed"
    assert shown["suppressed"] == "unsubscribed: removed by an editor"
    assert [c["action"] for c in shown["consents"]] == ["subscribe", "unsubscribe"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "not-an-address"], "'not-an-address' is not an e-mail address"),
        (["add", "a@example.org", "--timezone", "Mars/Olympus"], "unknown time zone"),
        (["remove", "nobody@example.org"], "nobody@example.org is not on the list"),
        (["import", "missing.csv"], "missing.csv: file not found"),
        (["list", "--state", "gone"], "Invalid value for '--state'"),
    ],
)
def test_bad_input_is_one_line(project: Project, args: list[str], message: str) -> None:
    result = project.cli("subscribers", *args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) <= 3


def test_an_editor_cannot_re_add_someone_who_left(project: Project) -> None:
    assert project.cli("subscribers", "sync").exit_code == 0
    assert project.cli("subscribers", "remove", "ben@example.net").exit_code == 0
    refused = project.cli("subscribers", "add", "ben@example.net")
    assert refused.exit_code == 1
    assert "ben@example.net is unsubscribed; only the reader can subscribe again" in refused.output
    assert project.cli("subscribers", "erase", "anna@example.org", "--yes").exit_code == 1
    refused = project.cli("subscribers", "add", "anna@example.org")
    assert refused.exit_code == 1
    assert "was erased on request" in refused.output


def test_import_with_dry_run_and_counts(project: Project) -> None:
    path = project.root / "more.csv"
    path.write_text(
        "email,name,timezone,topics\nanna@example.org,Anna S,,\n"
        "new@example.com,New,,World;Technology\n"
    )
    assert project.cli("subscribers", "sync").exit_code == 0
    dry = _json(project, "subscribers", "import", str(path), "--dry-run", "--json")
    assert isinstance(dry, dict)
    assert (dry["read"], dry["added"], dry["updated"], dry["dry_run"]) == (2, 1, 1, True)
    assert len(_json(project, "subscribers", "list", "--json")) == 3  # type: ignore[arg-type]
    done = project.cli("subscribers", "import", str(path))
    assert done.exit_code == 0
    assert "2 entries read; 1 added, 1 updated" in done.stdout
    assert "subscribers_sync is mirror" in done.output  # and the next sync would drop them
    bad = project.root / "bad.csv"
    bad.write_text("email\nok@example.org\nbroken\n")
    result = project.cli("subscribers", "import", str(bad))
    assert result.exit_code == 1
    assert f"{bad}:3: entry 2: invalid email address 'broken'" in result.output
    assert "ok@example.org" not in project.cli("subscribers", "list").stdout


def test_export_csv_round_trips_and_json_has_every_state(project: Project) -> None:
    assert project.cli("subscribers", "sync").exit_code == 0
    assert project.cli("subscribers", "remove", "ben@example.net").exit_code == 0
    exported = project.cli("subscribers", "export")
    assert exported.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [r["email"] for r in rows] == ["anna@example.org", "dmitri@example.org"]
    assert rows[1]["name"] == "Дмитрий Иванов"
    (project.root / "back.csv").write_text(exported.stdout, encoding="utf-8")
    again = _json(project, "subscribers", "import", str(project.root / "back.csv"), "--json")
    assert again["unchanged"] == 2  # type: ignore[index]
    everyone = _json(project, "subscribers", "export", "--json")
    assert isinstance(everyone, list)
    assert {r["email"]: r["state"] for r in everyone}["ben@example.net"] == "unsubscribed"


def test_sync_command_reports_and_dry_runs(project: Project) -> None:
    dry = _json(project, "subscribers", "sync", "--dry-run", "--json")
    assert (dry["added"], dry["mode"]) == (3, "mirror")  # type: ignore[index]
    assert _json(project, "subscribers", "list", "--json") == []
    done = project.cli("subscribers", "sync")
    assert "3 entries read; 3 added" in done.stdout
    project.config.write_text(project.config.read_text() + "subscribers_sync: sometimes\n")
    bad = project.cli("subscribers", "sync")
    assert bad.exit_code == 1
    assert "subscribers_sync must be mirror or add" in bad.output
    assert f"{project.config}:" in bad.output


def test_erase_names_the_line_of_the_subscriber_file_still_listing_it(project: Project) -> None:
    assert project.cli("subscribers", "sync").exit_code == 0
    result = project.cli("subscribers", "erase", "ben@example.net", "--yes")
    assert result.exit_code == 1
    assert "ben@example.net: erased (consents 1, subscribers 1)" in result.output
    assert (
        f"{project.root / 'subscribers.yaml'}:4: ben@example.net is still listed" in result.output
    )
    shown = _json(project, "subscribers", "show", "ben@example.net")
    assert shown == {
        "email": "ben@example.net",
        "subscriber": None,
        "consents": [],
        "pending_confirmations": [],
        "suppressed": None,
        "bounces": [],
        "erased": True,
        "deliveries": [],
    }
    asked = project.cli("subscribers", "erase", "anna@example.org")  # no --yes: it asks
    assert asked.exit_code == 1
    assert "Aborted" in asked.output


def test_archive_export_writes_static_pages(project: Project, tmp_path: Path) -> None:
    assert project.cli("build").exit_code == 0
    assert project.cli("approve", "1", "--by", "Rosa").exit_code == 0
    assert project.cli("send", "1").exit_code == 0
    out = tmp_path / "site"
    result = project.cli("archive", "export", str(out))
    assert result.exit_code == 0, result.output
    assert "1 edition(s)" in result.stdout
    index = (out / "index.html").read_text()
    assert 'href="1/"' in index
    assert 'href="static/readers.css"' in index
    page = (out / "1" / "index.html").read_text()
    assert 'href="../static/site.css"' in page
    assert "Putin poaches the neighbors" in page
    assert "anna@example.org" not in page
    assert (out / "static" / "readers.css").exists()
    assert "<feed" in (out / "feed.xml").read_text()
    (tmp_path / "file").write_text("x")
    bad = project.cli("archive", "export", str(tmp_path / "file" / "sub"))
    assert bad.exit_code == 1
    assert "cannot write the archive" in bad.output
