"""Golden files: both layouts render a fixed edition under a frozen clock exactly.

Refresh after an intended change of the templates or the message assembly with
``DIGEST_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_golden.py``: the files are rewritten
and the tests fail, so the diff is reviewed (``git diff tests/golden``) before a run passes.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from digest.models import Publication, RenderedEdition, Story
from digest.render.edition import render_edition
from digest.render.environment import make_environment
from digest.render.frame import LAYOUTS, Frame
from digest.render.message import Recipient, prepare_message
from digest.testing.mail import parse_clean

from conftest import GOLDEN

UPDATE = os.environ.get("DIGEST_UPDATE_GOLDEN") == "1"


@dataclass(frozen=True)
class Fixture:
    publication: Publication
    edition_date: date
    stories: list[Story]
    recipient: Recipient
    message: dict[str, Any]
    frame: dict[str, Any]


def load_fixture() -> Fixture:
    data = json.loads((GOLDEN / "edition.json").read_text(encoding="utf-8"))
    return Fixture(
        publication=Publication(**data["publication"]),
        edition_date=date.fromisoformat(data["edition_date"]),
        stories=[Story.from_dict(s) for s in data["stories"]],
        recipient=Recipient(**data["recipient"]),
        message=data["message"],
        frame=data["frame"],
    )


def render_fixture(fixture: Fixture, layout: str) -> RenderedEdition:
    return render_edition(
        make_environment(),
        stories=fixture.stories,
        publication=fixture.publication,
        edition_date=fixture.edition_date,
        frame=Frame(layout=layout, **fixture.frame),
        marker="",  # the canonical spelling, which editions stored before markers hold
    )


def build_message(fixture: Fixture, rendered: RenderedEdition) -> bytes:
    m = fixture.message
    prepared = prepare_message(
        rendered,
        fixture.publication,
        unsubscribe_mailto=m["unsubscribe_mailto"],
        feedback_id=m["feedback_id"],
        preferences_url=m["preferences_url"],
    )
    return prepared.personalise(
        fixture.recipient,
        date=datetime.fromisoformat(m["date"]),
        message_id=m["message_id"],
    )


def compare(name: str, actual: bytes) -> None:
    path = GOLDEN / name
    if UPDATE:
        changed = not path.exists() or path.read_bytes() != actual
        path.write_bytes(actual)
        # Never pass in update mode: a refreshed file must be reviewed before it counts.
        pytest.fail(
            f"golden files updated: review the diff and run again ({name}"
            f"{' changed' if changed else ' unchanged'})"
        )
    assert path.exists(), f"{path} is missing; run DIGEST_UPDATE_GOLDEN=1 pytest {__file__}"
    expected = path.read_bytes()
    if actual != expected:
        diff = difflib.unified_diff(
            expected.decode("utf-8").splitlines(),
            actual.decode("utf-8").splitlines(),
            f"golden/{name}",
            "rendered",
            lineterm="",
            n=1,
        )
        shown = "\n".join(list(diff)[:60])
        pytest.fail(
            f"{name} differs from the golden file (if intended, refresh with "
            f"DIGEST_UPDATE_GOLDEN=1 pytest tests/render/test_golden.py):\n{shown}"
        )


@pytest.fixture(scope="module")
def fixture() -> Fixture:
    return load_fixture()


@pytest.fixture(scope="module", params=LAYOUTS)
def layout(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def rendered(fixture: Fixture, layout: str) -> RenderedEdition:
    return render_fixture(fixture, layout)


def test_html_matches_golden(rendered: RenderedEdition, layout: str) -> None:
    compare(f"{layout}.html", rendered.html.encode("utf-8"))


def test_text_matches_golden(rendered: RenderedEdition, layout: str) -> None:
    compare(f"{layout}.txt", rendered.text.encode("utf-8"))


def test_message_matches_golden(fixture: Fixture, rendered: RenderedEdition, layout: str) -> None:
    data = build_message(fixture, rendered)
    parse_clean(data)
    compare(f"{layout}.eml", data)


def test_rendering_is_deterministic(
    fixture: Fixture, rendered: RenderedEdition, layout: str
) -> None:
    again = render_fixture(fixture, layout)
    assert again == rendered
    assert build_message(fixture, again) == build_message(fixture, rendered)


def test_update_mode_rewrites_and_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "GOLDEN", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "UPDATE", True)
    with pytest.raises(pytest.fail.Exception, match="golden files updated: review the diff"):
        compare("x.txt", b"new\n")
    assert (tmp_path / "x.txt").read_bytes() == b"new\n"
