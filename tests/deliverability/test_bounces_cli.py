"""`digest bounces import` through the CLI: the policy in the store, the JSON lines, the
inputs (files, Maildir, mbox), and every bad input as one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bouncemail import arf, dsn, vacation
from digest.cli import cli
from digest.testing.postgres import PostgresCluster

from conftest import Project

MAILBOX_FULL = "552 5.2.2 <{to}>: Mailbox full"


def _write(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def _import(project: Project, *args: str, now: str | None = None) -> list[dict[str, Any]]:
    env = {"DIGEST_NOW": now} if now else None
    result = project.cli("bounces", "import", *args, "--json", env=env)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def _show(project: Project, email: str) -> dict[str, Any]:
    result = project.cli("subscribers", "show", email)
    assert result.exit_code == 0, result.output
    shown: dict[str, Any] = json.loads(result.stdout)
    return shown


@pytest.fixture
def synced(project: Project) -> Project:
    assert project.cli("subscribers", "sync").exit_code == 0
    return project


@pytest.mark.parametrize("args", [["bounces"], ["bounces", "import"]])
def test_help(project: Project, args: list[str]) -> None:
    result = project.cli(*args, "--help")
    assert result.exit_code == 0
    assert "Usage: " in result.output
    assert cli.commands["bounces"] is not None


def test_a_hard_bounce_suppresses_at_once_with_its_evidence(synced: Project) -> None:
    path = _write(synced.root / "in", "hard.eml", dsn("anna@example.org"))
    rows = _import(synced, str(path))
    assert rows == [
        {
            "file": str(path),
            "kind": "hard",
            "recipients": [
                {
                    "address": "anna@example.org",
                    "status": "5.1.1",
                    "reason": "userunknown",
                    "kind": "hard",
                }
            ],
            "delivery": {
                "message_id": "<ed1.r7@news.example.org>",
                "headers": {"x-digest-edition": "7"},
                "token": "d7-42",
            },
            "action": "suppressed",
        }
    ]
    shown = _show(synced, "anna@example.org")
    assert shown["subscriber"]["state"] == "bounced"
    assert shown["suppressed"] == "hard bounce: 5.1.1 userunknown"
    [event] = shown["bounces"]
    assert event["kind"] == "hard"
    assert event["status"] == "5.1.1"
    assert event["reason"] == "userunknown"
    assert event["source"] == str(path)
    listed = synced.cli("subscribers", "list", "--state", "bounced")
    assert "anna@example.org" in listed.stdout


def test_soft_bounces_suppress_at_the_limit_within_the_window(synced: Project) -> None:
    synced.write_config(extra="bounces:\n  soft_limit: 2\n  soft_window_days: 10\n")
    inbox = synced.root / "in"

    def full(edition: int) -> str:
        mail = dsn(
            "ben@example.net",
            status="5.2.2",
            diagnostic=MAILBOX_FULL,
            message_id=f"<ed{edition}@news.example.org>",
        )
        return str(_write(inbox, f"full-{edition}.eml", mail))

    # The first soft bounce is counted; the second, 20 days later, is outside the window.
    assert _import(synced, full(1), now="2026-11-01T06:00:00+00:00")[0]["action"] == "counted"
    [row] = _import(synced, full(2), now="2026-11-21T06:00:00+00:00")
    assert row["recipients"][0]["kind"] == "soft"
    assert row["recipients"][0]["reason"] == "mailboxfull"
    assert row["action"] == "counted"
    assert _show(synced, "ben@example.net")["subscriber"]["state"] == "active"
    # A second one within 10 days reaches the limit.
    assert _import(synced, full(3), now="2026-11-24T06:00:00+00:00")[0]["action"] == "suppressed"
    shown = _show(synced, "ben@example.net")
    assert shown["subscriber"]["state"] == "bounced"
    assert shown["suppressed"] == "hard bounce: 2 soft bounces in 10 days, last 5.2.2 mailboxfull"
    assert [e["action"] for e in shown["bounces"]] == ["counted", "counted", "suppressed"]


def test_the_same_bounce_read_twice_counts_once(synced: Project) -> None:
    inbox = synced.root / "in"
    first = _write(inbox, "1.eml", dsn("ben@example.net", status="4.2.2", diagnostic="452 full"))
    # Another "still trying" notice about the same sent message, in other words.
    again = _write(inbox, "2.eml", dsn("ben@example.net", status="4.4.1", diagnostic="timeout"))
    rows = _import(synced, str(first), str(again))
    assert [r["action"] for r in rows] == ["counted", "ignored"]
    # The same mailbox imported again on the next run: nothing new.
    assert [r["action"] for r in _import(synced, str(inbox))] == ["ignored", "ignored"]
    assert len(_show(synced, "ben@example.net")["bounces"]) == 1


def test_a_complaint_suppresses_and_nothing_undoes_it(synced: Project) -> None:
    inbox = synced.root / "in"
    complaint = _write(inbox, "1-arf.eml", arf("dmitri@example.org"))
    hard = _write(inbox, "2-hard.eml", dsn("dmitri@example.org"))
    rows = _import(synced, str(complaint), str(hard))
    assert [r["kind"] for r in rows] == ["complaint", "hard"]
    assert rows[0]["recipients"][0]["reason"] == "feedback:abuse"
    assert [r["action"] for r in rows] == ["suppressed", "suppressed"]
    # A later bounce, a sync, an import and an editor's add leave the complaint in place.
    assert synced.cli("subscribers", "sync").exit_code == 0
    readers = synced.root / "readers.csv"
    readers.write_text("email,name\ndmitri@example.org,Dmitri\n", encoding="utf-8")
    assert synced.cli("subscribers", "import", str(readers)).exit_code == 0
    synced.cli("subscribers", "add", "dmitri@example.org")
    shown = _show(synced, "dmitri@example.org")
    assert shown["subscriber"]["state"] == "complained"
    assert shown["suppressed"] == "complained: feedback:abuse"
    assert [e["kind"] for e in shown["bounces"]] == ["complaint", "hard"]


def test_auto_replies_and_delivery_notices_change_nothing(synced: Project) -> None:
    inbox = synced.root / "in"
    _write(inbox, "1-away.eml", vacation("anna@example.org"))
    _write(
        inbox,
        "2-delivered.eml",
        dsn(
            "ben@example.net", status="2.0.0", action="delivered", diagnostic="250 2.0.0 Ok: queued"
        ),
    )
    rows = _import(synced, str(inbox))
    assert [(r["kind"], r["action"]) for r in rows] == [
        ("not_a_bounce", "ignored"),
        ("not_a_bounce", "ignored"),
    ]
    assert rows[0]["recipients"][0]["reason"] == "vacation"
    for email in ("anna@example.org", "ben@example.net"):
        shown = _show(synced, email)
        assert shown["subscriber"]["state"] == "active"
        assert shown["bounces"] == []


def test_dry_run_shows_the_actions_and_changes_nothing(synced: Project) -> None:
    path = _write(synced.root / "in", "hard.eml", dsn("anna@example.org"))
    result = synced.cli("bounces", "import", str(path), "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{path}: hard, suppressed: anna@example.org hard 5.1.1")
    assert "dry run: nothing changed" in result.stderr
    shown = _show(synced, "anna@example.org")
    assert shown["subscriber"]["state"] == "active"
    assert shown["suppressed"] is None
    assert shown["bounces"] == []


def test_maildir_and_mbox_are_read_in_order(synced: Project) -> None:
    maildir = synced.root / "Maildir"
    _write(maildir / "cur", "1.host:2,S", dsn("anna@example.org"))
    _write(maildir / "new", "2.host", arf("ben@example.net"))
    (maildir / "tmp").mkdir()
    mbox = synced.root / "returned.mbox"
    mbox.write_bytes(
        b"From MAILER-DAEMON Mon Nov 23 06:00:00 2026\n"
        + dsn("dmitri@example.org").replace(b"\r\n", b"\n")
        + b"\nFrom MAILER-DAEMON Mon Nov 23 07:00:00 2026\n"
        + vacation("dmitri@example.org")
    )
    rows = _import(synced, str(maildir), str(mbox))
    assert [(Path(r["file"]).name, r["kind"]) for r in rows] == [
        ("1.host:2,S", "hard"),
        ("2.host", "complaint"),
        ("returned.mbox#1", "hard"),
        ("returned.mbox#2", "not_a_bounce"),
    ]


def test_bad_inputs_are_named_on_one_line_each_and_the_rest_goes_on(synced: Project) -> None:
    inbox = synced.root / "in"
    good = _write(inbox, "good.eml", dsn("anna@example.org"))
    text = _write(inbox, "notes.txt", b"just some notes, no headers\n")
    empty = _write(inbox, "empty.eml", b"")
    broken = _write(
        inbox,
        "broken.eml",
        b"From: MAILER-DAEMON@mx.example.net\nSubject: Undelivered Mail\n"
        b"Content-Type: multipart/report; report-type=delivery-status\n\nno parts at all\n",
    )
    missing = inbox / "missing.eml"
    result = synced.cli(
        "bounces", "import", str(text), str(missing), str(empty), str(broken), str(good), "--json"
    )
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith(str(inbox))]
    assert errors == [
        f"{text}: not a mail (it does not start with a header line); skipped",
        f"{missing}: cannot read it (No such file or directory); skipped",
        f"{empty}: empty file, not a mail; skipped",
        f"{broken}: broken MIME: a multipart message without a boundary; skipped",
    ]
    assert "Error: 4 input(s) could not be read; see the lines above" in result.stderr
    [row] = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["file"] == str(good)
    assert row["action"] == "suppressed"  # the good one was applied all the same
    assert _show(synced, "anna@example.org")["subscriber"]["state"] == "bounced"


@pytest.mark.parametrize("key", ["soft_limit", "soft_window_days"])
def test_bounce_settings_must_be_positive(project: Project, key: str) -> None:
    project.write_config(extra=f"bounces:\n  {key}: 0\n")
    result = project.cli("bounces", "import", str(project.root))
    assert result.exit_code == 1
    assert f"bounces.{key} must be >= 1" in result.stderr
    assert "Traceback" not in result.output


def test_the_policy_on_postgresql(project: Project, postgres: PostgresCluster) -> None:
    project.state_url = postgres.create_database()
    project.write_config(extra="bounces:\n  soft_limit: 2\n")
    try:
        assert project.cli("subscribers", "sync").exit_code == 0
        inbox = project.root / "in"
        _write(inbox, "1.eml", dsn("anna@example.org"))
        _write(inbox, "2.eml", arf("ben@example.net"))
        for n in (3, 4):
            mail = dsn(
                "dmitri@example.org",
                status="4.2.2",
                diagnostic="452 4.2.2 Mailbox full",
                message_id=f"<ed{n}@news.example.org>",
            )
            _write(inbox, f"{n}.eml", mail)
        _write(inbox, "5.eml", dsn("ben@example.net"))  # after the complaint
        rows = _import(project, str(inbox))
        assert [r["action"] for r in rows] == [
            "suppressed",
            "suppressed",
            "counted",
            "suppressed",
            "suppressed",
        ]
        states = {
            email: _show(project, email)["subscriber"]["state"]
            for email in ("anna@example.org", "ben@example.net", "dmitri@example.org")
        }
        assert states == {
            "anna@example.org": "bounced",
            "ben@example.net": "complained",
            "dmitri@example.org": "bounced",
        }
    finally:
        postgres.drop_database(project.state_url)
