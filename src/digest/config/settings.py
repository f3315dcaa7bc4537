"""The config's sections as frozen dataclasses; each field is a key (see digest.schema).

Sections owned by a lower layer live there and are only assembled here: ``publication`` is
models.Publication, ``ranking`` is rank.RankingSettings, ``fetch`` is http.FetchSettings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Any

from digest.http import FetchSettings
from digest.models import Publication
from digest.rank.settings import RankingSettings
from digest.render.frame import DEFAULT_SUBJECT
from digest.schema import internal, setting

DEFAULT_CONFIG = "digest.yaml"
TimeOfDay = time  # ScheduleSettings has a property named ``time``


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """One entry of ``sources``."""

    name: str = setting(doc="Unique name, shown in warnings.")
    url: str = setting(doc="The source's http(s) URL.")
    kind: str = setting("feed", "feed, jsonfeed, page, auto or a plug-in's kind.")
    weight: float = setting(1.0, "Multiplies the source's scores.")
    section: str = setting("", "Section for every story of this source.")
    max_items: int = setting(20, "At most this many stories from the source.")
    allow_private: bool = setting(False, "Allow loopback and private addresses.")
    include: tuple[str, ...] = setting((), "Keep only stories matching these patterns.")
    exclude: tuple[str, ...] = setting((), "Drop stories matching these patterns.")
    options: Mapping[str, Any] = setting(doc="Options of the source kind.", factory=dict)


@dataclass(frozen=True, slots=True)
class EmailSettings:
    """The ``email`` section: what every message looks like and carries."""

    subject: str = setting(DEFAULT_SUBJECT, "Subject template (cut to 60 characters).")
    preheader: str = setting("{{ lead.teaser }}", "Preheader template.")
    teaser_length: int = setting(300, "Teasers are cut to this length.")
    unsubscribe_mailto: str = setting("", "Optional mailto: for List-Unsubscribe.")
    headers: Mapping[str, str] = setting(doc="Extra headers for every message.", factory=dict)
    utm: Mapping[str, str] = setting(doc="UTM parameters added to story links.", factory=dict)
    feedback_id: str = setting("", "A Feedback-ID header.")
    dkim_key_path: Path | None = setting(None, "PEM key that DKIM-signs.", accepts=(str,))
    dkim_selector: str = setting("", "The DKIM selector.")
    dkim_domain: str = setting("", "The DKIM d= domain.")
    html_budget: int = setting(100_000, "Bytes of HTML; fitted at build (Gmail clips ~102 KB).")
    layout: str = setting("cards", "cards or briefing.")
    greeting: str = setting("first_name", 'first_name ("Hello, Anna!") or none.')
    editor_note: str = setting("", "An editor's note atop every edition.")
    logo: Path | None = setting(None, "Masthead logo file.", accepts=(str,))
    logo_dark: Path | None = setting(None, "Logo for dark mode (needs logo).", accepts=(str,))
    archive_url: str = setting("", '"View in browser" URL; {date} is the edition date.')
    preferences_url: str = setting("", '"Manage preferences" URL.')
    signup_url: str = setting("", '"Forwarded this? Subscribe" URL.')
    return_path_domain: str = setting(
        "", "Per-message return path bounces+TOKEN@DOMAIN (VERP); empty: the sender."
    )


@dataclass(frozen=True, slots=True)
class ImagesSettings:
    """``images``: own (fetch, resize, store, serve at ``base_url``) or hotlink originals."""

    mode: str = setting("own", "own or hotlink.")
    base_url: str = setting("", "Where images are served (default: publication.base_url/img).")
    dir: Path | None = setting(None, "Also write each image here (static host).", accepts=(str,))
    max_bytes: int = setting(5_000_000, "Largest image accepted.")
    max_pixels: int = setting(40_000_000, "Largest image accepted, in pixels, before decoding.")


@dataclass(frozen=True, slots=True)
class BackendSettings:
    """The ``backend`` section: which delivery backend, with its own options."""

    name: str = setting("outbox", "smtp, outbox, console, memory, discard or a plug-in.")
    options: Mapping[str, Any] = setting(doc="The backend's options.", factory=dict)


@dataclass(frozen=True, slots=True)
class WarmupSettings:
    """``send.warmup``: a daily cap for a new sending domain that grows day by day."""

    start_date: str = setting("", "YYYY-MM-DD, day 1 of the warm-up; empty: no warm-up.")
    first_day: int = setting(50, "Messages allowed on day 1.")
    growth: float = setting(1.5, "Each day's cap is the day before's times this.")
    schedule: tuple[int, ...] = setting((), "Caps per day instead, e.g. [50, 100, 250].")
    target: int = setting(0, "The warm-up ends once a day's cap reaches this (0: never).")


def warmup_cap(warmup: WarmupSettings, day: date) -> int | None:
    """How many messages may go out on ``day`` (a UTC date); None when no cap applies
    (no warm-up, or it is over). Days before ``start_date`` count as day 1."""
    if not warmup.start_date:
        return None
    n = max(0, (day - date.fromisoformat(warmup.start_date)).days)
    if warmup.schedule:
        return warmup.schedule[n] if n < len(warmup.schedule) else None
    cap = warmup.first_day * warmup.growth**n
    if warmup.target and cap >= warmup.target:
        return None
    return int(min(cap, 2**31))


@dataclass(frozen=True, slots=True)
class SendSettings:
    """How the engine sends (digest.delivery); limits of 0 mean unlimited."""

    connections: int = setting(4, "Connections used at once.")
    in_doubt: str = setting("resend", "Rows an interrupted run left in flight: resend or skip.")
    rate_per_second: int = setting(0, "At most this many messages in any second.")
    window_messages: int = setting(0, "At most this many messages per window_seconds.")
    window_seconds: float = setting(3600.0, "The rolling window of window_messages.")
    retry_base_seconds: float = setting(30.0, "First retry delay; doubles each attempt.")
    retry_max_seconds: float = setting(900.0, "Longest retry delay.")
    retry_in_run_seconds: float = setting(600.0, "How long one run waits for deferred rows.")
    host_failures: int = setting(
        3, "Timeouts or refused connections in a row before a run stops trying a host."
    )
    retry_deadline_hours: float = setting(24.0, "Rows still failing this long fail as expired.")
    lock_ttl_seconds: float = setting(60.0, "Lease of the send lock and of worker claims.")
    db_retry_seconds: float = setting(60.0, "How long a sender waits for a database gone away.")
    domain_limits: Mapping[str, str] = setting(
        doc='Recipient domain -> "N/s|min|h|day" (key default: every other domain).',
        factory=dict,
    )
    warmup: WarmupSettings = setting(doc="A growing daily cap.", factory=WarmupSettings)


_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}


def parse_rate(text: str) -> tuple[int, float]:
    """``"600/min"`` -> (600, 60.0); also ``"100/30s"``, ``"5000/h"``. ValueError if not."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d*\.?\d*)\s*([a-z]+?)s?\s*", str(text).lower())
    if not match or match.group(3) not in _UNITS or int(match.group(1)) < 1:
        raise ValueError(f"{text!r} is not a rate like 600/min, 100/30s, 5000/h or 20000/day")
    every = float(match.group(2)) if match.group(2) else 1.0
    if every <= 0:
        raise ValueError(f"{text!r}: the period must be positive")
    return int(match.group(1)), every * _UNITS[match.group(3)]


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """The ``retention`` section: how long the delivery ledger is kept (`digest prune`)."""

    deliveries_days: int = setting(90, "Ledger rows of finished editions are kept this long.")


