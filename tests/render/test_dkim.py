"""DKIM: personalised messages are signed with the configured key and verify with dkimpy."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import dkim
import pytest

from digest.app import App
from digest.backends import memory
from digest.exceptions import ConfigError
from digest.models import Publication, RenderedEdition, Story
from digest.render.dkim import DkimSigner, load_dkim
from digest.render.edition import render_edition
from digest.render.environment import make_environment
from digest.render.message import Recipient, prepare_message
from digest.testing.mail import parse_clean
from digest.web.app import create_app
from digest.web.server import BackgroundServer

from conftest import EDITORS, SECRET, Project, loopback_client, sign_in_by_link

NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
PUB = Publication(
    name="The Morning Brief",
    sender="The Morning Brief <brief@news.example.org>",
    base_url="https://news.example.org",
    postal_address="1 Example Street, Berlin",
)
ANNA = Recipient(
    email="anna@example.org", name="Anna Müller", unsubscribe_url="https://news.example.org/u/t1"
)
REQUIRED = {
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
}


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A fresh RSA key (PEM file) and its public half as a DNS TXT record."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is missing: install Debian's openssl (.ci/run does)")
    folder = tmp_path_factory.mktemp("dkim")
    pem = folder / "dkim.pem"
    subprocess.run([openssl, "genrsa", "-out", str(pem), "2048"], check=True, capture_output=True)
    der = subprocess.run(
        [openssl, "rsa", "-in", str(pem), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def dns_for(record: bytes, name: str = "mail._domainkey.news.example.org."):
    """dkimpy's DNS lookup, answered locally (mocking DNS is the one allowed mock)."""

    def lookup(qname: bytes, timeout: int = 5) -> bytes | None:
        return record if qname.decode() == name else None

    return lookup


@pytest.fixture(scope="module")
def rendered() -> RenderedEdition:
    story = Story(
        url="https://news.example.org/a",
        title="Économie: une histoire",
        teaser="Teaser " * 20,
        source="Wire",
        published=NOW,
        section="World",
    )
    return render_edition(
        make_environment(), stories=[story], publication=PUB, edition_date=date(2026, 11, 25)
    )


def signer(key: tuple[Path, bytes]) -> DkimSigner:
    return load_dkim(key_path=key[0], selector="mail", domain="news.example.org")


def test_signed_message_verifies(key: tuple[Path, bytes], rendered: RenderedEdition) -> None:
    prepared = prepare_message(
        rendered,
        PUB,
        unsubscribe_mailto="mailto:u@news.example.org",
        feedback_id="daily:brief",
        dkim=signer(key),
    )
    data = prepared.personalise(ANNA, date=NOW, message_id="<d1@news.example.org>")
    msg = parse_clean(data)
    assert data.startswith(b"DKIM-Signature: ")
    tags = dict(re.findall(r"(\w+)=([^;]*)", "".join(str(msg["DKIM-Signature"]).split())))
    assert tags["d"] == "news.example.org"
    assert tags["s"] == "mail"
    assert tags["c"] == "relaxed/relaxed"
    assert set(tags["h"].lower().split(":")) >= REQUIRED
    assert dkim.verify(data, dnsfunc=dns_for(key[1]))
    # Each recipient gets their own signature over their own body and headers.
    other = prepared.personalise(
        Recipient(email="ben@example.net", name="", unsubscribe_url="https://news.example.org/u/2"),
        date=NOW,
        message_id="<d2@news.example.org>",
    )
    assert dkim.verify(other, dnsfunc=dns_for(key[1]))
    assert parse_clean(other)["DKIM-Signature"] != msg["DKIM-Signature"]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"https://news.example.org/u/t1", b"https://evil.example.com/u/t1"),
        (b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: x"),
        (b"Message-ID: <d3@news.example.org>", b"Message-ID: <d4@news.example.org>"),
    ],
    ids=["unsubscribe-url", "one-click", "message-id"],
)
def test_tampering_breaks_the_signature(
    key: tuple[Path, bytes], rendered: RenderedEdition, old: bytes, new: bytes
) -> None:
    prepared = prepare_message(rendered, PUB, dkim=signer(key))
    data = prepared.personalise(ANNA, date=NOW, message_id="<d3@news.example.org>")
    assert dkim.verify(data, dnsfunc=dns_for(key[1]))
    head, body = data.split(b"\r\n\r\n", 1)
    assert old in head
    assert not dkim.verify(head.replace(old, new) + b"\r\n\r\n" + body, dnsfunc=dns_for(key[1]))


