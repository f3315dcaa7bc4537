"""Bad input gets one clear line naming the file, line or source, and a non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import Project


def _one_line_error(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


def test_missing_config(tmp_path: Path, project: Project) -> None:
    missing = tmp_path / "nope.yaml"
    result = project.cli("--config", str(missing), "check")
    assert result.exit_code == 1
    line = _one_line_error(result.output)
    assert str(missing) in line
    assert "not found" in line


def test_yaml_syntax_error_names_file_and_line(project: Project) -> None:
    text = project.config.read_text().replace("  name: The Morning Brief", "  name: [unclosed")
    project.config.write_text(text)
    result = project.cli("check")
    assert result.exit_code == 1
    line = _one_line_error(result.output)
    assert f"{project.config}:" in line
    assert "YAML syntax error" in line


def test_unknown_key_names_line_and_suggests(project: Project) -> None:
    project.write_config(extra="rankng:\n  max_stories: 3\n")
    line_no = project.config.read_text().splitlines().index("rankng:") + 1
    result = project.cli("check")
    assert result.exit_code == 1
    line = _one_line_error(result.output)
    assert f"{project.config}:{line_no}:" in line
    assert "unknown key 'rankng'" in line
    assert "did you mean 'ranking'" in line


def test_negative_db_retry_seconds_is_named(project: Project) -> None:
    project.write_config(extra="send:\n  db_retry_seconds: -5\n")
    line_no = project.config.read_text().splitlines().index("  db_retry_seconds: -5") + 1
    result = project.cli("check")
    assert result.exit_code == 1
    line = _one_line_error(result.output)
    assert f"{project.config}:{line_no}:" in line
    assert "send.db_retry_seconds must not be negative" in line


def test_unquoted_time_is_explained(project: Project) -> None:
    project.write_config(extra="schedule:\n  time: 7:30\n")
    line = _one_line_error(project.cli("check").output)
    assert "put it in quotes" in line


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("  - email: not-an-address\n", "invalid email address 'not-an-address'"),
        (
            "  - email: anna@example.org\n",
            "duplicate subscriber anna@example.org (first at line 2)",
        ),
        ("  - email: x@example.org\n    nmae: X\n", "unknown key 'nmae'"),
        ("  - email: x@example.org\n    timezone: Mars/Olympus\n", "unknown time zone"),
    ],
)
def test_bad_subscriber_entries(project: Project, entry: str, message: str) -> None:
    path = project.root / "subscribers.yaml"
    path.write_text(path.read_text() + entry)
    bad_line = len(path.read_text().splitlines()) - entry.count("\n") + 1
    result = project.cli("check")
    assert result.exit_code == 1
    line = _one_line_error(result.output)
    assert f"{path}:" in line
    assert message in line
    assert f":{bad_line}:" in line or f":{bad_line + 1}:" in line


def test_unknown_backend_lists_valid_ones(project: Project) -> None:
    project.write_config("carrier-pigeon")
    result = project.cli("check")
    assert result.exit_code == 1
    line = _one_line_error(result.output)
    assert "unknown backend 'carrier-pigeon'" in line
    for name in ("console", "memory", "outbox", "smtp"):
        assert name in line


def test_unknown_backend_option_is_named(project: Project) -> None:
    project.write_config("smtp", {"hots": "localhost"})
    line = _one_line_error(project.cli("check").output)
    assert "hots" in line


def test_unreachable_source_warns_and_builds_from_the_others(project: Project) -> None:
    dead = "http://127.0.0.1:9/feed.xml"  # port 9 (discard) is closed on loopback
    project.write_config(
        sources=(
            "sources:\n"
            f"  - name: Dead Source\n    url: {dead}\n    allow_private: true\n"
            f"  - name: Tech Wire\n    url: {project.feeds.url('/tech.atom')}\n"
            "    allow_private: true\n"
        ),
        extra="fetch:\n  retries: 0\n  timeout: 2\n",
    )
    result = project.cli("build", "--json")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert any("Dead Source" in w for w in warnings), result.stderr
    data = json.loads(result.stdout)
    assert data["stories"] == 2
    assert any("Dead Source" in w for w in data["warnings"])


def test_all_sources_failing_is_an_error(project: Project) -> None:
    project.write_config(
        sources=(
            "sources:\n  - name: Gone\n    url: http://127.0.0.1:9/x\n    allow_private: true\n"
        ),
        extra="fetch:\n  retries: 0\n",
    )
    result = project.cli("build")
    assert result.exit_code == 1
    assert "Gone" in _one_line_error(result.output)


def test_private_address_refused_without_opt_in(project: Project) -> None:
    project.write_config(
        sources=f"sources:\n  - name: Local\n    url: {project.feeds.url('/world.rss')}\n",
    )
    result = project.cli("collect", "--json")
    assert result.exit_code == 1
    assert "Local" in result.stderr
    assert json.loads(result.stdout) == []


def test_unknown_edition(project: Project) -> None:
    result = project.cli("approve", "42", "--by", "Editor")
    assert result.exit_code == 1
    assert "edition 42 does not exist" in _one_line_error(result.output)


@pytest.mark.parametrize(
    ("csv", "message", "line"),
    [
        ("email,name\nok@example.org,A\nnot-an-address,B\n", "invalid email address", 3),
        ("email,name\na@example.org,A\nA@example.org,B\n", "duplicate subscriber", 3),
        ("mail,name\na@example.org,A\n", "CSV header must name email", 1),
        ("email,timezone\na@example.org,Mars/Base\n", "unknown time zone", 2),
    ],
)
def test_bad_csv_subscribers(project: Project, csv: str, message: str, line: int) -> None:
    path = project.root / "subscribers.csv"
    path.write_text(csv)
    project.config.write_text(
        project.config.read_text().replace("subscribers.yaml", "subscribers.csv")
    )
    result = project.cli("check")
    assert result.exit_code == 1
    error = _one_line_error(result.output)
    assert f"{path}:{line}:" in error
    assert message in error


def test_check_finds_a_duplicate_in_a_csv_by_line(project: Project) -> None:
    rows = "".join(f"reader{i}@example.org,,,\n" for i in range(50))
    (project.root / "subscribers.csv").write_text(
        "email,name,timezone,topics\n" + rows + "Reader7@Example.org,,,\n"
    )
    project.config.write_text(
        project.config.read_text().replace("subscribers.yaml", "subscribers.csv")
    )
    result = project.cli("check")
    assert result.exit_code == 1
    assert "subscribers.csv:52:" in result.output
    assert "duplicate subscriber Reader7@Example.org (first at line 9)" in result.output


def test_negative_host_failures_is_named(project: Project) -> None:
    project.write_config(extra="send:\n  host_failures: -1\n")
    result = project.cli("check")
    assert result.exit_code == 1
    assert "send.host_failures must not be negative" in _one_line_error(result.output)