@dataclass(frozen=True, slots=True)
class ImapSettings:
    """``bounces.imap``: an IMAP mailbox the return path delivers to, read by every tick."""

    host: str = setting(doc="The IMAP server.")
    user: str = setting(doc="The login name.")
    # The name of an environment variable, not a secret.
    password_env: str = setting(doc="Variable holding the password.")
    port: int = setting(993, "993 for implicit TLS, 143 for STARTTLS.")
    security: str = setting("tls", "tls (implicit) or starttls; never unencrypted.")
    folder: str = setting("INBOX", "The folder bounces arrive in.")
    done_folder: str = setting("digest-done", "Where read messages are moved (made if missing).")
    ca_file: Path | None = setting(
        None, "PEM file of CAs to trust instead of the system's.", accepts=(str,)
    )


@dataclass(frozen=True, slots=True)
class BounceSettings:
    """The ``bounces`` section: when soft bounces suppress an address (`digest bounces`)."""

    soft_limit: int = setting(3, "Soft bounces within the window that suppress an address.")
    soft_window_days: int = setting(30, "The window, in days, that soft bounces are counted in.")
    maildir: Path | None = setting(
        None, "A Maildir the return path delivers to; tick reads its new mail.", accepts=(str,)
    )
    imap: ImapSettings | None = setting(None, "An IMAP mailbox the return path delivers to.")
    complaint_alert: float = setting(0.001, "Complaints per sent message that alert editors.")
    hard_bounce_alert: float = setting(0.02, "Hard bounces per sent message that alert editors.")
    sns_topics: tuple[str, ...] = setting(
        (), "SNS topic ARNs whose SES notices /hooks/ses takes (empty: off)."
    )
    postmark_auth_env: str = setting(
        "", "Variable holding user:password of /hooks/postmark's Basic auth (empty: off)."
    )
    mailgun_key_env: str = setting(
        "", "Variable holding the Mailgun webhook signing key for /hooks/mailgun (empty: off)."
    )
    sendgrid_public_key: str = setting(
        "", "SendGrid's event webhook verification key, base64, for /hooks/sendgrid (empty: off)."
    )


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """One entry of ``webhooks``: a receiver of Standard Webhooks."""

    url: str = setting(doc="The receiver's http(s) URL.")
    secret_env: str = setting(doc="Variable holding its whsec_ secret.")
    events: tuple[str, ...] = setting((), "Events it gets (empty: all of them).")
    allow_private: bool = setting(False, "Allow loopback and private addresses.")


