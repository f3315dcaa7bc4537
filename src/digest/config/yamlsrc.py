"""YAML reading that remembers the line of every value, so errors can name file:line."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from digest.exceptions import ConfigError

# One constructor for every scalar: building a loader per value is needlessly slow.
_CONSTRUCTOR = yaml.SafeLoader("")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True, slots=True)
class Located:
    """A parsed YAML document plus the line of every key path in it (1-based)."""

    file: str
    value: Any
    lines: dict[tuple[str | int, ...], int]

    def line(self, path: Sequence[str | int]) -> int | None:
        # Fall back to the nearest parent so an error always points somewhere useful.
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), None)

    def error(self, path: Sequence[str | int], message: str) -> ConfigError:
        return ConfigError(message, file=self.file, line=self.line(path))


def load_yaml(path: Path, *, interpolate: bool = True, hint: str = "") -> Located:
    """Parse ``path``; syntax errors become ConfigError with the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"file not found{hint}", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", file=str(path)) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"YAML syntax error: {problem}", file=str(path), line=line) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML error: {exc}", file=str(path)) from exc
    lines: dict[tuple[str | int, ...], int] = {}
    if node is None:
        return Located(str(path), None, {})
    value = _convert(node, (), lines, str(path), interpolate)
    return Located(str(path), value, lines)


def _convert(
    node: yaml.Node,
    path: tuple[str | int, ...],
    lines: dict[tuple[str | int, ...], int],
    file: str,
    interpolate: bool,
) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                raise ConfigError("keys must be plain strings", file=file, line=_line(key_node))
            if key in out:
                raise ConfigError(f"duplicate key {key!r}", file=file, line=_line(key_node))
            lines[(*path, key)] = _line(key_node)
            out[key] = _convert(value_node, (*path, key), lines, file, interpolate)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(item, (*path, i), lines, file, interpolate)
            for i, item in enumerate(node.value)
        ]
    value = _CONSTRUCTOR.construct_object(node)
    _CONSTRUCTOR.constructed_objects.clear()
    if interpolate and isinstance(value, str) and "${" in value:
        value = _interpolate(value, file, _line(node))
    return value


def _interpolate(value: str, file: str, line: int) -> str:
    def repl(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name)
        if found is not None and found != "":
            return found
        if default is not None:
            return default
        raise ConfigError(
            f"environment variable {name} is not set; set it or write ${{{name}:-default}}",
            file=file,
            line=line,
        )

    return _ENV.sub(repl, value)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1
