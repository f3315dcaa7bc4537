"""Hardening: no token in the access log, Secure cookies and HSTS by the public URL, and a
warning when `digest serve` listens beyond loopback."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from digest.app import App
from digest.config import load_settings
from digest.web.app import create_app
from digest.web.server import BackgroundServer, redact, serve_warnings

from conftest import BASE, EDITORS, SECRET, Clock, Project, loopback_client, proof_links, wait_for


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def access_log() -> Iterator[Lines]:
    handler = Lines()
    yield handler
    logging.getLogger("uvicorn.access").removeHandler(handler)


def test_tokens_never_reach_the_access_log(project: Project, access_log: Lines) -> None:
    project.write_config(extra=EDITORS)
    assert project.cli("build").exit_code == 0
    app = App(project.config, clock=Clock())
    review = proof_links()["review"][len(BASE) :]
    token = review.split("t=", 1)[1]
    secrets = [token, "unsubscribe-token-0123456789", "signin-token-0123456789", "prefs-0123"]
    paths = [
        review,
        f"/e/1/approve?t={token}",
        f"/u/{secrets[1]}",
        f"/s/{secrets[2]}",
        f"/p/{secrets[3]}?x=1",
        "/signin?next=/e/1",
    ]
    background = BackgroundServer(
        create_app(app, environ={"DIGEST_SECRET": SECRET}), log_level="info"
    )
    # After the server's logging set-up, which replaces the logger's handlers.
    logging.getLogger("uvicorn.access").addHandler(access_log)
    with background as server, loopback_client(server.url) as http:
        for path in paths:
            http.get(path)
        wait_for(lambda: len(access_log.lines) >= len(paths), what="the access log lines")
    app.close()
    log = "\n".join(access_log.lines)
    for secret in secrets:
        assert secret not in log
    assert '"GET /e/1?[redacted] HTTP/1.1" 200' in log
    assert '"GET /u/[redacted] HTTP/1.1"' in log
    assert '"GET /s/[redacted] HTTP/1.1" 403' in log
    assert '"GET /signin?next=/e/1 HTTP/1.1" 200' in log  # nothing secret: left as it is


def test_redact() -> None:
    assert redact("/e/12?t=abc&variant=x") == "/e/12?[redacted]"
    assert redact("/e/12") == "/e/12"
    assert redact("/u/abc.def/confirm?x=1") == "/u/[redacted]/confirm?[redacted]"
    assert redact("/static/site.css?v=1") == "/static/site.css?v=1"
    assert redact("/confirm/abc.def?x=1") == "/confirm/[redacted]?[redacted]"
    assert redact("/archive/3?k=abc&page=2") == "/archive/3?k=[redacted]&page=2"
    assert redact("/archive/?page=2&T=abc") == "/archive/?page=2&T=[redacted]"
    assert redact("/signin?next=/e/1") == "/signin?next=/e/1"


def test_plain_http_base_url_gets_no_secure_flag_and_no_hsts(project: Project) -> None:
    config = project.config.read_text(encoding="utf-8")
    project.config.write_text(config.replace(BASE, "http://127.0.0.1:8080"), encoding="utf-8")
    app = App(project.config, clock=Clock())
    with (
        BackgroundServer(create_app(app, environ={"DIGEST_SECRET": SECRET})) as server,
        loopback_client(server.url) as http,
    ):
        page = http.get("/signin")
    app.close()
    assert "Secure" not in page.headers["set-cookie"]
    assert "strict-transport-security" not in page.headers
    assert page.headers["x-frame-options"] == "DENY"


def test_serve_warns_beyond_loopback_and_without_editors(project: Project) -> None:
    settings = load_settings(project.config)
    assert serve_warnings(settings, "127.0.0.1") == [
        "no editor can sign in: list approval.editors (name and email) in the config"
    ]
    project.write_config(extra=EDITORS)
    settings = load_settings(project.config)
    assert serve_warnings(settings, "::1") == []
    assert serve_warnings(settings, "localhost") == []
    (line,) = serve_warnings(settings, "0.0.0.0")
    assert line.startswith("serving plain HTTP on 0.0.0.0: put a TLS-terminating proxy")
    config = project.config.read_text(encoding="utf-8")
    project.config.write_text(config.replace(BASE, "http://news.example.org"), encoding="utf-8")
    (line,) = serve_warnings(load_settings(project.config), "192.0.2.7")
    assert "is not https" in line