@dataclass(frozen=True, slots=True)
class ScheduleSettings:
    """The ``schedule`` section: slots, waves, lateness, quiet hours."""

    times: tuple[TimeOfDay, ...] = setting(
        (time(7, 0),), "Send time HH:MM, or a list of them.", accepts=(str, list), key="time"
    )
    timezone: str = setting("", "IANA zone of the send time (default: the publication's).")
    days: frozenset[int] = setting(frozenset(range(7)), "Days with an edition.", accepts=(str,))
    lead_minutes: int = setting(60, "Build this long before sending.")
    max_lateness_minutes: int = setting(120, "A slot is sent at most this late.")
    deliver_at: str = setting("", '"local" or "HH:MM local": per-zone waves.')
    quiet_hours: tuple[TimeOfDay, TimeOfDay] | None = setting(
        None, '"HH:MM-HH:MM": nothing is sent then.', accepts=(str,)
    )
    tick_seconds: int = setting(60, "How often `digest run` checks what is due.")

    @property
    def time(self) -> TimeOfDay:
        """The first send time of the day."""
        return self.times[0]

    @property
    def local_delivery(self) -> bool:
        """Each reader gets the edition at the send time in their own zone."""
        return bool(self.deliver_at)


@dataclass(frozen=True, slots=True)
class EditorSettings:
    """One entry of ``approval.editors``."""

    name: str = setting(doc="The editor's name.")
    email: str = setting(doc="The editor's address.")
    # The name of an environment variable, not a secret.
    password_hash_env: str = setting("", "Variable holding this editor's password hash.")


@dataclass(frozen=True, slots=True)
class ApprovalSettings:
    """The ``approval`` section: who approves, how many, by when."""

    auto_approve: bool = setting(False, "Approve every built edition at once.")
    editors: tuple[EditorSettings, ...] = setting((), "Who gets proofs and may approve.")
    approvals_needed: int = setting(1, "Approvals by different editors needed.")
    deadline_minutes: int = setting(0, "The deadline, this long before the send time.")
    at_deadline: str = setting("skip", "A pending edition at the deadline: skip or send.")
    link_hours: float = setting(24.0, "Proof links expire after this many hours.")
    test_sends_per_hour: int = setting(10, "Test e-mails one editor may send per hour.")


NOTICE_EVENTS = (
    "expired",
    "sent",
    "stopped",
    "missed",
    "wave_skipped",
    "proof_failed",
    "source_failing",
    "subscribers_broken",
    "halted",
    "bounce_alert",
)


