"""Outgoing webhooks (Standard Webhooks): events queued with their change in the state
database, posted by `digest tick` with webhook-id / webhook-timestamp / webhook-signature,
checked here by the reference implementation (the standardwebhooks package); a receiver
that fails is retried with backoff under the same webhook-id, and dead after the last try."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from digest.app import App
from digest.models import SubscriberState
from digest.testing.http import FixtureServer

from conftest import NOW, Clock, Project

SECRET_BYTES = b"a test secret of thirty-two byte"
HOOK_SECRET = "whsec_" + base64.b64encode(SECRET_BYTES).decode()
ENV = {"HOOK_SECRET": HOOK_SECRET}


def _config(project: Project, *hooks: tuple[str, list[str], bool]) -> None:
    lines = ["webhooks:"]
    for url, events, private in hooks:
        lines += [f"  - url: {url}", "    secret_env: HOOK_SECRET", f"    events: {events}"]
        lines.append(f"    allow_private: {str(private).lower()}")
    project.write_config(extra="\n".join(lines) + "\n")


def _received(server: FixtureServer, path: str) -> list[tuple[dict[str, str], bytes]]:
    with server.lock:
        return [
            (headers, body)
            for (method, p, headers), body in zip(server.requests, server.bodies, strict=True)
            if method == "POST" and p == path
        ]


def _verified(server: FixtureServer, path: str) -> list[dict[str, Any]]:
    """Each POST to ``path``, checked by the reference verifier (signature and age)."""
    reference = Webhook(HOOK_SECRET)
    return [reference.verify(body, headers) for headers, body in _received(server, path)]


def test_tick_posts_signed_events_of_approvals_sends_and_suppressions(
    project: Project, state_url: str
) -> None:
    project.state_url = state_url
    with FixtureServer() as receiver:
        receiver.route("/all", b"ok")
        receiver.route("/readers", b"ok")
        _config(
            project,
            (receiver.url("/all"), [], True),
            (receiver.url("/readers"), ["reader.bounced", "reader.complained"], True),
        )
        for args in (("build",), ("approve", "1", "--by", "Rosa"), ("send", "1")):
            result = project.cli(*args)
            assert result.exit_code == 0, (args, result.output)
        store = project.open_store()
        at = datetime.fromisoformat(NOW)
        store.suppress(
            "anna@example.org", reason="hard bounce: 5.1.1", now=at, kind=SubscriberState.BOUNCED
        )
        store.suppress(
            "ben@example.net", reason="feedback loop", now=at, kind=SubscriberState.COMPLAINED
        )
        store.close()
        # Nothing was posted while sending: the events wait in the queue.
        assert _received(receiver, "/all") == []
        queued = json.loads(project.cli("webhooks", "--json").stdout)
        assert queued["queued"] == 4
        ticked = project.cli("tick", env=ENV)
        assert ticked.exit_code == 0, ticked.output
        assert "webhooks: 6 sent, 0 to retry, 0 dead" in ticked.output
        everything = _verified(receiver, "/all")
        readers = _verified(receiver, "/readers")
        again = project.cli("tick", env=ENV)
    assert [e["type"] for e in everything] == [
        "edition.approved",
        "edition.sent",
        "reader.bounced",
        "reader.complained",
    ]
    assert everything[0]["data"] == {"edition": 1, "revision": 1, "by": "Rosa"}
    assert everything[2]["data"] == {"email": "anna@example.org", "reason": "hard bounce: 5.1.1"}
    assert [e["type"] for e in readers] == ["reader.bounced", "reader.complained"]
    ids = [h["webhook-id"] for h, _ in _received(receiver, "/all")]
    assert len(set(ids)) == 4
    assert "webhooks:" not in again.output  # each sent once
    counts = json.loads(project.cli("webhooks", "--json").stdout)
    assert (counts["queued"], counts["pending"], counts["sent"], counts["dead"]) == (0, 0, 6, 0)


def test_a_receiver_that_fails_first_gets_the_same_event_again_later(project: Project) -> None:
    with FixtureServer() as receiver:
        receiver.route_sequence(
            "/flaky", [(500, b"down", {}), (503, b"down", {}), (200, b"ok", {})]
        )
        _config(project, (receiver.url("/flaky"), [], True))
        store = project.open_store()
        store.suppress("anna@example.org", reason="unsubscribed", now=datetime.fromisoformat(NOW))
        store.close()
        clock = Clock()
        app = App(project.config, clock=clock)
        first = app.webhooks.deliver(environ=ENV)
        early = app.webhooks.deliver(environ=ENV)  # the backoff has not passed yet
        clock.now += timedelta(seconds=6)
        second = app.webhooks.deliver(environ=ENV)
        clock.now += timedelta(minutes=6)
        third = app.webhooks.deliver(environ=ENV)
        app.close()
        received = _received(receiver, "/flaky")
        verified = _verified(receiver, "/flaky")
    assert (first.sent, first.retrying, early.retrying, second.retrying) == (0, 1, 0, 1)
    assert (third.sent, third.retrying, third.dead) == (1, 0, 0)
    assert len({h["webhook-id"] for h, _ in received}) == 1  # a retry, not a new event
    assert [e["type"] for e in verified] == ["reader.unsubscribed"] * 3


def test_a_send_is_dead_after_its_last_retry_and_shown_by_digest_webhooks(
    project: Project,
) -> None:
    with FixtureServer() as receiver:
        receiver.route("/down", b"no", status=500)
        _config(project, (receiver.url("/down"), [], True))
        store = project.open_store()
        store.suppress("anna@example.org", reason="unsubscribed", now=datetime.fromisoformat(NOW))
        store.close()
        clock = Clock()
        app = App(project.config, clock=clock)
        rounds = []
        for _ in range(8):
            rounds.append(app.webhooks.deliver(environ=ENV))
            clock.now += timedelta(hours=11)
        app.close()
    assert [r.retrying for r in rounds] == [1] * 7 + [0]
    assert rounds[-1].dead == 1
    assert rounds[-1].errors[0].endswith(f"is dead: {receiver.url('/down')} answered 500")
    shown = project.cli("webhooks")
    assert shown.exit_code == 0
    assert "webhooks: 0 queued, 0 pending, 0 sent, 1 dead" in shown.output
    assert f"reader.unsubscribed to {receiver.url('/down')} after 8 attempts" in shown.output


def test_ssrf_rules_hold_and_a_missing_secret_is_retried_not_sent(project: Project) -> None:
    with FixtureServer() as receiver:
        receiver.route("/hook", b"ok")
        _config(project, (receiver.url("/hook"), [], False))  # loopback, not allowed
        store = project.open_store()
        store.suppress("anna@example.org", reason="unsubscribed", now=datetime.fromisoformat(NOW))
        store.close()
        clock = Clock()
        app = App(project.config, clock=clock)
        refused = app.webhooks.deliver(environ=ENV)
        app.close()
        after_refusal = _received(receiver, "/hook")
        _config(project, (receiver.url("/hook"), [], True))  # now allowed, but no secret set
        clock.now += timedelta(seconds=6)
        app = App(project.config, clock=clock)
        no_secret = app.webhooks.deliver(environ={})
        after_no_secret = _received(receiver, "/hook")
        clock.now += timedelta(minutes=6)
        fixed = app.webhooks.deliver(environ=ENV)
        app.close()
        verified = _verified(receiver, "/hook")
    assert (refused.sent, refused.retrying) == (0, 1)
    assert after_refusal == []  # the address rule refused it before connecting
    assert (no_secret.sent, no_secret.retrying) == (0, 1)
    assert after_no_secret == []
    assert fixed.sent == 1
    assert [e["type"] for e in verified] == ["reader.unsubscribed"]


@pytest.mark.parametrize(
    ("hook", "expected"),
    [
        ("  - url: ftp://x.example/\n    secret_env: S\n", "webhooks[].url must be an http(s) URL"),
        (
            "  - url: https://x.example/\n    secret_env: S\n    events: [edition.opened]\n",
            "unknown webhook event 'edition.opened'",
        ),
        ("  - url: https://x.example/\n", "secret_env"),
    ],
)
def test_a_bad_webhook_entry_names_file_line_and_fix(
    project: Project, hook: str, expected: str
) -> None:
    project.write_config(extra="webhooks:\n" + hook)
    result = project.cli("webhooks")
    assert result.exit_code != 0
    assert expected in result.output
    assert "digest.yaml:" in result.output
    assert "Traceback" not in result.output
