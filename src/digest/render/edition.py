"""Render an edition once: subject, preheader, MJML -> HTML, CSS inlining, text part."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import jinja2
import jinja2.sandbox
import mjml

from digest.exceptions import RenderError
from digest.models import Publication, RenderedEdition, Story
from digest.render import placeholders
from digest.render.dates import date_label
from digest.render.fit import Fitted, fit_to_budget
from digest.render.frame import (
    DEFAULT_SUBJECT,
    LAYOUTS,
    TOC_SIZE,
    Frame,
    Pictures,
    byline,
    coverage_links,
    direction,
    fit,
    short_headline,
)
from digest.render.links import add_utm, expand_utm

HTML_TEMPLATE = "digest.mjml.j2"
TEXT_TEMPLATE = "digest.txt.j2"
SUBJECT_MAX = 200


@dataclass(frozen=True, slots=True)
class Section:
    """Stories sharing a section, in ranked order; ``title`` may be empty."""

    title: str
    stories: tuple[Story, ...]


def group_sections(stories: Sequence[Story]) -> tuple[Section, ...]:
    """Group stories by section in order of first appearance, keeping their order."""
    groups: dict[str, list[Story]] = {}
    for story in stories:
        groups.setdefault(story.section, []).append(story)
    return tuple(Section(title=t, stories=tuple(s)) for t, s in groups.items())


def today_list(lead: Story, sections: Sequence[Section]) -> tuple[Story, ...]:
    """ "In today's edition": the lead and the top story of each section, in running order,
    so every section shows; without sections (or one), the first TOC_SIZE stories, which
    are the best-scored events in the order the edition runs them."""
    if sum(1 for section in sections if section.stories) > 1:
        return (lead, *(section.stories[0] for section in sections if section.stories))
    return (lead, *(s for section in sections for s in section.stories))[:TOC_SIZE]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _where(exc: BaseException, fallback: str) -> str:
    name = getattr(exc, "filename", None) or getattr(exc, "name", None) or fallback
    line = getattr(exc, "lineno", None)
    if line is None:
        # Runtime errors carry the template position only in the traceback.
        tb = exc.__traceback__
        while tb is not None:
            code = tb.tb_frame.f_code
            if code.co_filename.endswith(".j2") or code.co_filename == "<template>":
                name, line = code.co_filename, tb.tb_lineno
            tb = tb.tb_next
    return f"{name}:{line}" if line is not None else str(name)


def _render_string(source: str, what: str, context: Mapping[str, Any]) -> str:
    env = _context_env()
    try:
        return _one_line(env.from_string(source).render(context))
    except jinja2.TemplateError as exc:
        raise RenderError(f"{what} template {source!r}: {exc}; fix the setting") from exc


def _render_file(env: jinja2.Environment, name: str, context: Mapping[str, Any]) -> str:
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"template {exc.name} not found; add it to the templates folder") from exc
    except jinja2.TemplateError as exc:
        message = getattr(exc, "message", None) or str(exc)
        raise RenderError(f"{_where(exc, name)}: {_one_line(message)}; fix the template") from exc


def compile_mjml(source: str) -> str:
    """MJML -> HTML with mjml-python; no web fonts are linked (privacy, no remote fetch)."""
    try:
        return mjml.mjml2html(source, fonts={})
    except (ValueError, RuntimeError) as exc:
        raise RenderError(
            f"{HTML_TEMPLATE}: MJML does not compile: {exc}; fix the template"
        ) from exc


# MJML's reset block (table/td mso-* spacing) is already applied where needed; inlining it
# again on every cell would add ~15 KB to a 15-story edition.
_MJML_RESET = re.compile(r"<style(?= type=\"text/css\">\s*#outlook a)")
# Our own shared classes (templates/_styles.mjml.j2 opens its block with this comment) stay
# in <style> for the clients that support it, instead of being copied onto every element.
_SHARED = re.compile(r"<style(?= type=\"text/css\">\s*/\*\s*shared\s*\*/)")


def inline_css(html: str) -> str:
    """Inline CSS once per variant; style blocks (media queries, dark mode) are kept."""
    import premailer  # on first use: ~28 MB (with cssutils) that a sending process never needs

    html = _MJML_RESET.sub('<style data-premailer="ignore"', html)
    html = _SHARED.sub('<style data-premailer="ignore"', html)
    # cssutils warns for every mso-/-webkit- property; those are intended for mail clients.
    logging.getLogger("CSSUTILS").setLevel(logging.CRITICAL)
    try:
        out: str = premailer.Premailer(
            html,
            keep_style_tags=True,
            strip_important=False,
            disable_validation=True,
            allow_network=False,
            disable_link_rewrites=True,
            # MJML sets pixel widths on images; premailer would rewrite them to "100%".
            disable_basic_attributes=["width", "height"],
            cssutils_logging_level=logging.CRITICAL,
        ).transform(pretty_print=False)
    except Exception as exc:  # premailer surfaces lxml/cssutils errors of many types
        raise RenderError(f"CSS inlining failed: {exc}; check the mj-style blocks") from exc
    # lxml drops a lowercase doctype; mail clients need it for standards mode.
    if not out.lstrip().lower().startswith("<!doctype"):
        out = "<!doctype html>\n" + out
    return out


def _context_env() -> jinja2.sandbox.SandboxedEnvironment:
    env = jinja2.sandbox.SandboxedEnvironment(autoescape=False, undefined=jinja2.StrictUndefined)
    env.filters["fit"] = fit
    env.filters["short_headline"] = short_headline
    return env


def render_fitted(
    env: jinja2.Environment,
    *,
    stories: Sequence[Story],
    publication: Publication,
    edition_date: date,
    subject_template: str = DEFAULT_SUBJECT,
    preheader_template: str = "{{ lead.teaser }}",
    extra: Mapping[str, Any] | None = None,
    utm: Mapping[str, str] | None = None,
    frame: Frame | None = None,
    marker: str | None = None,
) -> Fitted:
    """Render one edition variant within ``frame.html_budget``; the first story is the lead.

    ``extra`` reaches the templates as ``extra`` (``extra.thin_day`` shows a short note,
    ``extra.note`` is this edition's editor's note); ``utm`` parameters (``{date}`` is the
    edition date) are added to every story link. The per-recipient placeholders are spelled
    with ``marker`` (None: a fresh random one, see render.placeholders; golden files pass
    their own).
    """
    if not stories:
        raise RenderError(f"edition of {edition_date.isoformat()} has no stories; nothing to send")
    frame = frame or Frame()
    if frame.layout not in LAYOUTS:
        raise RenderError(f"unknown layout {frame.layout!r}; use one of {', '.join(LAYOUTS)}")
    if utm:
        params = expand_utm(utm, edition_date)
        stories = [replace(s, url=add_utm(s.url, params)) for s in stories]
    extra = {"thin_day": False, **(extra or {})}
    note = str(extra.get("note") or frame.editor_note).strip()
    base: dict[str, Any] = {
        "publication": publication,
        "edition_date": edition_date,
        "date_label": date_label(edition_date),
        "lead": stories[0],
        "stories": tuple(stories),
        "extra": extra,
    }
    # An editor's subject for this edition (extra.subject) is taken as written, not as a
    # template; extra.note, their intro paragraph, is the frame's note for this edition.
    override = _one_line(str(extra.get("subject") or ""))
    subject = override or _render_string(subject_template, "subject", base)
    if len(subject) > SUBJECT_MAX:
        subject = subject[: SUBJECT_MAX - 1].rstrip() + "…"
    preheader = _render_string(preheader_template, "preheader", base)
    pictures = Pictures(frame, stories)
    marker = placeholders.new_marker() if marker is None else marker
    recipient = placeholders.recipient_tokens(marker)
    archive_url = frame.archive_link(edition_date)
    if archive_url == placeholders.VIEW_URL:  # the configured default: the reader's own link
        archive_url = recipient.view_url

    def once(full: int, more: int) -> RenderedEdition:
        shown = tuple(stories[:full])
        sections = group_sections(shown[1:])
        context = {
            **base,
            "stories": shown,
            "sections": sections,
            "more": tuple(stories[full : full + more]),
            "toc": today_list(shown[0], sections),
            "subject": subject,
            "preheader": preheader,
            "recipient": recipient,
            "frame": frame,
            "layout": frame.layout,
            "note": note,
            "picture": pictures,
            "anchor": pictures.anchor,
            "direction": direction,
            "byline": byline,
            "coverage": coverage_links,
            "archive_url": archive_url,
        }
        html = inline_css(compile_mjml(_render_file(env, HTML_TEMPLATE, context)))
        text = _render_file(env, TEXT_TEMPLATE, context)
        if not text.endswith("\n"):
            text += "\n"
        return RenderedEdition(subject, preheader, html, text, marker)

    return fit_to_budget(once, stories, frame.html_budget)


def render_edition(
    env: jinja2.Environment,
    *,
    stories: Sequence[Story],
    publication: Publication,
    edition_date: date,
    subject_template: str = DEFAULT_SUBJECT,
    preheader_template: str = "{{ lead.teaser }}",
    extra: Mapping[str, Any] | None = None,
    utm: Mapping[str, str] | None = None,
    frame: Frame | None = None,
    marker: str | None = None,
) -> RenderedEdition:
    """render_fitted without the report: the rendered edition only."""
    return render_fitted(
        env,
        stories=stories,
        publication=publication,
        edition_date=edition_date,
        subject_template=subject_template,
        preheader_template=preheader_template,
        extra=extra,
        utm=utm,
        frame=frame,
        marker=marker,
    ).rendered
