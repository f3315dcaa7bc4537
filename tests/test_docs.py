"""The README stays true: every CLI command, option and config key is documented."""

from __future__ import annotations

import itertools
from pathlib import Path

import click
import pytest

from digest.cli import cli
from digest.config import Settings
from digest.schema import documented_keys

from conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _config_keys() -> list[str]:
    """Every key of the one settings schema (digest.schema), as the README writes it."""
    return sorted(documented_keys(Settings))


@pytest.mark.parametrize("key", _config_keys())
def test_config_key_documented(key: str) -> None:
    assert f"| `{key}` |" in README, f"config key {key} is missing from the README table"


def _section(title: str) -> list[str]:
    lines = README.splitlines()
    start = lines.index(f"## {title}")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("## "))
    return lines[start:end]


def test_every_documented_key_exists() -> None:
    """No stale rows: a key removed from the schema leaves the table too."""
    keys = set(_config_keys())
    rows, in_table = [], False
    for line in _section("Configuration"):
        in_table = line.startswith("| key |") or (in_table and line.startswith("|"))
        if in_table and line.startswith("| `"):
            rows.append(line.split("|")[1].strip())
    stale = [row for row in rows if row.strip("`") not in keys]
    assert not stale, f"README documents keys that do not exist: {stale}"


def test_each_command_has_one_row() -> None:
    rows = [line for line in _section("CLI reference") if line.startswith("| `digest ")]
    # The command's words: "digest send EDITION ..." is send, "digest db upgrade" db upgrade.
    names = [
        " ".join(w for w in itertools.takewhile(str.islower, row.split("`")[1].split()[1:]))
        for row in rows
    ]
    twice = sorted({n for n in names if names.count(n) > 1})
    assert not twice, f"commands with more than one README row: {twice}"


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_command_documented(name: str) -> None:
    command = cli.commands[name]
    assert f"`digest {name}" in README, f"command {name} is missing from the CLI reference"
    row = next(line for line in README.splitlines() if line.startswith(f"| `digest {name}"))
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            longest = max(param.opts, key=len)
            if longest != "--help":
                assert longest in row, f"{name}: option {longest} is not in its README row"


def test_example_config_keys_are_all_valid(tmp_path: Path) -> None:
    from digest.config import load_settings

    settings = load_settings(ROOT / "digest.example.yaml")
    assert settings.approval.auto_approve
    assert settings.backend.name == "outbox"


def test_quickstart_has_two_commands() -> None:
    quick = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = [b.split("```", 1)[0].strip() for b in quick.split("```sh\n")[1:]]
    assert "digest.example.yaml demo" in blocks[0]
    # One entry point for the tests, and CI runs exactly it and nothing else.
    assert blocks[1] == "./test.sh"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    commands = [line for line in ci if line.strip() and not line.startswith("#")]
    assert commands == ["set -euo pipefail", 'cd "$(dirname "$0")/.."', "./test.sh"]
    script = (ROOT / "test.sh").read_text(encoding="utf-8")
    for package in (
        "chromium",
        "spamassassin",
        "openssl",
        "systemd",
        "postfix",
        "postgresql",
        "python3-venv",
    ):
        assert f"missing+=({package})" in script, f"test.sh does not install {package}"
    assert "apt-get install" in script
    assert "python3 -m venv .venv" in script
    assert "pip install -q -e '.[test]'" in script
    assert script.rstrip().endswith('exec .venv/bin/pytest -n 3 "$@"')
    assert (ROOT / "test.sh").stat().st_mode & 0o111, "test.sh must be executable"


def test_exit_codes_are_documented() -> None:
    reference = README.split("## CLI reference", 1)[1].split("\n## ", 1)[0]
    for code in ("0 on success", "1 on any error", "2 on a usage error", "3 on a thin day"):
        assert code in " ".join(reference.split())
