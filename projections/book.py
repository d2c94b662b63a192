"""The statement book: statements, attainment and rankings at any position, with closes (§5.10).

A `Book` folds events into a position-versioned state; every read names the
position it is at. A close is only a position: the frozen statement of a
closed period is the statement as of just before its close, and the baseline
for later adjustments is the period's own lines as of the latest close. Both
are ordinary reads of the same state, memoised because a past position never
changes. The same events give the same answers byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, localcontext
from functools import cached_property
from operator import attrgetter, itemgetter
from typing import Any

from ledger import events as ev
from ledger.immutable import immutable
from ledger.settings import MEMO_LINES
from ledger.values import (
    EXACT_PRECISION,
    PeriodLength,
    attainment_str,
    money_str,
    next_period,
    period_first_day,
    period_last_day,
    period_length,
    period_of,
)
from ledger.view_rows import CLOSED
from projections.lines import Line, changed_event_ids, payable_lines, payable_total, same_lines
from projections.ordering import Shape, ratio_divide, ratio_shape
from projections.resolve import team_on
from projections.state import Close, Dispute, LedgerState
from projections.statement import Engine, PeriodView

_ZERO = Decimal(0)


@immutable
class Row:
    """One participant's attainment in a period. Rows are memoised and read by every ranking and
    attainment request of their team, so each renders its figures once (`Row.of`), as text
    rather than a dict: a cold ranking makes hundreds, and the memo keeps them (decision 100).
    Equal when their four facts are."""

    participant_id: str
    team_id: str
    target: Decimal | None
    credited: Decimal
    shape: Shape | None = field(compare=False, repr=False)
    target_text: str | None = field(compare=False, repr=False)
    credited_text: str = field(compare=False, repr=False)
    attainment: str | None = field(compare=False, repr=False)

    @classmethod
    def of(cls, participant_id: str, team_id: str, target: Decimal | None, credited: Decimal) -> Row:
        return cls(
            participant_id,
            team_id,
            target,
            credited,
            ratio_shape(credited, target),
            None if target is None else money_str(target),
            money_str(credited),
            attainment_str(credited, target),
        )

    def body(self) -> dict[str, Any]:
        """A fresh dict: callers may add to it."""
        return {
            "participant_id": self.participant_id,
            "team_id": self.team_id,
            "target": self.target_text,
            "credited": self.credited_text,
            "attainment": self.attainment,
        }

    def ranked_body(self, place: int) -> dict[str, Any]:
        """The body of a ranking's row: `rank` first, then `body()`'s fields."""
        return {
            "rank": place,
            "participant_id": self.participant_id,
            "team_id": self.team_id,
            "target": self.target_text,
            "credited": self.credited_text,
            "attainment": self.attainment,
        }


@dataclass(frozen=True)
class Statement:
    participant_id: str
    period: str
    status: str
    target: Decimal | None
    credited: Decimal
    lines: tuple[Line, ...]
    total: Decimal
    warnings: tuple[str, ...]
    disputes: tuple[dict[str, Any], ...]
    #: A closed statement's `recomputed_total`, computed when first asked for (under `Books.reading()`,
    #: like the statement): it needs the period's own lines as of now, which what-ifs and payouts,
    #: showing frozen totals only, never do.
    recompute: Callable[[], Decimal] | None = field(default=None, repr=False, compare=False)

    @cached_property
    def recomputed_total(self) -> Decimal | None:
        return None if self.recompute is None else self.recompute()

    def body(self, as_of_position: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "participant_id": self.participant_id,
            "period": self.period,
            "as_of_position": as_of_position,
            "status": self.status,
            "target": None if self.target is None else money_str(self.target),
            "credited": money_str(self.credited),
            "attainment": attainment_str(self.credited, self.target),
            "lines": [line.body() for line in self.lines],
            "total": money_str(self.total),
        }
        if self.status == CLOSED:
            assert self.recomputed_total is not None
            out["frozen_total"] = money_str(self.total)
            out["recomputed_total"] = money_str(self.recomputed_total)
        out["warnings"] = list(self.warnings)
        out["disputes"] = list(self.disputes)
        return out


class Book:
    def __init__(
        self, state: LedgerState | None = None, forked_from: Book | None = None, memo_lines: int = MEMO_LINES
    ) -> None:
        """`forked_from`: the book whose state `state` was forked from at its head; reads as of
        positions up to that head share its memo (`Engine`). `memo_lines` bounds this book's own
        memo, never above the shared one's."""
        self.state = state if state is not None else LedgerState()
        shares = forked_from.engine if forked_from is not None else None
        if shares is not None:
            memo_lines = min(memo_lines, shares.memo_lines)
        self.engine: Engine = Engine(self.state, shares, memo_lines)

    @property
    def position(self) -> int:
        return self.state.position

    def apply(self, position: int, event_id: str, event: ev.EventData) -> None:
        self.state.apply(position, event_id, event)

    def view(self, at: int | None = None) -> BookView:
        return BookView(self, self.position if at is None else at)

    # --- conveniences at the head ------------------------------------------------------

    def has_participant(self, participant_id: str) -> bool:
        return self.view().has_participant(participant_id)

    def statement(self, participant_id: str, period: str) -> Statement:
        return self.view().statement(participant_id, period)

    def rows(self, period: str, team_id: str | None = None) -> list[Row]:
        return self.view().rows(period, team_id)


