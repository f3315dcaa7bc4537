"""The ledger's side of settling a dead worker's rows with its send journal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from digest.store.ledger import LIVE
from digest.store.raw import RawConnection
from digest.store.tables import stamp

CHUNK = 500  # addresses per statement, well under every database's parameter limit
_DEAD = (
    "SELECT DISTINCT claim FROM deliveries WHERE edition_id = ? AND state = 'in_flight'"
    f" AND claim <> '' AND claim NOT IN ({LIVE})"
)
_ROWS = "SELECT email FROM deliveries WHERE edition_id = ? AND claim = ? AND state = 'in_flight'"
_WHERE = " WHERE edition_id = ? AND claim = ? AND state = 'in_flight' AND email IN "
_SENT = (
    "UPDATE deliveries SET state = 'sent', last_error = '', next_attempt_at = '',"
    " sent_at = ?, updated_at = ?, claim = ''"
)
_REFUSED = (
    "UPDATE deliveries SET state = 'pending', next_attempt_at = '', updated_at = ?,"
    " claim = '', last_error = 'not accepted before an interrupted run recorded it'"
)
# Never handed to a connection: as if never marked (the attempt is given back).
_UNSENT = (
    "UPDATE deliveries SET state = 'pending', next_attempt_at = '', updated_at = ?,"
    " claim = '', attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END"
)


def dead_claims(raw: RawConnection, edition_id: int, *, live: str) -> list[str]:
    """The tokens of dead workers that left rows of the edition in flight."""
    return raw.transaction(
        lambda cur: [str(r[0]) for r in cur.execute(raw.sql(_DEAD), (edition_id, live))]
    )


def live_tokens(raw: RawConnection, *, live: str) -> list[str]:
    """The tokens of the workers alive at ``live``."""
    return raw.transaction(lambda cur: [str(r[0]) for r in cur.execute(raw.sql(LIVE), (live,))])


def settle_rows(
    raw: RawConnection, edition_id: int, token: str, events: dict[str, str], *, now: datetime
) -> int:
    """In one transaction, record the dead worker's rows in flight by its journal's last
    event for each (``s`` sent, ``n`` not accepted, none: never handed over); rows handed
    over and not answered (``h``) stay in flight for the in-doubt policy. Returns the
    number of rows settled."""
    at = stamp(now)

    def run(cur: Any) -> int:
        rows = [str(r[0]) for r in cur.execute(raw.sql(_ROWS), (edition_id, token))]
        groups: list[tuple[str, Sequence[str], tuple[object, ...]]] = [
            (_SENT, [e for e in rows if events.get(e) == "s"], (at, at)),
            (_REFUSED, [e for e in rows if events.get(e) == "n"], (at,)),
            (_UNSENT, [e for e in rows if e not in events], (at,)),
        ]
        done = 0
        for head, emails, params in groups:
            for i in range(0, len(emails), CHUNK):
                part = emails[i : i + CHUNK]
                sql = raw.sql(f"{head}{_WHERE}({', '.join(['?'] * len(part))})")
                done += int(cur.execute(sql, (*params, edition_id, token, *part)).rowcount)
        return done

    return raw.transaction(run)
