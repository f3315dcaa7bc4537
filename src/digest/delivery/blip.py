"""Riding out a database blip: a ledger operation that failed because the database went away
is tried again, whole, with backoff, for up to ``send.db_retry_seconds``.

Each operation retried here is one transaction (a claim, a commit of outcomes and marks, a
release), so a failure rolled all of it back and a retry never repeats half of one. The
worker's connections keep sending what they hold meanwhile; their answers are recorded by
the next commit that gets through. One warning line when the database goes away, one when
it is back; if it stays away longer, one StoreError line ends the run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from digest.exceptions import StoreError
from digest.store.engine import went_away

T = TypeVar("T")
P = ParamSpec("P")
log = logging.getLogger("digest.delivery")
FIRST_WAIT = 0.1  # seconds before the first retry; doubles up to LONGEST_WAIT
LONGEST_WAIT = 1.0  # a restart takes about a second: do not oversleep its end by much


class Rider:
    """Calls store operations, retrying those that failed because the database went away.

    The outage is timed across calls: once it has lasted ``seconds``, every call that still
    finds the database away fails at once (the caller's clean-up does not wait again).
    """

    def __init__(
        self,
        *,
        seconds: float,
        where: str,
        resume: str,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self.where = where
        self.resume = resume  # what the operator runs once the database is back
        self.sleep = sleep
        self.monotonic = monotonic
        self.down_since: float | None = None

    def __call__(self, operation: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        wait = FIRST_WAIT
        fresh = self.down_since is None  # one quiet retry: a kept connection may be stale
        while True:
            try:
                result = operation(*args, **kwargs)
            except StoreError as exc:
                if not went_away(exc):
                    raise
                if fresh:
                    # The server closed a connection kept from before (it restarted, or it
                    # was a blip another operation already waited out): the retry opens a
                    # new one, and only if that fails too has the database gone away.
                    fresh = False
                    continue
                self._away(exc, wait)
                wait = min(wait * 2, LONGEST_WAIT)
                continue
            if self.down_since is not None:
                took = self.monotonic() - self.down_since
                self.down_since = None
                log.warning(
                    "warning: %s: the database is back after %.1f s; sending goes on",
                    self.where,
                    took,
                )
            return result

    def _away(self, exc: StoreError, wait: float) -> None:
        now = self.monotonic()
        if self.down_since is None:
            self.down_since = now
            log.warning(
                "warning: %s: the database went away; retrying for up to %g s "
                "(send.db_retry_seconds)",
                self.where,
                self.seconds,
            )
        left = self.down_since + self.seconds - now
        if left <= 0:
            raise StoreError(
                f"{self.where}: the database was unreachable for more than {self.seconds:g} s "
                f"(send.db_retry_seconds), so sending stopped; once it is back, "
                f"{self.resume} ({exc})"
            ) from exc
        self.sleep(min(wait, left))
