"""What the materialized statement view holds, computed from a book: pure, no storage.

The view keeps a row per participant and period whose statement has anything
on it, with the figures `GET /v1/statements` shows. After a batch of events,
only the participants the batch may have changed are recomputed (the book's
per-participant position index, a superset), over the periods in play (each
month and quarter of a transaction date, and every target, adjustment and
closed period with the one after it, where adjustments land) that the batch
may have changed for them: those holding a day their events reach (the same
index's spans of days), and where adjustments land now. A close freezes its
period's statements as they stood just before it (§5.10), so for someone no
event before it changed, the close changes only the status of their row: the
view turns those rows closed in SQL and recomputes no statement (decision 130;
before, everyone's closed period and landing period were, decision 86). A
quarter of someone who never had a quarterly plan is empty unless a target or
a manual adjustment puts it on the statement, and is not computed (decision 137).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Collection, Sequence
from functools import partial
from typing import Protocol

from ledger import events as ev
from ledger.values import (
    attainment,
    money_figure,
    next_period,
    period_first_day,
    period_last_day,
    period_length,
    period_of,
)
from ledger.view_rows import ViewChanges, ViewRow
from projections.book import BookView
from projections.state import LedgerState, upto


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


def changed_since(state: LedgerState, after: int) -> list[str]:
    """Participants whose statements' figures may differ between position `after` and the head:
    those an event since concerns. A close alone changes no figure (decision 130)."""
    return sorted(pid for pid, positions in state.touched.items() if positions and positions[-1] > after)


def _closed_since(state: LedgerState, after: int) -> dict[str, int]:
    """The periods closed after position `after`, with their closes' positions, in position order."""
    start = len(state.closes)
    while start and state.closes[start - 1].position > after:  # closes are in position order
        start -= 1
    return {close.period: close.position for close in state.closes[start:]}


def _landing(state: LedgerState, at: int) -> set[str]:
    """Where adjustments land as of a position: the period after the latest close of each length."""
    return {next_period(close.period) for length in ("month", "quarter") if (close := state.last_close(length, at))}


#: A participant and the periods (in order) whose statements are to be computed.
Wanted = tuple[str, tuple[str, ...]]


class RowsMap(Protocol):
    """`work(item)` for each item, in the items' order, however computed: here (`computed_here`),
    or shared with forked processes by the projector (decision 131)."""

    def __call__(
        self, items: Sequence[Wanted], work: Callable[[Wanted], list[ViewRow | None]]
    ) -> list[list[ViewRow | None]]: ...


def computed_here(
    items: Sequence[Wanted], work: Callable[[Wanted], list[ViewRow | None]]
) -> list[list[ViewRow | None]]:
    return [work(item) for item in items]


def view_changes(
    view: BookView,
    after: int,
    periods: Collection[str],
    written: Collection[tuple[str, str]],
    map_rows: RowsMap = computed_here,
) -> ViewChanges:
    """What changes once the view moves from position `after` to `view.position`. `periods`: those
    in play; `written`: the (participant, period) rows the view holds; `map_rows`: how the
    statements are computed, each participant's rows on their own.

    Only those an event since `after` concerns are recomputed, in the periods their events may
    change: holding a day the events reach; where adjustments land, if a day is in it or earlier
    (a changed closed period's adjustment lands there); and a period closed since `after`, if
    an event before its close reached a day in it or earlier, since a closed statement is frozen
    as it stood just before its close (§5.10). Everyone else's rows of the periods closed since
    `after` keep their figures and only turn closed (`ViewChanges.closed`, decision 130); a
    period closed by `after` is frozen, whatever comes later. A quarter that is surely empty
    (`_empty_quarter`) is left out, unless the view holds a row for it."""
    state, at = view.state, view.position
    closed = _closed_since(state, after)
    landing = _landing(state, at)
    # By last day: a participant's events reach no period that ends before the earliest day they
    # touch, so only the periods from there on are looked at, not every period of the ledger's years.
    spans = sorted(((period, period_first_day(period), period_last_day(period)) for period in periods),
                   key=lambda span: span[2])
    lasts = [last.toordinal() for _, _, last in spans]
    closed_at = state.closed_at
    wanted: list[Wanted] = []
    for participant_id in changed_since(state, after):
        touched = state.touched_days(participant_id, after, at)
        if touched is None:  # cannot be: `changed_since` names those with an event since `after`
            continue
        chosen = []
        for period, first, last in spans[bisect_left(lasts, touched.earliest):]:
            close = closed_at.get(period)
            if close is None:
                if period in landing or touched.reach(first, last):
                    chosen.append(period)
            elif period in closed:
                before = state.earliest_touched(participant_id, after, close - 1)
                if before is not None and before <= last.toordinal():
                    chosen.append(period)
        if chosen and _quarters_empty_unless_targeted(state, participant_id, at):
            chosen = [period for period in chosen  # a row the view holds is recomputed all the same
                      if (participant_id, period) in written or not _empty_quarter(state, participant_id, period, at)]
        if chosen:
            wanted.append((participant_id, tuple(sorted(chosen))))
    # Costliest first, for workers that share them: a manager's period holds a line per report's deal.
    reports = state.reports
    order = sorted(range(len(wanted)), key=lambda i: -len(reports.get(wanted[i][0], ())))
    computed = dict(zip(order, map_rows([wanted[i] for i in order], partial(_rows_of, view)), strict=True))
    upserts, deletes = [], []
    for i, (participant_id, chosen_periods) in enumerate(wanted):
        for period, row in zip(chosen_periods, computed[i], strict=True):
            if row is not None:
                upserts.append(row)
            elif (participant_id, period) in written:
                deletes.append((participant_id, period))
    return ViewChanges(upserts, deletes, list(closed))


def _quarters_empty_unless_targeted(state: LedgerState, participant_id: str, at: int) -> bool:
    """Whether only a target can put anything on the participant's quarters by `at`: they had no
    plan with a quarter-length version (`quarterly_members`), so every credit of theirs counts in
    its month (§5.2), their commission, spiff, release and override lines are all in months
    (§5.4-5.8), no cap line can arise in a quarter, and no closed quarter's total of theirs ever
    changed (§5.10); and they have no manual adjustment of any quarter (one of a closed quarter
    makes an adjustment line where adjustments land)."""
    if state.quarterly_members.get(participant_id, at + 1) <= at:
        return False
    adjustments = upto(state.adjustments.get(participant_id, ()), at)
    return not any(period_length(adjustment.period) == "quarter" for adjustment in adjustments)


def _empty_quarter(state: LedgerState, participant_id: str, period: str, at: int) -> bool:
    """For a participant `_quarters_empty_unless_targeted`: whether `period` is a quarter with no
    target of theirs, whose statement is empty without computing it. A monthly member's quarters
    were a quarter of the view rebuild's statements (decision 137)."""
    return period_length(period) == "quarter" and state.target(participant_id, period, at) is None


def _rows_of(view: BookView, wanted: Wanted) -> list[ViewRow | None]:
    participant_id, periods = wanted
    return [statement_row(view, participant_id, period) for period in periods]


def statement_row(view: BookView, participant_id: str, period: str) -> ViewRow | None:
    """The view's row for one statement, or None when the statement is empty."""
    statement = view.statement(participant_id, period)
    target, credited = statement.target, statement.credited
    if target is None and not credited and not statement.lines:
        return None
    return ViewRow(
        participant_id,
        period,
        statement.status,
        None if target is None else money_figure(target),
        money_figure(credited),
        attainment(credited, target),
        money_figure(statement.total),
        len(statement.lines),
    )
