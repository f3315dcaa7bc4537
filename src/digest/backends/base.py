"""The delivery backend contract, and the loader that finds backends by name."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import TracebackType
from typing import Any, ClassVar, Self

from digest.exceptions import BackendError

ENTRY_POINT_GROUP = "digest.backends"


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message ready for the wire: SMTP envelope plus the serialised bytes (CRLF)."""

    sender: str
    recipient: str
    data: bytes
    message_id: str
    # True when no line of ``data`` starts with "." (the composer QP-encodes a leading dot
    # as "=2E"): an SMTP backend then need not search 35 KB for lines to dot-stuff.
    dot_safe: bool = False


class Backend(ABC):
    """Delivers serialised messages, one at a time, over a connection it manages.

    Contract (everything the send engine and its worker rely on; digest.testing.contract
    checks it for every backend):
    - The constructor takes keyword options only and raises BackendError for an unknown
      option or a conflict (so a typo fails at start-up, not on send day). It must not
      connect: ``open()`` does.
    - ``open()`` may raise TemporaryFailure (the server refused or did not answer for now:
      a deferral for this connection, whose next ``send()`` tries again) or BackendError
      (a wrong password or certificate: the run stops). ``open()``/``close()`` may be
      called repeatedly, in any order; the backend is a context manager.
    - ``send()`` returns normally only when the message was accepted (SMTP 250). It raises
      TemporaryFailure when it may succeed later (4xx, connection refused or dropped before
      the data was sent), PermanentFailure when it never will (5xx), and InDoubtFailure when
      the connection was lost after the data was sent, so the server may have it. Any other
      BackendError means the backend as a whole failed: the run stops.
      After any of these the backend stays usable: the next ``send()`` reconnects if needed.
    - ``send_each()`` yields one outcome per message it took, in order (see there).
    - ``connected`` is False only while a connection the backend needs is down after a
      failure; the worker then waits a little (doubling, up to 5 s) before that connection
      tries again, so one dead connection does not defer every message. A backend without
      a connection keeps the default, True.
    - ``parallel`` says whether several instances may send at once (one connection each).
    - ``timeout`` bounds, in seconds, each step of one ``send()``; the rate limits hold a
      busy message's permit for at most six times this (plus the send lock's time to live),
      so a worker that died mid-send does not hold its permit for ever.
    - Backends never log secrets.
    """

    name: ClassVar[str] = ""
    options: ClassVar[frozenset[str]] = frozenset()
    # True when several instances may send at once (one connection each); the engine then
    # opens `send.connections` of them. Local backends keep one.
    parallel: ClassVar[bool] = False
    # Local backends finish a message in well under this; a network backend sets its own.
    timeout: float = 10.0

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - self.options)
        if unknown:
            valid = ", ".join(sorted(self.options)) or "none"
            raise BackendError(
                f"backend {self.name!r}: unknown option(s) {', '.join(unknown)}; valid: {valid}"
            )

    @property
    def connected(self) -> bool:
        """False while a needed connection is down after a failure (the worker then waits
        before retrying it); True otherwise, and always for a backend without one."""
        return True

    def open(self) -> None:  # noqa: B027 - optional hook, most backends need no connection
        """Prepare to send (connect, create folders)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what ``open()`` took."""

    @abstractmethod
    def send(self, envelope: Envelope) -> None:
        """Deliver one message or raise one of the failures in the contract above."""

    def send_each(self, envelopes: Iterable[Envelope]) -> Iterator[BackendError | None]:
        """Deliver messages in order, yielding each one's outcome as soon as it is known:
        None (accepted) or the failure ``send()`` would have raised. The next message is
        taken only when the backend is ready for it, and a backend may stop early (after a
        lost connection, say): a message taken but given no outcome was not sent, and the
        caller hands it, with those not taken, to a later call. A backend that can overlap
        messages on its connection (SMTP pipelining) overrides this."""
        for envelope in envelopes:
            try:
                self.send(envelope)
            except BackendError as exc:
                yield exc
            else:
                yield None

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def backend_names() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def load_backend(name: str, options: dict[str, Any] | None = None) -> Backend:
    """Build the backend registered as ``name``; an unknown name lists the valid ones."""
    eps = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if name not in eps:
        raise BackendError(
            f"unknown backend {name!r}; valid backends: {', '.join(sorted(eps)) or 'none'}"
        )
    cls = eps[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendError(f"backend {name!r} ({eps[name].value}) is not a digest Backend")
    return cls(**(options or {}))
