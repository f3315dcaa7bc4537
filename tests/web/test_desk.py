"""The desk's pages over real HTTP: what will go out, edits with undo, test sends, Today.

A real uvicorn server on 127.0.0.1, real SQLite, real HTTP; mail through the memory
backend; the clock is frozen (and moved) by hand.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from digest.app import App
from digest.backends import memory
from digest.web.app import create_app
from digest.web.server import BackgroundServer

from conftest import EDITORS, ROOT, SECRET, Clock, Project, loopback_client, proof_links

SCHEDULE = 'schedule:\n  time: "07:47"\n'  # NOW is 07:00 in Berlin: the send is 47 min away
DEADLINE = "  deadline_minutes: 30\n"
CHIPS = "https://tech.example.com/chips-power"
HAITI = "https://world.example.org/2026/11/haiti-elections"
READERS = """\
subscribers:
  - email: anna@example.org
  - email: ben@example.net
    topics: [Technology]
  - email: dmitri@example.org
  - email: gone@example.org
"""


@dataclass
class Review:
    project: Project
    clock: Clock
    http: httpx.Client
    app: App
    token: str = ""

    def page(self, query: str = "") -> httpx.Response:
        page = self.http.get(f"/e/1?t={self.token}{query}")
        assert page.status_code == 200, page.text
        return page

    def post(self, route: str, **fields: str) -> httpx.Response:
        page = self.page()
        revision = re.search(r'id="revision">(\d+)<', page.text)
        assert revision
        data = {
            "csrf": re.findall(r'name="csrf" value="([^"]+)"', page.text)[0],
            "t": self.token,
            "revision": revision.group(1),
            **fields,
        }
        response = self.http.post(f"/e/1/{route}", data=data)
        if response.status_code == 303:
            self.token = response.headers["location"].split("#", 1)[0].rsplit("t=", 1)[1]
        return response

    def edit(self, action: str, **fields: str) -> httpx.Response:
        response = self.post("edit", action=action, **fields)
        assert response.status_code == 303, response.text
        return self.http.get(response.headers["location"])

    def status(self) -> dict[str, object]:
        data = json.loads(self.project.cli("status", "1", "--json").stdout)
        assert isinstance(data, dict)
        return data


@pytest.fixture
def review(project: Project) -> Iterator[Review]:
    (project.root / "subscribers.yaml").write_text(READERS, encoding="utf-8")
    project.write_config(extra=EDITORS + DEADLINE + "  test_sends_per_hour: 2\n" + SCHEDULE)
    built = project.cli("build")
    assert built.exit_code == 0, built.output
    clock = Clock()
    app = App(project.config, clock=clock)
    app.store.suppress("gone@example.org", reason="unsubscribed", now=clock())
    with (
        BackgroundServer(create_app(app, environ={"DIGEST_SECRET": SECRET})) as server,
        loopback_client(server.url, follow_redirects=False) as http,
    ):
        token = proof_links()["review"].split("t=", 1)[1]
        yield Review(project, clock, http, app, token)
    app.close()


def _mail(recipient: str) -> EmailMessage:
    for envelope in reversed(memory.outbox):
        if envelope.recipient == recipient:
            msg = message_from_bytes(envelope.data, policy=policy.default)
            assert isinstance(msg, EmailMessage)
            return msg
    raise AssertionError(f"no mail to {recipient}")


def _body(msg: EmailMessage, kind: str) -> str:
    part = msg.get_body((kind,))
    assert part is not None
    return str(part.get_content())


# what will go out ----------------------------------------------------------------------------


def test_review_says_who_gets_it_and_when(review: Review) -> None:
    page = review.page()
    line = re.search(r'id="send-line">([^<]+)<', page.text)
    assert line
    # Four readers, one unsubscribed; Ben reads Technology only (his own variant).
    assert line.group(1) == ("Goes to 3 recipients (2 variants) at 07:47 Europe/Berlin, in 47 min.")
    assert "Approve by <strong>07:17</strong> (in 17 min)" in page.text
    assert 'class="box problem"' not in page.text.split('id="deadline"', 1)[1][:40]
    # Each variant is selectable, with how many readers get it.
    choices = page.text.split('id="variants"', 1)[1].split("</nav>", 1)[0]
    assert "Whole edition · 2" in choices
    assert "Technology · 1" in choices
    tech = re.search(r'href="(\?variant=%5B%22technology[^"]+)"', choices)
    assert tech
    shown = review.http.get("/e/1" + tech.group(1).replace("&amp;", "&"))
    assert shown.status_code == 200
    assert 'aria-current="true" href="?variant=%5B%22technology%22%5D' in shown.text


def test_the_count_follows_unsubscribes_and_the_subscriber_file(review: Review) -> None:
    def line() -> str:
        found = re.search(r'id="send-line">Goes to (\d+) recipients?', review.page().text)
        assert found
        return found.group(1)

    assert line() == "3"
    review.app.store.suppress("anna@example.org", reason="unsubscribed", now=review.clock())
    assert line() == "2"
    readers = review.project.root / "subscribers.yaml"
    readers.write_text(
        READERS + "  - email: new@example.org\n    name: A much longer name\n", encoding="utf-8"
    )
    assert line() == "3"


def test_deadline_passed_is_flagged(review: Review) -> None:
    review.clock.now += timedelta(minutes=20)
    page = review.page()
    assert "The approval deadline, 07:17, has passed</strong> (3 min ago)" in page.text
    assert "it is not sent (approval.at_deadline: skip)" in page.text
    assert "in 27 min" in page.text
    review.clock.now += timedelta(minutes=30)
    assert "Goes to 3 recipients (2 variants); it was due at 07:47 Europe/Berlin (3 min ago)." in (
        review.page().text
    )


def test_audience_counted_from_the_ledger_once_frozen(review: Review) -> None:
    assert review.project.cli("approve", "1", "--by", "Rosa Diaz").exit_code == 0
    sent = review.project.cli("send", "1")
    assert sent.exit_code == 0, sent.output
    page = review.page()
    assert "Sent to 3 recipients." in page.text
    assert 'id="approve"' not in page.text


# edits ---------------------------------------------------------------------------------------


def test_remove_then_undo_restores_the_story_where_it_was(review: Review) -> None:
    before = [s.url for s in review.app.store.get_edition(1).stories]
    removed = review.edit("remove", url=HAITI)
    assert "Story removed" in removed.text
    assert 'id="undo"' in removed.text
    assert HAITI not in removed.text.split('id="stories"', 1)[1].split("</ol>", 1)[0]
    restored = review.edit("restore", url=HAITI)
    assert "Story put back" in restored.text
    assert [s.url for s in review.app.store.get_edition(1).stories] == before
    notes = [a["note"] for a in review.status()["audit"]]  # type: ignore[union-attr]
    assert notes[-2:] == [f"revision 2: removed {HAITI}", f"revision 3: restored {HAITI} at 3"]


def test_move_pin_and_reword_each_make_an_audited_revision(review: Review) -> None:
    stories = [s.url for s in review.app.store.get_edition(1).stories]
    review.edit("down", url=stories[0])
    review.edit("up", url=stories[3])
    review.edit("pin", url=CHIPS, position="1")
    page = review.edit("headline", url=CHIPS, text="Chips draw  more power\n")
    assert "Chips draw more power" in page.text
    page = review.edit("teaser", url=CHIPS, text="A shorter teaser for today.")
    edition = review.app.store.get_edition(1)
    assert edition.stories[0].url == CHIPS
    assert edition.stories[0].title == "Chips draw more power"
    assert "A shorter teaser for today." in edition.rendered.text
    notes = [a["note"] for a in review.status()["audit"]][-5:]  # type: ignore[union-attr]
    assert notes[0] == f"revision 2: moved down {stories[0]} at 2"
    assert notes[1] == f"revision 3: moved up {stories[3]} at 3"
    assert notes[2] == f"revision 4: pinned {CHIPS} at 1"
    assert notes[3].startswith(f'revision 5: headline of {CHIPS}: "')
    assert notes[3].endswith('-> "Chips draw more power"')
    assert notes[4].startswith(f"revision 6: teaser of {CHIPS}: ")
    # A change that changes nothing is refused, and makes no revision.
    same = review.post("edit", action="teaser", url=CHIPS, text="A shorter teaser for today.")
    assert same.status_code == 400
    assert "nothing to change" in same.text
    assert review.status()["revision"] == 6


def test_note_and_subject_reach_the_sent_email(review: Review) -> None:
    review.edit("note", text="Good morning.\n\nA short one today: the storm closed the office.")
    page = review.edit("subject", text="Storm edition: what you need to know")
    assert 'id="subject">Storm edition: what you need to know<' in page.text
    frame = re.search(r'srcdoc="([^"]*)"', page.text)
    assert frame
    assert "A short one today: the storm closed the office." in frame.group(1)
    approved = review.post("approve")
    assert approved.status_code == 303
    assert review.status()["state"] == "approved"
    memory.clear()
    assert review.project.cli("send", "1").exit_code == 0
    for reader in ("anna@example.org", "ben@example.net"):  # whole edition and a variant
        msg = _mail(reader)
        assert msg["Subject"] == "Storm edition: what you need to know"
        assert "the storm closed the office." in _body(msg, "plain")
        assert "the storm closed the office." in _body(msg, "html")
    notes = [a["note"] for a in review.status()["audit"]]  # type: ignore[union-attr]
    note, subject = (n for n in notes if n.startswith(("revision 2", "revision 3")))
    assert note.startswith('revision 2: editor\'s note: "" -> "Good morning. A short one today')
    assert subject.startswith(
        'revision 3: subject: "Putin poaches the neighbors for his Ukraine invasion"'
    )
    assert subject.endswith('-> "Storm edition: what you need to know"')


def test_bad_edits_are_refused_with_a_page(review: Review) -> None:
    cases = [
        ({"action": "remove", "url": "https://nowhere.example/x"}, 400, "has no story with URL"),
        ({"action": "restore", "url": HAITI}, 400, "not among the removed stories"),
        ({"action": "headline", "url": CHIPS, "text": "  "}, 400, "cannot be empty"),
        ({"action": "subject", "text": "x" * 201}, 400, "keep it to 200"),
        ({"action": "explode", "url": CHIPS}, 400, "a change there is not"),
    ]
    for fields, status, words in cases:
        response = review.post("edit", **fields)
        assert response.status_code == status, fields
        assert words in response.text, fields
    assert review.status()["revision"] == 1


# test send -----------------------------------------------------------------------------------


def test_test_send_goes_to_the_typed_address_and_is_no_delivery(review: Review) -> None:
    memory.clear()
    response = review.post("test", to="checker@example.com")
    assert response.status_code == 303
    page = review.http.get(response.headers["location"])
    assert 'id="tested">checker@example.com<' in page.text
    msg = _mail("checker@example.com")
    edition = review.app.store.get_edition(1)
    assert msg["Subject"] == f"[TEST] {edition.rendered.subject}"
    assert "/u/preview" in _body(msg, "plain")  # a test reader cannot unsubscribe anyone
    trail = review.status()["audit"]
    assert isinstance(trail, list)
    assert (trail[-1]["by"], trail[-1]["via"]) == ("Rosa Diaz", "test-send")
    assert trail[-1]["note"] == (
        "test send of revision 1 (whole edition) to checker@example.com; not a delivery"
    )
    assert review.status()["deliveries"] == {}
    assert review.status()["revision"] == 1  # proof links keep working


def test_test_send_of_a_variant_bad_address_and_the_limit(review: Review) -> None:
    memory.clear()
    bad = review.post("test", to="not an address")
    assert bad.status_code == 400
    assert "is not an e-mail address" in bad.text
    assert review.post("test", to="a@example.com", variant='["technology"]').status_code == 303
    tech = review.app.store.variants(review.app.store.get_edition(1))[0]
    assert _mail("a@example.com")["Subject"] == f"[TEST] {tech.rendered.subject}"
    assert review.post("test", to="b@example.com").status_code == 303
    limited = review.post("test", to="c@example.com")
    assert limited.status_code == 429
    assert "test_sends_per_hour" in limited.text
    assert sorted(e.recipient for e in memory.outbox) == ["a@example.com", "b@example.com"]
    review.clock.now += timedelta(hours=1, seconds=1)  # an hour on, the limit lifts
    assert review.post("test", to="c@example.com").status_code == 303


def test_times_and_counts_in_plain_words() -> None:
    from datetime import UTC, datetime

    from digest.web.common import number, plural, relative

    at = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    cases = {
        timedelta(seconds=20): "in under a minute",
        timedelta(seconds=-20): "just now",
        timedelta(minutes=47): "in 47 min",
        timedelta(hours=2, minutes=5): "in 2 h 5 min",
        timedelta(hours=3): "in 3 h",
        timedelta(minutes=-90): "1 h 30 min ago",
        timedelta(days=3): "in 3 days",
        timedelta(days=-2): "2 days ago",
    }
    assert {d: relative(at + d, at) for d in cases} == cases
    assert (number(1204), plural(1, "recipient"), plural(1204, "recipient")) == (
        "1,204",
        "1 recipient",
        "1,204 recipients",
    )


def test_merge_and_split_events_from_the_review_page(review: Review) -> None:
    page = review.page()
    assert 'value="merge"' in page.text  # each story's edit panel offers "Same event as"
    lead = review.app.store.get_edition(1).stories[0].url
    merged = review.edit("merge", url=lead, text=HAITI)
    stories = merged.text.split('id="stories"', 1)[1].split("</ol>", 1)[0]
    assert "Also in 1 other story of this event" in stories
    assert 'value="split"' in stories
    edition = review.app.store.get_edition(1)
    assert HAITI not in [s.url for s in edition.stories]
    assert [c.url for c in edition.stories[0].coverage] == [HAITI]
    review.edit("split", url=HAITI)
    edition = review.app.store.get_edition(1)
    assert [s.url for s in edition.stories][:2] == [lead, HAITI]
    assert edition.stories[0].coverage == ()
    notes = [a["note"] for a in review.status()["audit"]][-2:]  # type: ignore[union-attr]
    assert notes[0] == f"revision 2: merged {HAITI} into the event of {lead}"
    assert notes[1].startswith(f"revision 3: split {HAITI} from the event of {lead}")


def test_add_a_story_by_hand_at_a_place_and_bad_links_refused(review: Review) -> None:
    added = review.post(
        "add",
        title="Harbour  reopens\n",
        link="https://harbour.example/reopens",
        teaser="Ships are back after the storm.",
        image="https://harbour.example/ship.jpg",
        position="2",
    )
    assert added.status_code == 303, added.text
    assert added.headers["location"].endswith("#story-2")
    edition = review.app.store.get_edition(1)
    story = edition.stories[1]
    assert (story.url, story.title) == ("https://harbour.example/reopens", "Harbour reopens")
    assert story.image is not None
    assert story.image.url == "https://harbour.example/ship.jpg"
    assert "Ships are back after the storm." in edition.rendered.text
    note = review.status()["audit"][-1]["note"]  # type: ignore[index]
    assert note == "revision 2: added https://harbour.example/reopens at 2"
    for link, image in (("javascript:alert(1)", ""), ("https://ok.example/a", "data:x")):
        refused = review.post("add", title="X", link=link, image=image)
        assert refused.status_code == 400
        assert "is not an http(s) address" in refused.text
    assert review.app.store.get_edition(1).revision == edition.revision


def _failing_preflight(project: Project, tmp_path: Path) -> None:
    """An edition built with a newsroom's text template that lists the stories backwards:
    its HTML and text parts differ, which preflight calls an error."""
    source = (ROOT / "templates" / "digest.txt.j2").read_text(encoding="utf-8")
    loop = "{% for story in section.stories %}"
    assert loop in source
    (tmp_path / "t").mkdir()
    broken = source.replace(loop, "{% for story in section.stories | reverse %}")
    (tmp_path / "t" / "digest.txt.j2").write_text(broken, encoding="utf-8")
    (project.root / "subscribers.yaml").write_text(READERS, encoding="utf-8")
    project.write_config(extra=EDITORS + SCHEDULE + f"templates_dir: {tmp_path / 't'}\n")
    assert project.cli("build").exit_code == 0


def test_preflight_errors_stop_a_cli_approval_in_one_line(project: Project, tmp_path: Path) -> None:
    _failing_preflight(project, tmp_path)
    result = project.cli("approve", "1", "--by", "Rosa Diaz")
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith("Error: edition 1 fails preflight, so it was not approved: ")
    assert "the HTML and text parts list the stories in different orders" in line
    assert "`digest check 1`" in line
    status = json.loads(project.cli("status", "1", "--json").stdout)
    assert status["state"] == "pending_approval"


def test_preflight_errors_stop_an_approval_with_their_message(
    project: Project, tmp_path: Path
) -> None:
    _failing_preflight(project, tmp_path)
    app = App(project.config, clock=Clock())
    with (
        BackgroundServer(create_app(app, environ={"DIGEST_SECRET": SECRET})) as server,
        loopback_client(server.url, follow_redirects=False) as http,
    ):
        review = Review(project, Clock(), http, app, proof_links()["review"].split("t=", 1)[1])
        refused = review.post("approve")
        assert refused.status_code == 409
        assert "Not approved: preflight errors" in refused.text
        assert "the HTML and text parts list the stories in different orders" in refused.text
        assert review.status()["state"] == "pending_approval"
    app.close()
