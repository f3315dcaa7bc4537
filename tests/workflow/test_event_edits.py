"""Editors correct the event grouping of a pending edition: `digest edit N --merge A B` and
`--split URL`, each a new audited revision."""

from __future__ import annotations

import json

import pytest

from conftest import EDITORS, Project

LEAD = "https://world.example.org/2026/11/putin-poaches"
CHIPS = "https://tech.example.com/chips-power"


@pytest.fixture
def pending(project: Project) -> Project:
    project.write_config(extra=EDITORS)
    result = project.cli("build")
    assert result.exit_code == 0, result.output
    return project


def _stories(project: Project) -> list[dict[str, object]]:
    store = project.open_store()
    try:
        return [s.to_dict() for s in store.get_edition(1).stories]
    finally:
        store.close()


def _audit(project: Project) -> str:
    data = json.loads(project.cli("status", "1", "--json").stdout)
    return str(data["audit"][-1]["note"])


def test_merge_puts_an_item_under_another_and_split_takes_it_out(pending: Project) -> None:
    before = _stories(pending)
    chips = next(s for s in before if s["url"] == CHIPS)
    result = pending.cli("edit", "1", "--merge", LEAD, CHIPS, "--by", "Rosa Diaz")
    assert result.exit_code == 0, result.output
    merged = _stories(pending)
    assert [s["url"] for s in merged] == [s["url"] for s in before if s["url"] != CHIPS]
    lead = merged[0]
    assert lead["coverage"] == [
        {
            "source": chips["source"],
            "url": CHIPS,
            "title": chips["title"],
            "published": chips["published"],
        }
    ]
    assert chips["source"] in lead["also_in"]
    assert _audit(pending) == f"revision 2: merged {CHIPS} into the event of {LEAD}"

    result = pending.cli("edit", "1", "--split", CHIPS, "--by", "Rosa Diaz")
    assert result.exit_code == 0, result.output
    split = _stories(pending)
    assert [s["url"] for s in split][:2] == [LEAD, CHIPS]
    assert split[0]["coverage"] == []
    assert split[0]["also_in"] == before[0]["also_in"]
    assert (split[1]["title"], split[1]["source"]) == (chips["title"], chips["source"])
    assert _audit(pending).startswith(f"revision 3: split {CHIPS} from the event of {LEAD}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--split", CHIPS], f"{CHIPS} leads its own item"),
        (["--split", "https://nowhere.example/x"], "no story with URL https://nowhere.example/x"),
        (["--merge", LEAD, LEAD], "give two different stories to --merge"),
        (["--merge", LEAD, "https://nowhere.example/x"], "no story with URL"),
    ],
)
def test_bad_event_edits_are_one_line_errors(
    pending: Project, args: list[str], message: str
) -> None:
    result = pending.cli("edit", "1", *args, "--by", "Rosa Diaz")
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert json.loads(pending.cli("status", "1", "--json").stdout)["revision"] == 1
