"""Issue 28: a throttle nobody can turn into a lock-out, revocation and the approval count,
tokens kept out of `digest serve`'s log, and signing-key rotation.

Real uvicorn servers (in a thread, or `digest serve` as a process), real SQLite, real HTTP;
client networks are told apart by X-Forwarded-For, which uvicorn takes from the loopback
proxy as it would from a real one in front. Only the clock is frozen.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from digest.app import App
from digest.backends import memory
from digest.models import SubscriberState
from digest.passwords import hash_password
from digest.store import Store
from digest.store.desk import Backoff, DeskState
from digest.store.subscribers import SubscriberStore
from digest.testing.smtp import free_port
from digest.web.app import create_app
from digest.web.auth import network
from digest.web.server import BackgroundServer

from conftest import (
    BASE,
    NOW,
    SECRET,
    Clock,
    Project,
    loopback_client,
    proof_links,
    sign_in_by_link,
    signin_link,
    wait_for,
)

ROSA, SAM = "rosa@news.example.org", "sam@news.example.org"
PASSWORD = "correct horse battery"
EDITORS = textwrap.dedent("""\
    approval:
      editors:
        - name: Rosa Diaz
          email: rosa@news.example.org
        - name: Sam Lee
          email: sam@news.example.org
          password_hash_env: SAM_HASH
        - name: Ada Berg
          email: ada@news.example.org
      link_hours: 24
      approvals_needed: 2
    """)
SIGNUP = "signup:\n  enabled: true\n  topics: [World]\n"
ATTACKER, HOME = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "198.51.100.20"}
OLD, NEW, OTHER = "old-key-0123456789abcdef", "new-key-0123456789abcdef", "unknown-key-0123456789"


def csrf_in(response: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', response.text)
    assert found, response.text
    return found.group(1)


@dataclass
class Desk:
    project: Project
    url: str
    http: httpx.Client

    def password(self, password: str, headers: dict[str, str]) -> httpx.Response:
        data = {"email": SAM, "password": password, "csrf": csrf_in(self.http.get("/signin"))}
        return self.http.post("/signin/password", data=data, headers=headers)


def serve(project: Project, key: str = SECRET, clock: Clock | None = None) -> BackgroundServer:
    environ = {"DIGEST_SECRET": key, "SAM_HASH": hash_password(PASSWORD)}
    return BackgroundServer(
        create_app(App(project.config, clock=clock or Clock()), environ=environ)
    )


@pytest.fixture
def desk(project: Project) -> Iterator[Desk]:
    project.write_config(extra=EDITORS)
    assert project.cli("build").exit_code == 0
    with serve(project) as server, loopback_client(server.url, follow_redirects=False) as http:
        yield Desk(project, server.url, http)


# throttle ------------------------------------------------------------------------------------


def test_the_attackers_network_locks_itself_out_not_the_editor(desk: Desk) -> None:
    for _ in range(5):
        assert desk.password("wrong horse", ATTACKER).status_code == 401
    blocked = desk.password(PASSWORD, ATTACKER)  # even the right one is not checked there
    assert blocked.status_code == 429
    assert "Nothing was checked" in blocked.text
    # Sam, from his own network, signs in at once.
    assert desk.password(PASSWORD, HOME).status_code == 303
    # His proof link works from anywhere, the blocked network included.
    link = proof_links(SAM)["approve"]
    page = desk.http.get(link[len(BASE) :], headers=ATTACKER)
    assert page.status_code == 200
    data = {"t": link.split("t=", 1)[1], "revision": "1", "csrf": csrf_in(page)}
    assert desk.http.post("/e/1/approve", data=data, headers=ATTACKER).status_code == 303


def test_an_ipv6_client_counts_by_its_64(desk: Desk) -> None:
    assert network("2001:db8:1:2::1") == network("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert network("::ffff:203.0.113.7") == "203.0.113.7"
    for host in range(5):  # five addresses of one /64 are one network
        headers = {"X-Forwarded-For": f"2001:db8:1:2::{host + 1}"}
        assert desk.password("wrong horse", headers).status_code == 401
    assert desk.password(PASSWORD, {"X-Forwarded-For": "2001:db8:1:2::99"}).status_code == 429
    assert desk.password(PASSWORD, {"X-Forwarded-For": "2001:db8:1:3::1"}).status_code == 303


def test_forty_parallel_wrong_tries_check_at_most_five(desk: Desk) -> None:
    csrf = csrf_in(desk.http.get("/signin"))
    data = {"email": SAM, "password": "wrong horse", "csrf": csrf}

    def attempt(_: int) -> int:
        return desk.http.post("/signin/password", data=data, headers=ATTACKER).status_code

    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(attempt, range(40)))
    # 401 is only ever answered after the password was checked; 429 checks nothing.
    assert sorted(set(answers)) == [401, 429]
    assert answers.count(401) == 5
    assert desk.password(PASSWORD, HOME).status_code == 303


# revocation and the quorum -------------------------------------------------------------------


def test_a_revoked_editors_approval_stops_counting(project: Project) -> None:
    project.write_config(extra=EDITORS)
    assert project.cli("build").exit_code == 0
    first = project.cli("approve", "1", "--by", "Rosa Diaz")
    assert "approval 1 of 2 by Rosa Diaz" in first.output
    assert project.cli("editors", "revoke", "Rosa Diaz", "--reason", "left").exit_code == 0
    # Sam's approval would have been the second; Rosa's no longer counts.
    second = project.cli("approve", "1", "--by", "Sam Lee")
    assert second.exit_code == 0, second.output
    assert "approval 1 of 2 by Sam Lee" in second.output
    assert json.loads(project.cli("status", "1", "--json").stdout)["state"] == "pending_approval"
    third = project.cli("approve", "1", "--by", "Ada Berg")
    assert "edition 1 approved by Ada Berg" in third.output
    assert json.loads(project.cli("status", "1", "--json").stdout)["state"] == "approved"


def test_the_desk_counts_only_editors_not_revoked(desk: Desk) -> None:
    assert desk.project.cli("approve", "1", "--by", "Rosa Diaz").exit_code == 0
    sign_in_by_link(desk.http, "ada@news.example.org")
    assert "1 of 2 approvals so far" in desk.http.get("/").text
    assert desk.project.cli("editors", "revoke", "Rosa Diaz").exit_code == 0
    assert "0 of 2 approvals so far" in desk.http.get("/").text


# the log of `digest serve` -------------------------------------------------------------------


def test_serve_logs_no_token(project: Project, tmp_path: Path) -> None:
    project.write_config(extra=EDITORS + SIGNUP)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(DIGEST_SECRET=SECRET, DIGEST_NOW=NOW, DIGEST_CONFIG=str(project.config))
    log_path = tmp_path / "serve.log"
    paths = {
        "/confirm/CONFIRMSECRET0123456789": "/confirm/[redacted]",
        "/e/1?t=PROOFSECRET0123456789&variant=x": "/e/1?[redacted]",
        "/e/1/approve?t=APPROVESECRET0123456789": "/e/1/approve?[redacted]",
        "/u/UNSUBSECRET0123456789": "/u/[redacted]",
        "/p/PREFSSECRET0123456789?saved=1": "/p/[redacted]?[redacted]",
        "/s/SIGNINSECRET0123456789": "/s/[redacted]",
        "/archive/1?k=ARCHIVESECRET0123456789": "/archive/1?k=[redacted]",
        "/archive/?x=1&token=QUERYSECRET0123456789": "/archive/?x=1&token=[redacted]",
    }
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "digest", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"

            def up() -> bool:
                assert server.poll() is None, log_path.read_text()
                try:
                    return httpx.get(url + "/signin").status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(up, what="digest serve to answer")
            for path in paths:
                httpx.get(url + path)
            last = f'"GET {list(paths.values())[-1]} HTTP/1.1"'
            wait_for(lambda: last in log_path.read_text(), what="the last access-log line")
        finally:
            server.terminate()
            server.wait(timeout=30)
    text = log_path.read_text()
    assert "SECRET0123456789" not in text, text
    for shown in paths.values():
        assert f'"GET {shown} HTTP/1.1"' in text, text


# key rotation --------------------------------------------------------------------------------


def test_rotation_keeps_sessions_sign_in_links_and_their_forms(desk: Desk) -> None:
    project = desk.project
    with serve(project, OLD) as old, loopback_client(old.url, follow_redirects=False) as http:
        sign_in_by_link(http, ROSA)
        form = csrf_in(http.get("/e/1"))  # made under the old key
        before = len(memory.outbox)
        data = {"email": SAM, "csrf": csrf_in(http.get("/signin"))}
        assert http.post("/signin/link", data=data).status_code == 200
        link = signin_link(SAM, after=before)[len(BASE) :]
        cookies = dict(http.cookies.items())
    rotated = f"{NEW},{OLD}"
    with serve(project, rotated) as server, loopback_client(server.url) as http:
        http.cookies.update(cookies)
        assert "Rosa Diaz" in http.get("/").text  # the session lives on
        with loopback_client(server.url) as sam:  # the old key's sign-in link works
            assert sam.post(link, data={"csrf": csrf_in(sam.get(link))}).status_code == 303
            assert "Sam Lee" in sam.get("/").text
        assert http.post("/signout", data={"csrf": form}, follow_redirects=False).status_code == 303
    with serve(project, NEW) as server, loopback_client(server.url) as http:
        assert http.get(link).status_code == 403  # the old key is gone: its link is refused
    # A form token made under a key the server does not know is refused too.
    with serve(project, OTHER) as other, loopback_client(other.url) as http:
        sign_in_by_link(http, ROSA)
        foreign = csrf_in(http.get("/e/1"))
        cookies = dict(http.cookies.items())
    with serve(project, rotated) as server, loopback_client(server.url) as http:
        http.cookies.update(cookies)
        assert "Rosa Diaz" in http.get("/").text
        refused = http.post("/signout", data={"csrf": foreign}, follow_redirects=False)
        assert refused.status_code == 403
        assert "CSRF" in refused.text


def test_rotation_keeps_confirmation_links(project: Project) -> None:
    project.write_config(extra=EDITORS + SIGNUP)

    def confirm_link(key: str, email: str) -> str:
        with serve(project, key) as server:
            data = {"email": email, "name": "", "website": ""}
            assert httpx.post(server.url + "/subscribe", data=data).status_code == 200
        # The form only queues the sign-up; drain it as `digest serve` does every second.
        drainer = App(project.config, clock=Clock())
        drainer.readers.pages({"DIGEST_SECRET": key}).drain()
        drainer.close()
        (envelope,) = [e for e in memory.outbox if e.recipient == email]
        mail = message_from_bytes(envelope.data, policy=policy.default)
        assert isinstance(mail, EmailMessage)
        body = mail.get_body(("plain",))
        assert body is not None
        found = re.search(rf"{re.escape(BASE)}(/confirm/\S+)", str(body.get_content()))
        assert found
        return found.group(1)

    old, foreign = confirm_link(OLD, "nora@example.com"), confirm_link(OTHER, "omar@example.com")
    with serve(project, f"{NEW},{OLD}") as server:
        assert httpx.post(server.url + old).status_code == 200
        assert httpx.post(server.url + foreign).status_code == 400
    store = project.open_store()
    try:
        nora, omar = (SubscriberStore(store).get(f"{n}@example.com") for n in ("nora", "omar"))
    finally:
        store.close()
    assert nora is not None
    assert omar is not None
    assert (nora.state, omar.state) == (SubscriberState.ACTIVE, SubscriberState.PENDING)


def test_attempts_are_counted_atomically_on_both_engines(state_url: str, tmp_path: Path) -> None:
    store = Store(url=state_url) if state_url else Store(tmp_path / "digest.db")
    desk = DeskState(store)
    now = Clock()()
    keys = ["password:sam@news.example.org|203.0.113.7", "client:203.0.113.7"]

    def attempt(_: int) -> bool:
        return desk.attempt(keys, now=now, backoff=Backoff()) is None

    try:
        with ThreadPoolExecutor(20) as pool:
            allowed = list(pool.map(attempt, range(40)))
    finally:
        store.close()
    assert allowed.count(True) == Backoff().free
