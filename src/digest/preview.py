"""Write an edition (stored, or planned now without storing) as one subscriber would get it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from digest.app import App
from digest.checks import edition_findings
from digest.exceptions import DigestError
from digest.models import Candidate, Edition, EditionState, Subscriber, Variant
from digest.store import Store
from digest.store.subscribers import SubscriberStore


@dataclass(slots=True)
class PreviewResult:
    files: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    note: str = ""
    # Every ranked candidate with its factors and reason (`--explain`); empty if unknown.
    candidates: list[Candidate] = field(default_factory=list)


def write_preview(
    app: App,
    edition_id: int | None,
    *,
    email: str | None,
    out_dir: Path | None,
    order: Sequence[str] = (),
) -> PreviewResult:
    settings = app.settings
    subscriber = _pick_subscriber(app, email)
    result = PreviewResult()
    variants: list[Variant] = []
    if edition_id is not None:
        edition = app.store.get_edition(edition_id)
        stem = f"edition-{edition.id}"
        if order:
            raise DigestError("--order applies to what would be built now: drop EDITION")
        built = app.store.ranking(edition.id)
        result.candidates = built[0] if built else []
        variants = app.store.variants(edition)
    else:
        # Nothing may be written to the state file here: it is opened read-only, and a
        # missing one is not created. The subscriber's variant is rendered for this look.
        plan = app.editions.plan(order=order)
        result.warnings.extend(plan.warnings)
        result.candidates = plan.candidates
        edition = Edition(
            id=0,
            slot=plan.slot,
            state=EditionState.DRAFT,
            revision=0,
            stories=tuple(plan.stories),
            rendered=plan.rendered,
            created_at=app.now(),
            content_hash=plan.rendered.content_hash,
        )
        variants = app.context.renderer.variants(
            plan.stories, [subscriber.topics], now=app.now(), extra=plan.extra
        )
        stem = "preview"
    result.warnings.extend(
        f"preflight: {f}" for f in edition_findings(settings, edition.rendered, edition.stories)
    )
    if app.context.signer(required=False) is None:
        result.note = (
            f"note: {settings.secret_env} is not set, so the unsubscribe link is a placeholder"
        )
    # The subscriber's own topic variant, as the send engine would build it.
    store, own = _reading(app)
    try:
        with app.readers.footers(store) as about:
            compose = app.readers.composer(signer_required=False, about=about)
            made = compose(edition, variants)(subscriber, app.now())
    finally:
        if own:
            store.close()
    if made is None:
        raise DigestError(
            f"{subscriber.email} gets nothing from this edition: none of their topics "
            f"({', '.join(subscriber.topics)}) has a story; pick another --subscriber"
        )
    data = made[0].data
    out = out_dir or settings.preview_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
        message = message_from_bytes(data, policy=policy.default)
        html = message.get_body(("html",)) if isinstance(message, EmailMessage) else None
        text = message.get_body(("plain",)) if isinstance(message, EmailMessage) else None
        if html is None or text is None:
            raise DigestError("the built message lacks its HTML or text part; please report this")
        for kind, content in (("html", html.get_content()), ("text", text.get_content())):
            path = out / f"{stem}.{'txt' if kind == 'text' else kind}"
            path.write_text(content, encoding="utf-8")
            result.files[kind] = path
        eml = out / f"{stem}.eml"
        eml.write_bytes(data)
        result.files["eml"] = eml
    except OSError as exc:
        raise DigestError(f"{out}: cannot write the preview: {exc}") from exc
    return result


def _pick_subscriber(app: App, email: str | None) -> Subscriber:
    """The reader to preview as: from the state database, else from the subscriber file
    (not synchronised yet); the state file is only read."""
    store, own = _reading(app)
    try:
        subs = SubscriberStore(store)
        if email is None:
            first = next(iter(subs.receiving(now=app.now())), None)
            if first is not None:
                return first
        elif (record := subs.get(email)) is not None:
            return record.subscriber()
    finally:
        if own:
            store.close()
    for sub in app.readers.in_file():  # streamed: a million-line file is never held
        if email is None or sub.email.lower() == email.lower():
            return sub
    if email is None:
        return Subscriber(email="reader@example.org")
    raise DigestError(
        f"{email} is neither a subscriber nor in {app.settings.subscribers_path}; pick one"
    )


def _reading(app: App) -> tuple[Store, bool]:
    """The state file to read readers from, and whether the caller must close it: the file
    itself when it exists (a read-only immutable view would miss what is still in its
    write-ahead log), else an empty one, so a preview never creates a state file."""
    where = app.context.state_location()
    if isinstance(where, str) or where.exists():  # a database server, or an existing file
        return app.store, False
    return app.context.readonly_store(), True
