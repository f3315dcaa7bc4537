"""Per-subscriber composition: one variant per topic selection, through the CLI and the store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from digest.models import Story, Subscriber
from digest.render.variants import ALL, compose, variant_key
from digest.store import Store
from digest.testing.http import FixtureServer

from conftest import FIXTURES, Project, desk_sources, footer_values

RANKING = FIXTURES / "ranking"
NOW = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
LEAD = "https://wire.example.com/wire-markets"  # the freshest fixture story, section World


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Project]:
    with FixtureServer(RANKING) as server:
        project = Project(tmp_path, server)
        write(project, [{"email": "anna@example.org"}])
        yield project


def write(project: Project, subscribers: list[dict[str, object]], ranking: str = "") -> None:
    (project.root / "subscribers.yaml").write_text(json.dumps(subscribers), encoding="utf-8")
    sources = desk_sources(project.feeds)
    project.write_config(sources=sources, extra=f"ranking:\n  {ranking}\n" if ranking else "")


def build_and_approve(project: Project) -> dict[str, object]:
    result = project.cli("build", "--json")
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.stdout)
    assert project.cli("approve", str(data["id"]), "--by", "Rosa").exit_code == 0
    return data


def stored(project: Project, edition_id: int) -> tuple[list[Story], list[str]]:
    store = Store(project.state)
    try:
        edition = store.get_edition(edition_id)
        return list(edition.stories), [v.key for v in store.variants(edition)]
    finally:
        store.close()


def urls_in(text: str, stories: list[Story]) -> set[str]:
    return {s.url for s in stories if s.url in text.split()}


def parts(data: bytes) -> tuple[str, str]:
    msg = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    text, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None
    assert html is not None
    return text.get_content(), html.get_content()


def test_1000_subscribers_over_4_selections_get_4_variants_each_with_its_sections(
    desk: Project,
) -> None:
    from digest.backends import memory

    selections = [["World"], ["Tech", "sport"], ["Culture", "Science"], ["sport", "World"]]
    # The same selection in another order or case is the same variant.
    spellings = {1: ["SPORT", "tech"], 3: ["world", "Sport"]}
    people = []
    for i in range(1000):
        kind = i % 4
        topics = spellings[kind] if kind in spellings and i % 8 >= 4 else selections[kind]
        people.append({"email": f"reader{i}@example.org", "topics": topics})
    write(desk, people)
    data = build_and_approve(desk)
    edition_id = int(str(data["id"]))
    stories, keys = stored(desk, edition_id)
    assert len(keys) == 4
    assert sorted(map(tuple, data["variants"])) == sorted(  # type: ignore[call-overload]
        tuple(sorted(t.casefold() for t in s)) for s in selections
    )
    result = desk.cli("send", str(edition_id))
    assert result.exit_code == 0, result.output
    assert "sent 1000" in result.stdout
    assert len(memory.outbox) == 1000
    assert stored(desk, edition_id)[1] == keys  # nothing had to be rendered at send time
    lead = stories[0]
    assert lead.url == LEAD
    by_email = {p["email"]: p for p in people}
    seen_variants = set()
    for envelope in memory.outbox:
        chosen = {t.casefold() for t in by_email[envelope.recipient]["topics"]}  # type: ignore[attr-defined]
        expected = {lead.url} | {s.url for s in stories if s.section.casefold() in chosen}
        text, html = parts(envelope.data)
        assert urls_in(text, stories) == expected, envelope.recipient
        assert {s.url for s in stories if s.url in html} == expected
        seen_variants.add(frozenset(expected))
    assert len(seen_variants) == 4


def test_subscriber_without_topics_gets_the_whole_edition(desk: Project) -> None:
    from digest.backends import memory

    write(desk, [{"email": "all@example.org"}, {"email": "some@example.org", "topics": []}])
    data = build_and_approve(desk)
    stories, keys = stored(desk, int(str(data["id"])))
    assert keys == []  # the edition itself is that variant
    assert desk.cli("send", str(data["id"])).exit_code == 0
    for envelope in memory.outbox:
        assert urls_in(parts(envelope.data)[0], stories) == {s.url for s in stories}


def test_empty_variant_is_skipped_in_the_ledger_not_failed(desk: Project) -> None:
    from digest.backends import memory

    write(
        desk,
        [
            {"email": "anna@example.org", "topics": ["World"]},
            {"email": "gardener@example.org", "topics": ["Gardening"]},
        ],
    )
    data = build_and_approve(desk)
    result = desk.cli("send", str(data["id"]))
    assert result.exit_code == 0, result.output
    assert "sent 1" in result.stdout
    assert "skipped 1" in result.stdout
    assert [e.recipient for e in memory.outbox] == ["anna@example.org"]
    status = json.loads(desk.cli("status", str(data["id"]), "--json").stdout)
    assert status["state"] == "sent"
    assert status["deliveries"] == {"sent": 1, "skipped": 1}


def test_preview_shows_the_subscribers_variant(desk: Project) -> None:
    write(
        desk,
        [
            {"email": "anna@example.org"},
            {"email": "tess@example.org", "topics": ["Tech"]},
            {"email": "gardener@example.org", "topics": ["Gardening"]},
        ],
    )
    data = build_and_approve(desk)
    stories, _ = stored(desk, int(str(data["id"])))
    out = desk.root / "p"
    result = desk.cli(
        "preview", str(data["id"]), "--subscriber", "tess@example.org", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    text = (out / f"edition-{data['id']}.txt").read_text(encoding="utf-8")
    tech = {s.url for s in stories if s.section == "Tech"}
    assert urls_in(text, stories) == {LEAD} | tech
    # What would be built now, for the same subscriber, is composed the same way.
    now = desk.cli("preview", "--subscriber", "tess@example.org", "--out", str(out))
    assert now.exit_code == 0, now.output
    planned = (out / "preview.txt").read_text(encoding="utf-8")
    assert urls_in(planned, stories) == {LEAD} | tech
    empty = desk.cli("preview", str(data["id"]), "--subscriber", "gardener@example.org")
    assert empty.exit_code == 1
    assert "gardener@example.org gets nothing from this edition" in empty.output


def test_reader_joining_after_approval_gets_an_approved_variant_byte_for_byte(
    desk: Project,
) -> None:
    """Nothing is rendered after approval: a new selection gets the smallest approved variant
    holding its stories, exactly as the review page showed it, and the ledger names it."""
    import html as htmlmod
    import re
    from urllib.parse import quote

    import httpx

    from digest.app import App
    from digest.backends import memory
    from digest.models import edition_hash
    from digest.proofs import edition_date_line
    from digest.render import placeholders
    from digest.web.app import create_app
    from digest.web.server import BackgroundServer

    from conftest import EDITORS, SECRET, proof_links
    from conftest import NOW as CONFTEST_NOW

    first = [
        {"email": "anna@example.org", "topics": ["World"]},
        {"email": "bob@example.org", "topics": ["World", "Culture"]},
    ]
    write(desk, first)
    config = desk.config.read_text(encoding="utf-8")
    desk.config.write_text(config + EDITORS, encoding="utf-8")
    built = desk.cli("build", "--json")
    assert built.exit_code == 0, built.output
    edition_id = int(json.loads(built.stdout)["id"])
    review = proof_links()["review"].removeprefix("https://news.example.org")
    assert desk.cli("approve", str(edition_id), "--by", "Rosa Diaz").exit_code == 0

    store = Store(desk.state)
    try:
        edition = store.get_edition(edition_id)
        variants = {v.key: v for v in store.variants(edition)}
        approved = [a for a in store.audit_trail(edition_id) if a.to_state == "approved"]
    finally:
        store.close()
    both = variant_key(["World", "Culture"])
    assert set(variants) == {variant_key(["World"]), both}
    assert approved[-1].content_hash == edition_hash(edition.rendered, variants.values())

    # Carl joins after the approval with a selection nobody had: Culture only.
    write(desk, [*first, {"email": "carl@example.org", "topics": ["Culture"]}])
    desk.config.write_text(config + EDITORS, encoding="utf-8")
    memory.clear()
    sent = desk.cli("send", str(edition_id))
    assert sent.exit_code == 0, sent.output

    store = Store(desk.state)
    try:
        rows = {r["email"]: r for r in store.delivery_rows(edition_id)}
        after = {v.key for v in store.variants(store.get_edition(edition_id))}
    finally:
        store.close()
    assert after == set(variants), "no variant may be rendered after approval"
    chosen = variants[both]  # the smallest approved variant holding every Culture story
    assert rows["carl@example.org"]["variant_hash"] == chosen.rendered.content_hash

    environ = {"DIGEST_SECRET": SECRET}
    app = App(desk.config, clock=lambda: datetime.fromisoformat(CONFTEST_NOW))
    with (
        BackgroundServer(create_app(app, environ=environ)) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        page = http.get(f"{review}&variant={quote(both)}")
    app.close()
    assert page.status_code == 200, page.text
    shown = re.search(r'id="variant-hash">([0-9a-f]+)<', page.text)
    assert shown
    assert shown.group(1) == chosen.rendered.content_hash
    frame = re.search(r'srcdoc="([^"]*)"', page.text)
    assert frame
    viewer = placeholders.values_for(
        name="Rosa Diaz",
        email="rosa@news.example.org",
        unsubscribe_url="https://news.example.org/u/preview",
        date_line=edition_date_line(edition, "Europe/Berlin"),  # the slot's day
    )
    escaped = {k: htmlmod.escape(v, quote=True) for k, v in viewer.items()}
    assert htmlmod.unescape(frame.group(1)) == placeholders.substitute(
        chosen.rendered.html, escaped, chosen.rendered.marker
    )
    carl = next(e for e in memory.outbox if e.recipient == "carl@example.org")
    text, body = parts(carl.data)
    unsubscribe = re.search(r"https://news\.example\.org/u/\S+", text)
    assert unsubscribe
    mine = placeholders.values_for(
        name="",
        email="carl@example.org",
        unsubscribe_url=unsubscribe.group(0),
        **footer_values(text),
    )
    mine = {k: htmlmod.escape(v, quote=True) for k, v in mine.items()}
    # The wire has CRLF line ends (SMTP); the stored variant has what the renderer made.
    sent_html = body.replace("\r\n", "\n")
    assert sent_html == placeholders.substitute(
        chosen.rendered.html, mine, chosen.rendered.marker
    ).replace("\r\n", "\n")


def test_lead_can_be_left_out_of_variants(desk: Project) -> None:
    from digest.backends import memory

    write(
        desk,
        [{"email": "carl@example.org", "topics": ["Culture"]}],
        ranking="lead_in_every_variant: false",
    )
    data = build_and_approve(desk)
    assert desk.cli("send", str(data["id"])).exit_code == 0
    stories, _ = stored(desk, int(str(data["id"])))
    culture = {s.url for s in stories if s.section == "Culture"}
    assert urls_in(parts(memory.outbox[0].data)[0], stories) == culture


def _story(slug: str, section: str) -> Story:
    return Story(
        url=f"https://n.example/{slug}",
        title=slug,
        teaser="",
        source="Desk",
        published=NOW,
        section=section,
    )


def test_compose_and_keys() -> None:
    stories = [
        _story("lead", "World"),
        _story("t", "Tech"),
        _story("w", "World"),
        _story("s", "Sport"),
    ]

    def slugs(topics: list[str], keep_lead: bool = True) -> list[str]:
        return [s.title for s in compose(stories, topics, keep_lead=keep_lead)]

    assert slugs([]) == ["lead", "t", "w", "s"]
    assert slugs(["tech"]) == ["lead", "t"]
    assert slugs(["World"]) == ["lead", "w"]  # the lead is not repeated
    assert slugs(["Sport", " TECH "]) == ["lead", "t", "s"]
    assert slugs(["Sport"], keep_lead=False) == ["s"]
    assert slugs(["Gardening"]) == []
    assert variant_key([]) == variant_key(["", " "]) == ALL
    assert variant_key(["Tech", "sport"]) == variant_key(["SPORT", "tech", "Tech"])
    assert variant_key(["Tech"]) != variant_key(["Tech", "Sport"])
    assert Subscriber(email="a@example.org").topics == ()
