"""A participant's own lines in one period as of a position (§5 items 1-9).

"Own lines" are everything but prior-period adjustments, which depend on
period closes and are added by `projections.book`. Every figure is a pure
function of (state, participant, period, at); results for a past position
never change, so they are memoised. Computations run in an exact Decimal
context (`ledger.values.EXACT_PRECISION`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, getcontext, localcontext
from functools import partial
from operator import attrgetter
from typing import Any, TypeVar, TypeVarTuple

from ledger.settings import MEMO_LINES
from ledger.values import (
    EXACT,
    EXACT_PRECISION,
    PeriodLength,
    attainment_str,
    money_str,
    months_of,
    period_days,
    period_first_day,
    period_last_day,
    period_length,
    period_of,
    round_cents,
)
from projections import rules
from projections.lines import SORT_KEY, Kind, Line
from projections.resolve import VARIES, Varies, plan_on, plan_through, team_on
from projections.state import Amount, Deal, LedgerState, PlanVersion, clawback_window, upto

T = TypeVar("T")
Ts = TypeVarTuple("Ts")
#: What a credit of a deal is made of: share, amounts so far, plan, attainment period, live.
_Terms = tuple[Decimal, Sequence[Amount], PlanVersion | None, str, bool]


@dataclass(slots=True)
class CreditView:
    """One participant's credit of one deal as of a position, with the plan version governing it.

    Built for every deal of every statement and ranking row, so it is a plain slots class (a
    frozen dataclass's ``__init__`` costs twice as much) and its event ids are made on demand.
    """

    deal: Deal
    participant_id: str
    share: Decimal
    deal_amount: Decimal
    amount: Decimal
    plan: PlanVersion | None
    period: str
    live: bool
    amounts: Sequence[Amount]

    @property
    def deal_event_ids(self) -> tuple[str, ...]:
        return _event_ids(self.amounts)


@dataclass
class PeriodView:
    credited: Decimal = Decimal(0)
    lines: list[Line] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: earned line K per deal id (collection basis), for releases in later periods
    earned: dict[str, Decimal] = field(default_factory=dict)
    #: the participant's plan on every day of the period (`plan_through`), resolved once for all
    #: the period's lines
    plan: PlanVersion | Varies | None = VARIES


class Engine:
    """The statement engine over one state, with a bounded memo keyed by position."""

    def __init__(self, state: LedgerState, shares: Engine | None = None, memo_lines: int = MEMO_LINES) -> None:
        """`shares`: the engine of the state this one was forked from (`LedgerState.fork`). The two
        states agree up to the fork's base, the shared engine's position then, so results as of a
        position up to it are read from and kept in the shared engine's memo."""
        self.state = state
        self._memo: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        #: The memo's weight (`_weight` of its values: one per entry plus the lines it holds), kept
        #: within `memo_lines` by evicting the least recently used. Bounded by size, not entries: a
        #: projector reads each statement at every new head, and a manager's view can hold tens of
        #: thousands of lines (decision 84).
        self.weight = 0
        self.memo_lines = memo_lines
        #: Entries ever memoised (evicted ones recomputed count again): how many long-lived objects
        #: reads have made, for settling the heap (see `replay.asof`).
        self.computed = 0
        self._shares = shares
        self._base = shares.state.position if shares is not None else -1

    def memoised(
        self, key: Hashable, at: int, compute: Callable[[*Ts], T], *args: *Ts, reach: int | None = None
    ) -> T:
        """`compute(*args)` once per key, for views built on the engine's figures. The key must name
        `at`, the position the value is computed at (`LedgerState.effective`, or `effective_in` for
        one period's figures: a position where reads and reads at the caller's agree), and any
        other position it depends on, the highest of them being `reach` (`_cached`). Arguments
        rather than a closure: a ranking asks for hundreds of memoised rows, most of them found."""
        return self._cached(key, at, compute, reach, args)

    def _cached(
        self, key: Hashable, at: int, compute: Callable[..., T], reach: int | None = None, args: tuple[Any, ...] = ()
    ) -> T:
        """`reach`: for a key that names every position its value depends on (not just `at`), the
        highest of them. A value that depends on nothing after the shared engine's position is that
        engine's too, whatever `at` is: it is looked up and kept there, so a what-if's copy and the
        real book compute it once between them. Nothing kept there names a hypothetical event."""
        if (at if reach is None else reach) <= self._base:
            assert self._shares is not None
            return self._shares._cached(key, at, compute, reach, args)
        memo = self._memo
        found = memo.get(key)
        if found is not None:
            memo.move_to_end(key)
            return found[0]  # type: ignore[return-value]
        if getcontext().prec == EXACT_PRECISION:  # within another entry's computation (most are)
            value = compute(*args)
        else:
            with localcontext() as ctx:
                ctx.prec = EXACT_PRECISION
                value = compute(*args)
        weight = _weight(value)
        memo[key] = (value, weight)
        self.weight += weight
        self.computed += 1
        while self.weight > self.memo_lines:
            self.weight -= memo.popitem(last=False)[1][1]
        return value

    # --- credits -----------------------------------------------------------------------

    def credit(
        self,
        deal: Deal,
        participant_id: str,
        at: int,
        month: str | None = None,
        plan: PlanVersion | Varies | None = VARIES,
    ) -> CreditView:
        """`month`: the deal's booking month, and `plan`: the plan in force on its booking day, when
        the caller already knows them (`credits_in` does for a whole period)."""
        share, amounts, plan, period, live = self._terms(deal, participant_id, at, month, plan)
        amount = amounts[-1].amount
        return CreditView(deal, participant_id, share, amount, amount * share, plan, period, live, amounts)

    def _terms(
        self, deal: Deal, participant_id: str, at: int, month: str | None, plan: PlanVersion | Varies | None = VARIES
    ) -> _Terms:
        share = _share(deal, participant_id)
        amounts = _amounts(deal, at)
        booked_on = deal.booked_on
        if isinstance(plan, Varies):
            plan = plan_on(self.state, participant_id, booked_on, at)
        live = self._live(deal, participant_id, at, plan)
        length = _length(plan)
        period = month if month is not None and length == "month" else period_of(booked_on, length)
        return share, amounts, plan, period, live

    def _live(self, deal: Deal, participant_id: str, at: int, plan: PlanVersion | Varies | None = VARIES) -> bool:
        """Whether the deal is live for this participant's credit (§5.2): the clawback window is that
        of the plan version governing the credit, looked up only for a cancelled deal."""
        cancellation = deal.cancellation
        if cancellation is None or cancellation.position > at:
            return True
        if isinstance(plan, Varies):
            plan = plan_on(self.state, participant_id, deal.booked_on, at)
        return rules.is_live(deal.booked_on, cancellation.cancelled_on, clawback_window(plan))

    def _deals_in(self, participant_id: str, period: str, at: int) -> Iterator[tuple[Deal, str]]:
        """(deal, booking month) of the participant's credits booked in the period's months by `at`."""
        by_month = self.state.deals_by_month.get(participant_id)
        if not by_month:
            return
        for month in months_of(period):
            for deal in by_month.get(month, ()):
                if deal.position <= at:
                    yield deal, month

    def credits_in(self, participant_id: str, period: str, at: int) -> list[CreditView]:
        """Credits (live or not) whose attainment period is `period`, in booking order."""
        plan = plan_through(self.state, participant_id, period_first_day(period), period_last_day(period), at)
        return self._credits(participant_id, period, at, plan)

    def _credits(
        self, participant_id: str, period: str, at: int, plan: PlanVersion | Varies | None
    ) -> list[CreditView]:
        """`credits_in`, with the participant's `plan_through` the period."""
        if not isinstance(plan, Varies):
            if _length(plan) != period_length(period):
                return []  # one plan for all the period's deals, which counts them in periods of the other length
            return self._credits_under(plan, participant_id, period, at)
        out = []
        for deal, month in self._deals_in(participant_id, period, at):
            view = self.credit(deal, participant_id, at, month, plan)
            if view.period == period:
                out.append(view)
        if len(out) > 1:
            out.sort(key=_booking_order)
        return out

    def _credits_under(self, plan: PlanVersion | None, participant_id: str, period: str, at: int) -> list[CreditView]:
        """`credits_in` when one plan governs every day of the period and counts credits in periods
        of its length (most periods): `credit`'s steps inline, where each was a call per deal, and
        every credit's period is this one; the deals are sorted before their views are made."""
        out: list[CreditView] = []
        by_month = self.state.deals_by_month.get(participant_id)
        if not by_month:
            return out
        deals = [deal for month in months_of(period) for deal in by_month.get(month, ()) if deal.position <= at]
        if len(deals) > 1:
            deals.sort(key=_DEAL_ORDER)  # so the credits need no sort
        for deal in deals:
            share = _share(deal, participant_id)
            amounts: Sequence[Amount] = _amounts(deal, at) if deal.amendments else (deal,)
            live = self._live(deal, participant_id, at, plan)  # the clawback rule (§5.2) in one place
            amount = amounts[-1].amount
            out.append(CreditView(deal, participant_id, share, amount, amount * share, plan, period, live, amounts))
        return out

    def credited_at(self, participant_id: str, period: str, at: int) -> Decimal:
        """The sum of `credits_in`'s live amounts at an effective position (`LedgerState.effective`),
        without building their views: rankings ask for hundreds of these at once. Not memoised
        itself (the rows that read it are), and exact in any context: the sum's order does not
        matter."""
        plan = plan_through(self.state, participant_id, period_first_day(period), period_last_day(period), at)
        if not isinstance(plan, Varies):  # every deal of the period's months has the same plan...
            if _length(plan) != period_length(period):
                return Decimal(0)  # ...and it counts them in periods of the other length
            summed = self.state.summed_credit(participant_id, period, at)
            if summed is not None:
                return summed
        total = Decimal(0)
        for deal, month in self._deals_in(participant_id, period, at):
            share, amounts, _, credit_period, live = self._terms(deal, participant_id, at, month, plan)
            if live and credit_period == period:
                total = EXACT.add(total, EXACT.multiply(amounts[-1].amount, share))
        return total

    # --- lines -------------------------------------------------------------------------

    def group(self, participant_id: str, period: str, at: int) -> PeriodView:
        """Commission (or earned) and spiff lines of the credits booked into a period; read where
        the participant's events last reached the period's days (decision 103), like `own`."""
        return self._group_at(participant_id, period, self.state.effective_in(participant_id, period_days(period), at))

    def _group_at(self, participant_id: str, period: str, at: int) -> PeriodView:
        """`group` at a position `effective_in` gave for the period's days (it gives that one again)."""
        return self._cached(("group", participant_id, period, at), at, lambda: self._group(participant_id, period, at))

    def _group(self, participant_id: str, period: str, at: int) -> PeriodView:
        """The lines in the order `_own` shows them (`Line.order`): commission (or earned) lines in
        booking order, then spiff lines in booking order; so a period with no other lines needs no
        sort."""
        view = PeriodView()
        view.plan = plan_through(self.state, participant_id, period_first_day(period), period_last_day(period), at)
        group = [c for c in self._credits(participant_id, period, at, view.plan) if c.live]
        view.credited = sum((c.amount for c in group), Decimal(0))
        target_entry = self.state.target(participant_id, period, at)
        target = target_entry.amount if target_entry is not None else None
        target_ids = (target_entry.event_id,) if target_entry is not None else ()
        before = Decimal(0)
        terms: _PlanTerms | None = None  # of the last credit's plan, which most credits share
        spiffs: list[Line] = []
        for credit in group:
            plan = credit.plan
            if plan is None:
                view.warnings.append(
                    f"deal {credit.deal.deal_id}: no plan in force for {participant_id} on "
                    f"{credit.deal.booked_on.isoformat()}; the credit counts toward attainment "
                    "and earns nothing"
                )
                before += credit.amount
                continue
            if terms is None or terms.plan is not plan:
                terms = _terms_of(plan, target, view.credited)
            line = _commission_line(credit, terms, period, target, target_ids, before)
            view.earned[credit.deal.deal_id] = line.amount
            view.lines.append(line)
            before += credit.amount
            if plan.rules.spiffs:
                spiff = rules.spiff_amount(plan.rules, credit.deal.product, credit.share)
                if spiff is not None:
                    spiffs.append(
                        Line(
                            "spiff",
                            spiff,
                            period,
                            line.sort_key,
                            line.event_ids[: len(credit.amounts) + 1],  # the deal's and the plan's
                            deal_id=credit.deal.deal_id,
                            share=credit.share,
                            plan_id=plan.plan_id,
                            plan_version=plan.version,
                            details=(("product", credit.deal.product or ""),),
                        )
                    )
        view.lines += spiffs
        return view

    def own(self, participant_id: str, period: str, at: int) -> PeriodView:
        """All own lines of a period: commission, spiff, release, override, manual, cap. Read and
        memoised where the participant's events last reached the period's days (decision 103): a
        later event dated elsewhere finds it memoised."""
        at = self.state.effective_in(participant_id, period_days(period), at)
        return self._cached(("own", participant_id, period, at), at, lambda: self._own(participant_id, period, at))

    def _own(self, participant_id: str, period: str, at: int) -> PeriodView:
        """The lines in `Line.order`: each kind's block sorted on its own (by `sort_key`, taken in
        C), the blocks in the kinds' order; the group's lines are in that order already. One sort
        of them all by `Line.order` made a tuple per line in Python: a manager's cold December
        spent a tenth of its time there, on tens of thousands of override lines."""
        group = self._group_at(participant_id, period, at)  # `own` found `at` for the period's days
        view = PeriodView(group.credited, list(group.lines), list(group.warnings), group.earned, group.plan)
        view.lines += _in_order(self._releases(participant_id, period, at))
        view.lines += _in_order(self._overrides(participant_id, period, at, group.plan))
        cap = self._cap(participant_id, period, at, view.lines, group.plan)
        if cap is not None:
            view.lines.append(cap)
        manual: list[Line] = []
        for adjustment in upto(self.state.adjustments.get(participant_id, []), at):
            if adjustment.period == period:
                manual.append(
                    Line(
                        "manual",
                        adjustment.amount,
                        period,
                        (adjustment.position,),
                        (adjustment.event_id,),
                        reason=adjustment.reason,
                        details=(("adjustment_id", adjustment.adjustment_id),),
                    )
                )
        view.lines += _in_order(manual)
        return view

    def _releases(self, participant_id: str, period: str, at: int) -> list[Line]:
        out: list[Line] = []
        cash_by_month = self.state.cash_deals.get(participant_id)
        if not cash_by_month or self.state.collection_members.get(participant_id, at + 1) > at:
            return out  # releases are lines of collection-basis plans, which they had none of by `at`
        # A release is dated by its payment or reversal: only deals with cash in the period's months.
        with_cash = dict.fromkeys(deal_id for month in months_of(period) for deal_id in cash_by_month.get(month, ()))
        first, last = period_first_day(period), period_last_day(period)
        length = period_length(period)
        #: Each booking period's earned lines, once: a memo smaller than one of them evicts it at
        #: once, and asking it per deal made a statement's releases quadratic in its deals.
        earned_in: dict[str, dict[str, Decimal]] = {}
        for deal_id in with_cash:
            deal = self.state.deals[deal_id]
            if deal.position > at or deal.cash[0].position > at:
                continue
            if not any(first <= move.on <= last for move in deal.cash if move.position <= at):
                continue  # a release is dated by its payment: none of this deal's falls in the period
            credit = self.credit(deal, participant_id, at)
            plan = credit.plan
            if plan is None or plan.rules.basis != "collection" or plan.rules.period != length:
                continue  # its releases are in periods of its plan's length (§5.8), not in this one
            earned_by_deal = earned_in.get(credit.period)
            if earned_by_deal is None:
                earned_by_deal = earned_in[credit.period] = self.group(participant_id, credit.period, at).earned
            earned = earned_by_deal.get(deal_id, Decimal(0))
            k = earned if credit.live else Decimal(0)
            for move, delta in rules.releases(k, credit.deal_amount, upto(deal.cash, at)):
                if period_of(move.on, plan.rules.period) != period:
                    continue
                out.append(
                    Line(
                        "release",
                        delta,
                        period,
                        (move.position, deal.position),
                        (move.event_id, *credit.deal_event_ids, plan.event_id),
                        deal_id=deal_id,
                        payment_id=move.payment_id,
                        plan_id=plan.plan_id,
                        plan_version=plan.version,
                        details=(("earned", money_str(k)), ("deal_amount", money_str(credit.deal_amount))),
                    )
                )
        return out

    def _overrides(self, manager_id: str, period: str, at: int, plan: PlanVersion | Varies | None) -> list[Line]:
        """`plan`: the manager's `plan_through` the period."""
        out: list[Line] = []
        first, last = period_first_day(period), period_last_day(period)
        if not isinstance(plan, Varies) and (
            plan is None or plan.rules.override_rate <= 0 or plan.rules.period != period_length(period)
        ):
            return out  # one plan of the manager's for the whole period, which pays no override in it
        assignments = [a for a in self.state.assignments.get(manager_id, ()) if a.position <= at]
        plans_at = max((a.position for a in assignments), default=0)
        versions_at = max(
            (v.position for a in assignments for v in self.state.plans.get(a.plan_id, ()) if v.position <= at),
            default=0,
        )
        participants = self.state.participants
        for report_id in self.state.reports_of(manager_id, at):
            managers = participants[report_id].managers_during(first, last, at)
            if manager_id not in managers:
                continue  # a former (or later) report, not theirs on any day of the period: no override
            # One report's override lines change only with what the key names: a new deal of one
            # report does not recompute the other 499, and a what-if's plan version that is not the
            # manager's reuses the real book's lines (the key names every position they depend on:
            # the report's transfers, which decide `managers`, among them).
            basis = (*self._override_basis(report_id, period, at), plans_at, versions_at)
            compute = partial(self._report_overrides, manager_id, report_id, period, at, plan, len(managers) == 1)
            out += self._cached(("override", manager_id, report_id, period, *basis), at, compute, max(basis))
        return out

    def _override_basis(self, report_id: str, period: str, at: int) -> tuple[int, int, int]:
        """The last positions by `at` of what a report's override lines in a period depend on besides
        the manager's plans: its deals booked in the period's months (bookings, amendments,
        cancellations), its transfers, and, only if one of those deals is cancelled, anything of
        its own (its plan then judges whether the deal is live, §5.6)."""
        deals_at = 0
        cancelled = False
        for deal, _ in self._deals_in(report_id, period, at):
            last = _amounts(deal, at)[-1].position
            cancellation = deal.cancellation
            if cancellation is not None and cancellation.position <= at:
                cancelled = True
                last = max(last, cancellation.position)
            deals_at = max(deals_at, last)
        transfers = self.state.participants[report_id].transfers
        transfers_at = max((t.position for t in transfers if t.position <= at), default=0)
        return deals_at, transfers_at, self.state.effective(report_id, at) if cancelled else 0

    def _report_overrides(
        self, manager_id: str, report_id: str, period: str, at: int, through: PlanVersion | Varies | None, sole: bool
    ) -> list[Line]:
        """`through`: the manager's `plan_through` the period; `sole`: whether the report had this
        manager on every day of it. Most reports have one manager and most managers one plan all
        period: then no deal's booking day needs looking up (a manager's cold December holds
        tens of thousands of these lines at the benchmark's ledger)."""
        out = []
        plans: dict[date, tuple[PlanVersion | None, str]] = {}  # the manager's plan and period by booking day
        for deal, _ in self._deals_in(report_id, period, at):
            line = self._override(manager_id, report_id, deal, period, at, plans, through, sole)
            if line is not None:
                out.append(line)
        return out

    def _override(
        self,
        manager_id: str,
        report_id: str,
        deal: Deal,
        period: str,
        at: int,
        plans: dict[date, tuple[PlanVersion | None, str]],
        through: PlanVersion | Varies | None,
        sole: bool,
    ) -> Line | None:
        """A manager's override of one report's credit. Builds no `CreditView`: a manager's period
        holds one of these for every deal of every report (thousands). `through` and `sole` as for
        `_report_overrides`: the deal is booked in the period, so one plan through it is the plan
        of its day, and a sole manager its day's manager."""
        booked_on: date = deal.booked_on
        if not sole and team_on(self.state, report_id, booked_on, at)[1] != manager_id:
            return None
        if isinstance(through, PlanVersion):  # `_overrides` returned early if it pays no override here
            plan = through
        else:
            found = plans.get(booked_on)
            if found is None:
                manager_plan = plan_on(self.state, manager_id, booked_on, at)
                length = manager_plan.rules.period if manager_plan is not None else "month"
                found = plans[booked_on] = (manager_plan, period_of(booked_on, length))
            day_plan, plan_period = found
            if day_plan is None or day_plan.rules.override_rate <= 0 or plan_period != period:
                return None
            plan = day_plan
        cancellation = deal.cancellation
        if cancellation is not None and cancellation.position <= at and not self._live(deal, report_id, at):
            return None  # judged by the report's plan (§5.6)
        amounts = _amounts(deal, at) if deal.amendments else (deal,)
        credit = amounts[-1].amount * _share(deal, report_id)
        exact = credit * plan.rules.override_rate
        return Line(  # positional, as in `_commission_line`
            "override",
            round_cents(exact),
            period,
            (booked_on, deal.position, report_id),
            (*_event_ids(amounts), plan.event_id),
            deal.deal_id,
            None,  # payment_id
            report_id,
            credit,
            None,  # share
            plan.plan_id,
            plan.version,
            plan.rules.override_rate,  # rate
            None,  # tiers
            None,  # tier_method
            None,  # target
            None,  # credited_before
            exact,
            None,  # for_period
            None,  # reason
            (),  # details
        )

    def _cap(
        self, participant_id: str, period: str, at: int, lines: list[Line], through: PlanVersion | Varies | None
    ) -> Line | None:
        """`through`: the participant's `plan_through` the period; the cap is that of the plan in
        force on its last day."""
        plan = through
        if isinstance(plan, Varies):
            plan = plan_on(self.state, participant_id, period_last_day(period), at)
        if plan is None or plan.rules.cap is None:
            return None
        capped = sum((line.amount for line in lines if line.kind in ("commission", "override")), Decimal(0))
        excess = rules.cap_excess(plan.rules.cap, capped)
        if excess is None:
            return None
        return Line(
            "cap",
            excess,
            period,
            (),
            (plan.event_id,),
            plan_id=plan.plan_id,
            plan_version=plan.version,
            details=(("cap", money_str(plan.rules.cap)), ("capped_total", money_str(capped))),
        )


def _in_order(lines: list[Line]) -> list[Line]:
    """Lines of one kind, sorted as `Line.order` sorts them (stable, as that sort was); a new list,
    so that a memoised one handed in is never reordered."""
    return sorted(lines, key=SORT_KEY) if len(lines) > 1 else lines


def _length(plan: PlanVersion | None) -> PeriodLength:
    """The length of the periods a plan counts credits in: a credit under no plan counts in its month."""
    return plan.rules.period if plan is not None else "month"


def _share(deal: Deal, participant_id: str) -> Decimal:
    for credited_id, portion in deal.credits:  # a loop: a generator costs more than the rest here
        if credited_id == participant_id:
            return portion
    raise AssertionError(f"{participant_id} has no credit of deal {deal.deal_id}")


def _amounts(deal: Deal, at: int) -> Sequence[Amount]:
    """The deal's amounts recorded by `at`, its booking first (the last is its amount then)."""
    if not deal.amendments:  # most deals
        return (deal,)
    amounts: Sequence[Amount] = (deal, *deal.amendments)
    return upto(amounts, at) if amounts[-1].position > at else amounts


def _event_ids(amounts: Sequence[Amount]) -> tuple[str, ...]:
    if len(amounts) == 1:  # most deals are never amended
        return (amounts[0].event_id,)
    return tuple(entry.event_id for entry in amounts)


def _weight(value: object) -> int:
    """An entry's share of the memo: one, plus the lines (and warnings) it holds (views, override
    lines). A line a view shares with another entry counts in both."""
    if isinstance(value, PeriodView):
        return 1 + len(value.lines) + len(value.warnings)
    if isinstance(value, list | tuple):  # override lines, adjustment lines
        return 1 + len(value)
    return 1


#: A deal's booking order, in C: the order of its credits and the sort key of their lines.
_DEAL_ORDER = attrgetter("booked_on", "position")


def _booking_order(credit: CreditView) -> tuple[date, int]:
    return _DEAL_ORDER(credit.deal)


@dataclass(slots=True)
class _PlanTerms:
    """What every commission line of a period under one plan version shares: its tiers against the
    period's target, made once per period rather than once per credit."""

    plan: PlanVersion
    kind: Kind
    bounds: rules.Bounds | None  # marginal
    rate: Decimal | None  # retroactive: the tier reached by the period's final attainment
    details: tuple[tuple[str, str], ...]


def _terms_of(plan: PlanVersion, target: Decimal | None, credited: Decimal) -> _PlanTerms:
    plan_rules = plan.rules
    tiers = plan_rules.tiers
    kind: Kind = "commission" if plan_rules.basis == "booking" else "earned"
    if plan_rules.tier_method == "marginal":
        return _PlanTerms(plan, kind, rules.tier_bounds(tiers, target) if target else None, None, ())
    index = rules.retroactive_tier(tiers, target, credited)
    attainment = attainment_str(credited, target) or "null"  # shown on every retroactive line
    return _PlanTerms(plan, kind, None, tiers[index].rate, (("tier", str(index + 1)), ("attainment", attainment)))


def _commission_line(
    credit: CreditView,
    terms: _PlanTerms,
    period: str,
    target: Decimal | None,
    target_ids: tuple[str, ...],
    before: Decimal,
) -> Line:
    plan = terms.plan
    deal = credit.deal
    rate = terms.rate
    if rate is None:  # marginal: each tier's part at its own rate
        exact, portions = rules.marginal(plan.rules.tiers, terms.bounds, before, credit.amount)
    else:
        exact, portions = credit.amount * rate, None
    # Positional (in `Line`'s field order): keywords cost twice the construction itself here, on
    # hundreds of thousands of lines in a what-if.
    return Line(
        terms.kind,
        round_cents(exact),
        period,
        _DEAL_ORDER(deal),
        (*_event_ids(credit.amounts), plan.event_id, *target_ids),
        deal.deal_id,
        None,  # payment_id
        None,  # report_id
        credit.amount,  # credit
        credit.share,  # share
        plan.plan_id,
        plan.version,
        rate,
        portions,  # tiers
        plan.rules.tier_method,
        target,
        before,  # credited_before
        exact,
        None,  # for_period
        None,  # reason
        terms.details,
    )
