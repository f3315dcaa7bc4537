"""Proofs: `digest build` mails each editor the edition, its warnings and signed review links."""

from __future__ import annotations

import json
import re
import textwrap
from email import message_from_bytes, policy
from email.message import EmailMessage

from digest.backends import memory
from digest.tokens import APPROVAL_SALT, Signer, read_approval_token

from conftest import BASE, EDITORS, SECRET, Clock, Project


def _proofs() -> dict[str, EmailMessage]:
    found = {}
    for envelope in memory.outbox:
        msg = message_from_bytes(envelope.data, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        if msg["X-Digest-Proof"]:
            found[envelope.recipient] = msg
    return found


def _parts(msg: EmailMessage) -> tuple[str, str]:
    text, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None
    assert html is not None
    return text.get_content(), html.get_content()


def _with_broken_source(project: Project) -> None:
    sources = textwrap.dedent(f"""\
        sources:
          - name: World Desk
            url: {project.feeds.url("/world.rss")}
            allow_private: true
          - name: Gone Gazette
            url: {project.feeds.url("/gone.rss")}
            allow_private: true
        """)
    project.write_config(extra=EDITORS, sources=sources)


def test_build_mails_each_editor_a_proof_with_warnings_and_links(project: Project) -> None:
    _with_broken_source(project)
    result = project.cli("build", "--json")
    assert result.exit_code == 0, result.output
    edition = json.loads(result.stdout)
    assert edition["warnings"], "the broken source should have produced a warning"
    proofs = _proofs()
    assert sorted(proofs) == ["rosa@news.example.org", "sam@news.example.org"]
    signer = Signer([SECRET], salt=APPROVAL_SALT, clock=Clock())
    for editor, msg in proofs.items():
        assert str(msg["Subject"]).startswith("[Proof r1] The Morning Brief: ")
        assert msg["X-Digest-Proof"] == "edition=1; revision=1"
        assert editor in str(msg["To"])
        text, html = _parts(msg)
        for warning in edition["warnings"]:
            assert warning in text
        assert "Gone Gazette" in html
        review = re.search(r"^Review: (\S+)", text, re.M)
        approve = re.search(r"^Approve: (\S+)", text, re.M)
        assert review
        assert approve
        assert review.group(1).startswith(f"{BASE}/e/1?t=")
        assert approve.group(1).startswith(f"{BASE}/e/1/approve?t=")
        assert review.group(1).replace("&", "&amp;") in html
        claim = read_approval_token(signer, review.group(1).split("t=", 1)[1], max_age=3600)
        assert (claim.edition_id, claim.revision, claim.editor) == (1, 1, editor)
        # The edition itself follows the banner, personalised for the editor.
        assert "Putin poaches the neighbors" in text
        assert "__DIGEST_" not in text + html
        assert "Approve by" in text


def test_a_failed_proof_is_a_warning_and_digest_proof_retries(project: Project) -> None:
    project.write_config("memory", {"fail_temporary": ["sam@news.example.org"]}, extra=EDITORS)
    result = project.cli("build")
    assert result.exit_code == 0, result.output
    assert "proof of edition 1 to sam@news.example.org" in result.stderr
    assert "digest proof 1" in result.stderr
    assert sorted(_proofs()) == ["rosa@news.example.org"]
    assert "state: pending_approval" in result.stdout
    failed = project.cli("proof", "1")
    assert failed.exit_code == 1
    project.write_config(extra=EDITORS)
    memory.clear()
    again = project.cli("proof", "1")
    assert again.exit_code == 0, again.output
    assert sorted(_proofs()) == ["rosa@news.example.org", "sam@news.example.org"]


def test_missing_secret_keeps_the_edition_and_says_so(project: Project) -> None:
    project.write_config(extra=EDITORS)
    result = project.cli("build", env={"DIGEST_SECRET": ""})
    assert result.exit_code == 0, result.output
    assert "proofs of edition 1 not sent: environment variable DIGEST_SECRET is not set" in (
        result.stderr
    )
    assert _proofs() == {}
    assert json.loads(project.cli("status", "1", "--json").stdout)["state"] == "pending_approval"


def test_an_edit_sends_new_proofs_for_the_new_revision(project: Project) -> None:
    project.write_config(extra=EDITORS)
    assert project.cli("build").exit_code == 0
    memory.clear()
    url = "https://tech.example.com/chips-power"
    assert project.cli("edit", "1", "--remove", url, "--by", "Sam Lee").exit_code == 0
    proofs = _proofs()
    assert sorted(proofs) == ["rosa@news.example.org", "sam@news.example.org"]
    for msg in proofs.values():
        assert str(msg["Subject"]).startswith("[Proof r2]")
        assert url not in _parts(msg)[0].split("-" * 60, 1)[1]


def test_no_proofs_without_editors(project: Project) -> None:
    assert project.cli("build").exit_code == 0
    assert _proofs() == {}
    result = project.cli("proof", "1")
    assert result.exit_code == 1
    assert "no approval.editors" in result.output


def test_no_proofs_when_auto_approved(project: Project) -> None:
    project.write_config(extra=EDITORS + "  auto_approve: true\n")
    result = project.cli("build")
    assert "approved automatically" in result.stdout
    assert _proofs() == {}
    refused = project.cli("proof", "1")
    assert refused.exit_code == 1
    assert "only a pending one is proofed" in refused.output


def test_an_editors_name_with_a_comma_stays_one_address(project: Project) -> None:
    editors = EDITORS.replace("name: Rosa Diaz", 'name: "O\'Brien, Seán"').replace(
        "name: Sam Lee", 'name: "Lee, Sam (desk) \\"SL\\""'
    )
    project.write_config(extra=editors)
    assert project.cli("build").exit_code == 0
    proofs = _proofs()
    for address, name in (
        ("rosa@news.example.org", "O'Brien, Seán"),
        ("sam@news.example.org", 'Lee, Sam (desk) "SL"'),
    ):
        [to] = proofs[address]["To"].addresses
        assert (to.display_name, to.addr_spec) == (name, address)
