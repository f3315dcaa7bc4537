"""`digest serve`'s background drain of the sign-up queue (the form only queues)."""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import Self

from digest.exceptions import DigestError
from digest.subscribers.signup import Readers, drain_line

log = logging.getLogger("digest.readers")


class Drainer:
    """Context manager: a thread that drains the queue every ``every`` seconds until exit.

    A fixed period, not a wake-up per sign-up: the mail work then never follows the
    request that caused it, so it cannot slow the next answer in a way that tells whose
    sign-up needed a mail.
    """

    def __init__(self, readers: Readers, *, every: float = 1.0) -> None:
        self.readers, self.every = readers, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="digest-signups")

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.once()

    def once(self) -> None:
        try:
            line = drain_line(self.readers.drain())
        except DigestError as exc:  # the database was busy or gone: the next round retries
            log.warning("sign-up queue not drained: %s", exc)
            return
        except Exception:  # a bug must not end the thread: sign-ups would pile up unseen
            log.exception("sign-up queue not drained")
            return
        if line:
            log.info("%s", line)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.once()  # what came in during the last period
