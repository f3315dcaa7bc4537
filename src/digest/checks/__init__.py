"""`digest check`: everything a send depends on, validated without sending anything.

Each problem is one line naming the file:line (or the key) and the fix. Settings are
checked first (checks.settings), then the state database (checks.state), then the
templates through Jinja and MJML (checks.templates), then, unless offline, the network:
the SMTP backend is contacted (connect, EHLO, STARTTLS, AUTH, QUIT) and every source
fetched once (checks.network).
"""

from __future__ import annotations

from collections.abc import Sequence

from digest.app import App
from digest.checks.base import Problem, Report, Where
from digest.checks.network import check_backend, fetch_sources
from digest.checks.settings import check_schedule, check_settings, check_topics
from digest.checks.state import check_state
from digest.checks.templates import check_templates_render
from digest.config import Settings
from digest.models import RenderedEdition, Story
from digest.render.preflight import Finding, preflight

__all__ = ["Problem", "Report", "check_edition", "edition_findings", "run_checks"]


def run_checks(app: App, *, offline: bool = False) -> Report:
    """Every check; configuration and subscriber files that do not load raise at once."""
    settings = app.settings
    report = Report()
    where = Where.of(settings.path)
    report.ok(f"config: {settings.path} is valid")
    report.ok(f"subscribers: {app.readers.count_file()} in {settings.subscribers_path}")
    sources = app.context.sources()
    report.ok(f"sources: {len(sources)} ({', '.join(s.name for s in sources)})")
    check_settings(app, where, report)
    check_state(app, where, report)
    check_schedule(app, where, report)
    check_templates_render(app, edition_findings, report)
    sections: set[str] | None = None
    if offline:
        report.ok("network: skipped (--offline): the SMTP backend and the sources were not tried")
    else:
        check_backend(app, where, report)
        sections = fetch_sources(app, where, report)
    check_topics(app, where, report, fetched=sections)
    return report


def edition_findings(
    settings: Settings, rendered: RenderedEdition, stories: Sequence[Story]
) -> list[Finding]:
    """Preflight one rendered edition with the config's postal address and HTML budget."""
    return preflight(
        rendered,
        stories=stories,
        postal_address=settings.publication.postal_address,
        html_budget=settings.email.html_budget,
    )


def check_edition(app: App, edition_id: int) -> list[Finding]:
    """Preflight a stored edition (`digest check EDITION`)."""
    edition = app.store.get_edition(edition_id)
    return edition_findings(app.settings, edition.rendered, edition.stories)
