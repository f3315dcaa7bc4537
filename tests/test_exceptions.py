"""One exception tree: every exception class of digest lives in digest.exceptions, drawn."""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import pkgutil
import re

import digest
import digest.exceptions

from conftest import ROOT

PACKAGE = ROOT / "src" / "digest"


def exception_classes() -> dict[str, type[BaseException]]:
    """Every exception class defined at module level anywhere in digest, by qualified name."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(digest.__path__, "digest."):
        if info.name == "digest.__main__":
            continue  # importing it runs the CLI
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == info.name
            ):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


def nested_exception_classes() -> list[str]:
    """Classes defined inside a function or class that derive from a known exception."""
    known = {n for n, o in vars(builtins).items() if inspect.isclass(o)}
    known = {n for n in known if issubclass(getattr(builtins, n), BaseException)}
    known |= {n for n, o in vars(digest.exceptions).items() if inspect.isclass(o)}
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and id(node) not in top:
                bases = {
                    b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases
                }
                if bases & known:
                    out.append(f"{path.relative_to(PACKAGE)}: {node.name}")
    return out


def drawn_tree(doc: str) -> dict[str, str | None]:
    """{class: its parent} as the docstring draws it; a root's parent is None."""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []  # (column of the name, name)
    for line in doc.splitlines():
        match = re.match(r"^([ │├└─]*)([A-Z]\w*)(\s|$)", line)
        if not match:
            continue
        if "─" not in match.group(1) and line.strip() != match.group(2):
            continue  # prose, or a continuation line; a root stands alone on its line
        column = len(match.group(1))
        while stack and stack[-1][0] >= column:
            stack.pop()
        name = match.group(2)
        parents[name] = stack[-1][1] if stack and column else None
        stack.append((column, name))
    return parents


def test_the_tree_reader_reads_a_drawing() -> None:
    doc = "Intro Text.\n\nA\n├── B      b\n│   └── C  c\n└── D\n\nE\n└── F\n"
    assert drawn_tree(doc) == {"A": None, "B": "A", "C": "B", "D": "A", "E": None, "F": "E"}


def test_every_exception_class_is_defined_in_exceptions_py() -> None:
    classes = exception_classes()
    assert "digest.exceptions.InDoubtFailure" in classes  # the walk sees the tree itself
    elsewhere = sorted(name for name in classes if not name.startswith("digest.exceptions."))
    assert elsewhere == [], "move these to src/digest/exceptions.py"
    assert nested_exception_classes() == [], "define these in src/digest/exceptions.py"


def test_the_docstring_draws_every_exception_class_under_its_parent() -> None:
    drawn = drawn_tree(digest.exceptions.__doc__ or "")
    classes = [
        obj for name, obj in exception_classes().items() if name.startswith("digest.exceptions.")
    ]
    assert len(classes) > 15
    for cls in classes:
        assert cls.__name__ in drawn, f"{cls.__name__} is not drawn in the tree"
        base = cls.__bases__[0]
        want = None if base is Exception and cls.__name__ == "DigestError" else base.__name__
        assert drawn[cls.__name__] == want, f"{cls.__name__} is drawn under {drawn[cls.__name__]}"
    assert set(drawn) == {c.__name__ for c in classes} | {"Exception"}
