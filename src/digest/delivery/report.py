"""What one run of the engine did, in counts, for the CLI's summary and for `--json`."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from digest.models import EditionState


@dataclass(slots=True)
class SendReport:
    """What one ``send`` run did; ``totals`` is the whole ledger afterwards."""

    edition_id: int
    state: EditionState
    dry_run: bool = False
    total: int = 0
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    skipped: int = 0
    expired: int = 0  # of the skipped: retries past their wave's maximum lateness
    in_doubt: int = 0
    unknown: int = 0
    would_send: int = 0
    interrupted: bool = False
    stopped: str = ""  # why the run stopped trying (a dead host); the rows wait for the next
    totals: dict[str, int] = field(default_factory=dict)

    def add(self, other: SendReport) -> None:
        """Count another process's run of the same edition into this one (``deferred`` is
        the ledger's count at the end, so it is not added)."""
        for f in fields(self):
            if f.name in ("sent", "failed", "skipped", "expired", "in_doubt", "unknown"):
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        self.interrupted = self.interrupted or other.interrupted
        self.stopped = self.stopped or other.stopped

    def to_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "state"} | {
            "state": str(self.state)
        }

    def summary(self) -> str:
        if self.dry_run:
            return (
                f"dry run: edition {self.edition_id} would go to {self.would_send} "
                f"subscriber(s), {self.skipped} skipped; nothing was sent or recorded"
            )
        ledger = ", ".join(f"{k} {v}" for k, v in sorted(self.totals.items())) or "empty"
        line = (
            f"edition {self.edition_id} is {self.state}: sent {self.sent}, failed {self.failed}, "
            f"deferred {self.deferred}, skipped {self.skipped}, unknown {self.unknown}, "
            f"in doubt {self.in_doubt} (ledger: {ledger})"
        )
        if self.expired:
            line += f"; {self.expired} retries expired (past the maximum lateness)"
        return line + (f"; stopped: {self.stopped}" if self.stopped else "")
