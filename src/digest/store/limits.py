"""Send permits in the database: rate limits shared exactly by every worker, run and host.

A permit is one message under one limit key (the global rate, the global window, a
recipient domain). It counts from before the message is sent until ``seconds`` after its
``ends_at``: while busy, ``ends_at`` is an upper bound of when the message can be done (a
worker that dies leaves it counting that long); on release it becomes the time the server
answered. Whatever instant a server logged the message at lies inside, so no window of any
server's log holds more than the limit, across restarts, editions and hosts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from digest.store.raw import RawConnection
from digest.store.repository import Store
from digest.store.tables import stamp


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``limit`` messages in any ``seconds`` under ``key``."""

    key: str
    limit: int
    seconds: float


@dataclass(frozen=True, slots=True)
class Grant:
    """The messages that may go now, and for each refused one when to look again."""

    granted: list[str]
    retry_at: dict[str, float]  # holder -> real time (epoch seconds)
    full: frozenset[str] = frozenset()  # the keys that refused someone


def _at(seconds: float) -> str:
    return stamp(datetime.fromtimestamp(seconds, UTC))


class Permits:
    """The ``send_permits`` and ``send_limits`` tables of one store."""

    def __init__(self, store: Store) -> None:
        self.raw = RawConnection(store.engine, store.where)

    def close(self) -> None:
        self.raw.close()

    def acquire(
        self,
        wants: Sequence[tuple[str, Sequence[Limit]]],
        *,
        now: float,
        busy_until: float,
        worker: str = "",
    ) -> Grant:
        """Take a permit of every limit of each message (``holder``, limits), in order.

        A message is granted only if all its limits have room; one refused for a limit
        leaves that limit's room to nobody after it (order is kept per limit).
        """
        keys = {lim.key: lim for _, limits in wants for lim in limits}

        def run(cur: Any) -> Grant:
            room: dict[str, int] = {}
            for key, lim in sorted(keys.items()):
                room[key] = lim.limit - self._used(cur, lim, now)
            granted: list[str] = []
            refused: dict[str, list[Limit]] = {}
            blocked: set[str] = set()
            taken: dict[str, int] = {}
            rows: list[tuple[str, str, str, str]] = []
            for holder, limits in wants:
                full = [lim for lim in limits if room[lim.key] <= 0 or lim.key in blocked]
                if full:
                    blocked.update(lim.key for lim in full)
                    refused[holder] = full
                    continue
                for lim in limits:
                    room[lim.key] -= 1
                    taken[lim.key] = taken.get(lim.key, 0) + 1
                    rows.append((holder, lim.key, _at(busy_until), worker))
                granted.append(holder)
            if rows:
                cur.executemany(
                    self.raw.sql(
                        "INSERT INTO send_permits (holder, key, ends_at, worker)"
                        " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
                    ),
                    rows,
                )
            for key, n in taken.items():
                cur.execute(
                    self.raw.sql("UPDATE send_limits SET used = used + ? WHERE key = ?"), (n, key)
                )
            frees = {k: self._frees_at(cur, keys[k], now) for k in blocked}
            retry = {h: max(frees[lim.key] for lim in full) for h, full in refused.items()}
            return Grant(granted, retry, frozenset(blocked))

        return self.raw.transaction(run)

    def _used(self, cur: Any, lim: Limit, now: float) -> int:
        """Permits of ``lim`` still counting, after forgetting those whose window is over."""
        sql = self.raw.sql
        lock = "" if self.raw.sqlite else " FOR UPDATE"
        row = cur.execute(sql(f"SELECT used FROM send_limits WHERE key = ?{lock}"), (lim.key,))
        found = row.fetchone()
        if found is None:
            # Racing creators on PostgreSQL: one insert wins, the other does nothing; the
            # row lock taken next serialises them from then on.
            cur.execute(
                sql("INSERT INTO send_limits (key, used) VALUES (?, 0) ON CONFLICT DO NOTHING"),
                (lim.key,),
            )
            found = cur.execute(
                sql(f"SELECT used FROM send_limits WHERE key = ?{lock}"), (lim.key,)
            ).fetchone()
        gone = cur.execute(
            sql("DELETE FROM send_permits WHERE key = ? AND ends_at <= ?"),
            (lim.key, _at(now - lim.seconds)),
        ).rowcount
        used = int(found[0]) - max(int(gone), 0)
        if gone:
            cur.execute(sql("UPDATE send_limits SET used = ? WHERE key = ?"), (used, lim.key))
        return used

    def _frees_at(self, cur: Any, lim: Limit, now: float) -> float:
        """When a slot of ``lim`` may open: a window after the oldest finished permit, or
        soon when every permit is still busy (a busy one ends whenever its message does)."""
        row = cur.execute(
            self.raw.sql("SELECT min(ends_at) FROM send_permits WHERE key = ? AND ends_at <= ?"),
            (lim.key, _at(now)),
        ).fetchone()
        if not row or not row[0]:
            return now + 0.1
        return max(now + 0.01, datetime.fromisoformat(row[0]).timestamp() + lim.seconds)

    def forget(self, prefix: str, *, keep: str) -> None:
        """Drop the permits and counters of keys starting with ``prefix`` except ``keep``
        (a warm-up's past days: their keys are never asked about again)."""

        def run(cur: Any) -> None:
            for table in ("send_permits", "send_limits"):
                cur.execute(
                    self.raw.sql(f"DELETE FROM {table} WHERE key LIKE ? AND key <> ?"),
                    (prefix + "%", keep),
                )

        self.raw.transaction(run)

    @staticmethod
    def release_statement(holders: Sequence[str], *, at: float) -> tuple[str, tuple[str, ...]]:
        """SQL (``?`` style) that ends the permits of ``holders`` at ``at``; run it in the
        ledger transaction that records those messages' outcomes."""
        marks = ", ".join("?" * len(holders))
        return (
            f"UPDATE send_permits SET ends_at = ? WHERE holder IN ({marks})",
            (_at(at), *holders),
        )
