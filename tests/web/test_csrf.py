"""Cross-site request forgery against the desk, performed over real HTTP.

The attacker of issue 28 runs a page on a sibling subdomain (evil.news.example.org): it is
"same-site", so SameSite cookies do not stop it, and it can set cookies for the parent
domain. Each test mounts one of its attacks on a signed-in editor's browser and checks that
nothing was recorded, then shows the same request from the site itself still works (so the
refusal is the protection, not a broken form). A real uvicorn server, real SQLite.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from digest.app import App
from digest.tokens import UNSUBSCRIBE_SALT, Signer, unsubscribe_url
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
    sign_in_by_link,
)

ROSA, SAM = "rosa@news.example.org", "sam@news.example.org"
SESSION, PRE = "__Host-digest_session", "__Host-digest_csrf"
EVIL = "https://evil.news.example.org"


@dataclass
class Desk:
    project: Project
    url: str
    rosa: httpx.Client  # the victim: signed in
    attacker: httpx.Client

    def approvals(self) -> list[str]:
        status = json.loads(self.project.cli("status", "1", "--json").stdout)
        return [a["by"] for a in status["audit"] if a["via"] == "web"]

    def approve(
        self, client: httpx.Client, csrf: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return client.post(
            "/e/1/approve", data={"csrf": csrf, "revision": "1", "t": ""}, headers=headers
        )


def csrf_in(response: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', response.text)
    assert found, response.text
    return found.group(1)


@pytest.fixture
def desk(project: Project) -> Iterator[Desk]:
    project.write_config(extra=EDITORS + "  approvals_needed: 2\n")
    assert project.cli("build").exit_code == 0
    app = App(project.config, clock=Clock())
    with (
        BackgroundServer(create_app(app, environ={"DIGEST_SECRET": SECRET})) as server,
        loopback_client(server.url, follow_redirects=False) as rosa,
        loopback_client(server.url, follow_redirects=False) as attacker,
    ):
        sign_in_by_link(rosa, ROSA)
        yield Desk(project, server.url, rosa, attacker)
    app.close()


def _refused(response: httpx.Response, why: str) -> None:
    assert response.status_code == 403, response.text
    assert why in response.text
    assert "Nothing was changed" in response.text


def test_planted_cookie_and_token_from_another_session_are_refused(desk: Desk) -> None:
    # The attacker's own pre-session: a cookie and the form token that goes with it.
    desk.attacker.get("/signin")
    planted, token = desk.attacker.cookies[PRE], csrf_in(desk.attacker.get("/signin"))
    # Planted into Rosa's browser, with the matching token in the forged form.
    desk.rosa.cookies.set(PRE, planted)
    _refused(desk.approve(desk.rosa, token), "CSRF")
    # The old double-submit pattern (cookie value == form value) under both names.
    for name in (PRE, "digest_csrf"):
        desk.rosa.cookies.set(name, "A" * 43)
        _refused(desk.approve(desk.rosa, "A" * 43), "CSRF")
    # A token of another signed-in session (Sam's) does not fit Rosa's session either.
    sign_in_by_link(desk.attacker, SAM)
    _refused(desk.approve(desk.rosa, csrf_in(desk.attacker.get("/e/1"))), "CSRF")
    assert desk.approvals() == []
    # Rosa's own page's token, from her own session, is accepted.
    assert desk.approve(desk.rosa, csrf_in(desk.rosa.get("/e/1"))).status_code == 303
    assert desk.approvals() == ["Rosa Diaz"]


def test_cross_site_origin_and_fetch_metadata_are_refused(desk: Desk) -> None:
    csrf = csrf_in(desk.rosa.get("/e/1"))  # even with Rosa's right token
    forged = [
        ({"Origin": EVIL}, f"Origin: {EVIL}"),
        ({"Origin": "null"}, "Origin: null"),
        ({"Origin": "http://news.example.org"}, "Origin: http://news.example.org"),
        ({"Sec-Fetch-Site": "cross-site"}, "Sec-Fetch-Site: cross-site"),
        ({"Sec-Fetch-Site": "same-site", "Origin": EVIL}, "Sec-Fetch-Site: same-site"),
        # A browser that sends no Origin but a Referer from elsewhere.
        ({"Referer": EVIL + "/prize.html"}, f"Referer from {EVIL}"),
    ]
    for headers, why in forged:
        _refused(desk.approve(desk.rosa, csrf, headers), why)
    # Sign-out and sign-in forms are checked the same way.
    _refused(desk.rosa.post("/signout", data={"csrf": csrf}, headers={"Origin": EVIL}), EVIL)
    signin = csrf_in(desk.attacker.get("/signin"))
    data = {"email": ROSA, "csrf": signin}
    _refused(desk.attacker.post("/signin/link", data=data, headers={"Origin": EVIL}), EVIL)
    assert desk.approvals() == []
    # What the site itself sends is accepted: its public origin, or the address the browser
    # used (here the loopback), or Sec-Fetch-Site: same-origin, or a same-origin Referer.
    for headers in (
        {"Origin": BASE, "Sec-Fetch-Site": "same-origin"},
        {"Origin": desk.url},
        {"Referer": BASE + "/e/1"},
    ):
        assert desk.attacker.post("/signin/link", data=data, headers=headers).status_code == 200
    assert desk.approve(desk.rosa, csrf, {"Origin": BASE}).status_code == 303
    assert desk.approvals() == ["Rosa Diaz"]


def test_proof_link_forms_need_their_browsers_token_too(desk: Desk) -> None:
    # The proof link is the credential, but its form still needs this browser's token.
    link = proof_links(ROSA)["approve"]
    token = link.split("t=", 1)[1]
    page = desk.attacker.get(link[len(BASE) :])
    data = {"t": token, "revision": "1", "csrf": csrf_in(page)}
    with loopback_client(desk.url, follow_redirects=False) as other:
        other.get("/signin")  # a pre-session of its own
        assert other.post("/e/1/approve", data=data).status_code == 403
    assert desk.approvals() == []
    assert desk.attacker.post("/e/1/approve", data=data).status_code == 303
    assert desk.approvals() == ["Rosa Diaz"]


def test_cookies_are_host_prefixed_on_https(desk: Desk) -> None:
    with loopback_client(desk.url) as fresh:
        cookie = fresh.get("/signin").headers["set-cookie"]
    assert cookie.startswith(PRE + "=")
    attributes = [a.strip().lower() for a in cookie.split(";")[1:]]
    assert {"secure", "httponly", "path=/", "samesite=lax"} <= set(attributes)
    assert not any(a.startswith("domain") for a in attributes)
    assert SESSION in desk.rosa.cookies
    assert "digest_session" not in desk.rosa.cookies


def test_plain_names_on_http_for_local_use(project: Project) -> None:
    project.write_config(extra=EDITORS)
    config = project.config.read_text(encoding="utf-8")
    project.config.write_text(config.replace(BASE, "http://127.0.0.1:8080"), encoding="utf-8")
    app = App(project.config, clock=Clock())
    with (
        BackgroundServer(create_app(app, environ={"DIGEST_SECRET": SECRET})) as server,
        loopback_client(server.url) as http,
    ):
        cookie = http.get("/signin").headers["set-cookie"]
        data = {"email": ROSA, "csrf": csrf_in(http.get("/signin"))}
        assert http.post("/signin/link", data=data).status_code == 200
    app.close()
    assert cookie.startswith("digest_csrf=")
    assert "secure" not in cookie.lower()


def test_one_click_unsubscribe_still_works_cross_site(desk: Desk) -> None:
    # RFC 8058: the mail provider POSTs from its own site, without cookies. The signed URL
    # is the credential; no CSRF token, no origin check.
    signer = Signer([SECRET], salt=UNSUBSCRIBE_SALT, clock=Clock())
    path = unsubscribe_url(BASE, signer, "anna@example.org")[len(BASE) :]
    headers = {"Origin": "https://mail.example.com", "Sec-Fetch-Site": "cross-site"}
    done = httpx.post(desk.url + path, data={"List-Unsubscribe": "One-Click"}, headers=headers)
    assert done.status_code == 200, done.text
    assert "is unsubscribed" in done.text
    assert "set-cookie" not in done.headers
