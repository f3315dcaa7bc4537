"""What a check reports: problems (error or warning) naming file:line or a key, and the fix."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from digest.config.yamlsrc import Located, load_yaml
from digest.exceptions import ConfigError

Level = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing that would fail later: where (file:line or key) and what to do."""

    level: Level
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.where}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"level": self.level, "where": self.where, "message": self.message}


@dataclass(slots=True)
class Report:
    """The lines that passed and the problems found, in the order they were checked."""

    lines: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def ok(self, line: str) -> None:
        self.lines.append(line)

    def error(self, where: str, message: str) -> None:
        self.problems.append(Problem("error", where, message))

    def warning(self, where: str, message: str) -> None:
        self.problems.append(Problem("warning", where, message))

    def raised(self, exc: ConfigError, fallback: str) -> None:
        """A ConfigError from a lower layer: it already names its file:line when it can."""
        text = str(exc)
        if exc.file is not None:
            where = f"{exc.file}:{exc.line}" if exc.line is not None else exc.file
            self.error(where, text.removeprefix(f"{where}: "))
        else:
            self.error(fallback, text)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.errors,
            "checked": self.lines,
            "problems": [p.to_dict() for p in self.problems],
        }


@dataclass(frozen=True, slots=True)
class Where:
    """Turns a config key path into "digest.yaml:12" (or the dotted key if not written)."""

    doc: Located | None
    file: str

    @classmethod
    def of(cls, path: Path) -> Where:
        try:
            return cls(load_yaml(path), str(path))
        except ConfigError:
            return cls(None, str(path))

    def __call__(self, *path: str | int) -> str:
        if self.doc is None or tuple(path) not in self.doc.lines:
            return key_name(*path)  # not written in the file: its default is the problem
        return f"{self.file}:{self.doc.lines[tuple(path)]}"

    def written(self, *path: str | int) -> bool:
        return self.doc is not None and tuple(path) in self.doc.lines


def key_name(*path: str | int) -> str:
    """("sources", 2, "url") -> "sources[2].url"."""
    return ".".join(f"[{p}]" if isinstance(p, int) else p for p in path).replace(".[", "[")


def line_of(path: Path, needle: str) -> str:
    """``path:line`` of the first line holding ``needle`` (case-insensitive), else ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return str(path)
    low = needle.lower()
    for number, line in enumerate(text.splitlines(), 1):
        if low in line.lower():
            return f"{path}:{number}"
    return str(path)


def names(values: Iterable[str]) -> str:
    return ", ".join(sorted(values)) or "none"
