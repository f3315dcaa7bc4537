"""`digest check`: validate everything a send depends on, without sending anything."""

from __future__ import annotations

from collections.abc import Sequence

from digest.app import App
from digest.config import Settings
from digest.exceptions import DigestError
from digest.models import RenderedEdition, Story
from digest.render.environment import check_templates
from digest.render.preflight import Finding, has_errors, preflight
from digest.render.sample import sample_stories


def run_checks(app: App) -> list[str]:
    """One line per thing checked; the first problem raises a DigestError naming it."""
    settings = app.settings
    lines = [f"config: {settings.path} is valid"]
    lines.append(f"subscribers: {app.count_subscribers()} in {settings.subscribers_path}")
    sources = app.sources()
    lines.append(f"sources: {len(sources)} ({', '.join(s.name for s in sources)})")
    check_templates(app.renderer.env)
    where = settings.templates_dir or "the built-in templates"
    lines.append(f"templates: compile cleanly ({where})")
    # Rendering a sample edition finds undefined variables (file:line) and template-level
    # preflight errors such as a missing unsubscribe link, before any edition is built.
    stories = sample_stories(app.now())
    for thin_day in (False, True):
        rendered = app.renderer.render(stories, now=app.now(), extra={"thin_day": thin_day})
    findings = edition_findings(settings, rendered, stories)
    if has_errors(findings):
        first = next(f for f in findings if f.level == "error")
        raise DigestError(f"templates ({where}): sample edition fails preflight: {first.message}")
    lines.append("templates: the sample edition renders and passes preflight")
    lines.extend(f"templates: {f}" for f in findings)
    if app.dkim is not None:
        lines.append(f"dkim: signing as {app.dkim.dns_name} (publish the public key there)")
    app.backend()
    lines.append(f"backend: {settings.backend.name} accepts its options")
    signer = app.signer(required=False)
    lines.append(
        f"secret: {settings.secret_env} is set"
        if signer
        else f"secret: {settings.secret_env} is NOT set; `digest send` will refuse to run"
    )
    return lines


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
