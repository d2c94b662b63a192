"""The ledger's facts, folded from events in position order, and versioned by position.

Every fact keeps the position of the event that established it, and nothing
is ever overwritten: a deal keeps all its amounts, a target all its values.
So one state answers "as of position N" for any N up to its head by ignoring
what came later. That makes as-of reads, frozen statements and adjustment
baselines cheap reads of the same state instead of re-folds of the log.
It never computes money; `projections.statement` does.
"""

from __future__ import annotations

import bisect
from array import array
from collections import ChainMap
from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Protocol, TypeVar

from ledger import events as ev
from ledger.events import PlanRules
from ledger.immutable import immutable
from ledger.values import EXACT, months_of, period_first_day, period_last_day, period_length, period_of


class Positioned(Protocol):
    """Anything with the position of the event that created it."""

    @property
    def position(self) -> int: ...


P = TypeVar("P", bound=Positioned)

_ZERO = Decimal(0)
_NONE: array[int] = array("q")
#: How many of a participant's latest entries `effective_in` looks back over for one reaching a
#: period: as many as a manager's month can hold, for half a millisecond at most (decision 103).
_LOOK_BACK = 4_096
#: The `touched_until` of an event whose reach has no last day.
_OPEN = 2**31 - 1


@lru_cache(maxsize=4096)
def _last_ordinal(period: str) -> int:
    return period_last_day(period).toordinal()


def _same_figure(a: Decimal, b: Decimal) -> bool:
    """Equal as written, not only in value: `Decimal("1") == Decimal("1.0")`, but lines show a share
    as it was given. Decoded shares are shared objects (`ledger.decode`), so mostly `is` answers."""
    return a is b or a.as_tuple() == b.as_tuple()


@lru_cache(maxsize=4096)
def _period_since(period: str) -> tuple[int, tuple[str, ...]]:
    """A period's first day (ordinal) and its months (`_since`)."""
    return period_first_day(period).toordinal(), tuple(months_of(period))


def clawback_window(plan: PlanVersion | None) -> int | None:
    """The clawback window that judges a cancelled credit under a plan; none under no plan (§5.2):
    the engine's statements and the fold's recounting (decision 145) read it here alike."""
    return None if plan is None else plan.rules.clawback_days


@lru_cache(maxsize=8192)  # the days deals are booked on: a few thousand distinct ones
def _month_and_quarter(day: date) -> tuple[str, str]:
    """One month and one quarter string per day, shared by every deal booked on it."""
    return period_of(day, "month"), period_of(day, "quarter")


@lru_cache(maxsize=8192)
def _booking_months(day: date) -> tuple[str, tuple[str, ...]]:
    """The month of a booking day, and the months of its quarter."""
    month, quarter = _month_and_quarter(day)
    return month, tuple(months_of(quarter))


#: The tables `apply` writes for each event type, besides the touched positions (`_TOUCHED`): a
#: fork copies those of its events' types at the top level, `_privatise` gives it its own copy of
#: every list, set, array or object in them that an event changes, and the rest is shared with the
#: real state (decisions 65, 93, 95 and 96). For deal events, the deal tables keyed by participant
#: or period; `deals` and `payments`, which hold every deal and payment ever recorded, get an
#: overlay instead (`_OVERLAID`): a copy of `deals` took some 25 ms at a million events.
_TOUCHED = ("touched", "touched_from", "touched_until")
_DEAL_WRITES = (
    "sole_credits",
    "deals_by_month",
    "month_credit",
    "closed_credit",
    "cash_deals",
    "cash_days",
    "with_cancelled",
)
_PEOPLE_WRITES = ("participants", "participant_order", "team_members_ever", "reports", "managers_ever")
_WRITES: dict[type[ev.EventData], tuple[str, ...]] = {
    ev.PlanPublished: ("plans", "collection_members", "quarterly_members"),
    ev.PlanAssigned: ("assignments", "plan_members", "collection_members", "quarterly_members"),
    ev.TargetSet: ("targets",),
    ev.AdjustmentRecorded: ("adjustments",),
    ev.DealBooked: _DEAL_WRITES,
    ev.DealAmended: _DEAL_WRITES,
    ev.DealCancelled: _DEAL_WRITES,
    ev.PaymentReceived: _DEAL_WRITES,
    ev.PaymentReversed: _DEAL_WRITES,
    ev.ParticipantRegistered: _PEOPLE_WRITES,
    ev.ParticipantTransferred: _PEOPLE_WRITES,
    ev.PeriodClosed: ("closes", "closes_of", "closed_at", "closed_credit"),
    ev.DisputeOpened: ("disputes", "statement_disputes"),
    ev.DisputeResolved: ("disputes", "statement_disputes"),
}
_OVERLAID = ("deals", "payments")
_DEAL_EVENTS = frozenset(type_ for type_, names in _WRITES.items() if names is _DEAL_WRITES)


def latest(items: list[P], at: int) -> P | None:
    """The last item (in position order) created at or before `at`."""
    for item in reversed(items):
        if item.position <= at:
            return item
    return None


def upto(items: Sequence[P], at: int) -> Sequence[P]:
    """The items (in position order) created at or before `at`."""
    if not items or items[-1].position <= at:
        return items
    return items[: bisect.bisect_right([item.position for item in items], at)]


@dataclass(frozen=True, slots=True)
class TouchedDays:
    """The spans of days (first, last; inclusive day ordinals) whose lines some events may change."""

    spans: tuple[tuple[int, int], ...]
    #: the earliest day of any span: periods that end before it are out of reach, so a reader of
    #: many periods (all closed ones, say) looks only at those from it on (decision 90)
    earliest: int

    def reach(self, first: date, last: date) -> bool:
        """Whether any of these events may change a line dated from `first` to `last`."""
        start, end = first.toordinal(), last.toordinal()
        return any(since <= end and start <= until for since, until in self.spans)


