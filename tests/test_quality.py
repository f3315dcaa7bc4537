"""Lint and type checks run as part of the suite, so CI enforces them too."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.parametrize(
    "args",
    [
        ["ruff", "format", "--check", "src", "tests", "benchmarks"],
        ["ruff", "check", "src", "tests", "benchmarks"],
        ["mypy"],
    ],
    ids=["ruff-format", "ruff-check", "mypy-strict"],
)
def test_tool_is_clean(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_modules_have_docstrings_and_stay_small() -> None:
    for path in sorted((ROOT / "src" / "digest").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert text.startswith('"""'), f"{path} must open with a one-line docstring"
        assert len(text.splitlines()) <= 500, f"{path} is over 500 lines: split it"
