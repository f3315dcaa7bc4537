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


# Data flows one way: a package never imports from a layer above it. Every package (a
# subpackage or a top-level module of digest) has a layer, so a new one must be placed here.
LAYERS: list[tuple[str, ...]] = [
    ("digest.__main__", "digest.testing"),
    # people and clocks
    (
        "digest.cli",
        "digest.web",
        "digest.demo",
        "digest.preview",
        "digest.checks",
        "digest.schedule",
    ),
    ("digest.app",),  # wiring
    ("digest.pipeline", "digest.workflow", "digest.proofs", "digest.notices", "digest.delivery"),
    # the core: pure ranking, rendering and the lifecycle, fetching, the readers' rules
    (
        "digest.added",
        "digest.approval",
        "digest.collect",
        "digest.config",
        "digest.deliverability",
        "digest.edits",
        "digest.images",
        "digest.normalize",
        "digest.rank",
        "digest.render",
        "digest.scaffold",
        "digest.sources",
        "digest.subscribers",
    ),
    ("digest.store", "digest.backends"),
    # pure leaves, below everything that uses them
    (
        "digest.addresses",
        "digest.charsets",
        "digest.exceptions",
        "digest.gcpause",
        "digest.logline",
        "digest.http",
        "digest.isolate",
        "digest.models",
        "digest.netpin",
        "digest.passwords",
        "digest.reader_states",
        "digest.returnpath",
        "digest.schema",
        "digest.slots",
        "digest.tokens",
        "digest.version",
    ),
]


def package_of(module: str) -> str:
    """``digest.store.ledger`` -> ``digest.store``; a top-level module is its own package."""
    return ".".join(module.split(".")[:2])


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Which packages each package imports (through any of its modules)."""
    out: dict[str, set[str]] = {}
    for module, deps in graph.items():
        if module == "digest":
            continue  # the public API re-exports from every layer
        pkg = package_of(module)
        out.setdefault(pkg, set()).update(package_of(d) for d in deps)
        out[pkg].discard(pkg)
    for deps in list(out.values()):
        for dep in deps:
            out.setdefault(dep, set())
    return out


def layer_of(module: str, layers: list[tuple[str, ...]]) -> int | None:
    """The layer of ``module``'s package (0 is the top), or None when the table lacks it."""
    if module == "digest":
        return -1  # nothing may import the public API: it sits above everything
    pkg = package_of(module)
    return next((i for i, names in enumerate(layers) if pkg in names), None)


def unlayered(graph: dict[str, set[str]], layers: list[tuple[str, ...]]) -> list[str]:
    """Packages the layer table does not place."""
    return sorted(p for p in package_graph(graph) if layer_of(p, layers) is None)


def upward_imports(graph: dict[str, set[str]], layers: list[tuple[str, ...]]) -> list[str]:
    """Every import of a package in a higher layer, as "module -> imported module"."""
    found = []
    for module, deps in sorted(graph.items()):
        here = layer_of(module, layers)
        if module == "digest" or here is None:
            continue
        for dep in sorted(deps):
            there = layer_of(dep, layers)
            if there is not None and there < here:
                found.append(f"{module} -> {dep}")
    return found


def test_the_package_checks_find_a_package_cycle_and_an_upward_import() -> None:
    # No module cycle, but package a uses b (a.x -> b.y) and b uses a (b.z -> a.w).
    graph = {
        "digest.a.x": {"digest.b.y"},
        "digest.a.w": set(),
        "digest.b.y": set(),
        "digest.b.z": {"digest.a.w"},
    }
    assert find_cycle(graph) is None
    assert find_cycle(package_graph(graph)) in (
        ["digest.a", "digest.b", "digest.a"],
        ["digest.b", "digest.a", "digest.b"],
    )
    # A longer ring through a top-level module: a -> b -> c -> a.
    ring = {"digest.a.x": {"digest.b.y"}, "digest.b.y": {"digest.c"}, "digest.c": {"digest.a.w"}}
    assert find_cycle(package_graph(ring)) == ["digest.a", "digest.b", "digest.c", "digest.a"]
    assert find_cycle(package_graph({"digest.a.x": {"digest.b.y"}, "digest.b.y": set()})) is None
    layers = [("digest.top",), ("digest.low",)]
    upward = {"digest.low.m": {"digest.top.n", "digest.low.k"}, "digest.top.n": {"digest.low.k"}}
    assert upward_imports(upward, layers) == ["digest.low.m -> digest.top.n"]
    assert upward_imports({"digest.top.n": {"digest.low.k"}}, layers) == []
    assert unlayered({"digest.top.n": {"digest.elsewhere"}}, layers) == ["digest.elsewhere"]


def test_no_import_cycle_between_packages() -> None:
    cycle = find_cycle(package_graph(_graph()))
    assert cycle is None, "package import cycle: " + " -> ".join(cycle or [])


def test_every_package_has_a_layer() -> None:
    assert unlayered(_graph(), LAYERS) == [], "add these packages to LAYERS"
    listed = [name for names in LAYERS for name in names]
    assert sorted(listed) == sorted(set(listed)), "a package is in two layers"
    assert set(listed) <= set(package_graph(_graph())), "LAYERS names a package that is gone"


def test_no_package_imports_from_a_layer_above_it() -> None:
    assert upward_imports(_graph(), LAYERS) == []


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
    assert metadata == ["digest.store.columns"]  # the one MetaData every table uses
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
