"""Output for people and scripts: help with examples, --json, exit codes 0/1/2/3, progress
per source on a terminal, `preview --open` without a display, `hash-password`, `serve`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from digest.cli import cli

from conftest import NOW, SECRET, Project, on_a_terminal

DATA_COMMANDS = [
    "approve",
    "build",
    "check",
    "collect",
    "edit",
    "hash-password",
    "init",
    "preview",
    "proof",
    "prune",
    "reject",
    "send",
    "sources",
    "status",
    "tick",
    "worker",
]


def _all_commands() -> list[tuple[str, click.Command]]:
    found = []
    for name, command in sorted(cli.commands.items()):
        found.append((name, command))
        if isinstance(command, click.Group):
            found += [(f"{name} {sub}", c) for sub, c in sorted(command.commands.items())]
    return found


@pytest.mark.parametrize(("name", "command"), _all_commands())
def test_every_command_has_help_with_an_example(name: str, command: click.Command) -> None:
    result = CliRunner().invoke(cli, [*name.split(), "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output, f"`digest {name} --help` has no example"


def test_the_top_level_help_documents_the_exit_codes() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert "Exit status: 0 ok, 1 error" in " ".join(result.output.split())
    assert "2 usage error" in " ".join(result.output.split())
    assert "3 thin day" in " ".join(result.output.split())


@pytest.mark.parametrize("name", DATA_COMMANDS)
def test_every_command_that_prints_data_has_json(name: str) -> None:
    options = {o for p in cli.commands[name].params for o in getattr(p, "opts", [])}
    assert "--json" in options
    assert "--json" in cli.commands["db"].commands["upgrade"].params[0].opts  # type: ignore[attr-defined]


def test_json_output_parses(project: Project) -> None:
    for args in (
        ["build", "--json"],
        ["approve", "1", "--by", "Rosa", "--json"],
        ["send", "1", "--json"],
        ["status", "--json"],
        ["status", "1", "--json"],
        ["sources", "--json"],
        ["tick", "--json"],
        ["check", "--offline", "--json"],
        ["preview", "1", "--json", "--out", str(project.root / "p")],
        ["db", "upgrade", "--json"],
    ):
        result = project.cli(*args)
        assert result.exit_code == 0, (args, result.output)
        json.loads(result.stdout)
    sent = json.loads(project.cli("send", "1", "--json").stdout)
    assert sent["state"] == "sent"
    assert sent["totals"] == {"sent": 3}


def test_exit_codes(project: Project) -> None:
    assert project.cli("status").exit_code == 0
    assert project.cli("approve", "42", "--by", "Rosa").exit_code == 1  # an error, one line
    usage = project.cli("build", "--no-such-option")
    assert usage.exit_code == 2
    assert "No such option" in usage.output
    assert project.cli("approve", "1").exit_code == 2  # --by is missing
    project.write_config(extra="ranking:\n  min_stories: 10\n  thin_day_policy: skip\n")
    thin = project.cli("build")
    assert thin.exit_code == 3
    assert "no edition built: thin day" in thin.stderr


def test_preview_open_without_a_display_prints_the_path(project: Project) -> None:
    out = project.root / "look"
    env = {"DISPLAY": "", "WAYLAND_DISPLAY": ""}
    result = project.cli("preview", "--open", "--out", str(out), env=env)
    assert result.exit_code == 0, result.output
    # Warnings (the fixtures' images are on an unreachable host) may come first.
    assert result.stderr.strip().splitlines()[-1] == (
        f"no browser to open here (no display); open {(out / 'preview.html').as_uri()}"
    )
    assert "xdg-open" not in result.output


def test_hash_password_says_how_to_set_it_safely(project: Project) -> None:
    from digest.passwords import check_password

    result = CliRunner().invoke(
        cli,
        ["--config", str(project.config), "hash-password"],
        input="correct horse battery\ncorrect horse battery\n",
    )
    assert result.exit_code == 0, result.output
    hashed = result.stdout.strip().splitlines()[-1]
    assert check_password("correct horse battery", hashed, env_name="X")
    assert f"export DIGEST_PASSWORD_ROSA='{hashed}'" in result.stderr
    assert "single quotes" in result.stderr
    # What the hint protects against: the shell expands $-words inside double quotes.
    mangled = subprocess.run(
        ["bash", "-c", f'X="{hashed}"; printf %s "$X"'], capture_output=True, text=True, check=True
    ).stdout
    kept = subprocess.run(
        ["bash", "-c", f"X='{hashed}'; printf %s \"$X\""],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert mangled != hashed
    assert kept == hashed


def _env(project: Project, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(DIGEST_SECRET=SECRET, DIGEST_NOW=NOW, DIGEST_CONFIG=str(project.config), **extra)
    return env


def test_serve_warns_when_no_sign_in_is_configured(project: Project) -> None:
    from digest.testing.smtp import free_port

    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", "serve", "--port", str(free_port())],
        env=_env(project),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert line.startswith("warning: no editor can sign in: list approval.editors")


def test_build_shows_each_source_as_it_is_fetched_on_a_terminal(project: Project) -> None:
    text = on_a_terminal(project, "build")
    assert "World Desk: 3 stories" in text
    assert "Tech Wire: 2 stories" in text
    assert "edition 1 built" in text
    # Not on a terminal (a pipe, cron): nothing but the result.
    piped = project.cli("build", env={"DIGEST_NOW": "2026-11-24T04:00:00+00:00"})
    assert "stories" in piped.stdout
    assert "World Desk:" not in piped.output


def test_collect_shows_progress_on_a_terminal(project: Project) -> None:
    text = on_a_terminal(project, "collect")
    assert "World Desk: 3 stories" in text