@immutable
class Transfer:
    effective_date: date
    position: int
    team_id: str
    manager_id: str | None


@dataclass(slots=True)
class Participant:
    participant_id: str
    name: str
    start_date: date
    team_id: str
    manager_id: str | None
    position: int
    transfers: list[Transfer] = field(default_factory=list)

    def team_on(self, day: date, at: int) -> tuple[str, str | None]:
        """(team_id, manager_id) on a day: the latest-dated transfer on or before it, else registration."""
        best = None
        for transfer in self.transfers:
            if (
                transfer.position <= at
                and transfer.effective_date <= day
                and (best is None or transfer.effective_date >= best.effective_date)
            ):
                best = transfer
        if best is None:
            return self.team_id, self.manager_id
        return best.team_id, best.manager_id

    def managers_during(self, first: date, last: date, at: int) -> set[str | None]:
        """Every manager the participant had on some day from `first` to `last`: the manager changes
        only on a transfer's effective date."""
        out = {self.team_on(first, at)[1]}
        for transfer in self.transfers:
            if transfer.position <= at and first < transfer.effective_date <= last:
                out.add(self.team_on(transfer.effective_date, at)[1])
        return out


@immutable
class PlanVersion:
    plan_id: str
    version: int
    effective_from: date
    rules: PlanRules
    position: int
    event_id: str


@immutable
class Assignment:
    plan_id: str
    effective_from: date
    effective_to: date | None
    position: int

    def covers(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)


@immutable
class TargetEntry:
    amount: Decimal
    position: int
    event_id: str


class Amount(Protocol):
    """A deal's amount from a position on: its booking (the `Deal`) or an amendment (`AmountEntry`)."""

    @property
    def amount(self) -> Decimal: ...

    @property
    def position(self) -> int: ...

    @property
    def event_id(self) -> str: ...


@immutable
class AmountEntry:
    amount: Decimal
    position: int
    event_id: str


@immutable
class CashMove:
    """A payment (+) or its reversal (-), in the deal's position order."""

    position: int
    event_id: str
    payment_id: str
    amount: Decimal
    on: date


@immutable
class Cancellation:
    cancelled_on: date
    position: int
    event_id: str


@dataclass(slots=True)
class Deal:
    deal_id: str
    booked_on: date
    product: str | None
    credits: tuple[tuple[str, Decimal], ...]
    position: int
    event_id: str
    #: The amount booked, not the amount now: that is `amendments[-1]`'s if any (read amounts as
    #: of a position with the engine's `_amounts`). With the booking's position and event id, the
    #: deal is its own first amount entry (`Amount`): most deals are never amended, and an entry
    #: and its tuple for the booked amount cost 104 bytes a deal.
    amount: Decimal
    #: Tuples, replaced when they grow: most deals are never amended and have at most one payment,
    #: and a tuple of one costs 40 bytes less than a list (an empty one nothing: it is shared).
    amendments: tuple[AmountEntry, ...] = ()
    cancellation: Cancellation | None = None
    cash: tuple[CashMove, ...] = ()
    quarter: str = ""  # of booked_on, once


@immutable
class Adjustment:
    adjustment_id: str
    period: str
    amount: Decimal
    reason: str
    position: int
    event_id: str


@immutable
class Resolution:
    resolution: str
    note: str
    position: int
    event_id: str


@dataclass(slots=True)
class Dispute:
    dispute_id: str
    participant_id: str
    period: str
    deal_id: str | None
    reason: str
    position: int
    event_id: str
    resolution: Resolution | None = None


@immutable
class Close:
    period: str
    position: int


@immutable
class Reporting:
    """A participant who had a given manager from this position on (at some date)."""

    participant_id: str
    position: int


