"""The web app's security: GETs change nothing, tokens and CSRF are checked, one-click works.

A real uvicorn server in a thread on 127.0.0.1, real SQLite, requests over real HTTP (httpx);
only the clock is frozen (and moved) to test expiry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest

from digest.app import App
from digest.backends import memory
from digest.store import Store
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
    reader_mail,
)


@dataclass
class Site:
    project: Project
    url: str
    clock: Clock
    http: httpx.Client

    def local(self, link: str) -> str:
        """A public link (publication.base_url) as a path on the test server."""
        assert link.startswith(BASE), link
        return link[len(BASE) :]

    def state(self, edition: int = 1) -> dict[str, object]:
        data = json.loads(self.project.cli("status", str(edition), "--json").stdout)
        assert isinstance(data, dict)
        return data


def serve(project: Project, clock: Clock, environ: dict[str, str]) -> BackgroundServer:
    app = App(project.config, clock=clock)
    return BackgroundServer(create_app(app, environ=environ))


@pytest.fixture
def site(project: Project) -> Iterator[Site]:
    project.write_config(extra=EDITORS)
    assert project.cli("build").exit_code == 0
    clock = Clock()
    environ = {"DIGEST_SECRET": SECRET}
    with (
        serve(project, clock, environ) as server,
        loopback_client(server.url, follow_redirects=False) as http,
    ):
        yield Site(project, server.url, clock, http)


def csrf_of(response: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', response.text)
    assert found, response.text
    return found.group(1)


def audit_len(site: Site) -> int:
    audit = site.state()["audit"]
    assert isinstance(audit, list)
    return len(audit)


# GETs never change state -------------------------------------------------------------------


def test_get_and_head_of_approve_link_change_nothing(site: Site) -> None:
    link = site.local(proof_links()["approve"])
    before = audit_len(site)
    page = site.http.get(link)
    assert page.status_code == 200
    assert 'method="post"' in page.text
    assert "Approve revision 1 as Rosa Diaz" in page.text
    assert site.http.head(link).status_code == 200
    assert site.state()["state"] == "pending_approval"
    assert audit_len(site) == before


def test_review_pages_redirect_to_sign_in(site: Site) -> None:
    for path in ("/e/1", "/e/1/approve", "/editions", "/"):
        response = site.http.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == f"/signin?next={path}"


def test_security_headers(site: Site) -> None:
    response = site.http.get(site.local(proof_links()["review"]))
    assert response.status_code == 200
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"
    # publication.base_url is https: HSTS, and cookies are Secure even on this plain hop.
    assert response.headers["strict-transport-security"] == "max-age=31536000"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "Secure" in cookie
    assert "SameSite=lax" in cookie or "samesite=lax" in cookie.lower()


# tokens --------------------------------------------------------------------------------------


def _tamper(link: str) -> str:
    # Flip one character of the signature part (the token's last segment).
    return link[:-3] + ("A" if link[-3] != "A" else "B") + link[-2:]


def test_tampered_token_refused_on_get_and_post(site: Site) -> None:
    link = site.local(proof_links()["approve"])
    page = site.http.get(link)
    bad = _tamper(link)
    response = site.http.get(bad)
    assert response.status_code == 403
    assert "tampered" in response.text
    token = bad.split("t=", 1)[1]
    post = site.http.post("/e/1/approve", data={"t": token, "revision": "1", "csrf": csrf_of(page)})
    assert post.status_code == 403
    assert "Nothing was changed" in post.text
    assert site.state()["state"] == "pending_approval"


def test_expired_token_refused(site: Site) -> None:
    link = site.local(proof_links()["approve"])
    page = site.http.get(link)
    assert page.status_code == 200
    site.clock.now += timedelta(hours=24, seconds=1)
    response = site.http.get(link)
    assert response.status_code == 403
    assert "expired" in response.text
    token = link.split("t=", 1)[1]
    post = site.http.post("/e/1/approve", data={"t": token, "revision": "1", "csrf": csrf_of(page)})
    assert post.status_code == 403
    assert site.state()["state"] == "pending_approval"


def test_superseded_token_refused(site: Site) -> None:
    old = proof_links()
    page = site.http.get(site.local(old["approve"]))
    story = "https://tech.example.com/chips-power"
    edit = site.project.cli("edit", "1", "--remove", story, "--by", "Sam Lee")
    assert edit.exit_code == 0, edit.output
    for link in old.values():
        response = site.http.get(site.local(link))
        assert response.status_code == 410
        assert "revision 1" in response.text
        assert "replaced by revision 2" in response.text
    post = site.http.post(
        "/e/1/approve",
        data={"t": old["approve"].split("t=", 1)[1], "revision": "1", "csrf": csrf_of(page)},
    )
    assert post.status_code == 410
    state = site.state()
    assert (state["state"], state["revision"]) == ("pending_approval", 2)
    # The new proof's links work.
    assert site.http.get(site.local(proof_links(revision=2)["approve"])).status_code == 200


def test_key_rotation_old_key_still_verifies(project: Project) -> None:
    project.write_config(extra=EDITORS)
    assert project.cli("build", env={"DIGEST_SECRET": "old-key-0123456789abcdef"}).exit_code == 0
    link = proof_links()["review"][len(BASE) :]
    rotated = {"DIGEST_SECRET": "new-key-0123456789abcdef,old-key-0123456789abcdef"}
    with serve(project, Clock(), rotated) as server:
        assert httpx.get(server.url + link).status_code == 200
    with serve(project, Clock(), {"DIGEST_SECRET": "new-key-0123456789abcdef"}) as server:
        assert httpx.get(server.url + link).status_code == 403


# CSRF ----------------------------------------------------------------------------------------


def test_post_without_csrf_refused(site: Site) -> None:
    links = proof_links()
    page = site.http.get(site.local(links["approve"]))
    token = links["approve"].split("t=", 1)[1]
    csrf = csrf_of(page)
    attempts = [
        {"t": token, "revision": "1"},  # no field
        {"t": token, "revision": "1", "csrf": "forged-value"},  # wrong field
    ]
    for data in attempts:
        response = site.http.post("/e/1/approve", data=data)
        assert response.status_code == 403
        assert "CSRF" in response.text
    # The right field but no cookie (a cross-site form cannot send it).
    fresh = httpx.post(site.url + "/e/1/approve", data={"t": token, "revision": "1", "csrf": csrf})
    assert fresh.status_code == 403
    for action in ("reject", "remove", "pin", "edit", "test"):
        response = site.http.post(f"/e/1/{action}", data={"t": token, "revision": "1"})
        assert response.status_code == 403
    # Nothing that changes state answers a GET.
    for path in ("/e/1/edit", "/e/1/test", "/e/1/reject", "/signin/link", "/signout"):
        assert site.http.get(path).status_code == 405, path
    assert site.state()["state"] == "pending_approval"
    assert site.state()["revision"] == 1


def test_approve_through_the_link_with_csrf(site: Site) -> None:
    link = proof_links()["approve"]
    page = site.http.get(site.local(link))
    response = site.http.post(
        "/e/1/approve",
        data={"t": link.split("t=", 1)[1], "revision": "1", "csrf": csrf_of(page)},
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/e/1?n=approved&t=")
    after = site.http.get(response.headers["location"])
    assert "Your approval is recorded." in after.text
    state = site.state()
    assert state["state"] == "approved"
    last = state["audit"][-1]  # type: ignore[index]
    assert (last["by"], last["via"], last["to"]) == ("Rosa Diaz", "web", "approved")
    # The approve link again (a second click, the back button): the edition as it is now,
    # with nothing to approve, not an error page.
    again = site.http.get(site.local(link))
    assert again.status_code == 303
    assert again.headers["location"].startswith("/e/1?")
    shown = site.http.get(again.headers["location"])
    assert shown.status_code == 200
    assert 'data-state="approved"' in shown.text
    assert 'id="approve"' not in shown.text


def test_reject_needs_a_reason_and_then_sends_nothing(site: Site) -> None:
    link = site.local(proof_links()["review"])
    page = site.http.get(link)
    token = link.split("t=", 1)[1]
    data = {"t": token, "revision": "1", "csrf": csrf_of(page), "reason": " "}
    empty = site.http.post("/e/1/reject", data=data)
    assert empty.status_code == 400
    assert "needs a reason" in empty.text
    done = site.http.post("/e/1/reject", data={**data, "reason": "lead is wrong"})
    assert done.status_code == 303
    assert site.state()["state"] == "rejected"
    memory.clear()
    assert site.project.cli("send", "1").exit_code == 1
    assert memory.outbox == []


def test_remove_via_link_makes_new_revision_and_new_link(site: Site) -> None:
    link = site.local(proof_links()["review"])
    page = site.http.get(link)
    story = "https://world.example.org/2026/11/haiti-elections"
    assert story in page.text
    response = site.http.post(
        "/e/1/remove",
        data={"t": link.split("t=", 1)[1], "revision": "1", "csrf": csrf_of(page), "url": story},
    )
    assert response.status_code == 303
    fresh = site.http.get(response.headers["location"])
    assert fresh.status_code == 200
    assert 'id="revision">2<' in fresh.text
    stories = fresh.text.split('id="stories"', 1)[1].split("</ol>", 1)[0]
    assert story not in stories
    # It is among the removed stories, with an undo right there.
    assert story in fresh.text.split('id="removed"', 1)[1]
    assert 'id="undo"' in fresh.text
    assert site.http.get(link).status_code == 410
    trail = site.state()["audit"]
    assert isinstance(trail, list)
    assert trail[-1]["note"] == f"revision 2: removed {story}"
    assert trail[-1]["via"] == "web"


# start-up -----------------------------------------------------------------------------------


def test_server_refuses_to_start_without_secret(project: Project) -> None:
    from digest.exceptions import ConfigError

    with pytest.raises(ConfigError, match="DIGEST_SECRET is not set"):
        create_app(App(project.config), environ={})


# one-click unsubscribe (RFC 8058) ------------------------------------------------------------


def _unsubscribe_path(email: str) -> str:
    # Signed as the send path signs it, at the frozen time of the test's send.
    signer = Signer([SECRET], salt=UNSUBSCRIBE_SALT, clock=Clock())
    url = unsubscribe_url(BASE, signer, email)
    return url[len(BASE) :]


def _suppressed(project: Project) -> dict[str, str]:
    store = Store(project.state)
    try:
        return store.suppressed()
    finally:
        store.close()


def test_unsubscribe_get_only_confirms(site: Site) -> None:
    page = site.http.get(_unsubscribe_path("anna@example.org"))
    assert page.status_code == 200
    assert "Unsubscribe <strong>anna@example.org</strong>" in page.text
    assert _suppressed(site.project) == {}


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_post_without_cookies(site: Site, encoding: str) -> None:
    path = _unsubscribe_path("ben@example.net")
    body = {"List-Unsubscribe": "One-Click"}
    if encoding == "urlencoded":
        response = httpx.post(site.url + path, data=body)
    else:
        response = httpx.post(site.url + path, files={"List-Unsubscribe": (None, "One-Click")})
    assert response.request.headers["content-type"].startswith(
        "application/x-www-form-urlencoded" if encoding == "urlencoded" else "multipart/form-data"
    )
    assert "cookie" not in response.request.headers
    assert response.status_code == 200
    assert "location" not in response.headers
    assert "is unsubscribed" in response.text
    assert _suppressed(site.project) == {"ben@example.net": "unsubscribed"}
    # Every later send honours it.
    assert site.project.cli("approve", "1", "--by", "Rosa Diaz").exit_code == 0
    memory.clear()
    sent = site.project.cli("send", "1")
    assert sent.exit_code == 0, sent.output
    assert sorted(e.recipient for e in reader_mail()) == ["anna@example.org", "dmitri@example.org"]


def test_unsubscribe_tampered_refused_and_old_link_still_works(site: Site) -> None:
    path = _unsubscribe_path("anna@example.org")
    bad = httpx.post(site.url + _tamper(path), data={"List-Unsubscribe": "One-Click"})
    assert bad.status_code == 400
    assert "location" not in bad.headers
    assert _suppressed(site.project) == {}
    site.clock.now += timedelta(days=31)
    ok = httpx.post(site.url + path, data={"List-Unsubscribe": "One-Click"})
    assert ok.status_code == 200
    assert _suppressed(site.project) == {"anna@example.org": "unsubscribed"}