def test_bad_dkim_settings_are_config_errors(tmp_path: Path, key: tuple[Path, bytes]) -> None:
    with pytest.raises(ConfigError, match=r"missing\.pem: cannot read the DKIM key"):
        load_dkim(key_path=tmp_path / "missing.pem", selector="mail", domain="example.org")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError, match=r"garbage\.pem: not a usable RSA private key"):
        load_dkim(key_path=garbage, selector="mail", domain="example.org")
    garbage.write_text("-----BEGIN PRIVATE KEY-----\n!!!x\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError, match=r"garbage\.pem: not a usable RSA private key"):
        load_dkim(key_path=garbage, selector="mail", domain="example.org")
    with pytest.raises(ConfigError, match="dkim_selector"):
        load_dkim(key_path=key[0], selector="bad selector", domain="example.org")
    with pytest.raises(ConfigError, match="dkim_domain"):
        load_dkim(key_path=key[0], selector="mail", domain="example.org\r\nX: y")


def test_configured_key_signs_what_the_pipeline_builds(
    project: Project, key: tuple[Path, bytes], tmp_path: Path
) -> None:
    project.write_config(
        extra=f"email:\n  dkim_key_path: {key[0]}\n  dkim_selector: mail\n"
        "  feedback_id: daily:brief:digest\n"
    )
    check = project.cli("check")
    assert check.exit_code == 0, check.output
    assert "dkim: signing as mail._domainkey.news.example.org" in check.output
    assert project.cli("build").exit_code == 0
    out = tmp_path / "preview"
    result = project.cli("preview", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    data = (out / "edition-1.eml").read_bytes()
    msg = parse_clean(data)
    assert msg["Feedback-ID"] == "daily:brief:digest"
    assert dkim.verify(data, dnsfunc=dns_for(key[1]))


def test_dkim_config_errors_name_the_file(project: Project, tmp_path: Path) -> None:
    project.write_config(extra="email:\n  dkim_key_path: nokey.pem\n")
    result = project.cli("check")
    assert result.exit_code == 1
    assert "digest.yaml:" in result.output
    assert "dkim_selector" in result.output
    project.write_config(extra="email:\n  dkim_key_path: nokey.pem\n  dkim_selector: mail\n")
    result = project.cli("check")
    assert result.exit_code == 1
    assert f"{project.root / 'nokey.pem'}: cannot read the DKIM key" in result.output


def test_every_kind_of_message_is_signed(project: Project, key: tuple[Path, bytes]) -> None:
    """Confirmations, proofs, notices and sign-in links verify, like the editions."""
    project.write_config(
        extra=f"email:\n  dkim_key_path: {key[0]}\n  dkim_selector: mail\n"
        + EDITORS
        + "signup:\n  enabled: true\n"
    )
    assert project.cli("build").exit_code == 0  # proofs to both editors
    assert project.cli("approve", "1", "--by", "Rosa Diaz").exit_code == 0
    assert project.cli("send", "1").exit_code == 0  # editions, then the "sent" notice
    app = App(project.config)
    try:
        readers = app.readers.pages({"DIGEST_SECRET": SECRET})
        assert readers.sign_up(email="new@example.com", name="N", topics=[], ip="") == "mailed"
        with (
            BackgroundServer(create_app(app, environ={"DIGEST_SECRET": SECRET})) as server,
            loopback_client(server.url, follow_redirects=False) as http,
        ):
            sign_in_by_link(http, "rosa@news.example.org")
    finally:
        app.close()
    kinds: dict[str, int] = {}
    for envelope in memory.outbox:
        msg = parse_clean(envelope.data)
        kind = (
            "proof"
            if msg["X-Digest-Proof"]
            else "notice"
            if msg["X-Digest-Notice"]
            else "confirmation"
            if str(msg["Subject"]).startswith("Confirm your subscription")
            else "sign-in"
            if str(msg["Subject"]).startswith("Sign in to")
            else "edition"
        )
        kinds[kind] = kinds.get(kind, 0) + 1
        assert len(msg.get_all("DKIM-Signature") or []) == 1, kind  # signed once, not twice
        assert dkim.verify(envelope.data, dnsfunc=dns_for(key[1])), kind
    assert kinds.keys() == {"proof", "notice", "confirmation", "sign-in", "edition"}, kinds
