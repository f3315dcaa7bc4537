"""An in-process backend that keeps every message in ``outbox``, with scripted failures."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from digest.backends.base import Backend, Envelope
from digest.exceptions import BackendError, InDoubtFailure, PermanentFailure, TemporaryFailure

#: Every message any MemoryBackend accepted, in order (like Django's ``mail.outbox``).
outbox: list[Envelope] = []


def clear() -> None:
    """Empty ``outbox`` in place, so references taken earlier see the change."""
    outbox.clear()


class MemoryBackend(Backend):
    """Append to ``outbox``; fail on chosen recipients to exercise the sending engine.

    ``fail_permanent`` addresses raise PermanentFailure(code=550), ``fail_temporary``
    TemporaryFailure(code=451) and ``fail_in_doubt`` InDoubtFailure. An in-doubt message *is*
    appended to ``outbox``, because that is the case worth testing: the server got it but the
    reply was lost, so a blind resend would deliver it twice. Addresses match case-insensitively.
    """

    name: ClassVar[str] = "memory"
    options: ClassVar[frozenset[str]] = frozenset(
        {"fail_permanent", "fail_temporary", "fail_in_doubt"}
    )

    def __init__(
        self,
        *,
        fail_permanent: Iterable[str] = (),
        fail_temporary: Iterable[str] = (),
        fail_in_doubt: Iterable[str] = (),
        **unknown: Any,
    ) -> None:
        super().__init__(**unknown)
        self.fail_permanent = _addresses("fail_permanent", fail_permanent)
        self.fail_temporary = _addresses("fail_temporary", fail_temporary)
        self.fail_in_doubt = _addresses("fail_in_doubt", fail_in_doubt)
        lists = [self.fail_permanent, self.fail_temporary, self.fail_in_doubt]
        clashes = sorted(
            address
            for i, one in enumerate(lists)
            for other in lists[i + 1 :]
            for address in one & other
        )
        if clashes:
            raise BackendError(
                f"backend 'memory': {', '.join(clashes)} listed under more than one fail_* option"
            )

    def send(self, envelope: Envelope) -> None:
        address = envelope.recipient.casefold()
        if address in self.fail_permanent:
            raise PermanentFailure(f"memory: {envelope.recipient} rejected (550)", code=550)
        if address in self.fail_temporary:
            raise TemporaryFailure(f"memory: {envelope.recipient} deferred (451)", code=451)
        outbox.append(envelope)
        if address in self.fail_in_doubt:
            raise InDoubtFailure(f"memory: connection lost after sending to {envelope.recipient}")


def _addresses(option: str, value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str | bytes) or not all(isinstance(a, str) for a in value):
        raise BackendError(f"backend 'memory': {option} must be a list of addresses")
    return frozenset(a.casefold() for a in value)
