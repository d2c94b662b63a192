"""A seeded, realistic ledger: teams under managers, tiered plans, split deals, payments, closes."""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

TEAM_SIZE = 500


def _rules(basis: str, method: str, override: str = "0", cap: str | None = None) -> dict[str, Any]:
    return {
        "period": "month",
        "basis": basis,
        "tier_method": method,
        "tiers": [{"from": "0", "rate": "0.04"}, {"from": "0.8", "rate": "0.08"}, {"from": "1.2", "rate": "0.12"}],
        "cap": cap,
        "spiffs": [{"product": "widget-pro", "amount": "150.00"}],
        "clawback_days": 90,
        "override_rate": override,
    }


#: What `churn=1` adds, as shares: of deals amended (a quarter of them after their month's close),
#: of the rest cancelled (half of them after the close), of payments reversed; and each month, of
#: reps moved to another team and of people given a manual adjustment.
AMENDED, CANCELLED, REVERSED, TRANSFERRED, ADJUSTED = 0.06, 0.02, 0.02, 0.005, 0.01


def events(
    participants: int, total: int, seed: int = 42, years: int = 1, disputes: float = 0.0, churn: float = 0.0
) -> Iterator[dict[str, Any]]:
    """About `total` events for `participants` people over the months of `years` years ending with
    2026 (every month closed but the last), with a dispute opened about one deal in `1 / disputes`
    (`bench.history`), and with `churn` the corrections a CRM sends too, at `churn` times the rates
    above (`python -m bench --churn`): amended and cancelled deals, reversed payments, transfers and
    adjustments. The defaults give the benchmark's ledger, as before these options: the corrections
    draw from a generator of their own."""
    rng = random.Random(seed)
    fix = random.Random(seed + 1)
    n = 0
    first_day = f"{2027 - years}-01-01"

    def env(type_: str, data: dict[str, Any]) -> dict[str, Any]:
        nonlocal n
        n += 1
        return {"event_id": f"b-{n}", "type": type_, "data": data}

    yield env("PlanPublished", {"plan_id": "ae", "effective_from": first_day,
                                "rules": _rules("booking", "marginal", cap="50000.00")})
    yield env("PlanPublished", {"plan_id": "ae-coll", "effective_from": first_day,
                                "rules": _rules("collection", "retroactive")})
    yield env("PlanPublished", {"plan_id": "mgr", "effective_from": first_day,
                                "rules": {**_rules("booking", "marginal", override="0.01"),
                                          "tiers": [{"from": "0", "rate": "0"}]}})
    people = [f"p{i:05d}" for i in range(participants)]
    managers = {}
    for i, person in enumerate(people):
        team = i // TEAM_SIZE
        is_manager = i % TEAM_SIZE == 0
        if is_manager:
            managers[team] = person
        data: dict[str, Any] = {"participant_id": person, "name": f"Person {i}", "team_id": f"team-{team}",
                                "start_date": f"{2026 - years}-01-01"}
        if not is_manager:
            data["manager_id"] = managers[team]
        yield env("ParticipantRegistered", data)
        plan = "mgr" if is_manager else ("ae-coll" if team % 4 == 3 else "ae")
        yield env("PlanAssigned", {"participant_id": person, "plan_id": plan, "effective_from": first_day})
    months = [f"{year}-{m:02d}" for year in range(2027 - years, 2027) for m in range(1, 13)]
    for month in months:
        for person in people:
            yield env("TargetSet", {"participant_id": person, "period": month,
                                    "amount": f"{rng.randrange(50, 150) * 1000}.00"})
    remaining = max(total - n, 0)
    deals_per_month = remaining // len(months) * 4 // 5
    deal = 0
    payment = 0
    dispute = 0
    adjustment = 0
    #: Corrections waiting for their turn: (the deal count after which they come, order, envelope).
    pending: list[tuple[int, int, dict[str, Any]]] = []
    team_of = {person: i // TEAM_SIZE for i, person in enumerate(people)}
    leads = set(managers.values())
    for m, month in enumerate(months):
        first = date(int(month[:4]), int(month[5:]), 1)
        last_day = first + timedelta(days=27)
        if churn:
            for person in people:
                if person in leads:
                    continue
                if fix.random() < TRANSFERRED * churn and len(managers) > 1:
                    team = fix.choice([t for t in managers if t != team_of[person]])
                    team_of[person] = team
                    yield env("ParticipantTransferred", {"participant_id": person, "team_id": f"team-{team}",
                                                         "manager_id": managers[team], "effective_date": month + "-01"})
            for person in people:
                if fix.random() < ADJUSTED * churn:
                    adjustment += 1
                    sign = fix.choice(["", "-"])
                    heapq.heappush(pending, (fix.randrange(deals_per_month or 1), n, env(
                        "AdjustmentRecorded", {"adjustment_id": f"adj{adjustment}", "participant_id": person,
                                               "period": month, "amount": f"{sign}{fix.randrange(50, 2_000)}.00",
                                               "reason": "manual correction"})))
        for index in range(deals_per_month):
            while pending and pending[0][0] <= index:
                yield heapq.heappop(pending)[2]
            deal += 1
            rep = people[rng.randrange(participants)]
            credits = [{"participant_id": rep, "share": "1"}]
            if rng.random() < 0.15:
                other = people[rng.randrange(participants)]
                if other != rep:
                    credits = [{"participant_id": rep, "share": "0.6"}, {"participant_id": other, "share": "0.4"}]
            booked = first + timedelta(days=rng.randrange(28))
            amount = rng.randrange(1_000, 40_000)
            yield env("DealBooked", {"deal_id": f"d{deal}", "booked_on": booked.isoformat(), "amount": f"{amount}.00",
                                     "currency": "USD", "product": rng.choice(["widget", "widget-pro", "svc"]),
                                     "credits": credits})
            paid = rng.random() < 0.25
            if paid:
                payment += 1
                yield env("PaymentReceived", {"payment_id": f"pay{payment}", "deal_id": f"d{deal}",
                                              "amount": f"{amount}.00",
                                              "received_on": (booked + timedelta(days=20)).isoformat()})
            if churn:
                later = index + 1 + fix.randrange(max(deals_per_month - index, 1))
                if fix.random() < AMENDED * churn:
                    # A quarter after the close, in the next month: an adjustment on a later statement.
                    after = fix.random() < 0.25
                    new = max(amount + fix.randrange(-amount // 3, amount // 3 + 1), 1)
                    heapq.heappush(pending, (later + deals_per_month * after, n, env("DealAmended", {
                        "deal_id": f"d{deal}", "amount": f"{new}.00",
                        "amended_on": (last_day + timedelta(days=7 * after)).isoformat()})))
                elif fix.random() < CANCELLED * churn:
                    # Half after the close, in the next month: a clawback on a later statement.
                    after = fix.random() < 0.5
                    heapq.heappush(pending, (later + deals_per_month * after, n, env("DealCancelled", {
                        "deal_id": f"d{deal}", "cancelled_on": (last_day + timedelta(days=7 * after)).isoformat()})))
                if paid and fix.random() < REVERSED * churn:
                    heapq.heappush(pending, (later, n, env("PaymentReversed", {
                        "payment_id": f"pay{payment}", "reversed_on": (booked + timedelta(days=30)).isoformat()})))
            if disputes and rng.random() < disputes:
                dispute += 1
                yield env("DisputeOpened", {"dispute_id": f"dsp{dispute}", "participant_id": rep, "period": month,
                                            "deal_id": f"d{deal}", "reason": "credit split"})
        # What is left of the month comes before its close; what was put after it, after.
        while pending and pending[0][0] < deals_per_month:
            yield heapq.heappop(pending)[2]
        pending = [(when - deals_per_month, order, envelope) for when, order, envelope in pending]
        if m < len(months) - 1:
            yield env("PeriodClosed", {"period": month})
