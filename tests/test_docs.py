"""The README stays true: every CLI command, option and config key is documented."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from digest.cli import cli
from digest.config import SCHEMA

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")

# Which README prefix documents each nested section of the config schema.
SECTION_PREFIX = {
    "publication": "publication.",
    "source": "sources[].",
    "ranking": "ranking.",
    "email": "email.",
    "backend": "backend.",
    "send": "send.",
    "fetch": "fetch.",
    "schedule": "schedule.",
    "approval": "approval.",
    "images": "images.",
}


def _config_keys() -> list[str]:
    keys = []
    for section, spec in SCHEMA.items():
        if section == "top":
            keys += [k for k in spec if k not in SECTION_PREFIX and k != "sources"]
            keys.append("sources")
        else:
            keys += [SECTION_PREFIX[section] + k for k in spec]
    return sorted(keys)


@pytest.mark.parametrize("key", _config_keys())
def test_config_key_documented(key: str) -> None:
    assert f"| `{key}` |" in README, f"config key {key} is missing from the README table"


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
    assert blocks[1].endswith("pytest")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert blocks[1] in ci.splitlines(), ".ci/run must run the README's test command verbatim"
