"""Tests for MIME assembly: parse personalised bytes back and check headers, parts, encoding."""

from __future__ import annotations

import html
from datetime import UTC, date, datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.config.settings import EditorSettings, Settings
from digest.exceptions import ConfigError
from digest.models import Image, Publication, RenderedEdition, Story
from digest.render import placeholders
from digest.render.dates import date_label
from digest.render.edition import render_edition
from digest.render.environment import make_environment
from digest.render.message import (
    PreparedMessage,
    Recipient,
    make_message_id,
    prepare_message,
    sender_address,
)
from digest.testing.mail import parse_clean
from digest.web.signin import link_envelope

NOW = datetime(2026, 11, 25, 5, 30, tzinfo=UTC)
PUB = Publication(
    name="The Morning Brief",
    sender="The Morning Brief <news@example.org>",
    base_url="https://brief.example.org",
    postal_address="1 Example Street, 12345 Sample Town",
    reply_to="Desk <desk@example.org>",
)
ANNA = Recipient(
    email="anna@example.com",
    name="Anna Łukasiewicz-Müller",
    unsubscribe_url="https://brief.example.org/u/tok1?a=1&b=2",
)
EVIL = Recipient(
    email="eve@example.com",
    name="Evil\r\nBcc: x@y",
    unsubscribe_url="https://brief.example.org/u/tok2",
)
MAILTO = "mailto:unsubscribe@example.org"


def stories() -> list[Story]:
    out = [
        Story(
            url="https://news.example.org/lead",
            title="Économie: la croissance ralentit",
            teaser="A long teaser " * 12,
            source="Le Journal",
            published=NOW,
            section="World",
            image=Image(url="https://img.example.org/a.jpg", alt="alt", caption="c", credit="R"),
        )
    ]
    for n in range(1, 7):
        out.append(
            Story(
                url=f"https://news.example.org/{n}?x=1&y=2",
                title=f"Story {n} <script>alert(1)</script> & co" if n == 3 else f"Story {n}",
                teaser=f"Teaser {n} " * 10,
                source="Wire",
                published=NOW,
                section=("World", "Business")[n % 2],
            )
        )
    return out


@pytest.fixture(scope="module")
def rendered() -> RenderedEdition:
    return render_edition(
        make_environment(), stories=stories(), publication=PUB, edition_date=date(2026, 11, 25)
    )


@pytest.fixture(scope="module")
def prepared(rendered: RenderedEdition) -> PreparedMessage:
    return prepare_message(
        rendered, PUB, unsubscribe_mailto=MAILTO, extra_headers={"X-Edition": "2026-11-25"}
    )


def parse(data: bytes) -> EmailMessage:
    return parse_clean(data)


def expected(body: str, recipient: Recipient, *, escape: bool, marker: str) -> str:
    name = " ".join("".join(c if c.isprintable() else " " for c in recipient.name).split())
    values = placeholders.values_for(
        name=name,
        email=recipient.email,
        unsubscribe_url=recipient.unsubscribe_url,
        date_line=date_label(NOW.date()),  # no date line of their own: the Date header's day
    )
    if escape:
        values = {k: html.escape(v) for k, v in values.items()}
    return placeholders.substitute(body, values, marker)


def content(msg: EmailMessage) -> str:
    text = msg.get_content()
    assert isinstance(text, str)
    return text.replace("\r\n", "\n")


