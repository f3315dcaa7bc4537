"""Templates checked as a send would use them: Jinja syntax, a sample edition through MJML
and CSS inlining, and preflight; a broken MJML override is named by its own file and line."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from digest.app import App
from digest.checks.base import Report
from digest.config import Settings
from digest.exceptions import ConfigError, RenderError
from digest.models import RenderedEdition, Story
from digest.render.environment import check_templates
from digest.render.preflight import Finding
from digest.render.sample import sample_stories

Findings = Callable[[Settings, RenderedEdition, Sequence[Story]], list[Finding]]

_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_TAG = re.compile(r"<!--.*?-->|<(/?)([A-Za-z][\w:.-]*)([^<>]*)>", re.DOTALL)
# HTML elements that never have a closing tag.
_VOID = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    }
)


# Every element MJML 4 defines. MRML, our compiler, passes an element it does not know
# through silently, so a typo (<mj-colum>) would only show as a broken layout in inboxes.
MJML_TAGS = frozenset(
    [
        "mjml",
        "mj-head",
        "mj-body",
        "mj-attributes",
        "mj-all",
        "mj-class",
        "mj-breakpoint",
        "mj-font",
        "mj-html-attributes",
        "mj-html-attribute",
        "mj-selector",
        "mj-preview",
        "mj-style",
        "mj-title",
        "mj-include",
        "mj-raw",
        "mj-accordion",
        "mj-accordion-element",
        "mj-accordion-title",
        "mj-accordion-text",
        "mj-button",
        "mj-carousel",
        "mj-carousel-image",
        "mj-column",
        "mj-divider",
        "mj-group",
        "mj-hero",
        "mj-image",
        "mj-navbar",
        "mj-navbar-link",
        "mj-section",
        "mj-social",
        "mj-social-element",
        "mj-spacer",
        "mj-table",
        "mj-text",
        "mj-wrapper",
    ]
)
_MJ_TAG = re.compile(r"<(mj-[\w.-]*|mjml[\w.-]+)", re.IGNORECASE)


def unknown_mjml(templates_dir: Path | None) -> list[tuple[str, str]]:
    """("file:line", tag) of every element in the MJML overrides that MJML does not define
    (Jinja blanked out, every branch checked)."""
    if templates_dir is None or not templates_dir.is_dir():
        return []
    found: list[tuple[str, str]] = []
    for path in sorted(templates_dir.glob("*.mjml.j2")):
        text = _JINJA.sub(lambda m: _blank(m.group()), path.read_text(encoding="utf-8"))
        for match in _MJ_TAG.finditer(text):
            if match.group(1).lower() not in MJML_TAGS:
                line = text.count("\n", 0, match.start()) + 1
                found.append((f"{path}:{line}", match.group(1)))
    return found


def check_templates_render(app: App, findings: Findings, report: Report) -> None:
    settings = app.settings
    where = str(settings.templates_dir) if settings.templates_dir else "the built-in templates"
    try:
        check_templates(app.context.renderer.env)
    except ConfigError as exc:
        report.raised(exc, where)
        return
    unknown = unknown_mjml(settings.templates_dir)
    for at, tag in unknown:
        report.error(
            at, f"<{tag}> is not an MJML element; fix the name (MJML would drop it silently)"
        )
    if unknown:
        return
    report.ok(f"templates: compile cleanly ({where})")
    # A sample edition finds undefined variables (file:line), markup MJML cannot compile
    # and template-level preflight errors (no unsubscribe link) before any edition is built.
    stories = sample_stories(app.now())
    try:
        for thin_day in (False, True):
            extra = {"thin_day": thin_day, "note": "A sample editor's note."}
            fit = app.context.renderer.fit(stories, now=app.now(), extra=extra)
    except RenderError as exc:
        located = mjml_culprit(settings.templates_dir) if "MJML" in str(exc) else None
        if located is not None:
            report.error(
                located[0], f"{located[1]} (MJML does not compile: {exc.__cause__ or exc})"
            )
        else:
            report.error(where, f"{exc}")
        return
    found = findings(settings, fit.rendered, list(fit.stories))
    for f in found:
        if f.level == "error":
            report.error(f"templates ({where})", f"the sample edition fails preflight: {f.message}")
        else:
            report.warning(f"templates ({where})", f.message)
    if not any(f.level == "error" for f in found):
        report.ok("templates: the sample edition renders through MJML and passes preflight")


def mjml_culprit(templates_dir: Path | None) -> tuple[str, str] | None:
    """("file:line", what is wrong) in the first override whose markup does not balance."""
    if templates_dir is None or not templates_dir.is_dir():
        return None
    files = sorted(templates_dir.glob("*.mjml.j2"), key=lambda p: (p.name == "digest.mjml.j2", p))
    for path in files:
        found = unbalanced(path.read_text(encoding="utf-8"))
        if found is not None:
            return f"{path}:{found[0]}", found[1]
    return None


_BLOCK = re.compile(r"\{%-?\s*(if|elif|else|endif|for|endfor)\b")


def _blank(text: str) -> str:
    return re.sub(r"[^\n]", " ", text)


def first_branches(source: str) -> str:
    """``source`` with every Jinja tag blanked and every ``elif``/``else`` branch blanked too
    (line numbers unchanged)."""
    out: list[str] = []
    frames: list[bool] = []  # per open if/for: are we in a branch that is blanked?
    position = 0
    for match in _JINJA.finditer(source):
        skipping = any(frames)
        chunk = source[position : match.start()]
        out.append(_blank(chunk) if skipping else chunk)
        block = _BLOCK.match(match.group())
        word = block.group(1) if block else ""
        if word in ("if", "for"):
            frames.append(False)
        elif word in ("elif", "else") and frames:
            frames[-1] = True
        elif word in ("endif", "endfor") and frames:
            frames.pop()
        out.append(_blank(match.group()))
        position = match.end()
    tail = source[position:]
    out.append(_blank(tail) if any(frames) else tail)
    return "".join(out)


def unbalanced(source: str) -> tuple[int, str] | None:
    """(line, problem) of the first tag that does not open and close properly, else None.

    Jinja tags are blanked out first (keeping the lines), and of each ``if``/``else`` only
    the first branch is kept, so the markup is checked as one way MJML could see it.
    """
    text = first_branches(source)
    stack: list[tuple[str, int]] = []
    for match in _TAG.finditer(text):
        if match.group(2) is None:
            continue  # a comment
        line = text.count("\n", 0, match.start()) + 1
        closing, name, rest = match.group(1), match.group(2).lower(), match.group(3)
        if rest.count('"') % 2 or rest.count("'") % 2:
            return line, f"<{name}> has an unclosed quote in its attributes"
        if closing:
            if not stack:
                return line, f"</{name}> closes nothing"
            top, opened = stack.pop()
            if top != name:
                return (
                    line,
                    f"</{name}> closes <{top}>, opened at line {opened}; close <{top}> first",
                )
        elif not rest.rstrip().endswith("/") and name not in _VOID:
            stack.append((name, line))
    if stack:
        name, opened = stack[-1]
        return opened, f"<{name}> is never closed"
    return None
