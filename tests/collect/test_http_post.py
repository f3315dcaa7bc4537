"""POST through the hardened client (for HTTP API mail backends), against a real local server."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest

from digest.exceptions import DeadlineExceeded, FetchError
from digest.http import Fetcher, FetchSettings
from digest.testing.http import FixtureServer

TOKEN = "Bearer key-3ax6xnjp29jd6fds4gc373sgvjxteol0"


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    with FixtureServer() as srv:
        yield srv


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def fetcher(sleeps: list[float]) -> Iterator[Fetcher]:
    settings = FetchSettings(timeout=2.0, max_bytes=100_000)
    with Fetcher(settings=settings, sleep=sleeps.append) as f:
        yield f


def test_a_json_body_and_its_headers_arrive_intact(server: FixtureServer, fetcher: Fetcher) -> None:
    server.route(
        "/email", b'{"MessageID": "b7bc2f4a"}', headers={"Content-Type": "application/json"}
    )
    payload = {"From": "news@digest.example", "To": "zoë@example.com", "HtmlBody": "<p>Hi</p>"}
    resp = fetcher.post(
        server.url("/email"),
        json=payload,
        headers={"Authorization": TOKEN, "X-Postmark-Server-Token": "t0k"},
        allow_private=True,
    )
    assert (resp.status, json.loads(resp.body)) == (200, {"MessageID": "b7bc2f4a"})
    method, path, headers = server.requests[0]
    assert (method, path) == ("POST", "/email")
    assert json.loads(server.bodies[0]) == payload
    assert headers["content-type"] == "application/json"
    assert headers["authorization"] == TOKEN
    assert headers["x-postmark-server-token"] == "t0k"
    assert headers["accept"].startswith("application/json")
    assert headers["user-agent"].startswith("digest/")


def test_a_form_body_arrives_url_encoded(server: FixtureServer, fetcher: Fetcher) -> None:
    server.route("/v3/news.example/messages", b'{"id": "<1@x>"}')
    form = {"from": "news@digest.example", "to": "a+b@example.com", "subject": "Café & co"}
    fetcher.post(server.url("/v3/news.example/messages"), form=form, allow_private=True)
    assert server.requests[0][2]["content-type"] == "application/x-www-form-urlencoded"
    sent = parse_qs(server.bodies[0].decode("ascii"), strict_parsing=True)
    assert sent == {k: [v] for k, v in form.items()}


def test_a_bytes_body_arrives_byte_for_byte(server: FixtureServer, fetcher: Fetcher) -> None:
    server.route("/raw", b"queued")
    raw = b"From: a@example.com\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n\r\n\xff\x00.\r\n"
    fetcher.post(
        server.url("/raw"),
        content=raw,
        headers={"Content-Type": "message/rfc822"},
        allow_private=True,
    )
    assert server.bodies == [raw]
    assert server.requests[0][2]["content-type"] == "message/rfc822"


def test_an_error_status_is_returned_once_not_retried(
    server: FixtureServer, fetcher: Fetcher, sleeps: list[float]
) -> None:
    server.route("/email", b'{"ErrorCode": 406}', status=422)
    server.route("/busy", b"slow down", status=503, headers={"Retry-After": "1"})
    resp = fetcher.post(server.url("/email"), json={}, allow_private=True)
    assert (resp.status, resp.body) == (422, b'{"ErrorCode": 406}')
    assert fetcher.post(server.url("/busy"), json={}, allow_private=True).status == 503
    assert [p for _, p, _ in server.requests] == ["/email", "/busy"]  # each sent once
    assert sleeps == []


def test_a_redirect_is_returned_not_followed(server: FixtureServer, fetcher: Fetcher) -> None:
    # Following it would carry the Authorization header wherever the server points.
    with FixtureServer(host="127.0.0.2") as elsewhere:
        server.redirect("/email", elsewhere.url("/steal"), status=307)
        resp = fetcher.post(
            server.url("/email"), json={}, headers={"Authorization": TOKEN}, allow_private=True
        )
        assert resp.status == 307
        assert resp.headers["location"] == elsewhere.url("/steal")
        assert elsewhere.requests == []


def test_oversize_answers_are_refused(server: FixtureServer, fetcher: Fetcher) -> None:
    server.route("/big", b"x" * 100_001)
    server.route("/endless", b"x" * 300_000, headers={"Content-Length": ""})
    with pytest.raises(FetchError, match=r"/big: body of 100001 bytes is over the 100000 byte"):
        fetcher.post(server.url("/big"), json={}, allow_private=True)
    with pytest.raises(FetchError, match=r"/endless: body is over the 100000 byte limit"):
        fetcher.post(server.url("/endless"), json={}, allow_private=True)


def test_a_slow_drip_answer_hits_the_whole_exchange_deadline(
    server: FixtureServer, sleeps: list[float]
) -> None:
    # One byte every 0.05 s: every read succeeds, so the 2 s read timeout never fires; the
    # head alone would take about 25 s.
    server.route("/email", b"{}", headers={"Content-Length": "2"}, trickle=0.05)
    settings = FetchSettings(timeout=2.0, deadline=1.0)
    with (
        Fetcher(settings=settings, sleep=sleeps.append) as f,
        pytest.raises(DeadlineExceeded, match=r"/email: no answer within 1 s$"),
    ):
        f.post(server.url("/email"), json={"To": "a@example.com"}, allow_private=True)
    assert server.bodies == [b'{"To":"a@example.com"}']  # it was sent; the answer was late


def test_a_private_address_is_refused_unless_allowed(
    server: FixtureServer, fetcher: Fetcher
) -> None:
    server.route("/email", b"{}")
    with pytest.raises(FetchError, match=r"non-public address 127\.0\.0\.1.*allow_private"):
        fetcher.post(server.url("/email"), json={}, headers={"Authorization": TOKEN})
    assert server.requests == []
    assert fetcher.post(server.url("/email"), json={}, allow_private=True).status == 200


def test_a_name_resolving_to_a_private_address_is_refused(sleeps: list[float]) -> None:
    with (
        Fetcher(resolver=lambda host: ["10.0.0.5"], sleep=sleeps.append) as f,
        pytest.raises(FetchError, match=r"api\.mail\.example.*10\.0\.0\.5"),
    ):
        f.post("https://api.mail.example/v3/send", json={})


@pytest.mark.parametrize("allow_private", [False, True])
def test_metadata_addresses_are_refused_allow_private_or_not(
    fetcher: Fetcher, allow_private: bool
) -> None:
    with pytest.raises(FetchError, match=r"metadata"):
        fetcher.post("http://169.254.169.254/latest/api/token", allow_private=allow_private)


def test_posts_to_the_checked_address_keeping_the_host_name(
    server: FixtureServer, sleeps: list[float]
) -> None:
    # DNS rebinding: a second answer would be private; the POST connects to the first.
    answers = [["127.0.0.1"], ["10.0.0.5"]]
    server.route("/send", b"{}")
    with Fetcher(resolver=lambda host: answers.pop(0), sleep=sleeps.append) as f:
        resp = f.post(f"http://api.mail.example:{server.port}/send", json={}, allow_private=True)
    assert resp.status == 200
    assert answers == [["10.0.0.5"]]  # asked once
    assert server.requests[0][2]["host"] == f"api.mail.example:{server.port}"


def test_scheme_and_connection_failures_are_fetch_errors(
    fetcher: Fetcher, sleeps: list[float]
) -> None:
    with pytest.raises(FetchError, match=r"^file:///etc/passwd: scheme 'file' is not allowed"):
        fetcher.post("file:///etc/passwd", json={})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FetchError, match=rf"^http://127\.0\.0\.1:{port}/send: connection failed"):
        fetcher.post(f"http://127.0.0.1:{port}/send", json={}, allow_private=True)
    assert sleeps == []  # not retried


def test_one_body_at_most(fetcher: Fetcher) -> None:
    with pytest.raises(ValueError, match="one body"):
        fetcher.post("https://api.mail.example/send", json={}, form={"a": "b"})
