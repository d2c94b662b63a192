"""A participant's own lines in every period (§5 items 1-9), from the state alone.

"Own lines" are everything but prior-period adjustments, which depend on
period closes and are added by `projections.book`. Callers hold an exact
Decimal context (`ledger.values.EXACT_PRECISION`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from ledger.values import attainment_str, exact_str, period_last_day, period_of, round_cents
from projections import rules
from projections.lines import Line
from projections.resolve import plan_on, team_on
from projections.state import Deal, LedgerState, PlanVersion


@dataclass(frozen=True, slots=True)
class CreditView:
    """One participant's credit of one deal, with the plan version that governs it."""

    deal: Deal
    participant_id: str
    share: Decimal
    amount: Decimal
    plan: PlanVersion | None
    period: str
    live: bool

    @property
    def order(self) -> tuple[object, ...]:
        return (self.deal.booked_on, self.deal.position)

    @property
    def deal_event_ids(self) -> tuple[str, ...]:
        return (self.deal.event_id, *self.deal.amend_event_ids)


@dataclass
class PeriodView:
    credited: Decimal = Decimal(0)
    lines: list[Line] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


CreditsFor = Callable[[str], list[CreditView]]
OwnLines = dict[str, PeriodView]


def credits_of(state: LedgerState, participant_id: str) -> list[CreditView]:
    out = []
    for deal_id in state.deals_of.get(participant_id, ()):
        deal = state.deals[deal_id]
        share = next(s for p, s in deal.credits if p == participant_id)
        plan = plan_on(state, participant_id, deal.booked_on)
        clawback = plan.rules.clawback_days if plan is not None else None
        period = period_of(deal.booked_on, plan.rules.period if plan is not None else "month")
        live = rules.is_live(deal.booked_on, deal.cancelled_on, clawback)
        out.append(CreditView(deal, participant_id, share, deal.amount * share, plan, period, live))
    return out


def own_lines(state: LedgerState, participant_id: str, credits_for: CreditsFor) -> OwnLines:
    views: OwnLines = defaultdict(PeriodView)
    credits = credits_for(participant_id)
    earned = _commission_and_spiffs(state, participant_id, credits, views)
    _releases(credits, earned, views)
    _overrides(state, participant_id, credits_for, views)
    for adjustment in state.adjustments_of.get(participant_id, ()):
        views[adjustment.period].lines.append(
            Line(
                "manual",
                adjustment.amount,
                adjustment.period,
                (adjustment.position,),
                (adjustment.event_id,),
                reason=adjustment.reason,
                details=(("adjustment_id", adjustment.adjustment_id),),
            )
        )
    _caps(state, participant_id, views)
    for view in views.values():
        view.lines.sort(key=lambda line: line.order)
    return dict(views)


def _commission_and_spiffs(
    state: LedgerState, participant_id: str, credits: list[CreditView], views: OwnLines
) -> dict[str, Decimal]:
    """Commission (or earned) and spiff lines per booking period; returns earned K per deal."""
    by_period: dict[str, list[CreditView]] = defaultdict(list)
    for credit in credits:
        if credit.live:
            by_period[credit.period].append(credit)
    earned: dict[str, Decimal] = {}
    for period, group in by_period.items():
        group.sort(key=lambda c: c.order)
        view = views[period]
        view.credited = sum((c.amount for c in group), Decimal(0))
        target_entry = state.targets.get((participant_id, period))
        target = target_entry.amount if target_entry is not None else None
        target_ids = (target_entry.event_id,) if target_entry is not None else ()
        before = Decimal(0)
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
            line = _commission_line(credit, plan, period, target, target_ids, before, view.credited)
            earned[credit.deal.deal_id] = line.amount
            view.lines.append(line)
            before += credit.amount
            spiff = rules.spiff_amount(plan.rules, credit.deal.product, credit.share)
            if spiff is not None:
                view.lines.append(
                    Line(
                        "spiff",
                        spiff,
                        period,
                        credit.order,
                        (*credit.deal_event_ids, plan.event_id),
                        deal_id=credit.deal.deal_id,
                        share=credit.share,
                        plan_id=plan.plan_id,
                        plan_version=plan.version,
                        details=(("product", credit.deal.product or ""),),
                    )
                )
    return earned


