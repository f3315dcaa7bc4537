"""The network half of `digest check` (skipped with --offline): the backend is contacted as
a send would (SMTP: connect, EHLO, STARTTLS, AUTH, QUIT) and every source fetched once."""

from __future__ import annotations

import os

from digest.app import App
from digest.checks.base import Report, Where
from digest.collect import collect
from digest.exceptions import BackendError, ConfigError
from digest.http import Fetcher


def check_backend(app: App, where: Where, report: Report) -> None:
    name = app.settings.backend.name
    if any(p.where.startswith(where("backend")) for p in report.errors):
        return  # its options or login variables are wrong already: trying adds nothing
    options = app.settings.backend.options
    if name == "smtp" and any(
        isinstance(options.get(o), str) and not os.environ.get(str(options[o]))
        for o in ("username_env", "password_env")
    ):
        return  # reported by checks.settings, with the variable's name
    try:
        backend = app.context.backend()
        with backend:  # open() connects and logs in; close() says QUIT
            pass
    except (BackendError, ConfigError) as exc:
        report.error(where("backend"), f"backend {name!r} cannot be used: {exc}")
        return
    address = getattr(backend, "address", "")
    report.ok(f"backend: {name} {address} answered".replace("  ", " "))


def fetch_sources(app: App, where: Where, report: Report) -> set[str]:
    """Fetch each source once (nothing is cached or recorded); the sections seen."""
    sources = app.context.sources()
    settings = app.settings
    with Fetcher(settings=settings.fetch) as fetcher:
        result = collect(sources, fetcher, now=app.now(), max_workers=settings.fetch.concurrency)
    index = {s.name: i for i, s in enumerate(settings.sources)}
    problems = dict(w.removeprefix("source ").split(": ", 1) for w in result.warnings)
    for name in result.failed:
        report.error(
            where("sources", index[name], "url"),
            f"source {name!r} cannot be fetched: {problems.get(name, 'failed')}; fix its "
            "url or remove it",
        )
    count = len(sources) - len(result.failed)
    report.ok(f"sources: {count} of {len(sources)} fetched, {len(result.stories)} stories")
    return {s.section for s in result.stories if s.section}