@pytest.mark.parametrize("recipient", [ANNA, EVIL], ids=["non-ascii-name", "injection-name"])
def test_personalised_message_parses_back(
    rendered: RenderedEdition, prepared: PreparedMessage, recipient: Recipient
) -> None:
    message_id = make_message_id("example.org")
    data = prepared.personalise(recipient, date=NOW, message_id=message_id)
    msg = parse(data)
    for part in msg.walk():
        assert part.defects == []
    assert msg.get_content_type() == "multipart/alternative"
    text_part, html_part = msg.iter_parts()
    assert text_part.get_content_type() == "text/plain"
    assert html_part.get_content_type() == "text/html"
    assert isinstance(text_part, EmailMessage)
    assert isinstance(html_part, EmailMessage)
    marker = rendered.marker  # random per rendering: the tokens spelled with it are filled
    assert marker
    assert content(text_part) == expected(rendered.text, recipient, escape=False, marker=marker)
    assert content(html_part) == expected(rendered.html, recipient, escape=True, marker=marker)
    assert text_part["Content-Transfer-Encoding"] == "quoted-printable"

    assert msg["From"] == PUB.sender
    assert msg["Reply-To"] == "Desk <desk@example.org>"
    assert msg["To"].addresses[0].addr_spec == recipient.email
    assert msg["Subject"] == rendered.subject
    assert parsedate_to_datetime(msg["Date"]) == NOW
    assert msg["Message-ID"] == message_id
    assert msg["List-Id"] == "The Morning Brief <the-morning-brief.example.org>"
    assert msg["List-Unsubscribe"] == f"<{recipient.unsubscribe_url}>, <{MAILTO}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["MIME-Version"] == "1.0"
    assert msg["X-Edition"] == "2026-11-25"
    assert msg["Bcc"] is None
    assert msg.get_all("To") is not None
    assert len(msg.get_all("To") or []) == 1

    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) <= 78  # RFC limit is 998


def test_display_names_survive(prepared: PreparedMessage) -> None:
    anna = parse(prepared.personalise(ANNA, date=NOW, message_id="<1@example.org>"))
    assert anna["To"].addresses[0].display_name == ANNA.name
    assert "Hello, Anna Łukasiewicz-Müller!" in content(anna.get_body(("plain",)))  # type: ignore[arg-type]
    evil = parse(prepared.personalise(EVIL, date=NOW, message_id="<2@example.org>"))
    assert evil["To"].addresses[0].display_name == "Evil Bcc: x@y"
    assert evil["To"].addresses[0].addr_spec == EVIL.email


@pytest.mark.parametrize("name", ["O'Brien, Seán", 'Smith, John "JJ" (desk)', "a@b.c, d@e.f"])
def test_names_with_specials_stay_one_address(prepared: PreparedMessage, name: str) -> None:
    reader = Recipient(email="r@example.com", name=name, unsubscribe_url="https://b.example/u/4")
    msg = parse(prepared.personalise(reader, date=NOW, message_id="<4@example.org>"))
    [to] = msg["To"].addresses
    assert (to.display_name, to.addr_spec) == (name, "r@example.com")
    editor = EditorSettings(name=name, email="ed@example.org")
    link = link_envelope(
        Settings(publication=PUB, sources=()), editor, "https://x.example/s/1", NOW
    )
    [to] = parse(link.data)["To"].addresses
    assert (to.display_name, to.addr_spec) == (name, "ed@example.org")


def test_empty_name_reads_well(prepared: PreparedMessage) -> None:
    nobody = Recipient(email="n@example.com", name="", unsubscribe_url="https://b.example/u/3")
    msg = parse(prepared.personalise(nobody, date=NOW, message_id="<3@example.org>"))
    assert msg["To"] == "n@example.com"
    assert "Hello! Here is today's digest." in content(msg.get_body(("plain",)))  # type: ignore[arg-type]


def test_message_ids_differ_and_date_keeps_offset(prepared: PreparedMessage) -> None:
    first, second = make_message_id("example.org"), make_message_id("example.org")
    assert first != second
    assert first.startswith("<")
    assert first.endswith("@example.org>")
    assert make_message_id("example.org", unique="ed7.42") == "<ed7.42@example.org>"
    cet = NOW.astimezone(timezone(timedelta(hours=1)))
    msg = parse(prepared.personalise(ANNA, date=cet, message_id=first))
    assert msg["Date"] == "Wed, 25 Nov 2026 06:30:00 +0100"


def test_non_ascii_subject_is_encoded_and_folded() -> None:
    subject = "Économie et société — " * 8
    rendered = RenderedEdition(subject=subject.strip(), preheader="", html="<p>h</p>", text="t\n")
    data = prepare_message(rendered, PUB).personalise(ANNA, date=NOW, message_id="<4@example.org>")
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert parse(data)["Subject"] == subject.strip()
    assert "List-Unsubscribe: <https://brief.example.org/u/tok1?a=1&b=2>\r\n" in head.decode()


