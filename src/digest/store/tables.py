"""Every table of the state database: ONE MetaData, one timestamp type.

The schema is versioned by the Alembic migrations in ``store/migrations``; a test checks
that migrating an empty database to the head gives exactly these tables.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+00:00"
"""The one stored form of a time: UTC, microseconds, so strings compare like the times."""


@functools.lru_cache(maxsize=1024)
def topics_text(topics: tuple[str, ...]) -> str:
    """The one stored form of a topic selection: a JSON list (cached: readers share a few)."""
    return json.dumps(list(topics), ensure_ascii=False)


@functools.lru_cache(maxsize=1024)
def topics_of(text: str) -> tuple[str, ...]:
    """The topic selection a ``topics_text`` value holds."""
    return tuple(json.loads(text))


def stamp(value: datetime) -> str:
    """``value`` in the stored form (aware times only)."""
    return value.astimezone(UTC).strftime(TIME_FORMAT)


class Timestamp(TypeDecorator[datetime]):
    """An aware datetime stored as fixed-format UTC text; ``""`` (never/none) reads as None.

    Text rather than a native type so SQLite and PostgreSQL hold the same values and the
    empty string keeps meaning "not yet" (due now, never sent) in comparisons.
    """

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str:
        if value is None:
            return ""
        if isinstance(value, str):
            return value  # "" and already-stamped values compare as stored
        return stamp(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return datetime.fromisoformat(value) if value else None


metadata = MetaData()

editions = Table(
    "editions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("slot", String(40), nullable=False, index=True),
    Column("state", String(20), nullable=False),
    Column("revision", Integer, nullable=False, default=1),
    Column("stories", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("preheader", Text, nullable=False),
    Column("html", Text, nullable=False),
    Column("text", Text, nullable=False),
    # What an approval covers: the whole edition and every topic variant (models.edition_hash).
    Column("content_hash", String(64), nullable=False),
    # The random spelling of this rendering's placeholders ("" before revision 0008).
    Column("marker", String(16), nullable=False, default="", server_default=""),
    Column("warnings", Text, nullable=False, default="[]"),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)

# One row per topic selection of the edition's current revision, rendered with it.
edition_variants = Table(
    "edition_variants",
    metadata,
    Column("edition_id", Integer, primary_key=True),
    Column("key", String(400), primary_key=True),
    Column("stories", Text, nullable=False),  # JSON list of the variant's URLs, in order
    Column("subject", Text, nullable=False),
    Column("preheader", Text, nullable=False),
    Column("html", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("content_hash", String(64), nullable=False),
    # The whole edition's rendered hash when this was rendered (its revision).
    Column("base_hash", String(64), nullable=False),
    Column("marker", String(16), nullable=False, default="", server_default=""),
    Column("created_at", Timestamp, nullable=False),
)

edition_ranking = Table(
    "edition_ranking",
    metadata,
    Column("edition_id", Integer, primary_key=True),
    Column("candidates", Text, nullable=False),  # JSON: models.Candidate.to_dict() each
    Column("extra", Text, nullable=False),  # JSON: the templates' ``extra`` (thin_day ...)
    # JSON: stories an editor removed, [[position, story], ...], so a removal can be undone.
    Column("set_aside", Text, nullable=False, default="[]"),
)

# One row per editor who approved one revision; only the current revision's rows count.
approvals = Table(
    "approvals",
    metadata,
    Column("edition_id", Integer, primary_key=True),
    Column("revision", Integer, primary_key=True),
    Column("editor", String(320), primary_key=True),  # lower-cased name or address
    Column("actor", String(320), nullable=False),
    Column("via", String(40), nullable=False),
    Column("at", Timestamp, nullable=False),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("edition_id", Integer, ForeignKey("editions.id"), nullable=False, index=True),
    Column("from_state", String(20), nullable=False),
    Column("to_state", String(20), nullable=False),
    Column("actor", String(320), nullable=False),
    Column("via", String(40), nullable=False),
    Column("at", Timestamp, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("note", Text, nullable=False, default=""),
)

seen_stories = Table(
    "seen_stories",
    metadata,
    Column("url", String(2000), primary_key=True),
    Column("edition_id", Integer, ForeignKey("editions.id"), nullable=False),
    Column("first_seen", Timestamp, nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("edition_id", Integer, ForeignKey("editions.id"), primary_key=True),
    Column("email", String(320), primary_key=True),
    Column("name", Text, nullable=False, default=""),
    Column("timezone", String(64), nullable=False, default=""),
    Column("topics", Text, nullable=False, default="[]"),
    Column("state", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("first_attempt_at", Timestamp, nullable=False, default=""),
    # Not before this time ("" = now): retry backoff, and per-zone send waves.
    Column("next_attempt_at", Timestamp, nullable=False, default=""),
    Column("sent_at", Timestamp, nullable=False, default=""),
    Column("last_error", Text, nullable=False, default=""),
    Column("message_id", String(400), nullable=False, default=""),
    # The content hash of the approved variant this delivery carried.
    Column("variant_hash", String(64), nullable=False, default=""),
    Column("updated_at", Timestamp, nullable=False),
    # The worker (workers.token) that claimed the row; "" = nobody. A claim counts only
    # while that worker's heartbeat is alive, and every write of an outcome is fenced by it.
    Column("claim", String(100), nullable=False, default=""),
    Index("deliveries_due", "edition_id", "state", "next_attempt_at"),
    # From a returned message (a bounce quoting its Message-ID) back to its delivery.
    Index("deliveries_message", "message_id"),
)

# One row per edition whose recipient list is being or has been frozen into the ledger:
# the freeze commits in chunks and is complete once ``complete`` is 1 (resumable, idempotent).
ledger_meta = Table(
    "ledger_meta",
    metadata,
    Column("edition_id", Integer, ForeignKey("editions.id"), primary_key=True),
    Column("frozen_at", Timestamp, nullable=False),
    Column("complete", Integer, nullable=False, default=0),
    Column("rows", Integer, nullable=False, default=0),
)

# A sending process and its heartbeat: its claims on ledger rows hold while alive_until is
# in the future, whatever its deliveries are doing.
workers = Table(
    "workers",
    metadata,
    Column("token", String(100), primary_key=True),
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", Timestamp, nullable=False),
    Column("alive_until", Timestamp, nullable=False),
)

# Rate limits shared by every worker: one permit per message and limit key (global rate,
# window, recipient domain). A permit counts while busy and for a window after ``ends_at``.
send_permits = Table(
    "send_permits",
    metadata,
    Column("holder", String(400), primary_key=True),  # edition:email:attempt
    Column("key", String(300), primary_key=True),
    Column("ends_at", Timestamp, nullable=False),
    Column("worker", String(100), nullable=False, default=""),  # workers.token
    Index("send_permits_key", "key", "ends_at"),
)

# How many permits of each key are in send_permits, so a check needs no count.
send_limits = Table(
    "send_limits",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("used", Integer, nullable=False, default=0),
)

# Delivery counts of a finished edition, kept when it finished (and when its rows are pruned).
delivery_summaries = Table(
    "delivery_summaries",
    metadata,
    Column("edition_id", Integer, ForeignKey("editions.id"), primary_key=True),
    Column("counts", Text, nullable=False),  # JSON: state -> count
    Column("summarised_at", Timestamp, nullable=False),
    Column("pruned_at", Timestamp, nullable=False, default=""),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("email", String(320), primary_key=True),
    Column("reason", Text, nullable=False),  # the evidence: who or what, and why
    # What it means for the reader: unsubscribed, bounced or complained (reader_states).
    Column("kind", String(20), nullable=False, default="unsubscribed"),
    Column("at", Timestamp, nullable=False),
)

# Every bounce and complaint read for an address, with its evidence: soft bounces are
# counted from here (bounces.soft_limit within bounces.soft_window_days), and `digest
# subscribers show` lists them.
bounce_events = Table(
    "bounce_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False),  # the lookup key (lower case)
    Column("at", Timestamp, nullable=False),
    Column("kind", String(20), nullable=False),  # hard, soft, complaint
    Column("status", String(20), nullable=False, default=""),
    Column("reason", String(80), nullable=False, default=""),
    Column("action", String(20), nullable=False),  # suppressed, counted
    Column("source", Text, nullable=False, default=""),  # the file it was read from
    Column("message_id", Text, nullable=False, default=""),  # of the returned original
    Column("mail", String(64), nullable=False, default=""),  # SHA-256 of the returned mail
    Index("bounce_events_email", "email", "at"),
)

# What the scheduler decided about a slot that has no edition to show it (missed, skipped).
slot_log = Table(
    "slot_log",
    metadata,
    Column("slot", String(40), primary_key=True),
    Column("status", String(40), nullable=False),
    Column("note", Text, nullable=False, default=""),
    Column("at", Timestamp, nullable=False),
)

locks = Table(
    "locks",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("expires_at", Timestamp, nullable=False),
)

source_cache = Table(
    "source_cache",
    metadata,
    Column("name", String(200), primary_key=True),
    # What the stories were parsed with (url, kind, options...): any change drops the cache.
    Column("fingerprint", Text, nullable=False),
    Column("etag", Text, nullable=False, default=""),
    Column("last_modified", Text, nullable=False, default=""),
    Column("stories", Text, nullable=False),
    Column("fetched_at", Timestamp, nullable=False),
)

source_health = Table(
    "source_health",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("url", Text, nullable=False),
    Column("last_success", Timestamp, nullable=False, default=""),
    Column("last_error", Text, nullable=False, default=""),
    Column("last_error_at", Timestamp, nullable=False, default=""),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("items_seen", Integer, nullable=False, default=0),
    Column("not_modified", Integer, nullable=False, default=0),
    # JSON list of what the last parse had to guess (encoding, teaser from body, no date).
    Column("fallbacks", Text, nullable=False, default="[]"),
)

# An edition's processed images, by content address ("<sha256 of data, 32 hex>.<ext>").
images = Table(
    "images",
    metadata,
    Column("key", String(40), primary_key=True),
    Column("content_type", String(40), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("size", Integer, nullable=False),
    Column("created_at", Timestamp, nullable=False),
)

# Notices to editors (an edition expired, a send finished or stopped, a source failing) and
# proofs, once each: the row is claimed before the mail goes out, so racing ticks send one.
notices = Table(
    "notices",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("edition_id", Integer, nullable=False, default=0),  # 0: not about one edition
    Column("recipients", Text, nullable=False, default=""),
    Column("status", String(20), nullable=False),  # sending, sent, failed, held
    Column("note", Text, nullable=False, default=""),
    Column("at", Timestamp, nullable=False),
)

# The editors' desk: account state beside the config's roster (approval.editors), server-side
# sessions, used sign-in links and the sign-in throttle.

# An editor revoked with `digest editors revoke`: no sign-in, proof link or approval until
# reinstated. Editors themselves are listed in the config.
editor_accounts = Table(
    "editor_accounts",
    metadata,
    Column("email", String(320), primary_key=True),  # lower case
    Column("revoked_at", Timestamp, nullable=False, default=""),
    Column("note", Text, nullable=False, default=""),
    Column("updated_at", Timestamp, nullable=False),
)

# One row per signed-in browser; the cookie holds a random token, the row its SHA-256.
editor_sessions = Table(
    "editor_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("email", String(320), nullable=False, index=True),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
)

# Sign-in links already used (single use): the SHA-256 of each link's nonce.
signin_links = Table(
    "signin_links",
    metadata,
    Column("nonce_hash", String(64), primary_key=True),
    Column("email", String(320), nullable=False),
    Column("used_at", Timestamp, nullable=False),
)

# Failed sign-in attempts per address and per client ("address:x", "client:y").
signin_throttle = Table(
    "signin_throttle",
    metadata,
    Column("key", String(400), primary_key=True),
    Column("failures", Integer, nullable=False, default=0),
    Column("blocked_until", Timestamp, nullable=False, default=""),
    Column("last_failure_at", Timestamp, nullable=False),
)

# Readers ---------------------------------------------------------------------------------
# One row per address we know of; ``key`` is the lower-cased address, the lookup key.
subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(320), nullable=False, unique=True),
    Column("email", String(320), nullable=False),
    Column("name", Text, nullable=False, default=""),
    Column("timezone", String(64), nullable=False, default=""),
    Column("topics", Text, nullable=False, default="[]"),  # JSON list of section names
    # pending, active, paused, unsubscribed, bounced, complained, removed (subscribers.states)
    Column("state", String(20), nullable=False),
    Column("paused_until", Timestamp, nullable=False, default=""),
    Column("source", String(20), nullable=False),  # how they joined: web, file, import, cli
    Column("since", Timestamp, nullable=False, default=""),  # subscribed (confirmed) at
    # The file sync that last saw this address in the subscriber file, and the hash of that
    # entry as last applied: an unchanged entry never overwrites the reader's own choices.
    Column("file_gen", Integer, nullable=False, default=0),
    Column("file_entry", String(32), nullable=False, default=""),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Index("subscribers_state", "state", "key"),
    Index("subscribers_topics", "state", "topics"),
)

# What a reader agreed to, when and how: one row per sign-up, confirmation or change.
consents = Table(
    "consents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), nullable=False, index=True),
    Column("at", Timestamp, nullable=False),
    Column("action", String(20), nullable=False),  # subscribe, confirm, preferences, ...
    Column("method", String(20), nullable=False),  # web, file, import, cli, link
    Column("ip", String(64), nullable=False, default=""),
    Column("text", Text, nullable=False, default=""),
)

# Sign-ups waiting for their double opt-in; what they asked for is applied on confirmation.
confirmations = Table(
    "confirmations",
    metadata,
    Column("nonce", String(64), primary_key=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), nullable=False, index=True),
    Column("name", Text, nullable=False, default=""),
    Column("topics", Text, nullable=False, default="[]"),
    Column("ip", String(64), nullable=False, default=""),
    Column("text", Text, nullable=False, default=""),
    Column("created_at", Timestamp, nullable=False),
)

# Erased addresses, only as a hash, so no sync, import or sign-up ever mails them again.
erasures = Table(
    "erasures",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("at", Timestamp, nullable=False),
)

# The subscriber file as last synchronised: an unchanged file is not read again.
subscriber_sync = Table(
    "subscriber_sync",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("gen", Integer, nullable=False),
    Column("at", Timestamp, nullable=False),
)

# Sign-ups as the form took them, before anything is looked up: the web answer only adds a
# row (the same work for every address), and a drain decides later who gets a mail. A
# claim (token, lease) makes the drain at-least-once: a row is deleted only after its mail.
signup_queue = Table(
    "signup_queue",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False),
    Column("name", Text, nullable=False, default=""),
    Column("topics", Text, nullable=False, default="[]"),
    Column("ip", String(64), nullable=False, default=""),
    Column("created_at", Timestamp, nullable=False),
    Column("claim", String(64), nullable=False, default=""),
    Column("claimed_until", Timestamp, nullable=False, default="", index=True),
)
