"""What the materialized statement view holds, computed from a book: pure, no storage.

The view keeps a row per participant and period whose statement has anything
on it, with the figures `GET /v1/statements` shows. After a batch of events,
only the participants the batch may have changed are recomputed (the book's
per-participant position index, a superset), over the periods in play (each
month and quarter of a transaction date, and every target, adjustment and
closed period with the one after it, where adjustments land) that the batch
may have changed for them: those holding a day their events reach (the same
index's spans of days), and where adjustments land now. A close changes
everyone's statements of its period (open to closed) and of where adjustments
landed before it and land after it, and nothing else (§5.10: the lines of
every other period are as they were): after one, those periods of everyone
are recomputed, not every period (decision 86).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection
from decimal import Decimal

from ledger import events as ev
from ledger.values import attainment_str, money_str, next_period, period_first_day, period_last_day, period_of
from ledger.view_rows import ViewRow
from projections.book import BookView
from projections.state import LedgerState


def periods_of(event: ev.EventData) -> set[str]:
    """The periods whose statements this event can put something on."""
    match event:
        case ev.DealBooked(booked_on=day) | ev.DealCancelled(cancelled_on=day):
            return {period_of(day, "month"), period_of(day, "quarter")}
        case ev.PaymentReceived(received_on=day) | ev.PaymentReversed(reversed_on=day):
            return {period_of(day, "month"), period_of(day, "quarter")}
        case ev.TargetSet(period=period) | ev.AdjustmentRecorded(period=period):
            return {period}
        case ev.PeriodClosed(period=period):
            return {period, next_period(period)}
        case _:
            return set()


def changed_since(state: LedgerState, after: int) -> set[str]:
    """Participants whose statements may differ between position `after` and the head.

    A close changes everyone's statements of that period (open to closed) and
    where later adjustments land, so it brings in every participant.
    """
    if _closed_since(state, after):
        return set(state.participants)
    return {pid for pid, positions in state.touched.items() if positions and positions[-1] > after}


def _closed_since(state: LedgerState, after: int) -> list[str]:
    """The periods closed after position `after` (closes are in position order)."""
    closed = []
    for close in reversed(state.closes):
        if close.position <= after:
            break
        closed.append(close.period)
    return closed


def _landing(state: LedgerState, at: int) -> set[str]:
    """Where adjustments land as of a position: the period after the latest close of each length."""
    return {next_period(close.period) for length in ("month", "quarter") if (close := state.last_close(length, at))}


def view_changes(
    view: BookView, after: int, periods: Collection[str], written: Collection[tuple[str, str]]
) -> tuple[list[ViewRow], list[tuple[str, str]]]:
    """The rows to write, and the (participant, period) rows to delete, once the view moves from
    position `after` to `view.position`. `periods`: those in play; `written`: the rows it holds."""
    state, at = view.state, view.position
    closed = _closed_since(state, after)
    # Recomputed for everyone changed: where adjustments land, and the periods closed since
    # `after` (where adjustments landed before them: periods of a length close in calendar order).
    everyone = _landing(state, at) | set(closed)
    # By last day: a participant's events reach no period that ends before the earliest day they
    # touch, so only the periods from there on are looked at, not every period of the ledger's years.
    spans = sorted(((period, period_first_day(period), period_last_day(period)) for period in periods),
                   key=lambda span: span[2])
    lasts = [last.toordinal() for _, _, last in spans]
    always = [span for span in spans if span[0] in everyone]
    upserts, deletes = [], []
    for participant_id in sorted(changed_since(state, after)):
        touched = state.touched_days(participant_id, after, at)  # None: no event of theirs since `after`
        chosen = always
        if touched is not None:
            reached = [(period, first, last) for period, first, last in spans[bisect_left(lasts, touched.earliest):]
                       if period not in everyone and touched.reach(first, last)]
            chosen = sorted(always + reached)  # in period order
        for period, _, _ in chosen:
            row = statement_row(view, participant_id, period)
            if row is not None:
                upserts.append(row)
            elif (participant_id, period) in written:
                deletes.append((participant_id, period))
    return upserts, deletes


def statement_row(view: BookView, participant_id: str, period: str) -> ViewRow | None:
    """The view's row for one statement, or None when the statement is empty."""
    statement = view.statement(participant_id, period)
    target, credited = statement.target, statement.credited
    if target is None and not credited and not statement.lines:
        return None
    attainment = attainment_str(credited, target)
    return ViewRow(
        participant_id,
        period,
        statement.status,
        None if target is None else Decimal(money_str(target)),
        Decimal(money_str(credited)),
        None if attainment is None else Decimal(attainment),
        Decimal(money_str(statement.total)),
        len(statement.lines),
    )
