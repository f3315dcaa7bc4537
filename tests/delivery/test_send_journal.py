"""The send journal: what a killed worker's file says, and a folder it cannot be written in."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from digest.delivery.journal import HANDED, REFUSED, SENT, Journal, read

from conftest import Project
from sending import approved, ledger, project
from sending import subscribers as _subscribers

__all__ = ["project"]


def test_the_last_event_counts_and_a_line_cut_by_the_kill_is_ignored(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal", "host:12:abc", 7)
    for kind, email in [
        (HANDED, "a@example.org"),
        (SENT, "a@example.org"),
        (HANDED, "b@example.org"),
        (HANDED, "c@example.org"),
        (REFUSED, "c@example.org"),
        (HANDED, "c@example.org"),  # retried in the same run: on the wire again
    ]:
        journal.write(kind, email)
    journal.close(remove=False)
    with journal.path.open("ab") as f:
        f.write(b"s d@exam")  # the kill came in the middle of this write
    assert read(journal.path) == {
        "a@example.org": SENT,
        "b@example.org": HANDED,
        "c@example.org": HANDED,
    }


def test_a_journal_folder_that_cannot_be_made_stops_in_one_line(project: Project) -> None:
    emails = _subscribers(project, 4)
    project.write_config("memory", {})
    edition = approved(project)
    project.state.parent.mkdir(parents=True, exist_ok=True)
    blocker = project.state.parent / "journal"
    blocker.write_text("not a folder\n")
    result = project.cli("send", str(edition))
    assert result.exit_code == 1, result.output
    assert "cannot write the send journal" in result.output
    assert "make the folder of state_path writable" in result.output
    assert "Traceback" not in result.output
    assert set(ledger(project, edition).values()) == {"pending"}  # nothing went out
    blocker.unlink()
    assert project.cli("send", str(edition)).exit_code == 0
    assert Counter(ledger(project, edition).values()) == {"sent": len(emails)}
    assert list((project.state.parent / "journal").iterdir()) == []  # spent and removed


def test_a_spent_journal_of_a_dead_worker_is_removed(project: Project) -> None:
    _subscribers(project, 3)
    project.write_config("memory", {})
    edition = approved(project)
    folder = project.state.parent / "journal"
    folder.mkdir(parents=True, exist_ok=True)
    # A worker killed after its last commit: nothing of it in flight, its journal left.
    spent = folder / f"gone_host_99_0123456789ab.e{edition}.journal"
    other = folder / f"gone_host_99_0123456789ab.e{edition + 1}.journal"
    for path in (spent, other):
        path.write_text(f"h {path.name}@example.org\n")
    assert project.cli("send", str(edition)).exit_code == 0
    assert not spent.exists()
    assert other.exists()  # another edition's: settled when that edition is sent