def _commission_line(
    credit: CreditView,
    plan: PlanVersion,
    period: str,
    target: Decimal | None,
    target_ids: tuple[str, ...],
    before: Decimal,
    credited: Decimal,
) -> Line:
    tiers = plan.rules.tiers
    if plan.rules.tier_method == "marginal":
        exact, portions = rules.marginal(tiers, target, before, credit.amount)
        rate = None
        extra: tuple[tuple[str, str], ...] = ()
    else:
        index = rules.retroactive_tier(tiers, target, credited)
        rate = tiers[index].rate
        exact, portions = credit.amount * rate, None
        extra = (("tier", str(index + 1)), ("attainment", attainment_str(credited, target) or "null"))
    return Line(
        "commission" if plan.rules.basis == "booking" else "earned",
        round_cents(exact),
        period,
        credit.order,
        (*credit.deal_event_ids, plan.event_id, *target_ids),
        deal_id=credit.deal.deal_id,
        credit=credit.amount,
        share=credit.share,
        plan_id=plan.plan_id,
        plan_version=plan.version,
        tier_method=plan.rules.tier_method,
        rate=rate,
        tiers=portions,
        target=target,
        credited_before=before,
        exact=exact,
        details=extra,
    )


def _releases(credits: list[CreditView], earned: dict[str, Decimal], views: OwnLines) -> None:
    for credit in credits:
        plan = credit.plan
        if plan is None or plan.rules.basis != "collection":
            continue
        k = earned.get(credit.deal.deal_id, Decimal(0)) if credit.live else Decimal(0)
        for move, delta in rules.releases(k, credit.deal.amount, credit.deal.cash):
            period = period_of(move.on, plan.rules.period)
            views[period].lines.append(
                Line(
                    "release",
                    delta,
                    period,
                    (move.position, credit.deal.position),
                    (move.event_id, *credit.deal_event_ids, plan.event_id),
                    deal_id=credit.deal.deal_id,
                    payment_id=move.payment_id,
                    plan_id=plan.plan_id,
                    plan_version=plan.version,
                    details=(("earned", exact_str(k)), ("deal_amount", exact_str(credit.deal.amount))),
                )
            )


def _overrides(state: LedgerState, manager_id: str, credits_for: CreditsFor, views: OwnLines) -> None:
    for report_id in sorted(state.reports_ever.get(manager_id, ())):
        for credit in credits_for(report_id):
            booked_on = credit.deal.booked_on
            if not credit.live or team_on(state, report_id, booked_on)[1] != manager_id:
                continue
            plan = plan_on(state, manager_id, booked_on)
            if plan is None or plan.rules.override_rate <= 0:
                continue
            period = period_of(booked_on, plan.rules.period)
            exact = credit.amount * plan.rules.override_rate
            views[period].lines.append(
                Line(
                    "override",
                    round_cents(exact),
                    period,
                    (*credit.order, report_id),
                    (*credit.deal_event_ids, plan.event_id),
                    deal_id=credit.deal.deal_id,
                    report_id=report_id,
                    credit=credit.amount,
                    plan_id=plan.plan_id,
                    plan_version=plan.version,
                    rate=plan.rules.override_rate,
                    exact=exact,
                )
            )


def _caps(state: LedgerState, participant_id: str, views: OwnLines) -> None:
    for period, view in views.items():
        plan = plan_on(state, participant_id, period_last_day(period))
        if plan is None or plan.rules.cap is None:
            continue
        capped = sum((line.amount for line in view.lines if line.kind in ("commission", "override")), Decimal(0))
        excess = rules.cap_excess(plan.rules.cap, capped)
        if excess is not None:
            view.lines.append(
                Line(
                    "cap",
                    excess,
                    period,
                    (),
                    (plan.event_id,),
                    plan_id=plan.plan_id,
                    plan_version=plan.version,
                    details=(("cap", exact_str(plan.rules.cap)), ("capped_total", exact_str(capped))),
                )
            )
