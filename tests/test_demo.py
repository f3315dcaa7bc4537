"""The bundled example: `digest demo` runs one unattended cycle, offline, in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from email import policy
from email.parser import BytesParser
from pathlib import Path

from conftest import ROOT


def _copy_example(tmp_path: Path) -> Path:
    for name in ("digest.example.yaml", "subscribers.example.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    return tmp_path


def _run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    return subprocess.run(
        [sys.executable, "-m", "digest", *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_demo_runs_a_full_cycle(tmp_path: Path) -> None:
    root = _copy_example(tmp_path)
    result = _run(root, "--config", "digest.example.yaml", "demo")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "approved automatically" in out
    assert "throwaway key" in out
    assert "sent 4" in out
    maildir = root / ".digest" / "outbox" / "new"
    files = sorted(maildir.iterdir())
    assert len(files) == 4
    recipients = set()
    for path in files:
        msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        assert not msg.defects
        recipients.add(msg["To"].addresses[0].addr_spec)
    assert "anna@example.org" in recipients
    assert (root / ".digest" / "preview" / "edition-1.html").exists()
    assert str(maildir.parent) in out

    # A second run starts from a fresh state and delivers again.
    again = _run(root, "--config", "digest.example.yaml", "demo")
    assert again.returncode == 0, again.stderr
    assert len(list(maildir.iterdir())) == 8


def test_demo_refuses_smtp_backend(tmp_path: Path) -> None:
    root = _copy_example(tmp_path)
    config = root / "digest.example.yaml"
    config.write_text(config.read_text().replace("name: outbox ", "name: smtp   "))
    result = _run(root, "--config", "digest.example.yaml", "demo")
    assert result.returncode == 1
    assert "never sends real mail" in result.stderr


def test_demo_keeps_its_own_state_and_never_deletes_anothers(tmp_path: Path) -> None:
    root = _copy_example(tmp_path)
    assert _run(root, "--config", "digest.example.yaml", "build").returncode in (0, 1)
    real = root / ".digest" / "example.db"
    # The newsroom's own state file (with its suppressions) is never the demo's.
    real.parent.mkdir(parents=True, exist_ok=True)
    if not real.exists():
        assert _run(root, "--config", "digest.example.yaml", "status").returncode == 0
    before = real.read_bytes()
    result = _run(root, "--config", "digest.example.yaml", "demo")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo-example.db" in result.stdout
    assert real.read_bytes() == before
    assert (root / ".digest" / "demo-example.db").exists()
    # A file the demo did not make, where its own would be, is refused, not deleted.
    foreign = root / ".digest" / "demo-example.db"
    foreign.unlink()
    for extra in ("-wal", "-shm"):
        Path(f"{foreign}{extra}").unlink(missing_ok=True)
    shutil.copy(real, foreign)
    refused = _run(root, "--config", "digest.example.yaml", "demo")
    assert refused.returncode == 1
    assert "was not made by `digest demo`" in refused.stderr
    assert foreign.exists()
