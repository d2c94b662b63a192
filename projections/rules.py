"""The plan rules as small pure functions (§4, §5). Callers hold an exact Decimal context.

Each function takes a rule's data and a few numbers and returns exact values;
rounding to cents happens in `projections.statement`, once per line.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from ledger.events import PlanRules, Tier
from ledger.values import round_cents
from projections.lines import TierPortion
from projections.state import CashMove


def is_live(booked_on: date, cancelled_on: date | None, clawback_days: int | None) -> bool:
    """A cancelled deal stays live only when cancelled after its clawback window."""
    if cancelled_on is None:
        return True
    if clawback_days is None:
        return False
    return (cancelled_on - booked_on).days > clawback_days


#: A marginal plan's tiers against one target: (tier number, tier, lower bound, upper bound or None
#: for the last) in ascending order. The same for every credit of a period, so made once per period.
Bounds = tuple[tuple[int, Tier, Decimal, Decimal | None], ...]


def tier_bounds(tiers: Sequence[Tier], target: Decimal) -> Bounds:
    lows = [tier.from_ * target for tier in tiers]
    return tuple(
        (i + 1, tier, lows[i], lows[i + 1] if i + 1 < len(lows) else None) for i, tier in enumerate(tiers)
    )


def marginal(tiers: Sequence[Tier], bounds: Bounds | None, before: Decimal, credit: Decimal) -> tuple[
    Decimal, tuple[TierPortion, ...]
]:
    """Commission of the amount range [before, before + credit), tier by tier. `bounds`: the tiers
    against the period's target (`tier_bounds`); None without a target, when the whole credit
    falls in the first tier."""
    if bounds is None:
        first = tiers[0]
        return credit * first.rate, (TierPortion(1, first.from_, first.rate, before, None, credit),)
    high = before + credit
    portions = []
    exact = Decimal(0)
    for number, tier, tier_low, tier_high in bounds:
        if tier_low >= high:
            break  # tiers ascend: nothing of the range is in this tier or any later one
        if tier_high is not None and tier_high <= before:
            continue  # wholly below the range
        # As min(high, tier_high) and max(before, tier_low) would choose (the first of equals:
        # equal Decimals may differ in exponent, which the line shows).
        top = tier_high if tier_high is not None and tier_high < high else high
        overlap = top - (tier_low if tier_low > before else before)
        if overlap > 0:
            portions.append(TierPortion(number, tier.from_, tier.rate, tier_low, tier_high, overlap))
            exact += overlap * tier.rate
    return exact, tuple(portions)


def retroactive_tier(tiers: Sequence[Tier], target: Decimal | None, credited: Decimal) -> int:
    """Index of the highest tier whose `from` <= the period's final attainment (exact)."""
    if not target:
        return 0
    chosen = 0
    for i, tier in enumerate(tiers):
        if tier.from_ * target <= credited:
            chosen = i
    return chosen


def spiff_amount(rules: PlanRules, product: str | None, share: Decimal) -> Decimal | None:
    for spiff in rules.spiffs:
        if product is not None and spiff.product == product:
            return round_cents(spiff.amount * share)
    return None


def releases(earned: Decimal, deal_amount: Decimal, cash: Sequence[CashMove]) -> list[tuple[CashMove, Decimal]]:
    """Release deltas after each payment or reversal: round(K × P ÷ A), cumulative."""
    released = Decimal(0)
    running = Decimal(0)
    out = []
    for move in cash:
        running += move.amount
        paid = min(max(running, Decimal(0)), deal_amount)
        to_date = round_cents(earned * paid / deal_amount)
        if to_date != released:
            out.append((move, to_date - released))
        released = to_date
    return out


def cap_excess(cap: Decimal | None, capped_total: Decimal) -> Decimal | None:
    """The (negative) cap line, when commission and overrides exceed the cap."""
    if cap is None or capped_total <= cap:
        return None
    return cap - capped_total
