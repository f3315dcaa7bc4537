"""The shape of the code: no import cycles, small modules, one home for the store and its SQL."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import digest

from conftest import ROOT

PACKAGE = ROOT / "src" / "digest"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def imports_of(name: str, path: Path) -> set[str]:
    """Every digest module ``name`` imports, at module level or inside a function.

    ``from a import b`` counts as importing ``a.b`` when that is a module, else ``a``.
    """
    out: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in MODULES else base)
    return {m for m in out if m in MODULES and m != name}


def _graph() -> dict[str, set[str]]:
    return {name: imports_of(name, path) for name, path in MODULES.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path a -> b -> ... -> a, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a"}}) is None
    source = "def f():\n    from digest.app import App\n"
    probe = PACKAGE / "store" / "_probe_for_test.py"
    probe.write_text(source, encoding="utf-8")
    try:
        assert "digest.app" in imports_of("digest.store._probe_for_test", probe)
    finally:
        probe.unlink()


def test_no_import_cycle_between_modules() -> None:
    cycle = find_cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


# Data flows one way: a module never imports from a layer above it.
LAYERS = [
    ("digest.__main__", "digest.testing"),
    (
        "digest.cli",
        "digest.web",
        "digest.demo",
        "digest.preview",
        "digest.checks",
        "digest.schedule.tick",
        "digest.schedule.runner",
    ),
    ("digest.app",),
    ("digest.pipeline", "digest.workflow", "digest.proofs", "digest.notices", "digest.delivery"),
]


def _layer(module: str) -> int:
    if module == "digest":
        return -1  # the public API re-exports from every layer
    for i, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    return len(LAYERS)  # the core and the stores


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_from_a_layer_above_it(module: str) -> None:
    above = [m for m in imports_of(module, MODULES[module]) if _layer(m) < _layer(module)]
    assert not above, f"{module} imports {above}, which sit above it"


def test_one_metadata_and_no_sql_outside_the_store() -> None:
    sql = re.compile(r"""["'](?:SELECT|INSERT|UPDATE|DELETE|CREATE|PRAGMA|BEGIN)\s""")
    metadata, queries, builders = [], [], []
    for name, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        if "MetaData(" in text:
            metadata.append(name)
        if name.startswith("digest.store"):
            continue
        raw_sql = re.search(r"(?<![\w.])text\(|exec_driver_sql|\.execute\(\s*[\"']", text)
        if sql.search(text) or raw_sql:
            queries.append(name)
        if re.search(r"(?<![\w.])(insert|update|delete|select)\(\w+\)", text):
            builders.append(name)
    assert metadata == ["digest.store.tables"]
    assert queries == []
    assert builders == []


def test_one_function_writes_edition_state() -> None:
    writers = {n for n, p in MODULES.items() if "update(editions)" in p.read_text("utf-8")}
    assert writers == {"digest.store.repository"}
    callers = {n for n, p in MODULES.items() if "write_transition(" in p.read_text("utf-8")}
    assert callers == {"digest.store.repository", "digest.approval"}


def test_modules_are_small_and_documented() -> None:
    for name, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        assert text.startswith('"""'), f"{name} must open with a one-line docstring"
        assert len(text.splitlines()) <= 500, f"{name} is over 500 lines: split it"


def test_public_api_is_sorted_and_importable() -> None:
    assert digest.__all__ == sorted(digest.__all__)
    for name in digest.__all__:
        assert getattr(digest, name) is not None, name
    assert digest.Store.__module__ == "digest.store.repository"
    with pytest.raises(AttributeError):
        _ = digest.nothing_here
