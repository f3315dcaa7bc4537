"""Attacks on the sign-up form, performed over real HTTP: mail-bombing from one IPv6 /64,
at one address and through the whole form; cross-site posts; a spam display name; robots.

A real uvicorn server in a thread, a real SQLite file, the memory backend for mail; the
queue is drained by hand, as `digest serve` does every second. Clients are told apart by
X-Forwarded-For, which uvicorn takes from a loopback proxy (the server's own setting).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage

import httpx
import pytest

from digest.app import App
from digest.backends import memory
from digest.render.message import clean_name
from digest.store.signups import SignupQueue
from digest.web.app import create_app
from digest.web.guard import client_key
from digest.web.server import BackgroundServer

from conftest import SECRET, Clock, Project

SIGNUP = textwrap.dedent("""\
    signup:
      enabled: true
      topics: [World, Technology]
    """)
ENV = {"DIGEST_SECRET": SECRET}


class Form:
    """The form on a running server, and what came of it."""

    def __init__(self, app: App, url: str, http: httpx.Client) -> None:
        self.app, self.url, self.http = app, url, http

    def post(
        self,
        email: str,
        *,
        client: str = "198.51.100.7",
        headers: dict[str, str] | None = None,
        **fields: str,
    ) -> httpx.Response:
        data = {"email": email, "name": "", "website": "", **fields}
        sent = {"x-forwarded-for": client, **(headers or {})}
        return self.http.post("/subscribe", data=data, headers=sent)

    def drain(self) -> list[str]:
        return self.app.readers.pages(ENV).drain()

    def queued(self) -> int:
        return SignupQueue(self.app.store).waiting()


def running(project: Project, extra: str = "") -> Iterator[Form]:
    project.write_config(extra=SIGNUP + extra)
    app = App(project.config, clock=Clock())
    with (
        BackgroundServer(create_app(app, environ=ENV)) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        yield Form(app, server.url, http)
    app.close()


@pytest.fixture
def form(project: Project) -> Iterator[Form]:
    yield from running(project)


def parsed(data: bytes) -> EmailMessage:
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_client_key_counts_an_ipv6_64_as_one_client() -> None:
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff:1:2:3")
    assert client_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("198.51.100.7") != client_key("198.51.100.8")
    assert client_key("::ffff:198.51.100.7") == "198.51.100.7"


def test_200_sign_ups_from_one_ipv6_64_mail_at_most_the_limit(form: Form) -> None:
    answers = [
        form.post(f"victim{i}@example.com", client=f"2001:db8:1:2::{i:x}") for i in range(200)
    ]
    codes = [a.status_code for a in answers]
    assert codes[:5] == [200] * 5
    assert set(codes[5:]) == {429}
    assert all(int(a.headers["retry-after"]) > 0 for a in answers[5:])
    assert "from your network" in answers[-1].text
    assert form.drain() == ["mailed"] * 5
    assert len(memory.outbox) == 5  # signup.per_client: 5
    # Another /64, and another IPv4 address, are other clients.
    assert form.post("n1@example.com", client="2001:db8:1:3::1").status_code == 200
    assert form.post("n2@example.com", client="203.0.113.9").status_code == 200


def test_one_address_from_many_networks_is_mailed_at_most_the_limit(form: Form) -> None:
    codes = [
        form.post("victim@example.com", client=f"203.0.113.{i}").status_code for i in range(1, 11)
    ]
    assert codes == [200] * 3 + [429] * 7  # signup.per_address: 3
    form.drain()
    assert [e.recipient for e in memory.outbox] == ["victim@example.com"] * 3
    # Spelled differently, it is the same address.
    assert form.post("VICTIM@example.com ", client="192.0.2.1").status_code == 429


def test_the_form_as_a_whole_is_limited(project: Project) -> None:
    for f in running(project, "  per_form: 4\n"):
        codes = [f.post(f"r{i}@example.com", client=f"192.0.2.{i}").status_code for i in range(6)]
        assert codes == [200] * 4 + [429] * 2
        assert f.queued() == 4


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
        {"origin": "https://evil.example"},  # an older browser: no Sec-Fetch-Site
        {"origin": "null", "sec-fetch-site": "cross-site"},  # a sandboxed frame
        {"sec-fetch-site": "cross-site"},  # no Origin (a privacy extension stripped it)
        {"origin": "https://other.news.example.org", "sec-fetch-site": "same-site"},
    ],
    ids=["cross-site", "origin-only", "null-origin", "fetch-site-only", "sibling-subdomain"],
)
def test_a_cross_site_post_is_refused(form: Form, headers: dict[str, str]) -> None:
    answer = form.post("victim@example.com", headers=headers)
    assert answer.status_code == 403
    assert "another site" in answer.text
    assert "signup.allowed_origins" in answer.text
    assert form.queued() == 0
    form.drain()
    assert memory.outbox == []


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://www.example.org", "sec-fetch-site": "cross-site"},  # listed
        {"origin": "https://news.example.org", "sec-fetch-site": "same-origin"},  # our own
        {"origin": "https://news.example.org"},  # our own public origin, no Sec-Fetch-Site
        {},  # not a browser page: curl, a server-side integration
    ],
    ids=["listed", "same-origin", "own-origin", "no-browser"],
)
def test_listed_and_own_origins_are_accepted(project: Project, headers: dict[str, str]) -> None:
    extra = "  allowed_origins: [https://www.example.org]\n"
    for f in running(project, extra):
        assert f.post("reader@example.com", headers=headers).status_code == 200
        assert f.drain() == ["mailed"]


def test_bad_allowed_origins_name_the_file_and_key(project: Project) -> None:
    project.write_config(extra=SIGNUP + "  allowed_origins: [https://www.example.org/news]\n")
    result = project.cli("check")
    assert result.exit_code == 1
    assert "digest.yaml" in result.output
    assert "signup.allowed_origins: 'https://www.example.org/news' is not an origin" in (
        result.output
    )
    project.write_config(extra=SIGNUP + "  per_client: 0\n")
    result = project.cli("check")
    assert result.exit_code == 1
    assert "signup.per_client must be a whole number of 1 or more" in result.output


@pytest.mark.parametrize(
    "name", ["Cheap pills at pills.example", "O'Brien, Seán", 'x" <spam@evil.example>, "y']
)
def test_nothing_typed_reaches_an_unconfirmed_address(form: Form, name: str) -> None:
    assert form.post("victim@example.com", name=name).status_code == 200
    assert form.drain() == ["mailed"]
    [envelope] = memory.outbox
    msg = parsed(envelope.data)
    assert str(msg["To"]) == "victim@example.com"
    assert [a.addr_spec for a in msg["To"].addresses] == ["victim@example.com"]
    everything = "\n".join(
        [str(v) for v in msg.values()]
        + [str(p.get_content()) for p in msg.walk() if not p.is_multipart()]
    )
    for word in ("pills", "Brien", "Seán", "spam@evil", "evil.example"):
        assert word not in everything
    # The name is kept for when the reader confirms: it is theirs then.
    link = re.search(r"https://news\.example\.org(/confirm/\S+)", everything)
    assert link
    assert form.http.post(link.group(1)).status_code == 200
    record = form.app.readers.pages(ENV).list.get("victim@example.com")
    assert record is not None
    assert record.name == clean_name(name)


def test_a_filled_honeypot_gets_the_same_answer_and_no_mail(form: Form) -> None:
    human = form.post("human@example.com")
    robot = form.post("robot@example.com", website="https://spam.example")
    assert robot.status_code == human.status_code == 200
    assert robot.text == human.text
    assert form.drain() == ["mailed"]
    assert [e.recipient for e in memory.outbox] == ["human@example.com"]


def test_the_honeypot_is_hidden_from_people_and_from_assistive_technology(form: Form) -> None:
    page = form.http.get("/subscribe").text
    honeypot = page[page.index('<div class="hp"') :]
    honeypot = honeypot[: honeypot.index("</div>")]
    assert 'aria-hidden="true"' in honeypot
    assert 'tabindex="-1"' in honeypot
    assert 'autocomplete="off"' in honeypot
    css = form.http.get("/static/readers.css").text
    assert ".reader .hp { position: absolute; left: -10000px" in css
