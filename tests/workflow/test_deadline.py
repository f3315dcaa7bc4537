"""The approval deadline under a frozen clock: `skip` expires and sends nothing, `send` approves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from digest.app import App
from digest.backends import memory
from digest.workflow import enforce_deadline

from conftest import EDITORS, Project, reader_mail

BUILT = "2026-11-24T05:00:00+00:00"  # 06:00 in Berlin; the slot is 07:00 Berlin
BEFORE = datetime.fromisoformat("2026-11-24T05:29:59+00:00")
AT = datetime.fromisoformat("2026-11-24T05:30:00+00:00")  # 30 minutes before 07:00 Berlin


def _setup(project: Project, policy: str, extra: str = "") -> None:
    project.write_config(
        extra=EDITORS + f"  deadline_minutes: 30\n  at_deadline: {policy}\n" + extra
    )
    result = project.cli("build", env={"DIGEST_NOW": BUILT})
    assert result.exit_code == 0, result.output


@pytest.fixture
def app(project: Project) -> Iterator[App]:
    a = App(project.config)
    yield a
    a.close()


def _enforce(app: App, edition_id: int, now: datetime) -> Any:
    deadline = app.schedule.deadline(app.store.get_edition(edition_id))
    return enforce_deadline(
        app.store, edition_id, policy=app.settings.approval, deadline=deadline, now=now
    )


def _status(project: Project) -> dict[str, Any]:
    data = json.loads(project.cli("status", "1", "--json").stdout)
    assert isinstance(data, dict)
    return data


def test_deadline_is_minutes_before_the_slot(project: Project, app: App) -> None:
    _setup(project, "skip")
    assert app.schedule.deadline(app.store.get_edition(1)) == AT


def test_skip_expires_at_the_deadline_and_sends_nothing(project: Project, app: App) -> None:
    _setup(project, "skip")
    assert _enforce(app, 1, BEFORE).state == "pending_approval"
    edition = _enforce(app, 1, AT)
    assert edition.state == "expired"
    last = _status(project)["audit"][-1]
    assert (last["to"], last["by"], last["via"]) == ("expired", "digest", "deadline")
    assert "approval.at_deadline: skip" in last["note"]
    # Approving or sending afterwards is refused; no subscriber gets anything.
    memory.clear()
    late = project.cli("approve", "1", "--by", "Rosa Diaz", env={"DIGEST_NOW": AT.isoformat()})
    assert late.exit_code == 1
    sent = project.cli("send", "1", env={"DIGEST_NOW": AT.isoformat()})
    assert sent.exit_code == 1
    assert "expired" in sent.output
    assert memory.outbox == []
    # Calling it again (a second scheduler tick) changes nothing.
    assert _enforce(app, 1, AT).state == "expired"
    assert len(_status(project)["audit"]) == 2


def test_send_auto_approves_records_it_and_sends(project: Project, app: App) -> None:
    _setup(project, "send", "  approvals_needed: 2\n")
    assert project.cli("approve", "1", "--by", "Sam Lee").exit_code == 0
    edition = _enforce(app, 1, AT)
    assert edition.state == "approved"
    last = _status(project)["audit"][-1]
    assert (last["to"], last["by"], last["via"]) == ("approved", "digest", "deadline")
    assert last["note"] == (
        "auto-approved at the deadline (approval.at_deadline: send; 1 of 2 approvals)"
    )
    assert last["hash"] == _status(project)["content_hash"]
    memory.clear()
    sent = project.cli("send", "1", env={"DIGEST_NOW": "2026-11-24T06:00:00+00:00"})
    assert sent.exit_code == 0, sent.output
    assert sorted(e.recipient for e in reader_mail()) == [
        "anna@example.org",
        "ben@example.net",
        "dmitri@example.org",
    ]


def test_deadline_leaves_settled_editions_alone(project: Project, app: App) -> None:
    _setup(project, "skip")
    assert project.cli("approve", "1", "--by", "Rosa Diaz").exit_code == 0
    assert _enforce(app, 1, AT).state == "approved"
    assert [a["to"] for a in _status(project)["audit"]] == ["pending_approval", "approved"]
