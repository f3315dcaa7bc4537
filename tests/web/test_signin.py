"""Editor sign-in: mailed links, per-editor passwords, sessions, throttle, revocation.

A real uvicorn server on 127.0.0.1, real SQLite, real HTTP; only the clock is frozen and
moved by hand (expiry, backoff). Sign-in mails go through the memory backend.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from digest.app import App
from digest.backends import memory
from digest.passwords import hash_password
from digest.web.app import create_app
from digest.web.server import BackgroundServer

from conftest import (
    BASE,
    EDITORS,
    SECRET,
    Clock,
    Project,
    loopback_client,
    proof_links,
    signin_link,
)

ROSA, SAM = "rosa@news.example.org", "sam@news.example.org"
# The site is https (publication.base_url), so its cookies carry the __Host- prefix.
SESSION, PRE = "__Host-digest_session", "__Host-digest_csrf"
SAM_PASSWORD = "correct horse battery"
WITH_PASSWORD = EDITORS.replace(
    "      email: sam@news.example.org\n",
    "      email: sam@news.example.org\n      password_hash_env: SAM_HASH\n",
)
assert "SAM_HASH" in WITH_PASSWORD


@dataclass
class Desk:
    project: Project
    url: str
    clock: Clock
    http: httpx.Client

    def csrf(self, path: str = "/signin") -> str:
        return csrf_in(self.http.get(path).text)

    def ask_link(self, email: str, next_path: str = "/") -> httpx.Response:
        data = {"email": email, "csrf": self.csrf(), "next": next_path}
        return self.http.post("/signin/link", data=data)

    def open_link(self, link: str) -> httpx.Response:
        assert link.startswith(BASE + "/s/"), link
        path = link[len(BASE) :]
        page = self.http.get(path)
        assert page.status_code == 200, page.text
        return self.http.post(path, data={"csrf": self.csrf(path)})

    def sign_in(self, email: str, next_path: str = "/") -> httpx.Response:
        before = len(memory.outbox)
        assert self.ask_link(email, next_path).status_code == 200
        return self.open_link(signin_link(email, after=before))

    def password(self, email: str, password: str) -> httpx.Response:
        data = {"email": email, "password": password, "csrf": self.csrf(), "next": "/e/1"}
        return self.http.post("/signin/password", data=data)

    def cli(self, *args: str) -> Any:
        return self.project.cli(*args)


def csrf_in(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def serve(project: Project, clock: Clock, environ: dict[str, str]) -> BackgroundServer:
    return BackgroundServer(create_app(App(project.config, clock=clock), environ=environ))


@pytest.fixture
def desk(project: Project) -> Iterator[Desk]:
    project.write_config(extra=WITH_PASSWORD + "  approvals_needed: 2\n")
    assert project.cli("build").exit_code == 0
    clock = Clock()
    environ = {"DIGEST_SECRET": SECRET, "SAM_HASH": hash_password(SAM_PASSWORD)}
    with (
        serve(project, clock, environ) as server,
        loopback_client(server.url, follow_redirects=False) as http,
    ):
        yield Desk(project, server.url, clock, http)


def _signed_in_as(desk: Desk) -> str | None:
    page = desk.http.get("/")
    if page.status_code != 200:
        return None
    found = re.search(r'<p class="who">([^<·]+)', page.text)
    return found.group(1).strip() if found else None


# sign-in links -------------------------------------------------------------------------------


def test_sign_in_link_works_once_and_get_changes_nothing(desk: Desk) -> None:
    answer = desk.ask_link(ROSA, "/e/1")
    assert answer.status_code == 200
    assert "a sign-in link is on its way" in answer.text
    link = signin_link(ROSA)
    path = link[len(BASE) :]
    # Mail scanners open the link: a GET shows a page and signs nobody in.
    page = desk.http.get(path)
    assert page.status_code == 200
    assert "Sign in as Rosa Diaz?" in page.text
    assert _signed_in_as(desk) is None
    done = desk.http.post(path, data={"csrf": desk.csrf(path)})
    assert done.status_code == 303
    assert done.headers["location"] == "/e/1"
    assert "Secure" in done.headers["set-cookie"]
    assert _signed_in_as(desk) == "Rosa Diaz"
    # Single use: a second try (another browser) is refused, and signs nobody in.
    with loopback_client(desk.url) as other:
        again = other.get(path)
        assert again.status_code == 403
        assert "used already" in again.text


def test_sign_in_link_expires_after_15_minutes(desk: Desk) -> None:
    desk.ask_link(ROSA)
    link = signin_link(ROSA)
    desk.clock.now += timedelta(minutes=15, seconds=1)
    page = desk.http.get(link[len(BASE) :])
    assert page.status_code == 403
    assert "expired" in page.text


def test_no_account_enumeration(desk: Desk) -> None:
    known = desk.ask_link(ROSA)
    unknown = desk.ask_link("nobody@example.org")
    assert known.status_code == unknown.status_code == 200
    assert known.text.replace(ROSA, "X") == unknown.text.replace("nobody@example.org", "X")
    signin_link(ROSA)
    assert [e.recipient for e in memory.outbox if b"Sign in to" in e.data] == [ROSA]


def test_short_or_forged_tokens_refused(desk: Desk) -> None:
    for token in ("abcd", "x" * 40):
        page = desk.http.get(f"/s/{token}")
        assert page.status_code == 403
        assert "not valid" in page.text
    desk.http.cookies.set(SESSION, "abcd")
    assert desk.http.get("/").status_code == 303
    desk.http.cookies.set(SESSION, "y" * 43)
    assert desk.http.get("/").status_code == 303


# passwords -----------------------------------------------------------------------------------


def test_per_editor_password(desk: Desk) -> None:
    assert desk.password(SAM, "wrong horse").status_code == 401
    # Rosa has no password: none works for her, and the answer is the same.
    assert desk.password(ROSA, SAM_PASSWORD).status_code == 401
    ok = desk.password(SAM, SAM_PASSWORD)
    assert ok.status_code == 303
    assert ok.headers["location"] == "/e/1"
    assert _signed_in_as(desk) == "Sam Lee"


def test_no_open_redirect_after_sign_in(desk: Desk) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        data = {"email": SAM, "password": SAM_PASSWORD, "csrf": desk.csrf(), "next": target}
        response = desk.http.post("/signin/password", data=data)
        assert response.status_code == 303
        assert response.headers["location"] == "/"
    assert desk.sign_in(ROSA, "//evil.example").headers["location"] == "/"


def test_a_malformed_password_hash_names_its_variable(project: Project) -> None:
    project.write_config(extra=WITH_PASSWORD)
    environ = {"DIGEST_SECRET": SECRET, "SAM_HASH": "md5$abc"}
    with serve(project, Clock(), environ) as server, loopback_client(server.url) as http:
        desk = Desk(project, server.url, Clock(), http)
        response = desk.password(SAM, "anything")
    assert response.status_code == 503
    assert "SAM_HASH does not hold a digest password hash" in response.text


def test_hash_password_command() -> None:
    from click.testing import CliRunner

    from digest.cli import cli
    from digest.passwords import check_password

    short = CliRunner().invoke(cli, ["hash-password"], input="short\nshort\n")
    assert short.exit_code == 1
    assert "at least 12 characters" in short.output
    made = CliRunner().invoke(cli, ["hash-password"], input="a long passphrase\n" * 2)
    assert made.exit_code == 0, made.output
    encoded = made.output.strip().splitlines()[-1]
    assert check_password("a long passphrase", encoded, env_name="X")
    assert not check_password("a long passphrasf", encoded, env_name="X")


# throttle ------------------------------------------------------------------------------------


def test_throttled_after_five_failures_with_growing_delays(desk: Desk) -> None:
    for _ in range(5):
        assert desk.password(SAM, "wrong horse").status_code == 401
    # Even the right password is not checked now: 429 with a delay.
    blocked = desk.password(SAM, SAM_PASSWORD)
    assert blocked.status_code == 429
    assert blocked.headers["retry-after"] == "30"
    desk.clock.now += timedelta(seconds=31)
    assert desk.password(SAM, "wrong horse").status_code == 401
    again = desk.password(SAM, SAM_PASSWORD)
    assert again.status_code == 429
    assert again.headers["retry-after"] == "60"  # the delay doubles
    desk.clock.now += timedelta(seconds=61)
    assert desk.password(SAM, SAM_PASSWORD).status_code == 303


def test_throttled_per_client_across_addresses(desk: Desk) -> None:
    for i in range(5):
        assert desk.password(f"guess{i}@example.org", "wrong").status_code == 401
    assert desk.password(SAM, SAM_PASSWORD).status_code == 429


def test_link_requests_are_throttled_too(desk: Desk) -> None:
    for _ in range(5):
        assert desk.ask_link("nobody@example.org").status_code == 200
    blocked = desk.ask_link("nobody@example.org")
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0


# sessions ------------------------------------------------------------------------------------


def test_sign_out_ends_the_session_at_once(desk: Desk) -> None:
    desk.sign_in(ROSA)
    cookie = desk.http.cookies[SESSION]
    out = desk.http.post("/signout", data={"csrf": desk.csrf("/")})
    assert out.status_code == 303
    # The old cookie, replayed, is worthless: the server forgot the session.
    with loopback_client(desk.url) as replay:
        replay.cookies.set(SESSION, cookie)
        response = replay.get("/")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/signin")


def test_session_ends_after_12_hours(desk: Desk) -> None:
    desk.sign_in(ROSA)
    assert _signed_in_as(desk) == "Rosa Diaz"
    desk.clock.now += timedelta(hours=12, seconds=1)
    assert _signed_in_as(desk) is None


def test_revoke_ends_sessions_links_and_approvals_at_once(desk: Desk) -> None:
    desk.sign_in(ROSA)
    assert _signed_in_as(desk) == "Rosa Diaz"
    revoked = desk.cli("editors", "revoke", "Rosa Diaz", "--reason", "left the paper")
    assert revoked.exit_code == 0, revoked.output
    assert "1 session(s) ended" in revoked.output
    assert _signed_in_as(desk) is None
    # Her proof link, a new sign-in link and the CLI all refuse her.
    review = desk.http.get(proof_links(ROSA)["review"][len(BASE) :])
    assert review.status_code == 403
    before = len(memory.outbox)
    assert desk.ask_link(ROSA).status_code == 200
    assert not any(e.recipient == ROSA for e in memory.outbox[before:])
    approve = desk.cli("approve", "1", "--by", "Rosa Diaz")
    assert approve.exit_code == 1
    assert "Rosa Diaz is revoked (`digest editors list`)" in approve.output
    listed = json.loads(desk.cli("editors", "list", "--json").stdout)
    assert [(e["name"], e["revoked"]) for e in listed] == [("Rosa Diaz", True), ("Sam Lee", False)]
    assert desk.cli("editors", "reinstate", "Rosa Diaz").exit_code == 0
    desk.sign_in(ROSA)
    assert _signed_in_as(desk) == "Rosa Diaz"


def test_editors_commands_name_unknown_editors(desk: Desk) -> None:
    result = desk.cli("editors", "revoke", "Nobody")
    assert result.exit_code == 1
    assert "'Nobody' is not in approval.editors (Rosa Diaz, Sam Lee)" in result.output
    assert desk.cli("editors", "reinstate", "Sam Lee").exit_code == 1
    desk.sign_in(SAM)
    out = desk.cli("editors", "signout", "sam@news.example.org")
    assert "1 session(s) of Sam Lee ended" in out.output
    assert _signed_in_as(desk) is None
    text = desk.cli("editors", "list").output
    assert "Sam Lee <sam@news.example.org>: sign-in link; 0 live session(s)" in text


# one person, one approval --------------------------------------------------------------------


def _approve(desk: Desk, token: str = "") -> httpx.Response:
    page = desk.http.get("/e/1" + (f"?t={token}" if token else ""))
    assert page.status_code == 200, page.text
    csrf = csrf_in(page.text)
    revision = re.search(r'id="revision">(\d+)<', page.text)
    assert revision
    data = {"csrf": csrf, "revision": revision.group(1), "t": token}
    return desk.http.post("/e/1/approve", data=data)


def test_two_approvals_need_two_editors(desk: Desk) -> None:
    desk.sign_in(ROSA)
    first = _approve(desk)
    assert first.status_code == 303
    page = desk.http.get(first.headers["location"])
    assert "Your approval is recorded: 1 of 2" in page.text
    assert 'id="approve"' not in page.text  # not offered to her again
    assert "You approved revision 1; it needs 1 more editor" in page.text
    # Rosa again, through her proof link this time: still one person, refused.
    token = proof_links(ROSA)["review"].split("t=", 1)[1]
    again = _approve(desk, token)
    assert again.status_code == 409
    assert "Rosa Diaz has already approved revision 1" in again.text
    assert json.loads(desk.cli("status", "1", "--json").stdout)["state"] == "pending_approval"
    # Sam, signed in as himself, makes it two.
    desk.http.post("/signout", data={"csrf": desk.csrf("/")})
    assert desk.password(SAM, SAM_PASSWORD).status_code == 303
    assert _approve(desk).status_code == 303
    status = json.loads(desk.cli("status", "1", "--json").stdout)
    assert status["state"] == "approved"
    approvals = [a["by"] for a in status["audit"] if a["via"] == "web"]
    assert approvals == ["Rosa Diaz", "Sam Lee"]
