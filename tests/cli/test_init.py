"""First run: `digest init [DIR]` writes a newsroom's files and says what to run next, and
the README's "A newsroom's day" block works verbatim against a local feed server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from email import message_from_bytes, policy
from pathlib import Path

import yaml

from digest.config import load_settings
from digest.testing.http import FixtureServer

from conftest import FIXTURES, NOW, ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def newsroom_block() -> str:
    section = README.split("### A newsroom's day", 1)[1]
    return section.split("```sh\n", 1)[1].split("\n```", 1)[0]


def test_init_writes_a_commented_config_of_its_own(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from digest.cli import cli

    target = tmp_path / "room"
    result = CliRunner().invoke(
        cli,
        [
            "init",
            str(target),
            "--feed",
            "https://a.example/x.rss",
            "--editor",
            "Rosa Diaz <rosa@a.example>",
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in target.iterdir()) == [
        ".env.example",
        "digest.yaml",
        "subscribers.yaml",
    ]
    lines = result.stdout.splitlines()
    assert lines[1] == "add your readers to subscribers.yaml, then run:"
    assert [line.split(". ", 1)[0].strip() for line in lines[2:]] == ["1", "2", "3"]
    assert lines[2].endswith(f"cd {target}")
    assert "export DIGEST_SECRET=$(python3 -c" in lines[3]
    assert lines[4].endswith("digest check")
    text = (target / "digest.yaml").read_text()
    assert text.count("# ") >= 10  # commented
    settings = load_settings(target / "digest.yaml")
    assert settings.state_path == target / ".digest" / "digest.db"
    assert not settings.approval.auto_approve
    assert [e.email for e in settings.approval.editors] == ["rosa@a.example"]
    assert [s.url for s in settings.sources] == ["https://a.example/x.rss"]
    assert not settings.sources[0].allow_private
    env = (target / ".env.example").read_text()
    for variable in ("DIGEST_SECRET=''", "password_hash_env", "# DIGEST_PASSWORD_ROSA=''"):
        assert variable in env
    assert yaml.safe_load((target / "subscribers.yaml").read_text()) == {"subscribers": None}
    again = CliRunner().invoke(cli, ["init", str(target)])
    assert again.exit_code == 1
    assert "exist(s); keep them, or pass --force" in again.output
    assert CliRunner().invoke(cli, ["init", str(target), "--force"]).exit_code == 0


def test_the_readme_newsroom_block_runs_verbatim(tmp_path: Path) -> None:
    with FixtureServer(FIXTURES / "e2e") as feeds:
        # The third feed of the block; the fixture server answers any path it is given.
        feeds.route(
            "/sport.rss",
            (FIXTURES / "e2e" / "later.rss").read_bytes(),
            headers={"Content-Type": "application/rss+xml"},
        )
        (tmp_path / ".venv").symlink_to(Path(sys.prefix))
        dropped = ("DISPLAY", "WAYLAND_DISPLAY")  # no browser: --open prints the path
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DIGEST_", "VIRTUAL_ENV")) and k not in dropped
        }
        env.update(FEEDS=feeds.base_url, DIGEST_NOW=NOW)
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", newsroom_block()],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "check passed; nothing was sent" in result.stdout
    assert "edition 1 built for slot 2026-11-24T07:00" in result.stdout
    assert "no browser to open here (no display); open file://" in result.stderr
    assert "edition 1 approved by Rosa Diaz" in result.stdout
    assert "edition 1 is sent: sent 5" in result.stdout
    outbox = tmp_path / "newsroom" / ".digest" / "outbox" / "new"
    recipients: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    for path in outbox.iterdir():
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        recipients[str(msg["To"]).rpartition("<")[2].rstrip(">")] += 1
        kinds["proof" if msg["X-Digest-Proof"] else msg["X-Digest-Notice"] or "reader"] += 1
    assert kinds == {"reader": 5, "proof": 1, "sent": 1}
    assert recipients["anna@example.org"] == 1
    assert recipients["rosa@herald.example.org"] == 3  # reader, proof, "finished" notice
    # The newsroom has its own state, and the repository's example is untouched.
    assert (tmp_path / "newsroom" / ".digest" / "digest.db").exists()
