"""`digest tick`: do what the schedule says is due now (build, proof, expire, send).

All decisions live here, driven by the store (editions keyed by slot, the ledger, lease
locks), never by timing, so a second scheduler, a cron job and a manual `digest send`
racing for one slot send it once. Every judgement is on UTC instants from the slot's
waves (digest.slots): lateness and "missed" per wave, the deadline before the earliest
wave it serves. schedule.runner calls this from APScheduler.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from digest.app import App
from digest.approval import deadline_for
from digest.delivery.lease import Lease
from digest.exceptions import DigestError, LockedError, ThinDay
from digest.models import Edition, EditionState
from digest.slots import (
    Slot,
    in_quiet_hours,
    local_label,
    quiet_end,
    quiet_start,
    served_wave,
)
from digest.store.ledger import Ledger
from digest.store.ops import mark_tick, open_slots
from digest.store.signups import SignupQueue
from digest.subscribers.signup import drain_line

Echo = Callable[[str], None]
S = EditionState

FIRST_TICK = "(first tick)"
# Set by SIGTERM/SIGINT in `digest run`: a send in progress finishes what is on the wire.
STOP = threading.Event()


@dataclass(slots=True)
class TickResult:
    """What one tick did (one line per action), or why nothing was due and what is next."""

    lines: list[str] = field(default_factory=list)
    idle: str = ""
    next_slot: dict[str, Any] | None = None


def due_slots(app: App, now: datetime, previous: datetime, first: datetime) -> list[Slot]:
    """Slots with something to do now: built (or due to be) and not over before the first
    tick ever. Every slot since the previous tick is looked at, however long the outage,
    and so is every slot whose edition is still open."""
    late = app.schedule.lateness
    seen = {s.key: s for s in app.schedule.slots_between(min(previous, now) - late, now)}
    for key in open_slots(app.store):
        seen.setdefault(key, app.schedule.slot_for(key))
    slots = sorted(seen.values(), key=lambda s: (s.first_wave, s.key))
    return [s for s in slots if s.build_at <= now and s.last_wave + late >= first]


def tick(app: App, *, echo: Echo) -> TickResult:
    """Do whatever the schedule says is due now (build, proof, expire, send), then return.

    Idempotent: cron may call it every minute, `digest run` does. Slots that were over
    before the first tick ever (a fresh install) are left alone; later ones that nobody
    handled in time are recorded as missed, wave by wave.
    """
    now = app.now()
    store = app.store
    # A mistake in the subscriber file must not stop the schedule: the last good list is
    # used and the editors are told (once per mistake); every other command still refuses.
    app.readers.lenient = True
    app.readers.sync()  # the readers' zones decide the waves; cheap when unchanged
    store.log_slot(FIRST_TICK, status="first tick", note="", now=now)
    first = store.slot_logged_at(FIRST_TICK) or now
    previous = mark_tick(store, now) or now
    result = TickResult()

    def say(line: str) -> None:
        result.lines.append(line)
        echo(line)

    for slot in due_slots(app, now, previous, first):
        if _settled(app, slot):
            continue
        try:
            with Lease(store, f"slot {slot.key}", ttl=app.settings.send.lock_ttl_seconds):
                _handle(app, slot, now, say)
        except LockedError:
            say(f"slot {slot.key}: another process is handling it")
    # The confirmations the sign-up form queued (with `digest serve`, its drain does it).
    waiting = app.settings.signup.enabled and SignupQueue(store).waiting()
    if waiting and (line := drain_line(app.readers.pages().drain())):
        say(line)
    _bounces(app, say)
    for note in app.notes:
        say(f"warning: {note}")
    app.notes.clear()
    if not result.lines:
        result.idle, result.next_slot = _idle(app, now)
        echo(result.idle)
    return result


def _bounces(app: App, say: Echo) -> None:
    """What came back to the return path since the last tick (bounces.maildir)."""
    try:
        outcomes = app.readers.poll_bounces()
    except DigestError as exc:
        say(f"warning: {exc}")
        return
    counts: dict[str, int] = {}
    for outcome in outcomes:
        if outcome.report is None:
            say(f"warning: bounces: {outcome.name}: {outcome.error}; filed as read")
            continue
        counts[outcome.action] = counts.get(outcome.action, 0) + 1
    if counts:
        done = ", ".join(f"{n} {action}" for action, n in sorted(counts.items()))
        say(f"bounces: {sum(counts.values())} read from bounces.maildir ({done})")


def _label(app: App, moment: datetime) -> str:
    return local_label(moment, app.settings.schedule.timezone)


def _idle(app: App, now: datetime) -> tuple[str, dict[str, Any]]:
    """Why nothing was due: the next slot, when it is built and sent, and open editions."""
    slot = app.schedule.next_slot(now)
    sends = f"sends at {_label(app, slot.first_wave)}"
    if len(slot.waves) > 1:
        sends = (
            f"sends in {len(slot.waves)} waves, {_label(app, slot.first_wave)} "
            f"({slot.waves[0].zone}) to {_label(app, slot.last_wave)} "
            f"({slot.waves[-1].zone})"
        )
    editions = [e for e in (app.store.latest_for_slot(k) for k in open_slots(app.store)) if e]
    if not any(e.slot == slot.key for e in editions):
        sends = f"builds at {_label(app, slot.build_at)}, {sends}"
    line = f"nothing due; next: slot {slot.key} {sends}"
    for edition in editions:
        if edition.state is S.PENDING_APPROVAL:
            line += (
                f"; edition {edition.id} ({edition.slot}) awaits approval until "
                f"{_label(app, app.schedule.deadline(edition))}"
            )
        else:
            line += f"; edition {edition.id} ({edition.slot}) is {edition.state}"
    data = {
        "slot": slot.key,
        "build_at": slot.build_at.isoformat(),
        "waves": [{"zone": w.zone, "at": w.at.isoformat()} for w in slot.waves],
    }
    return line, data


def _settled(app: App, slot: Slot) -> bool:
    """Nothing more can happen to the slot (checked before taking its lease, cheaply)."""
    edition = app.store.latest_for_slot(slot.key)
    if edition is not None and edition.state is not S.REJECTED:
        return edition.state.final
    return app.store.slot_status(slot.key) is not None


def _handle(app: App, slot: Slot, now: datetime, say: Echo) -> None:
    store = app.store
    late = app.schedule.lateness
    edition = store.latest_for_slot(slot.key)
    live = slot.live_waves(now, late)
    if edition is None or edition.state is S.REJECTED:
        if store.slot_status(slot.key):
            return
        if not live:
            note = (
                f"nothing built before its last wave ({_label(app, slot.last_wave)}) "
                "passed the maximum lateness"
            )
            if store.log_slot(slot.key, status="missed", note=note, now=now):
                say(f"slot {slot.key}: missed (digest was not running); expired, not sent late")
            return
        if edition is not None:
            return  # rejected: an editor builds again by hand if they want one
        built = _build(app, slot, now, say)
        if built is None:
            return
        edition = built
    if edition.state is S.PENDING_APPROVAL:
        # The deadline comes before the earliest wave the edition serves; the policy (skip:
        # expire, send: auto-approve) is applied once it has passed.
        edition = app.editions.enforce_deadline(edition.id)
        if edition.state is S.EXPIRED:
            say(f"slot {slot.key}: edition {edition.id} is {edition.state}; nothing sent")
            return
        _release_proofs(app, slot, edition, now, say)
    if now < slot.first_wave:
        return
    if edition.state is S.PENDING_APPROVAL:
        say(f"slot {slot.key}: edition {edition.id} still awaits approval")
        return
    if edition.state is S.APPROVED and not live:
        app.editions.expire_late(edition.id)
        say(f"slot {slot.key}: edition {edition.id} too late to send; expired")
        return
    if edition.state in (S.APPROVED, S.SENDING):
        _send(app, slot, edition, now, say)


def _build(app: App, slot: Slot, now: datetime, say: Echo) -> Edition | None:
    sched = app.settings.schedule
    zone = sched.timezone
    quiet = in_quiet_hours(now, sched.quiet_hours, zone) and bool(app.settings.approval.editors)
    hold = False
    if quiet:
        # Proofs wait for the end of quiet hours, unless the deadline comes first.
        wave = served_wave(slot, now, app.schedule.lateness)
        deadline = deadline_for(wave, minutes_before=app.settings.approval.deadline_minutes)
        ends = quiet_end(now, sched.quiet_hours, zone)
        hold = ends < deadline
    try:
        edition = app.editions.build(slot=slot.key, proofs=not hold)
    except ThinDay as exc:
        # Recorded once, so later ticks do not rebuild every minute until the slot.
        app.store.log_slot(slot.key, status="thin day", note=str(exc), now=now)
        say(f"slot {slot.key}: no edition: {exc}")
        return None
    say(f"slot {slot.key}: built edition {edition.id} ({edition.state})")
    for problem in edition.warnings:  # a failing source, a failed proof: said, not hidden
        say(f"warning: slot {slot.key}: edition {edition.id}: {problem}")
    if quiet and edition.state is S.PENDING_APPROVAL:
        if hold:
            say(
                f"slot {slot.key}: proofs of edition {edition.id} held until quiet hours end "
                f"at {_label(app, ends)}"
            )
        else:
            say(
                f"slot {slot.key}: proofs of edition {edition.id} sent inside quiet hours: "
                f"the approval deadline ({_label(app, deadline)}) comes before they end"
            )
    return edition


def _release_proofs(app: App, slot: Slot, edition: Edition, now: datetime, say: Echo) -> None:
    sched = app.settings.schedule
    if not app.editions.proofs_held(edition) or in_quiet_hours(
        now, sched.quiet_hours, sched.timezone
    ):
        return
    problems = app.editions.proofs(edition)
    for problem in problems:
        say(f"warning: {problem}")
    say(f"slot {slot.key}: proofs of edition {edition.id} sent (held during quiet hours)")


def _send(app: App, slot: Slot, edition: Edition, now: datetime, say: Echo) -> None:
    sched = app.settings.schedule
    zone = sched.timezone
    late = app.schedule.lateness
    ledger = Ledger(app.store)
    if edition.state is S.SENDING and ledger.frozen(edition.id):
        due = ledger.next_due_at(edition.id)
        if due is not None and due > now:
            return  # the next wave is not due yet: nothing to say every tick
    if in_quiet_hours(now, sched.quiet_hours, zone):
        say(
            f"slot {slot.key}: quiet hours; sending resumes at "
            f"{_label(app, quiet_end(now, sched.quiet_hours, zone))}"
        )
        return

    def not_before(reader_zone: str) -> datetime:
        # Each reader is due at their wave; quiet hours hold sending but never lateness.
        return slot.wave(reader_zone or zone) if sched.local_delivery else slot.first_wave

    report = app.sending.send(
        edition.id,
        actor="schedule",
        stop=STOP,
        not_before=not_before,
        until=quiet_start(now, sched.quiet_hours, zone),
        stale_before=now - late,
    )
    stale = [w.zone for w in slot.stale_waves(now, late)]
    if stale and report.skipped:
        say(
            f"slot {slot.key}: waves {', '.join(stale)} missed their time by more than "
            f"{sched.max_lateness_minutes} min; skipped, not sent late"
        )
    say(f"slot {slot.key}: {report.summary()}")
