"""The statement book: the fold plus what period closes freeze (§5.10), and the read views.

A `Book` is a pure function of the events applied to it: the same events give
the same statements byte for byte. At a `PeriodClosed` it freezes every
statement and attainment row of the period as they stood just before the
close, and records each participant's own lines of every closed period of
that length as the baseline against which later changes become adjustments.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

from ledger import events as ev
from ledger.values import (
    EXACT_PRECISION,
    attainment_str,
    money_str,
    next_period,
    period_last_day,
    period_length,
)
from projections.lines import Line, payable_total
from projections.resolve import team_on
from projections.state import LedgerState
from projections.statement import CreditView, OwnLines, PeriodView, credits_of, own_lines


@contextmanager
def exact() -> Iterator[None]:
    with localcontext() as ctx:
        ctx.prec = EXACT_PRECISION
        yield


@dataclass(frozen=True)
class Frozen:
    """A statement's figures as they stood just before its period closed."""

    target: Decimal | None
    credited: Decimal
    lines: tuple[Line, ...]
    total: Decimal
    warnings: tuple[str, ...]


EMPTY = Frozen(None, Decimal(0), (), Decimal(0), ())


@dataclass(frozen=True)
class Row:
    participant_id: str
    team_id: str
    target: Decimal | None
    credited: Decimal

    @property
    def attainment(self) -> Fraction | None:
        if not self.target:
            return None
        return Fraction(self.credited) / Fraction(self.target)

    def body(self) -> dict[str, Any]:
        return {
            "participant_id": self.participant_id,
            "team_id": self.team_id,
            "target": None if self.target is None else money_str(self.target),
            "credited": money_str(self.credited),
            "attainment": attainment_str(self.credited, self.target),
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
    recomputed_total: Decimal | None = None

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
        if self.status == "closed":
            assert self.recomputed_total is not None
            out["frozen_total"] = money_str(self.total)
            out["recomputed_total"] = money_str(self.recomputed_total)
        out["warnings"] = list(self.warnings)
        out["disputes"] = list(self.disputes)
        return out


class Book:
    def __init__(self) -> None:
        self.state = LedgerState()
        self.frozen: dict[str, dict[str, Frozen]] = {}
        self.frozen_rows: dict[str, tuple[Row, ...]] = {}
        self.baselines: dict[tuple[str, str], tuple[Line, ...]] = {}
        self._credits: dict[str, list[CreditView]] = {}
        self._own: dict[str, OwnLines] = {}

    @property
    def position(self) -> int:
        return self.state.position

    def apply(self, position: int, event_id: str, event: ev.EventData) -> None:
        if isinstance(event, ev.PeriodClosed):
            self._freeze(event.period)
        self.state.apply(position, event_id, event)
        self._credits.clear()
        self._own.clear()
        if isinstance(event, ev.PeriodClosed):
            self._rebase(period_length(event.period))

    # --- cached pure computations ------------------------------------------------------

    def credits(self, participant_id: str) -> list[CreditView]:
        found = self._credits.get(participant_id)
        if found is None:
            found = self._credits[participant_id] = credits_of(self.state, participant_id)
        return found

    def own(self, participant_id: str) -> OwnLines:
        found = self._own.get(participant_id)
        if found is None:
            with exact():
                found = self._own[participant_id] = own_lines(self.state, participant_id, self.credits)
        return found

    def _own_period(self, participant_id: str, period: str) -> PeriodView:
        return self.own(participant_id).get(period) or PeriodView()

    def _payable_own(self, participant_id: str, period: str) -> tuple[Line, ...]:
        return tuple(line for line in self._own_period(participant_id, period).lines if line.payable)

    # --- closes and adjustments --------------------------------------------------------

    def _freeze(self, period: str) -> None:
        statements = {}
        for participant_id in self.state.participants:
            open_ = self._open(participant_id, period)
            statements[participant_id] = Frozen(
                open_.target, open_.credited, open_.lines, open_.total, open_.warnings
            )
        self.frozen[period] = statements
        self.frozen_rows[period] = tuple(self._live_rows(period))

    def _rebase(self, length: str) -> None:
        closed = [q for q in self.state.closed if period_length(q) == length]
        for participant_id in self.state.participants:
            for period in closed:
                self.baselines[(participant_id, period)] = self._payable_own(participant_id, period)

    def _adjustments(self, participant_id: str, period: str) -> list[Line]:
        length = period_length(period)
        last = self.state.last_closed.get(length)
        if last is None or period != next_period(last):
            return []
        out = []
        for closed in sorted(q for q in self.state.closed if period_length(q) == length):
            now = self._payable_own(participant_id, closed)
            before = self.baselines.get((participant_id, closed), ())
            delta = payable_total(now) - payable_total(before)
            if delta == 0:
                continue
            changed = set(now).symmetric_difference(before)
            event_ids = sorted({event_id for line in changed for event_id in line.event_ids})
            out.append(Line("adjustment", delta, period, (closed,), tuple(event_ids), for_period=closed))
        return out

    # --- reads -------------------------------------------------------------------------

    def has_participant(self, participant_id: str) -> bool:
        return participant_id in self.state.participants

    def _open(self, participant_id: str, period: str) -> Statement:
        view = self._own_period(participant_id, period)
        with exact():
            lines = tuple(view.lines) + tuple(self._adjustments(participant_id, period))
            target = self.state.targets.get((participant_id, period))
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

    def statement(self, participant_id: str, period: str) -> Statement:
        if period not in self.state.closed:
            return self._open(participant_id, period)
        frozen = self.frozen[period].get(participant_id, EMPTY)
        with exact():
            frozen_adjustments = tuple(line for line in frozen.lines if line.kind == "adjustment")
            recomputed = payable_total(self._payable_own(participant_id, period) + frozen_adjustments)
        return Statement(
            participant_id,
            period,
            "closed",
            frozen.target,
            frozen.credited,
            frozen.lines,
            frozen.total,
            frozen.warnings,
            self._disputes(participant_id, period),
            recomputed,
        )

    def _disputes(self, participant_id: str, period: str) -> tuple[dict[str, Any], ...]:
        out = []
        for dispute in self.state.disputes.values():
            if dispute.participant_id == participant_id and dispute.period == period:
                entry: dict[str, Any] = {
                    "dispute_id": dispute.dispute_id,
                    "status": dispute.resolution or "open",
                    "reason": dispute.reason,
                }
                if dispute.deal_id is not None:
                    entry["deal_id"] = dispute.deal_id
                if dispute.note is not None:
                    entry["note"] = dispute.note
                out.append(entry)
        return tuple(out)

    def _live_rows(self, period: str) -> Iterator[Row]:
        last_day = period_last_day(period)
        for participant_id in self.state.participants:
            team_id, _ = team_on(self.state, participant_id, last_day)
            target = self.state.targets.get((participant_id, period))
            yield Row(
                participant_id,
                team_id,
                target.amount if target is not None else None,
                self._own_period(participant_id, period).credited,
            )

    def rows(self, period: str, team_id: str | None = None) -> list[Row]:
        """Attainment rows: frozen for a closed period, live otherwise; in participant order."""
        rows = self.frozen_rows[period] if period in self.state.closed else tuple(self._live_rows(period))
        return sorted(
            (row for row in rows if team_id is None or row.team_id == team_id),
            key=lambda row: row.participant_id,
        )


def rank(rows: list[Row]) -> list[tuple[int, Row]]:
    """Competition ranking by exact attainment (nulls last), then credited, then id."""

    def key(row: Row) -> tuple[int, Fraction, Decimal, str]:
        attainment = row.attainment
        return (
            1 if attainment is None else 0,
            -(attainment or Fraction(0)),
            -row.credited,
            row.participant_id,
        )

    ordered = sorted(rows, key=key)
    ranked: list[tuple[int, Row]] = []
    for i, row in enumerate(ordered):
        if ranked and (ranked[-1][1].attainment, ranked[-1][1].credited) == (row.attainment, row.credited):
            ranked.append((ranked[-1][0], row))
        else:
            ranked.append((i + 1, row))
    return ranked