@dataclass(frozen=True, slots=True)
class NoticeSettings:
    """The ``notices`` section: which events are mailed to whom, through the backend."""

    events: tuple[str, ...] = setting(NOTICE_EVENTS, "Events mailed to the editors.")
    to: tuple[str, ...] = setting((), "Addresses of the notices (default: the editors).")
    backend: BackendSettings | None = setting(
        None, "A second backend (name, options) for notices when the mail backend fails."
    )


@dataclass(frozen=True, slots=True)
class SignupSettings:
    """The ``signup`` section: the readers' sign-up form, with double opt-in."""

    enabled: bool = setting(False, "Serve the sign-up form at /subscribe.")
    topics: tuple[str, ...] = setting((), "Topics offered (default: the configured sections).")
    redirect_url: str = setting("", "Where the browser goes after signing up.")
    allowed_origins: tuple[str, ...] = setting((), "Other sites whose pages may post the form.")
    per_client: int = setting(5, "Sign-ups per IPv4 address or IPv6 /64 per window.")
    per_address: int = setting(3, "Sign-ups for one e-mail address per window.")
    per_form: int = setting(300, "Sign-ups for the whole form per window.")
    window_minutes: int = setting(10, "The window of the sign-up limits, in minutes.")
    check_deliverability: bool = setting(
        False, "Ask DNS whether a new address's domain takes mail."
    )


@dataclass(frozen=True, slots=True)
class ArchiveSettings:
    """The ``archive`` section: the sent editions on the web."""

    public: bool = setting(True, "Anyone may read the archive (false: editors and links).")


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole validated configuration. Relative paths are resolved against the file."""

    publication: Publication = setting(doc="Who publishes the digest.")
    sources: tuple[SourceSettings, ...] = setting(doc="Where stories come from.")
    path: Path = internal(Path(DEFAULT_CONFIG))
    subscribers_path: Path = setting(
        Path("subscribers.yaml"), "The subscriber file.", accepts=(str,), key="subscribers"
    )
    subscribers_sync: str = setting("", "mirror or add (default: mirror; add with sign-up).")
    signup: SignupSettings = setting(doc="The sign-up form.", factory=SignupSettings)
    archive: ArchiveSettings = setting(doc="The web archive.", factory=ArchiveSettings)
    ranking: RankingSettings = setting(doc="How stories are chosen.", factory=RankingSettings)
    email: EmailSettings = setting(doc="What messages look like.", factory=EmailSettings)
    backend: BackendSettings = setting(doc="How messages leave.", factory=BackendSettings)
    send: SendSettings = setting(doc="How the engine sends.", factory=SendSettings)
    fetch: FetchSettings = setting(doc="Limits for fetching sources.", factory=FetchSettings)
    schedule: ScheduleSettings = setting(doc="When editions are made.", factory=ScheduleSettings)
    approval: ApprovalSettings = setting(doc="Who approves.", factory=ApprovalSettings)
    images: ImagesSettings = setting(doc="Story images.", factory=ImagesSettings)
    notices: NoticeSettings = setting(doc="Notices to the editors.", factory=NoticeSettings)
    retention: RetentionSettings = setting(doc="What is kept.", factory=RetentionSettings)
    bounces: BounceSettings = setting(doc="Bounce policy.", factory=BounceSettings)
    webhooks: tuple[WebhookSettings, ...] = setting((), "Outgoing webhooks (Standard Webhooks).")
    templates_dir: Path | None = setting(
        None, "Templates overriding the built-in ones.", accepts=(str,)
    )
    state_path: Path = setting(Path(".digest/digest.db"), "The SQLite state file.", accepts=(str,))
    state_url: str = setting("", "A database URL instead (postgresql+psycopg://...).")
    preview_dir: Path = setting(Path(".digest/preview"), "Where previews go.", accepts=(str,))
    secret_env: str = setting("DIGEST_SECRET", "Variable holding the signing key(s).")

    @property
    def sync_mode(self) -> str:
        """How the subscriber file is synchronised: ``mirror`` or ``add``."""
        return self.subscribers_sync or ("add" if self.signup.enabled else "mirror")

    @property
    def topics(self) -> tuple[str, ...]:
        """The topics a reader may choose: ``signup.topics``, else the configured sections."""
        if self.signup.topics:
            return self.signup.topics
        named = [*self.ranking.section_order, *(s.section for s in self.sources if s.section)]
        return tuple(dict.fromkeys(n for n in named if n))
