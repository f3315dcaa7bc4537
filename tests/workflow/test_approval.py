"""Approval from the CLI: approve, reject, edit (remove/pin) and status, with editors configured."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest

from digest.backends import memory

from conftest import EDITORS, Project, reader_mail

LEAD = "https://world.example.org/2026/11/putin-poaches"
CHIPS = "https://tech.example.com/chips-power"


def _status(project: Project) -> dict[str, Any]:
    data = json.loads(project.cli("status", "1", "--json").stdout)
    assert isinstance(data, dict)
    return data


@pytest.fixture
def pending(project: Project) -> Project:
    project.write_config(extra=EDITORS)
    result = project.cli("build")
    assert result.exit_code == 0, result.output
    assert _status(project)["state"] == "pending_approval"
    return project


def test_edit_remove_makes_a_new_audited_revision(pending: Project) -> None:
    before = _status(pending)
    result = pending.cli("edit", "1", "--remove", CHIPS, "--by", "rosa@news.example.org")
    assert result.exit_code == 0, result.output
    assert "revision 2" in result.stdout
    after = _status(pending)
    assert after["revision"] == 2
    assert after["stories"] == before["stories"] - 1
    assert after["content_hash"] != before["content_hash"]
    last = after["audit"][-1]
    assert last == {
        **last,
        "from": "pending_approval",
        "to": "pending_approval",
        "by": "Rosa Diaz",
        "via": "cli",
        "revision": 2,
        "hash": after["content_hash"],
        "note": f"revision 2: removed {CHIPS}",
    }
    text = pending.cli("status", "1").stdout
    stories = text.split("deliveries:", 1)[0]
    assert LEAD in stories
    assert CHIPS not in stories
    assert f"r2 {after['content_hash'][:12]}" in text


def test_edit_pin_moves_a_story_to_the_lead(pending: Project) -> None:
    result = pending.cli("edit", "1", "--pin", CHIPS, "--position", "1", "--by", "Sam Lee")
    assert result.exit_code == 0, result.output
    after = _status(pending)
    # The default subject is fitted to 60 characters: the headline without the label fits.
    assert after["subject"] == "Chipmakers race to cut the power bill of AI data centres"
    lines = pending.cli("status", "1").stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if line.strip().startswith("1."))
    assert lines[first + 1].strip() == CHIPS


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--remove", "https://nowhere.example/x"], "no story with URL https://nowhere.example/x"),
        (["--pin", CHIPS, "--position", "9"], "position 9 is outside 1..5"),
        (["--pin", CHIPS, "--remove", CHIPS], "cannot both remove and pin"),
        ([], "nothing to change"),
    ],
)
def test_bad_edits_are_one_line_errors(pending: Project, args: list[str], message: str) -> None:
    result = pending.cli("edit", "1", *args, "--by", "Rosa Diaz")
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert _status(pending)["revision"] == 1


def test_removing_every_story_is_refused(pending: Project) -> None:
    urls = [
        LEAD,
        CHIPS,
        "https://world.example.org/2026/11/knesset-conscription",
        "https://world.example.org/2026/11/haiti-elections",
        "https://tech.example.com/four-day-week",
    ]
    args = [a for u in urls for a in ("--remove", u)]
    result = pending.cli("edit", "1", *args, "--by", "Rosa Diaz")
    assert result.exit_code == 1
    assert "reject the edition instead" in result.output


def test_only_editors_may_act(pending: Project) -> None:
    for args in (["approve", "1"], ["reject", "1", "--reason", "x"], ["edit", "1", "--pin", LEAD]):
        result = pending.cli(*args, "--by", "Mallory")
        assert result.exit_code == 1
        assert "'Mallory' is not one of the editors" in result.output
    assert _status(pending)["state"] == "pending_approval"


def test_edit_refused_once_approved(pending: Project) -> None:
    assert pending.cli("approve", "1", "--by", "Rosa Diaz").exit_code == 0
    result = pending.cli("edit", "1", "--remove", CHIPS, "--by", "Rosa Diaz")
    assert result.exit_code == 1
    assert "edition 1 is approved" in result.output


def test_two_approvals_needed_and_an_edit_resets_them(project: Project) -> None:
    project.write_config(extra=EDITORS + "  approvals_needed: 2\n")
    assert project.cli("build").exit_code == 0
    first = project.cli("approve", "1", "--by", "Rosa Diaz")
    assert "approval 1 of 2" in first.stdout
    assert _status(project)["state"] == "pending_approval"
    twice = project.cli("approve", "1", "--by", "rosa@news.example.org")
    assert twice.exit_code == 1
    assert "Rosa Diaz has already approved revision 1" in twice.output
    # An edit makes revision 2: Rosa's approval was of revision 1 and no longer counts.
    assert project.cli("edit", "1", "--remove", CHIPS, "--by", "Sam Lee").exit_code == 0
    assert "approval 1 of 2" in project.cli("approve", "1", "--by", "Sam Lee").stdout
    done = project.cli("approve", "1", "--by", "Rosa Diaz")
    assert done.exit_code == 0
    assert "approved by Rosa Diaz" in done.stdout
    status = _status(project)
    assert status["state"] == "approved"
    trail = [(a["to"], a["by"], a["revision"], a["note"]) for a in status["audit"]]
    assert trail[-1] == ("approved", "Rosa Diaz", 2, "approval 2 of 2")
    assert ("pending_approval", "Rosa Diaz", 1, "approval 1 of 2") in trail


def test_reject_then_send_sends_nothing(pending: Project) -> None:
    memory.clear()
    result = pending.cli("reject", "1", "--by", "Sam Lee", "--reason", "wrong lead")
    assert result.exit_code == 0
    assert pending.cli("send", "1").exit_code == 1
    assert memory.outbox == []
    assert pending.cli("approve", "1", "--by", "Rosa Diaz").exit_code == 1


def test_cli_send_is_the_approved_revision(pending: Project) -> None:
    assert pending.cli("edit", "1", "--remove", LEAD, "--by", "Rosa Diaz").exit_code == 0
    assert pending.cli("approve", "1", "--by", "Rosa Diaz").exit_code == 0
    memory.clear()
    assert pending.cli("send", "1").exit_code == 0
    assert len(reader_mail()) == 3  # and a "finished sending" notice to each editor
    for envelope in reader_mail():
        assert LEAD.encode() not in envelope.data
    status = _status(pending)
    approved = [a for a in status["audit"] if a["to"] == "approved"]
    assert approved[0]["hash"] == status["content_hash"]
    assert approved[0]["revision"] == 2


@pytest.mark.parametrize(
    ("approval", "message"),
    [
        ("  editors:\n    - name: Rosa\n", "each editor needs name and email"),
        ("  editors:\n    - {name: Rosa, email: not-an-address}\n", "is not an e-mail address"),
        (
            "  editors:\n    - {name: A, email: a@x.org}\n    - {name: B, email: A@x.org}\n",
            "listed twice",
        ),
        (
            "  editors:\n    - {name: A, email: a@x.org}\n  approvals_needed: 2\n",
            "approvals_needed must be between 1 and the number of editors (1)",
        ),
        ("  at_deadline: later\n", "at_deadline must be skip or send"),
        ("  deadline_minutes: 90\n", "less than schedule.lead_minutes (60)"),
        ("  link_hours: 0\n", "link_hours must be positive"),
        ("  editor: []\n", "did you mean 'editors'"),
    ],
)
def test_bad_approval_config_names_file_and_line(
    project: Project, approval: str, message: str
) -> None:
    project.write_config(extra="approval:\n" + approval)
    result = project.cli("check")
    assert result.exit_code == 1
    assert message in result.output
    assert f"{project.config}:" in result.output


def test_approval_settings_defaults(project: Project) -> None:
    from digest.config import load_settings

    project.write_config(extra=textwrap.dedent(EDITORS))
    approval = load_settings(project.config).approval
    assert [e.name for e in approval.editors] == ["Rosa Diaz", "Sam Lee"]
    assert (approval.approvals_needed, approval.at_deadline, approval.deadline_minutes) == (
        1,
        "skip",
        0,
    )


def test_edit_sets_and_removes_the_note_and_the_subject(pending: Project) -> None:
    note = "Good morning. Three elections today."
    usual = _status(pending)["subject"]
    result = pending.cli(
        "edit", "1", "--note", note, "--subject", "Three elections", "--by", "Rosa Diaz"
    )
    assert result.exit_code == 0, result.output
    after = _status(pending)
    assert after["revision"] == 2
    assert after["subject"] == "Three elections"
    assert after["audit"][-1]["note"] == (
        f'revision 2: editor\'s note: "" -> "{note}"; subject: "{usual}" -> "Three elections"'
    )
    store = pending.open_store()
    try:
        rendered = store.get_edition(1).rendered
    finally:
        store.close()
    assert f'<p class="nt" dir="auto">{note}</p>' in rendered.html
    assert note in rendered.text
    result = pending.cli("edit", "1", "--note", "", "--subject", "", "--by", "Rosa Diaz")
    assert result.exit_code == 0, result.output
    after = _status(pending)
    assert after["subject"] == usual
    store = pending.open_store()
    try:
        rendered = store.get_edition(1).rendered
    finally:
        store.close()
    assert note not in rendered.html
    assert note not in rendered.text
