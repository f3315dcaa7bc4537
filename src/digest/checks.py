"""`digest check`: validate everything a send depends on, without sending anything."""

from __future__ import annotations

from digest.app import App
from digest.pipeline import make_sources
from digest.render.environment import check_templates, make_environment


def run_checks(app: App) -> list[str]:
    """One line per thing checked; the first problem raises a DigestError naming it."""
    settings = app.settings
    lines = [f"config: {settings.path} is valid"]
    subscribers = app.subscribers
    lines.append(f"subscribers: {len(subscribers)} in {settings.subscribers_path}")
    sources = make_sources(settings)
    lines.append(f"sources: {len(sources)} ({', '.join(s.name for s in sources)})")
    env = make_environment(settings.templates_dir)
    check_templates(env)
    where = settings.templates_dir or "the built-in templates"
    lines.append(f"templates: compile cleanly ({where})")
    app.backend()
    lines.append(f"backend: {settings.backend.name} accepts its options")
    signer = app.signer(required=False)
    lines.append(
        f"secret: {settings.secret_env} is set"
        if signer
        else f"secret: {settings.secret_env} is NOT set; `digest send` will refuse to run"
    )
    return lines
