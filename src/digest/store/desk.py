"""The editors' desk in the store: revoked editors, sessions, used sign-in links, throttle.

Secrets never reach the database: sessions and sign-in links are stored as SHA-256 hashes of
the random values the browser holds, so a copy of the state file signs nobody in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, select, update

from digest.models import Story
from digest.store.repository import CHUNK, Store
from digest.store.sql import insert_ignore, upsert
from digest.store.tables import (
    audit,
    edition_ranking,
    editor_accounts,
    editor_sessions,
    signin_links,
    signin_throttle,
    suppressions,
)


@dataclass(frozen=True, slots=True)
class Backoff:
    """After ``free`` failures, each one blocks for ``base`` seconds, doubling, up to ``cap``.

    Failures older than ``window`` seconds (counted from the last one) are forgotten.
    """

    free: int = 5
    base: float = 30.0
    cap: float = 3600.0
    window: float = 3600.0

    def delay(self, failures: int) -> float:
        if failures < self.free:
            return 0.0
        return float(min(self.cap, self.base * 2 ** (failures - self.free)))


class DeskState:
    """Queries of the desk tables; every method commits before returning."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # revoked editors ---------------------------------------------------------------------

    def revoked(self) -> set[str]:
        """The addresses (lower case) of revoked editors."""
        query = select(editor_accounts.c.email).where(editor_accounts.c.revoked_at != "")
        with self.store.reading() as conn:
            return set(conn.execute(query).scalars())

    def revoke(self, email: str, *, now: datetime, note: str = "") -> int:
        """Revoke an editor and end every session of theirs at once; sessions ended."""
        key = email.lower()
        row = {"email": key, "revoked_at": now, "note": note, "updated_at": now}
        with self.store.transaction() as tx:
            upsert(tx.conn, editor_accounts, [row])
            ended = tx.conn.execute(delete(editor_sessions).where(editor_sessions.c.email == key))
            return int(ended.rowcount)

    def reinstate(self, email: str, *, now: datetime) -> bool:
        """Lift a revocation; False if the editor was not revoked."""
        with self.store.transaction() as tx:
            done = tx.conn.execute(
                update(editor_accounts)
                .where(editor_accounts.c.email == email.lower())
                .where(editor_accounts.c.revoked_at != "")
                .values(revoked_at="", note="", updated_at=now)
            )
            return int(done.rowcount) == 1

    # sessions ----------------------------------------------------------------------------

    def open_session(
        self, token_hash: str, email: str, *, now: datetime, expires: datetime
    ) -> None:
        row = {
            "token_hash": token_hash,
            "email": email.lower(),
            "created_at": now,
            "expires_at": expires,
        }
        with self.store.transaction() as tx:
            # Expired rows are dead weight: drop them whenever someone signs in.
            tx.conn.execute(delete(editor_sessions).where(editor_sessions.c.expires_at <= now))
            insert_ignore(tx.conn, editor_sessions, [row])

    def session(self, token_hash: str, *, now: datetime) -> str | None:
        """The address of a live session, else None (ended, expired, or editor revoked)."""
        revoked = select(editor_accounts.c.email).where(
            and_(
                editor_accounts.c.email == editor_sessions.c.email,
                editor_accounts.c.revoked_at != "",
            )
        )
        query = (
            select(editor_sessions.c.email)
            .where(editor_sessions.c.token_hash == token_hash)
            .where(editor_sessions.c.expires_at > now)
            .where(~revoked.exists())
        )
        with self.store.reading() as conn:
            found = conn.execute(query).scalar()
        return str(found) if found is not None else None

    def end_session(self, token_hash: str) -> None:
        with self.store.transaction() as tx:
            tx.conn.execute(
                delete(editor_sessions).where(editor_sessions.c.token_hash == token_hash)
            )

    def end_sessions(self, email: str) -> int:
        with self.store.transaction() as tx:
            done = tx.conn.execute(
                delete(editor_sessions).where(editor_sessions.c.email == email.lower())
            )
            return int(done.rowcount)

    def live_sessions(self, *, now: datetime) -> dict[str, int]:
        """Live sessions per editor address."""
        query = (
            select(editor_sessions.c.email, func.count())
            .where(editor_sessions.c.expires_at > now)
            .group_by(editor_sessions.c.email)
        )
        with self.store.reading() as conn:
            return {str(e): int(n) for e, n in conn.execute(query)}

    # sign-in links -----------------------------------------------------------------------

    def use_link(self, nonce_hash: str, email: str, *, now: datetime, keep: timedelta) -> bool:
        """Mark a sign-in link used; False if it had been used before (single use).

        Rows older than ``keep`` (the links' lifetime) are pruned: their links have expired.
        """
        row = {"nonce_hash": nonce_hash, "email": email.lower(), "used_at": now}
        with self.store.transaction() as tx:
            tx.conn.execute(delete(signin_links).where(signin_links.c.used_at < now - keep))
            return insert_ignore(tx.conn, signin_links, [row]) == 1

    def link_used(self, nonce_hash: str) -> bool:
        query = select(signin_links.c.nonce_hash).where(signin_links.c.nonce_hash == nonce_hash)
        with self.store.reading() as conn:
            return conn.execute(query).first() is not None

    # throttle ----------------------------------------------------------------------------

    def attempt(self, keys: Iterable[str], *, now: datetime, backoff: Backoff) -> datetime | None:
        """Count one attempt against each key BEFORE it is checked; None if it may go on.

        If any key is blocked, nothing is counted and the answer is when the longest block
        ends. Reading and counting are one transaction holding the rows' lock (SQLite:
        BEGIN IMMEDIATE; PostgreSQL: FOR UPDATE after inserting missing rows), so parallel
        attempts are counted one after another and at most ``backoff.free`` get through
        before the first block. A success should ``clear`` the keys.
        """
        keys = list(dict.fromkeys(keys))
        window = timedelta(seconds=backoff.window)
        with self.store.transaction() as tx:
            empty = {"failures": 0, "blocked_until": "", "last_failure_at": now}
            insert_ignore(tx.conn, signin_throttle, [{"key": k, **empty} for k in keys])
            query = select(signin_throttle).where(signin_throttle.c.key.in_(keys))
            rows = {r.key: r for r in tx.conn.execute(query.with_for_update())}
            ends: list[datetime] = [r.blocked_until for r in rows.values() if r.blocked_until]
            if ends and max(ends) > now:
                return max(ends)
            out = []
            for key in keys:
                row = rows[key]
                fresh = row.last_failure_at < now - window
                failures = 1 if fresh else int(row.failures) + 1
                delay = backoff.delay(failures)
                until = now + timedelta(seconds=delay) if delay else ""
                out.append(
                    {
                        "key": key,
                        "failures": failures,
                        "last_failure_at": now,
                        "blocked_until": until,
                    }
                )
            upsert(tx.conn, signin_throttle, out)
        return None

    def clear(self, keys: Iterable[str]) -> None:
        with self.store.transaction() as tx:
            tx.conn.execute(delete(signin_throttle).where(signin_throttle.c.key.in_(list(keys))))

    # editions ----------------------------------------------------------------------------

    def set_aside(self, edition_id: int) -> list[tuple[int, Story]]:
        """The stories editors removed from the edition, with the position each had."""
        query = select(edition_ranking.c.set_aside).where(
            edition_ranking.c.edition_id == edition_id
        )
        with self.store.reading() as conn:
            raw = conn.execute(query).scalar()
        return [(int(p), Story.from_dict(s)) for p, s in json.loads(raw or "[]")]

    def audit_count(self, edition_id: int | None, *, via: str, actor: str, since: datetime) -> int:
        """Audit rows written ``via`` by ``actor`` since ``since`` (any edition if None)."""
        query = (
            select(func.count())
            .select_from(audit)
            .where(audit.c.via == via)
            .where(audit.c.actor == actor)
            .where(audit.c.at >= since)
        )
        if edition_id is not None:
            query = query.where(audit.c.edition_id == edition_id)
        with self.store.reading() as conn:
            return int(conn.execute(query).scalar_one())

    def suppression_count(self) -> int:
        with self.store.reading() as conn:
            return int(conn.execute(select(func.count()).select_from(suppressions)).scalar_one())

    def suppressed_among(self, emails: Iterable[str]) -> set[str]:
        """Which of ``emails`` (compared in lower case) are on the suppression list."""
        wanted = list({e.lower() for e in emails})
        found: set[str] = set()
        with self.store.reading() as conn:
            for i in range(0, len(wanted), CHUNK):
                query = select(suppressions.c.email).where(
                    suppressions.c.email.in_(wanted[i : i + CHUNK])
                )
                found.update(conn.execute(query).scalars())
        return found