def test_bad_inputs_are_refused(rendered: RenderedEdition, prepared: PreparedMessage) -> None:
    with pytest.raises(ConfigError, match="line break"):
        prepare_message(rendered, PUB, extra_headers={"X-Bad": "a\r\nBcc: x@y"})
    with pytest.raises(ConfigError, match="replace digest's own"):
        prepare_message(rendered, PUB, extra_headers={"from": "x@y.org"})
    with pytest.raises(ConfigError, match="header name"):
        prepare_message(rendered, PUB, extra_headers={"Bad Name": "v"})
    with pytest.raises(ConfigError, match="mailto"):
        prepare_message(rendered, PUB, unsubscribe_mailto="https://x.org")
    with pytest.raises(ConfigError, match="recipient address"):
        prepared.personalise(
            Recipient(email="a@b.org\r\nBcc: x@y", name="", unsubscribe_url="https://u.org/"),
            date=NOW,
            message_id="<5@example.org>",
        )
    with pytest.raises(ConfigError, match="https URL"):
        prepared.personalise(
            Recipient(email="a@b.org", name="", unsubscribe_url="http://u.org/"),
            date=NOW,
            message_id="<6@example.org>",
        )
    with pytest.raises(ConfigError, match="Message-ID"):
        prepared.personalise(ANNA, date=NOW, message_id="<x@y>\r\nBcc: z@w")


def test_sender_address() -> None:
    assert sender_address(PUB) == "news@example.org"
    with pytest.raises(ConfigError, match="sender address"):
        sender_address(Publication(name="n", sender="nobody", base_url="", postal_address=""))


body_text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r"), max_size=300)
segments = st.lists(st.one_of(body_text, st.sampled_from(placeholders.TOKENS)), max_size=8)


@settings(max_examples=60, deadline=None)
@given(text=segments, page=segments, name=st.text(max_size=30))
def test_quoted_printable_round_trips_exactly(text: list[str], page: list[str], name: str) -> None:
    rendered = RenderedEdition(subject="s", preheader="", html="".join(page), text="".join(text))
    recipient = Recipient(email="r@example.com", name=name, unsubscribe_url="https://u.example/")
    data = prepare_message(rendered, PUB).personalise(
        recipient, date=NOW, message_id="<7@example.org>"
    )
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) <= 78
    msg = parse(data)
    text_part, html_part = msg.iter_parts()
    for part, body, escape in ((text_part, rendered.text, False), (html_part, rendered.html, True)):
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        want = (
            expected(body, recipient, escape=escape, marker="")
            .replace("\r\n", "\n")
            .replace("\n", "\r\n")
        )
        assert payload.decode("utf-8") == want


def test_feedback_id_header(rendered: RenderedEdition) -> None:
    prepared = prepare_message(rendered, PUB, feedback_id="2026-11-25:daily:brief")
    msg = parse(prepared.personalise(ANNA, date=NOW, message_id="<8@example.org>"))
    assert msg["Feedback-ID"] == "2026-11-25:daily:brief"
    assert msg["List-Id"] == "The Morning Brief <the-morning-brief.example.org>"
    plain = parse(
        prepare_message(rendered, PUB).personalise(ANNA, date=NOW, message_id="<9@e.org>")
    )
    assert plain["Feedback-ID"] is None
    for own in ("Feedback-ID", "DKIM-Signature"):
        with pytest.raises(ConfigError, match="replace digest's own"):
            prepare_message(rendered, PUB, extra_headers={own: "x"})


def test_boundary_is_deterministic(rendered: RenderedEdition) -> None:
    first = prepare_message(rendered, PUB).personalise(ANNA, date=NOW, message_id="<a@e.org>")
    again = prepare_message(rendered, PUB).personalise(ANNA, date=NOW, message_id="<a@e.org>")
    assert first == again