class LedgerState:
    """Mutable fold; apply events in position order only. Read with an `at` position."""

    def __init__(self) -> None:
        self.position = 0
        self.participants: dict[str, Participant] = {}
        self.participant_order: list[str] = []
        self.plans: dict[str, list[PlanVersion]] = {}
        self.assignments: dict[str, list[Assignment]] = {}
        self.targets: dict[tuple[str, str], list[TargetEntry]] = {}
        #: (a `ChainMap` over the real one in a what-if's copy with new deals: `fork`)
        self.deals: MutableMapping[str, Deal] = {}
        #: (participant, share) -> the credits of a deal credited to that participant alone, shared by
        #: all such deals: most deals have one credit, and a rep books many (112 bytes a deal)
        self.sole_credits: dict[tuple[str, Decimal], tuple[tuple[str, Decimal], ...]] = {}
        #: participant -> month ("YYYY-MM" of booked_on) -> deals, in position order (the deals
        #: themselves, not their ids: rankings walk thousands per read)
        self.deals_by_month: dict[str, dict[str, list[Deal]]] = {}
        #: participant -> month -> the exact sum of latest amount x share of the deals booked in it,
        #: or None once one of them is cancelled. Read by `summed_credit`.
        self.month_credit: dict[str, dict[str, Decimal | None]] = {}
        #: closed period -> (its close's position, participant -> `month_credit` over its months
        #: as they stood at the close): rankings of a closed period read it as of its close. Kept
        #: only for those whose sums changed after the close (`_keep_closed_sums`): everyone
        #: else's stand as they are now. A copy of everyone's at every close cost about 125 bytes
        #: a participant a close, years after anyone read them (decision 89).
        self.closed_credit: dict[str, tuple[int, dict[str, Decimal | None]]] = {}
        #: participant -> month -> ids of the deals credited to them with cash dated in that month,
        #: each once, in the order of their first cash of the month: a statement's releases look at
        #: its own months only, not at every deal ever paid (decision 87)
        self.cash_deals: dict[str, dict[str, list[str]]] = {}
        #: (a `ChainMap` over the real one in a what-if's copy with deal events, like `deals`)
        self.payments: MutableMapping[str, tuple[str, Decimal]] = {}
        self.adjustments: dict[str, list[Adjustment]] = {}
        self.reports: dict[str, list[Reporting]] = {}
        self.disputes: dict[str, Dispute] = {}
        #: (participant, period) -> its disputes in opening order: a statement shows its own, and
        #: finding them among every dispute ever opened made each read cost more every year (decision 87)
        self.statement_disputes: dict[tuple[str, str], list[Dispute]] = {}
        self.closes: list[Close] = []
        #: period length -> its closes, in calendar order as in position order (§3: periods of one
        #: length close in calendar order), so that a statement finds the latest and those it can
        #: adjust without walking every close of the ledger's years (decision 90)
        self.closes_of: dict[str, list[Close]] = {}
        self.closed_at: dict[str, int] = {}
        #: participant -> positions of the events that can change their own lines,
        #: credited or target (the per-participant position index)
        #: (machine-integer arrays: a list would keep an int object for most entries, about 60 bytes an event)
        self.touched: dict[str, array[int]] = {}
        #: participant -> for each position in `touched`, the earliest day whose lines that event may
        #: change (as an ordinal): closed periods that end before it need no adjustment check
        self.touched_from: dict[str, array[int]] = {}
        #: participant -> for each position in `touched`, the latest day whose lines that event may
        #: change (as an ordinal; `_OPEN` if none): closed periods that start after it need none either
        self.touched_until: dict[str, array[int]] = {}
        #: participant -> month of booking -> (earliest, latest) cash day (ordinals) of those deals:
        #: the days their releases fall on (`_cash_span`)
        self.cash_days: dict[str, dict[str, tuple[int, int]]] = {}
        #: participants who have been assigned a plan with a collection-basis version (value: the
        #: position that made them so). Only their lines can fall on cash days: for anyone else a
        #: deal, payment or target changes nothing before the days it is about. (A dict, not a set:
        #: `fork` copies dicts.)
        self.collection_members: dict[str, int] = {}
        #: participants who have been assigned a plan with a quarter-length version (value: the
        #: position that made them so). Anyone else's credits count in their booking month, under
        #: any plan they have had or none (`_cash_span`).
        self.quarterly_members: dict[str, int] = {}
        self.plan_members: dict[str, set[str]] = {}
        #: participant -> the cancelled deals credited to them, in cancellation order (a tuple, replaced
        #: when it grows: `fork` copies this dict only): only through these can their plan change a
        #: manager's override lines (the clawback window judges the deal, §5.6)
        self.with_cancelled: dict[str, tuple[Deal, ...]] = {}
        #: team -> everyone who was ever registered into or transferred to it (a superset of any day's members)
        self.team_members_ever: dict[str, set[str]] = {}
        self.managers_ever: dict[str, set[str]] = {}

    # --- reads as of a position --------------------------------------------------------

    def effective(self, participant_id: str, at: int) -> int:
        """The last position <= at that touched the participant: reads there and at `at` agree."""
        positions = self.touched.get(participant_id)
        if not positions:
            return 0
        index = bisect.bisect_right(positions, at)
        return positions[index - 1] if index else 0

    def effective_in(self, participant_id: str, days: tuple[int, int], at: int) -> int:
        """The last position <= at whose event may change the participant's lines dated within
        `days` (first and last day ordinals, `touched_days`' spans): reads of those days there and
        at `at` agree (decision 103). A manager's later month, touched by every report's deal,
        leaves an earlier month's figures where they were. Looks back over at most `_LOOK_BACK`
        entries, then answers as `effective` does."""
        positions = self.touched.get(participant_id)
        if not positions:
            return 0
        end = bisect.bisect_right(positions, at)
        if not end:
            return 0
        first, last = days
        firsts, lasts = self.touched_from[participant_id], self.touched_until[participant_id]
        for index in range(end - 1, max(end - _LOOK_BACK, 0) - 1, -1):
            if firsts[index] <= last and first <= lasts[index]:
                return positions[index]
        return positions[end - 1]

    def exists(self, participant_id: str, at: int) -> bool:
        participant = self.participants.get(participant_id)
        return participant is not None and participant.position <= at

    def participants_at(self, at: int) -> list[str]:
        ids = self.participant_order
        if ids and self.participants[ids[-1]].position > at:
            ids = [p for p in ids if self.participants[p].position <= at]
        return ids

    def summed_credit(self, participant_id: str, period: str, at: int) -> Decimal | None:
        """The sum of amount x share of the participant's deals booked in the period's months as
        of `at`, when a running sum answers for `at`: `at` is the participant's latest touch, or
        their last before the period's close (every deal credited to someone touches them), and no
        deal of those months was cancelled by then. None otherwise. Whether the deals'
        plan counts them in the period is the caller's question."""
        touched = self.touched.get(participant_id)
        if touched and touched[-1] == at:
            return self._month_sum(self.month_credit.get(participant_id, {}), period)
        closed = self.closed_credit.get(period)
        if closed is not None and self.effective(participant_id, closed[0]) == at:
            kept = closed[1]
            if participant_id in kept:
                return kept[participant_id]
            return self._month_sum(self.month_credit.get(participant_id, {}), period)
        return None

    def _keep_closed_sums(self, participant_id: str, month: str, quarter: str) -> None:
        """Before a participant's sum of a month changes: keep their sums of the closed periods
        holding the month as they stood at the close, unless kept already (`closed_credit`)."""
        for period in (month, quarter):
            closed = self.closed_credit.get(period)
            if closed is not None and participant_id not in closed[1]:
                closed[1][participant_id] = self._month_sum(self.month_credit.get(participant_id, {}), period)

    @staticmethod
    def _month_sum(sums: dict[str, Decimal | None], period: str) -> Decimal | None:
        total = _ZERO
        for month in months_of(period):
            value = sums.get(month, _ZERO)
            if value is None:
                return None
            total = EXACT.add(total, value)
        return total

    def target(self, participant_id: str, period: str, at: int) -> TargetEntry | None:
        return latest(self.targets.get((participant_id, period), []), at)

    def is_closed(self, period: str, at: int) -> bool:
        position = self.closed_at.get(period)
        return position is not None and position <= at

    def last_close(self, length: str, at: int) -> Close | None:
        return latest(self.closes_of.get(length, []), at)

    def closed_periods(self, length: str, at: int) -> Sequence[Close]:
        """The closes of one length by `at`, in calendar order."""
        return upto(self.closes_of.get(length, ()), at)

    def reports_of(self, manager_id: str, at: int) -> list[str]:
        return sorted({r.participant_id for r in upto(self.reports.get(manager_id, []), at)})

    # --- a hypothetical copy ------------------------------------------------------------

    def fork(self, events: Sequence[tuple[int, str, ev.EventData]]) -> LedgerState:
        """A copy with these events applied, sharing everything they do not change (what-if).

        Events append to lists, sets and dicts, or change a deal, a participant or a
        dispute: the copy gets its own copies of those first (`_privatise`), and of
        the top-level tables the events' types write (`_WRITES`). Copying a
        million-event state whole, or folding its relevant part again, costs
        seconds; this costs the copy of a few tables (decisions 93, 95 and 96).
        """
        other = LedgerState.__new__(LedgerState)
        vars(other).update(vars(self))
        types = {type(event) for _, _, event in events}
        for name in {name for type_ in types for name in _WRITES[type_]}.union(_TOUCHED):
            value = getattr(self, name)
            setattr(other, name, dict(value) if isinstance(value, dict) else list(value))
        if types & _DEAL_EVENTS:
            for name in _OVERLAID:  # new deals and the copy's own copies of real ones, over the real ones
                setattr(other, name, ChainMap({}, getattr(self, name)))
        for position, event_id, event in events:
            other._privatise(event)
            other.apply(position, event_id, event)
        return other

    def _privatise(self, event: ev.EventData) -> None:
        """Give this copy its own version of every list, set or object that applying `event` changes."""
        match event:
            case ev.PlanPublished():
                self.plans[event.plan_id] = list(self.plans.get(event.plan_id, ()))
            case ev.PlanAssigned():
                self.assignments[event.participant_id] = list(self.assignments.get(event.participant_id, ()))
                self.plan_members[event.plan_id] = set(self.plan_members.get(event.plan_id, ()))
            case ev.TargetSet():
                key = (event.participant_id, event.period)
                self.targets[key] = list(self.targets.get(key, ()))
            case ev.AdjustmentRecorded():
                self.adjustments[event.participant_id] = list(self.adjustments.get(event.participant_id, ()))
            case ev.DealBooked():
                credited = [credit.participant_id for credit in event.credits]
                self._privatise_deals(credited, _month_and_quarter(event.booked_on), None)
            case ev.DealAmended() | ev.DealCancelled() | ev.PaymentReceived() | ev.PaymentReversed():
                real = self._deal_before(event)
                assert real is not None
                self._privatise_deals([p for p, _ in real.credits], _month_and_quarter(real.booked_on), real)
            case ev.ParticipantRegistered() | ev.ParticipantTransferred():
                self._privatise_people(event)
            case ev.PeriodClosed():
                length = period_length(event.period)
                self.closes_of[length] = list(self.closes_of.get(length, ()))
            case ev.DisputeOpened():
                key = (event.participant_id, event.period)
                self.statement_disputes[key] = list(self.statement_disputes.get(key, ()))
            case ev.DisputeResolved():
                real_dispute = self.disputes[event.dispute_id]
                mine = self.disputes[event.dispute_id] = replace(real_dispute)
                key = (mine.participant_id, mine.period)
                self.statement_disputes[key] = [mine if d is real_dispute else d for d in self.statement_disputes[key]]
        for participant_id in self._affected_before(event):
            positions = self.touched.get(participant_id)
            if positions is not None:  # else `apply` makes them, in this copy's tables
                self.touched[participant_id] = array("q", positions)
                self.touched_from[participant_id] = array("q", self.touched_from[participant_id])
                self.touched_until[participant_id] = array("i", self.touched_until[participant_id])

    def _deal_before(self, event: ev.EventData) -> Deal | None:
        """`_deal_of` before the event is folded: a payment is not recorded yet."""
        return self.deals[event.deal_id] if isinstance(event, ev.PaymentReceived) else self._deal_of(event)

    def _affected_before(self, event: ev.EventData) -> set[str]:
        """`_affected` before the event is folded (a superset will do): what it adds is not there yet."""
        match event:
            case ev.DealBooked():  # not booked yet: those credited and their managers on the booking day
                return self._with_managers_on([credit.participant_id for credit in event.credits], event.booked_on)
            case ev.ParticipantRegistered():  # new: no manager recorded yet
                return {event.participant_id} | ({event.manager_id} if event.manager_id else set())
            case ev.ParticipantTransferred():
                return self._transfer_reach(event, self.position)
            case ev.PlanAssigned():  # not folded yet: whose deals it recounts is not known
                return self._with_managers_if_cancelled({event.participant_id})
            case ev.PlanPublished():
                return self._with_managers_if_cancelled(self.plan_members.get(event.plan_id, set()))
            case _:
                return self._affected(event, self._deal_before(event))

    def _privatise_deals(self, credited: list[str], month_and_quarter: tuple[str, str], deal: Deal | None) -> None:
        """This copy's own deal lists, sums and cash tables of those credited with a deal of this
        month; and with `deal`, about to change, its own copy of it, put where the real one was."""
        month, quarter = month_and_quarter
        mine = replace(deal) if deal is not None else None
        if mine is not None:
            self.deals[mine.deal_id] = mine
        for participant_id in credited:
            months = self.deals_by_month.get(participant_id)
            if months is not None:
                months = self.deals_by_month[participant_id] = dict(months)
                if month in months:
                    months[month] = [mine if d is deal else d for d in months[month]] if mine else list(months[month])
            sums = self.month_credit.get(participant_id)
            if sums is not None:
                self.month_credit[participant_id] = dict(sums)
            cash = self.cash_deals.get(participant_id)
            if cash is not None:  # a payment may be dated in any month
                self.cash_deals[participant_id] = {m: list(deal_ids) for m, deal_ids in cash.items()}
            cash_days = self.cash_days.get(participant_id)
            if cash_days is not None:
                self.cash_days[participant_id] = dict(cash_days)
        for period in (month, quarter):  # where a deal of a closed period keeps sums
            closed = self.closed_credit.get(period)
            if closed is not None:
                self.closed_credit[period] = (closed[0], dict(closed[1]))

    def _privatise_people(self, event: ev.ParticipantRegistered | ev.ParticipantTransferred) -> None:
        """This copy's own copy of a transferred participant, and its own team, reports and
        managers sets or lists that the registration or transfer adds to."""
        participant_id = event.participant_id
        if isinstance(event, ev.ParticipantTransferred):
            real = self.participants[participant_id]
            self.participants[participant_id] = replace(real, transfers=list(real.transfers))
            self.managers_ever[participant_id] = set(self.managers_ever.get(participant_id, ()))
        self.team_members_ever[event.team_id] = set(self.team_members_ever.get(event.team_id, ()))
        if event.manager_id is not None:
            self.reports[event.manager_id] = list(self.reports.get(event.manager_id, ()))

    # --- the fold ----------------------------------------------------------------------

    def apply(self, position: int, event_id: str, event: ev.EventData) -> None:
        self.position = position
        deal = self._fold(position, event_id, event)
        affected = self._affected(event, deal)
        if not affected:
            return
        base, months, later = self._since(event, deal)
        reach = self._until(event, deal)
        touched, touched_from, touched_until = self.touched, self.touched_from, self.touched_until
        collection = self.collection_members
        for participant_id in affected:
            if participant_id in collection:
                since, until = self._cash_span(participant_id, base, reach, deal, months, later)
            else:  # booking basis so far: no line of theirs falls on a cash day
                since, until = base, reach
            positions = touched.get(participant_id)
            if positions is None:
                touched[participant_id] = array("q", (position,))
                touched_from[participant_id] = array("q", (since,))
                touched_until[participant_id] = array("i", (until,))
            elif positions[-1] != position:
                positions.append(position)
                touched_from[participant_id].append(since)
                touched_until[participant_id].append(until)

    def _touched_between(self, participant_id: str, after: int, at: int) -> tuple[int, int]:
        """Where the participant's entries of the touched index for events in (after, at] start and end."""
        positions = self.touched.get(participant_id, _NONE)
        end = bisect.bisect_right(positions, at)
        return bisect.bisect_right(positions, after, 0, end), end

    def touched_days(self, participant_id: str, after: int, at: int) -> TouchedDays | None:
        """The days whose lines the participant's events in (after, at] may change; None if no event."""
        start, end = self._touched_between(participant_id, after, at)
        if start >= end:
            return None
        # Slices and a set made in C: a manager is touched by every report's deal, so a team's
        # month after a close can be a hundred thousand entries with a handful of distinct spans.
        firsts = self.touched_from[participant_id][start:end]
        spans = set(zip(firsts, self.touched_until[participant_id][start:end], strict=True))
        return TouchedDays(tuple(spans), min(firsts))

    def earliest_touched(self, participant_id: str, after: int, at: int) -> int | None:
        """The earliest day (ordinal) the participant's events in (after, at] may change; None if no event."""
        start, end = self._touched_between(participant_id, after, at)
        return min(self.touched_from[participant_id][start:end]) if start < end else None

    def _deal_of(self, event: ev.EventData) -> Deal | None:
        """The deal a deal or payment event is about (most events), looked up once for all that
        follows from it."""
        match event:
            case ev.DealBooked() | ev.DealAmended() | ev.DealCancelled():
                return self.deals[event.deal_id]
            case ev.PaymentReceived() | ev.PaymentReversed():
                return self.deals[self.payments[event.payment_id][0]]
            case _:
                return None

    def _since(self, event: ev.EventData, deal: Deal | None) -> tuple[int, tuple[str, ...], str | None]:
        """A lower bound (day ordinal) of the days whose lines this event may change, for everyone
        affected; the months whose deals' cash days widen it (and `_until`) for collection members
        (`_cash_span`, which widens a deal's or payment's to those of its credit period); and the
        quarter from which every later one's lower it too, if any.

        Lines of a period depend on events dated in it, except collection releases,
        which land on cash days of deals booked in the period: those can come
        before the booking, so the earliest cash day of the deals booked in the
        deal's credit period counts (its month, or its quarter for whoever has had a
        quarterly plan, decision 135), for each participant who has had a
        collection-basis plan (`collection_members`):
        a split deal's collection-basis partner does not drag everyone's bound back.
        Whoever joins them later does so by a plan publish or assignment, whose own
        bound counts the cash days of every deal it can govern: those booked from its
        `effective_from` on, so in its quarter or later (decision 88).
        """
        if deal is not None:  # a deal or payment event (`_deal_of`)
            return self._deal_since(deal), (), None
        match event:
            case ev.ParticipantRegistered():
                # A new person has no deals yet, so no one's lines change: their manager's override
                # lines come from their deals, each of which touches the manager (decision 88).
                return event.start_date.toordinal(), (), None
            case ev.ParticipantTransferred():
                return event.effective_date.toordinal(), (), None
            case ev.PlanPublished() | ev.PlanAssigned():
                day = event.effective_from
                return day.toordinal(), (), period_of(day, "quarter")
            case ev.TargetSet() | ev.AdjustmentRecorded():
                return (*_period_since(event.period), None)
            case _:
                return 1, (), None

    def _until(self, event: ev.EventData, deal: Deal | None) -> int:
        """An upper bound (day ordinal) of the days whose lines this event may change, for everyone
        affected; a collection member's is then raised to the cash days it may move (`_cash_span`).
        Days stand for the periods holding them (a statement is recomputed whole): a deal's lines,
        and its managers' override lines, are in the periods holding its booking day (§5.2, §5.6;
        an amendment or cancellation changes those alone), so its booking day is the bound, and a
        deal reaches no later month of its quarter (decision 129). A payment's lines are releases,
        on its deal's cash days. A target's or a manual adjustment's lines are in their period.
        Anything else reaches every later day."""
        if deal is not None:  # `_deal_of`: a deal or payment event
            return deal.booked_on.toordinal()
        match event:
            case ev.TargetSet() | ev.AdjustmentRecorded():
                return _last_ordinal(event.period)
            case _:
                return _OPEN

    @staticmethod
    def _deal_since(deal: Deal) -> int:
        since = deal.booked_on.toordinal()
        if deal.cancellation is not None:
            since = min(since, deal.cancellation.cancelled_on.toordinal())
        return since

    def _cash_span(
        self, participant_id: str, since: int, until: int, deal: Deal | None, months: tuple[str, ...],
        later: str | None,
    ) -> tuple[int, int]:
        """`since` and `until` widened to a collection member's cash days of their deals booked in
        the credit period of `deal` (a deal's or payment's), or in `months` (a target's period):
        their releases, which the event may move (a new K or new cash, §5.8); and `since` lowered
        to the earliest cash day of those booked in quarter `later` or after it (a plan event,
        whose `until` is open). A payment recorded later touches the days of its deal's cash then
        known, so the days known now are enough (decision 129). The credit period is the booking
        month unless the participant has had a quarterly plan: a credit counts in its month under a
        monthly plan or none (§5.2), and whoever is assigned a quarterly plan later is so by a plan
        event, whose own bounds reach the cash days of every deal it can govern (decision 135)."""
        cash = self.cash_days.get(participant_id)
        if not cash:
            return since, until
        if deal is not None:
            month, quarter = _booking_months(deal.booked_on)
            months = quarter if participant_id in self.quarterly_members else (month,)
        for booked in months:
            days = cash.get(booked)
            if days is not None:
                since, until = min(since, days[0]), max(until, days[1])
        if later is not None:
            first = months_of(later)[0]
            for booked, (earliest, _) in cash.items():  # a dozen a year
                if earliest < since and booked >= first:  # "YYYY-MM" sorts as time does
                    since = earliest
        return since, until

    def _with_managers(self, participant_ids: Iterable[str]) -> set[str]:
        out = set()
        managers_ever = self.managers_ever
        for participant_id in participant_ids:
            out.add(participant_id)
            managers = managers_ever.get(participant_id)
            if managers:
                out |= managers
        return out

    def _with_managers_on(self, participant_ids: list[str], day: date) -> set[str]:
        """These participants and their managers on a day: a deal's override lines are those of the
        manager on its booking day (§5.6), not of every manager its reps ever had (decision 92)."""
        out = set(participant_ids)
        managers_ever, participants, position = self.managers_ever, self.participants, self.position
        for participant_id in participant_ids:
            managers = managers_ever.get(participant_id)
            if not managers:
                continue
            if len(managers) == 1:  # never transferred to another manager: the usual case, no lookup
                out |= managers
            elif (manager := participants[participant_id].team_on(day, position)[1]) is not None:
                out.add(manager)
        return out

    def _transfer_reach(self, event: ev.ParticipantTransferred, before: int) -> set[str]:
        """The transferred participant, their new manager, and every manager they had from the
        effective date on as of `before`: a transfer changes the manager of those days only, and
        a manager's override lines are those of the deals booked on days they managed (§5.6), so
        a manager the person had only before then keeps theirs (decision 97)."""
        participant_id = event.participant_id
        out = {participant_id}
        during = self.participants[participant_id].managers_during(event.effective_date, date.max, before)
        out.update(manager for manager in during if manager is not None)
        if event.manager_id is not None:
            out.add(event.manager_id)
        return out

    def _with_managers_if_cancelled(self, participant_ids: set[str], days: tuple[date, date] | None = None) -> set[str]:
        """A plan's members, and the managers of those who have a cancelled deal: a member's plan
        reaches a manager's lines only through the clawback window of a cancelled deal (§5.6), and
        a later cancellation touches the managers itself. With `days`, those whose plan the plan
        event just folded can change (a version's from its first day, an assignment's while it
        runs): only the managers of those for whom it changes whether such a deal counts (decision
        145); without, a superset (`_affected_before`: not folded yet)."""
        cancelled = self.with_cancelled
        reached = [p for p in participant_ids if p in cancelled and (days is None or self._recounts(p, days))]
        return set(participant_ids) | self._with_managers(reached)

    def _recounts(self, participant_id: str, days: tuple[date, date]) -> bool:
        """Whether the plan event just folded changes, for one of the participant's cancelled deals
        booked on `days`, whether it counts: their plan on its booking day just before the event
        and at it judge its cancellation by different clawback windows, with different outcomes."""
        from projections.resolve import plan_on  # resolve and rules import this module
        from projections.rules import is_live

        position, (first, last) = self.position, days
        for deal in self.with_cancelled[participant_id]:
            if not first <= deal.booked_on <= last:
                continue
            before = plan_on(self, participant_id, deal.booked_on, position - 1)
            after = plan_on(self, participant_id, deal.booked_on, position)
            if before is after:
                continue
            cancellation = deal.cancellation
            assert cancellation is not None
            was, now = (is_live(deal.booked_on, cancellation.cancelled_on, clawback_window(p)) for p in (before, after))
            if was != now:
                return True
        return False

    def _affected(self, event: ev.EventData, deal: Deal | None) -> set[str]:
        """Whose own lines, credited or target may this event change (a superset is fine).
        `deal`: the event's, if it is a deal or payment event (`_deal_of`)."""
        if deal is not None:
            credited = [participant_id for participant_id, _ in deal.credits]
            if isinstance(event, ev.PaymentReceived | ev.PaymentReversed):
                # Cash moves only releases (§5.8), lines of collection-basis plans: of those credited,
                # only who has had one by now. Who gets one later does so by a plan event, which
                # reaches the cash days of the deals it can govern (`_since`); no manager's lines.
                collection = self.collection_members
                return {participant_id for participant_id in credited if participant_id in collection}
            return self._with_managers_on(credited, deal.booked_on)
        match event:
            case ev.ParticipantRegistered():
                return self._with_managers([event.participant_id])
            case ev.ParticipantTransferred():
                return self._transfer_reach(event, self.position - 1)  # not this transfer itself
            case ev.PlanAssigned():
                days = (event.effective_from, event.effective_to or date.max)
                return self._with_managers_if_cancelled({event.participant_id}, days)
            case ev.PlanPublished():
                members = self.plan_members.get(event.plan_id, set())
                return self._with_managers_if_cancelled(members, (event.effective_from, date.max))
            case ev.TargetSet() | ev.AdjustmentRecorded():
                return {event.participant_id}
            case _:
                return set()

    def _fold(self, position: int, event_id: str, event: ev.EventData) -> Deal | None:
        """Record the event's facts; the deal of a deal or payment event (`_deal_of`), else None."""
        match event:
            case ev.DealBooked():
                # The path of most events: no throwaway containers (`setdefault`'s default) and one
                # month string shared by every deal of the month.
                given = event.credits
                if len(given) == 1:
                    pair = (given[0].participant_id, given[0].share)
                    credits = self.sole_credits.get(pair)
                    if credits is None:
                        credits = self.sole_credits[pair] = (pair,)
                    elif credits[0][1] is not pair[1] and not _same_figure(credits[0][1], pair[1]):
                        credits = (pair,)  # an equal share written otherwise ("1.0" for "1"): its own
                else:
                    credits = tuple([(c.participant_id, c.share) for c in given])
                booked_on, amount = event.booked_on, event.amount
                deal = Deal(event.deal_id, booked_on, event.product, credits, position, event_id, amount)
                month, deal.quarter = _month_and_quarter(booked_on)
                self.deals[event.deal_id] = deal
                by_month, month_credit = self.deals_by_month, self.month_credit
                for participant_id, share in credits:
                    months = by_month.get(participant_id)
                    if months is None:
                        months = by_month[participant_id] = {}
                    deals = months.get(month)
                    if deals is None:
                        months[month] = [deal]
                    else:
                        deals.append(deal)
                    sums = month_credit.get(participant_id)
                    if sums is None:
                        sums = month_credit[participant_id] = {}
                    before = sums.get(month, _ZERO)
                    if before is not None:
                        if self.closed_credit:  # a deal booked into a closed period changes its sums
                            self._keep_closed_sums(participant_id, month, deal.quarter)
                        sums[month] = EXACT.add(before, EXACT.multiply(amount, share))
                return deal
            case ev.PaymentReceived():
                self.payments[event.payment_id] = (event.deal_id, event.amount)
                move = CashMove(position, event_id, event.payment_id, event.amount, event.received_on)
                return self._cash(event.deal_id, move)
            case ev.ParticipantRegistered():
                self.participants[event.participant_id] = Participant(
                    event.participant_id,
                    event.name,
                    event.start_date,
                    event.team_id,
                    event.manager_id,
                    position,
                )
                self.participant_order.append(event.participant_id)
                self.team_members_ever.setdefault(event.team_id, set()).add(event.participant_id)
                self._note_manager(event.manager_id, event.participant_id, position)
            case ev.ParticipantTransferred():
                self.participants[event.participant_id].transfers.append(
                    Transfer(event.effective_date, position, event.team_id, event.manager_id)
                )
                self.team_members_ever.setdefault(event.team_id, set()).add(event.participant_id)
                self._note_manager(event.manager_id, event.participant_id, position)
            case ev.PlanPublished():
                versions = self.plans.setdefault(event.plan_id, [])
                versions.append(
                    PlanVersion(
                        event.plan_id, len(versions) + 1, event.effective_from, event.rules, position, event_id
                    )
                )
                if event.rules.basis == "collection":
                    for member in self.plan_members.get(event.plan_id, ()):
                        self.collection_members.setdefault(member, position)
                if event.rules.period == "quarter":
                    for member in self.plan_members.get(event.plan_id, ()):
                        self.quarterly_members.setdefault(member, position)
            case ev.PlanAssigned():
                self.assignments.setdefault(event.participant_id, []).append(
                    Assignment(event.plan_id, event.effective_from, event.effective_to, position)
                )
                self.plan_members.setdefault(event.plan_id, set()).add(event.participant_id)
                versions = self.plans.get(event.plan_id) or []
                if any(version.rules.basis == "collection" for version in versions):
                    self.collection_members.setdefault(event.participant_id, position)
                if any(version.rules.period == "quarter" for version in versions):
                    self.quarterly_members.setdefault(event.participant_id, position)
            case ev.TargetSet():
                self.targets.setdefault((event.participant_id, event.period), []).append(
                    TargetEntry(event.amount, position, event_id)
                )
            case ev.DealAmended():
                deal = self.deals[event.deal_id]
                before = deal.amendments[-1].amount if deal.amendments else deal.amount
                deal.amendments = (*deal.amendments, AmountEntry(event.amount, position, event_id))
                self._resum(deal, EXACT.subtract(event.amount, before))
                return deal
            case ev.DealCancelled():
                deal = self.deals[event.deal_id]
                deal.cancellation = Cancellation(event.cancelled_on, position, event_id)
                self._unsum(deal)
                with_cancelled = self.with_cancelled
                for participant_id, _ in deal.credits:
                    with_cancelled[participant_id] = (*with_cancelled.get(participant_id, ()), deal)
                return deal
            case ev.PaymentReversed():
                deal_id, amount = self.payments[event.payment_id]
                return self._cash(deal_id, CashMove(position, event_id, event.payment_id, -amount, event.reversed_on))
            case ev.AdjustmentRecorded():
                self.adjustments.setdefault(event.participant_id, []).append(
                    Adjustment(event.adjustment_id, event.period, event.amount, event.reason, position, event_id)
                )
            case ev.PeriodClosed():
                close = Close(event.period, position)
                self.closes.append(close)
                self.closes_of.setdefault(period_length(event.period), []).append(close)
                self.closed_at[event.period] = position
                self.closed_credit[event.period] = (position, {})
            case ev.DisputeOpened():
                dispute = self.disputes[event.dispute_id] = Dispute(
                    event.dispute_id,
                    event.participant_id,
                    event.period,
                    event.deal_id,
                    event.reason,
                    position,
                    event_id,
                )
                self.statement_disputes.setdefault((event.participant_id, event.period), []).append(dispute)
            case ev.DisputeResolved():
                self.disputes[event.dispute_id].resolution = Resolution(
                    event.resolution, event.note, position, event_id
                )
        return None

    def _cash(self, deal_id: str, move: CashMove) -> Deal:
        deal = self.deals[deal_id]
        month = period_of(move.on, "month")
        if not deal.cash or not any(period_of(earlier.on, "month") == month for earlier in deal.cash):
            for participant_id, _ in deal.credits:  # no throwaway containers: a fold's hot path
                by_month = self.cash_deals.get(participant_id)
                if by_month is None:
                    by_month = self.cash_deals[participant_id] = {}
                deals = by_month.get(month)
                if deals is None:
                    by_month[month] = [deal_id]
                else:
                    deals.append(deal_id)
        deal.cash = (*deal.cash, move)
        day = move.on.toordinal()
        booked = _month_and_quarter(deal.booked_on)[0]
        for participant_id, _ in deal.credits:
            months = self.cash_days.get(participant_id)
            if months is None:
                months = self.cash_days[participant_id] = {}
            known = months.get(booked)
            months[booked] = (day, day) if known is None else (min(known[0], day), max(known[1], day))
        return deal

    def _resum(self, deal: Deal, change: Decimal) -> None:
        """An amended deal's months keep their running sums, moved by the change (decision 144): they
        are read only at a participant's latest touch (every amendment touches those credited) or as
        of a close (kept before any later change), where each credit's amount is its latest by then.
        Summing the long way instead made cold rankings half as dear again where deals are amended."""
        month, quarter = _month_and_quarter(deal.booked_on)
        for participant_id, share in deal.credits:
            self._keep_closed_sums(participant_id, month, quarter)
            sums = self.month_credit[participant_id]
            summed = sums[month]
            if summed is not None:
                sums[month] = EXACT.add(summed, EXACT.multiply(change, share))

    def _unsum(self, deal: Deal) -> None:
        """A cancelled deal's month is summed the long way from now on (whether it is live depends on
        the clawback of the plan read at)."""
        month, quarter = _month_and_quarter(deal.booked_on)
        for participant_id, _ in deal.credits:
            self._keep_closed_sums(participant_id, month, quarter)
            self.month_credit[participant_id][month] = None

    def _note_manager(self, manager_id: str | None, participant_id: str, position: int) -> None:
        if manager_id is not None:
            self.reports.setdefault(manager_id, []).append(Reporting(participant_id, position))
            self.managers_ever.setdefault(participant_id, set()).add(manager_id)
