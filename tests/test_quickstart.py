"""The README Quickstart's first command works verbatim on a fresh copy of the repository."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from test_docs import README

from conftest import ROOT


def _tracked_copy(dest: Path) -> None:
    # What a fresh clone holds: the committed and staged files, not local state or venvs.
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in listing:
        src = ROOT / name
        if src.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(src.read_bytes())


def test_quickstart_first_command(tmp_path: Path) -> None:
    quick = README.split("## Quickstart", 1)[1]
    first = quick.split("```sh\n", 1)[1].split("```", 1)[0].strip()
    repo = tmp_path / "digest"
    _tracked_copy(repo)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIGEST_", "VIRTUAL_ENV"))}
    result = subprocess.run(
        ["bash", "-c", first],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sent 4" in result.stdout
    assert len(list((repo / ".digest" / "outbox" / "new").iterdir())) == 4
