"""Write an edition (stored, or planned now without storing) as one subscriber would get it."""

from __future__ import annotations

from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from digest.app import App
from digest.exceptions import DigestError
from digest.models import Edition, EditionState, Subscriber
from digest.pipeline import make_fetcher, plan_edition
from digest.store import Store


@dataclass(slots=True)
class PreviewResult:
    files: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    note: str = ""


def write_preview(
    app: App, edition_id: int | None, *, email: str | None, out_dir: Path | None
) -> PreviewResult:
    settings = app.settings
    subscriber = _pick_subscriber(app, email)
    result = PreviewResult()
    if edition_id is not None:
        edition = app.store.get_edition(edition_id)
        stem = f"edition-{edition.id}"
    else:
        # Nothing may be written to the state file here, so it is opened read-only, and a
        # missing one is not created.
        store = Store.open_readonly(settings.state_path)
        try:
            with make_fetcher(settings) as fetcher:
                plan = plan_edition(settings, store=store, fetcher=fetcher, now=app.now())
        finally:
            store.close()
        result.warnings.extend(plan.warnings)
        edition = Edition(
            id=0, slot=plan.slot, state=EditionState.DRAFT, revision=0,
            stories=tuple(plan.stories), rendered=plan.rendered, created_at=app.now(),
            content_hash=plan.rendered.content_hash,
        )  # fmt: skip
        stem = "preview"
    maker = app.personaliser(edition, signer_required=False)
    if maker.signer is None:
        result.note = (
            f"note: {settings.secret_env} is not set, so the unsubscribe link is a placeholder"
        )
    data = maker.envelope(subscriber, now=app.now()).data
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
    subscribers = app.subscribers
    if email is None:
        return subscribers[0] if subscribers else Subscriber(email="reader@example.org")
    for s in subscribers:
        if s.email.lower() == email.lower():
            return s
    raise DigestError(f"{email} is not in {app.settings.subscribers_path}; pick a subscriber")