class BookView:
    """The book as it stood at one position: the read side's unit of consistency."""

    def __init__(self, book: Book, at: int) -> None:
        self.book = book
        self.state = book.state
        self.engine = book.engine
        self.position = at
        #: Skip closed periods that nothing since the latest close can have changed (off only in tests,
        #: to compare with the brute-force recomputation of every closed period).
        self.skip_untouched = True

    def has_participant(self, participant_id: str) -> bool:
        return self.state.exists(participant_id, self.position)

    def own_payable(self, participant_id: str, period: str, at: int | None = None) -> tuple[Line, ...]:
        return payable_lines(self.engine.own(participant_id, period, self.position if at is None else at).lines)

    # --- statements --------------------------------------------------------------------

    def statement(self, participant_id: str, period: str) -> Statement:
        close = self.state.closed_at.get(period)
        if close is None or close > self.position:
            return self._open(participant_id, period, self.position)
        frozen = self._open(participant_id, period, close - 1)
        frozen_adjustments = tuple(line for line in frozen.lines if line.kind == "adjustment")

        def recompute() -> Decimal:
            return payable_total(self.own_payable(participant_id, period) + frozen_adjustments)

        return Statement(
            participant_id,
            period,
            CLOSED,
            frozen.target,
            frozen.credited,
            frozen.lines,
            frozen.total,
            frozen.warnings,
            self._disputes(participant_id, period),
            recompute,
        )

    def _open(self, participant_id: str, period: str, at: int) -> Statement:
        view: PeriodView = self.engine.own(participant_id, period, at)
        lines = tuple(view.lines) + self._adjustments(participant_id, period, at)
        target = self.state.target(participant_id, period, at)
        return Statement(
            participant_id,
            period,
            "open",
            target.amount if target is not None else None,
            view.credited,
            lines,
            payable_total(lines),
            tuple(view.warnings),
            self._disputes(participant_id, period),
        )

    def _adjustments(self, participant_id: str, period: str, at: int) -> tuple[Line, ...]:
        """Changes of closed periods' own totals since the latest close, paid in the period after it.

        Memoised like the views they compare (decision 102): they depend only on the participant's
        effective position and the latest close's. A manager's period holds a line per report's
        deal, and comparing two such views line by line took most of each read of the statement."""
        length = period_length(period)
        last = self.state.last_close(length, at)
        if last is None or period != next_period(last.period):
            return ()
        effective = self.state.effective(participant_id, at)
        if effective <= last.position:
            return ()  # nothing that concerns this participant happened since the latest close
        key = ("adjustments", participant_id, period, effective, last.position, self.skip_untouched)
        return self.engine.memoised(
            key, effective, self._adjusted, participant_id, period, effective, last, reach=max(effective, last.position)
        )

    def _adjusted(self, participant_id: str, period: str, at: int, last: Close) -> tuple[Line, ...]:
        """`_adjustments` as of the participant's effective position `at`; the closes are those by
        `last`, which may come after `at` (a close need not touch everyone)."""
        touched = self.state.touched_days(participant_id, last.position, at)
        if touched is None:  # cannot be: `at` is a position of theirs after the close (`_adjustments`)
            return ()
        out = []
        closes = self.state.closed_periods(period_length(period), last.position)  # in calendar order
        if self.skip_untouched:  # only those that end on or after the earliest day touched
            start = len(closes)
            while start and period_last_day(closes[start - 1].period).toordinal() >= touched.earliest:
                start -= 1
            closes = closes[start:]
        for close in closes:
            if self.skip_untouched and not touched.reach(period_first_day(close.period), period_last_day(close.period)):
                continue  # what happened since can only change lines of other days
            now_view = self.engine.own(participant_id, close.period, at)
            before_view = self.engine.own(participant_id, close.period, last.position)
            if same_lines(now_view.lines, before_view.lines):
                continue  # one memoised view, or a manager's override lines shared by both positions
            now, before = payable_lines(now_view.lines), payable_lines(before_view.lines)
            delta = payable_total(now) - payable_total(before)
            if delta == 0:
                continue
            event_ids = changed_event_ids(now, before)
            out.append(
                Line("adjustment", delta, period, (close.period,), tuple(event_ids), for_period=close.period)
            )
        return tuple(out)  # memoised, so shared by every read: not to be changed

    def _disputes(self, participant_id: str, period: str) -> tuple[dict[str, Any], ...]:
        return tuple(self.disputes(participant_id=participant_id, period=period))

    def disputes(
        self, participant_id: str | None = None, period: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        """Disputes opened by this position, with their status as of it, in opening order."""
        out = []
        if participant_id is not None and period is not None:  # a statement's own (decision 87)
            candidates: Iterable[Dispute] = self.state.statement_disputes.get((participant_id, period), ())
        else:
            candidates = self.state.disputes.values()
        for dispute in candidates:
            if dispute.position > self.position:
                continue
            resolution = dispute.resolution
            if resolution is not None and resolution.position > self.position:
                resolution = None
            state = resolution.resolution if resolution else "open"
            if participant_id not in (None, dispute.participant_id) or period not in (None, dispute.period):
                continue
            if status not in (None, state):
                continue
            entry: dict[str, Any] = {
                "dispute_id": dispute.dispute_id,
                "participant_id": dispute.participant_id,
                "period": dispute.period,
                "status": state,
                "reason": dispute.reason,
            }
            if dispute.deal_id is not None:
                entry["deal_id"] = dispute.deal_id
            if resolution is not None:
                entry["note"] = resolution.note
            out.append(entry)
        return out

    # --- attainment and rankings -------------------------------------------------------

    def team_of(self, participant_id: str, period: str) -> tuple[str, str | None]:
        """(team_id, manager_id) on the period's last day, as of this view."""
        return team_on(self.state, participant_id, period_last_day(period), self.position)

    def rows(self, period: str, team_id: str | None = None) -> list[Row]:
        """Attainment rows in participant order: as they stood just before the close, if closed.

        Memoised like the engine's figures, per participant: a row depends only on the
        participant's own events. Its loop is most of a cold ranking's time (decision 100)."""
        state = self.state
        close = state.closed_at.get(period)
        at = self.position if close is None or close > self.position else close - 1
        last_day = period_last_day(period)
        if team_id is None:
            candidates = state.participants_at(at)
        else:  # only people who were ever on the team can be on it on the last day
            ever = state.team_members_ever.get(team_id, set())
            candidates = [p for p in ever if state.exists(p, at)]
        effective, memoised, new_row = state.effective, self.engine.memoised, self._new_row
        with localcontext() as ctx:  # once here, not once per row the memo computes
            ctx.prec = EXACT_PRECISION
            rows = []
            for participant_id in sorted(candidates):
                row_at = effective(participant_id, at)
                key = ("row", participant_id, period, row_at)
                row = memoised(key, row_at, new_row, participant_id, period, last_day, row_at)
                if team_id is None or row.team_id == team_id:
                    rows.append(row)
        return rows

    def _new_row(self, participant_id: str, period: str, last_day: date, at: int) -> Row:
        state = self.state
        team, _ = team_on(state, participant_id, last_day, at)
        target = state.target(participant_id, period, at)
        credited = self.engine.credited_at(participant_id, period, at)
        return Row.of(participant_id, team, target.amount if target is not None else None, credited)


def recent_periods(state: LedgerState, at: int) -> list[str]:
    """The periods whose rankings are read most, newest first: where adjustments land as of `at`
    (the period after the latest close of each length) and the year before it (eleven months,
    three quarters). None of a length that has never closed."""
    out = []
    for length, count in _A_YEAR:
        close = state.last_close(length, at)
        if close is None:
            continue
        period = next_period(close.period)
        if len(period) > len(close.period):  # after 9999's last period: no landing, the close's own
            period = close.period
        for _ in range(count):
            out.append(period)
            first = period_first_day(period)
            if first == date.min:
                break
            period = period_of(first - timedelta(days=1), length)
    return out


def rank(rows: list[Row]) -> list[tuple[int, Row]]:
    """Competition ranking by exact attainment (nulls last), then credited, then id.

    Rows in participant order (nothing to do when `BookView.rows` made them) are sorted
    descending by (has attainment, attainment, credited): the sort is stable, so ties stay in
    participant order, and the keys hold no negated copies (decision 100). A tie is an equal key."""
    divide = ratio_divide([row.shape for row in rows])  # the keys `ratio_keys` gives, tested exact
    keyed = []
    for row in sorted(rows, key=_PARTICIPANT):  # already in that order when `BookView.rows` made them
        target = row.target
        key = divide(row.credited, target) if target else None
        keyed.append(((key is not None, key or _ZERO, row.credited), row))
    keyed.sort(key=_FIRST, reverse=True)
    ranked: list[tuple[int, Row]] = []
    place, previous = 0, None
    for i, (tie, row) in enumerate(keyed, 1):
        if tie != previous:
            place, previous = i, tie
        ranked.append((place, row))
    return ranked


_A_YEAR: tuple[tuple[PeriodLength, int], ...] = (("month", 12), ("quarter", 4))
_FIRST = itemgetter(0)
_PARTICIPANT = attrgetter("participant_id")
