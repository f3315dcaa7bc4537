"""SpamAssassin (Debian's, local tests only) scores the default edition of each layout <= 0.5."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from digest.render.frame import LAYOUTS
from digest.testing.mail import parse_clean

from conftest import Project

FORBIDDEN = re.compile(r"MIME_HTML_ONLY|MISSING_MID|MPART_ALT_DIFF|HTML_IMAGE_ONLY_\w+")


def built_message(project: Project, out: Path, layout: str) -> bytes:
    """A full message for one subscriber, built by the real pipeline (build + preview)."""
    project.write_config(
        extra=f"email:\n  layout: {layout}\n  feedback_id: daily:brief:digest\n"
        "  unsubscribe_mailto: mailto:unsubscribe@news.example.org\n"
    )
    result = project.cli("build")
    assert result.exit_code == 0, result.output
    result = project.cli("preview", "1", "--subscriber", "anna@example.org", "--out", str(out))
    assert result.exit_code == 0, result.output
    return (out / "edition-1.eml").read_bytes()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_spamassassin_scores_the_digest_at_most_half_a_point(
    project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str], layout: str
) -> None:
    program = shutil.which("spamassassin")
    if program is None:
        pytest.fail("spamassassin is missing: install Debian's spamassassin (.ci/run does)")
    data = built_message(project, tmp_path / "preview", layout)
    parse_clean(data)
    home = tmp_path / "home"
    home.mkdir()
    run = subprocess.run(
        [program, "-L", "-t"],
        input=data,
        capture_output=True,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        timeout=120,
        check=False,
    )
    assert run.returncode in (0, 1), run.stderr.decode(errors="replace")
    head = run.stdout.decode("utf-8", errors="replace").split("\n\n", 1)[0]
    found = re.search(r"^X-Spam-Status: (.*(?:\n[ \t].*)*)", head, re.MULTILINE)
    assert found, head
    status = re.sub(r",\s+", ",", " ".join(found.group(1).split()))
    match = re.search(r"score=(-?[\d.]+) .*tests=(\S*)", status)
    assert match, status
    score, tests = float(match.group(1)), match.group(2).split(",")
    with capsys.disabled():
        print(f"\nSpamAssassin score of the {layout} digest: {score} (tests: {', '.join(tests)})")
    assert score <= 0.5, f"SpamAssassin score {score} > 0.5: {status}"
    hits = [t for t in tests if FORBIDDEN.fullmatch(t)]
    assert hits == [], f"forbidden SpamAssassin rules hit: {hits} ({status})"
    assert "HTML_MESSAGE" in tests  # the report really describes our multipart message
