"""A realistic demo ledger: three teams, twenty people, two rep plans, a quarter of deals.

Everything goes through the same validation as any integration's events.
The generator is seeded, so every demo ledger is the same.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from ledger.appender import LedgerLog

TEAMS = {
    "east": ("mgr-ada", ["rep-alba", "rep-bea", "rep-cruz", "rep-dev", "rep-eli", "rep-fay"]),
    "west": ("mgr-ben", ["rep-gus", "rep-hana", "rep-ivo", "rep-jun", "rep-kai", "rep-lou"]),
    "central": ("mgr-cy", ["rep-mia", "rep-ned", "rep-oli", "rep-pia", "rep-quin"]),
}
COLLECTION_TEAM = "central"
MONTHS = ("2026-07", "2026-08", "2026-09")


def _rules(basis: str, method: str, tiers: list[tuple[str, str]], **extra: Any) -> dict[str, Any]:
    rules: dict[str, Any] = {
        "period": "month",
        "basis": basis,
        "tier_method": method,
        "tiers": [{"from": f, "rate": r} for f, r in tiers],
        "cap": None,
        "spiffs": [],
        "clawback_days": None,
        "override_rate": "0",
    }
    rules.update(extra)
    return rules


def demo_events(seed: int = 7, currency: str = "USD") -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []

    def add(type_: str, **data: Any) -> None:
        out.append({"event_id": f"demo-{len(out) + 1:04d}", "type": type_, "data": data})

    add(
        "PlanPublished",
        plan_id="ae-booking",
        effective_from="2026-01-01",
        rules=_rules(
            "booking",
            "marginal",
            [("0", "0.05"), ("0.8", "0.08"), ("1.2", "0.12")],
            cap="30000.00",
            spiffs=[{"product": "widget-pro", "amount": "250.00"}],
            clawback_days=90,
        ),
    )
    add(
        "PlanPublished",
        plan_id="ae-collection",
        effective_from="2026-01-01",
        rules=_rules("collection", "retroactive", [("0", "0.06"), ("1.0", "0.09")]),
    )
    add(
        "PlanPublished",
        plan_id="manager",
        effective_from="2026-01-01",
        rules=_rules("booking", "marginal", [("0", "0")], override_rate="0.015"),
    )
    for team, (manager, members) in TEAMS.items():
        add("ParticipantRegistered", participant_id=manager, name=f"Manager {manager[4:].title()}",
            team_id=team, start_date="2025-01-06")
        add("PlanAssigned", participant_id=manager, plan_id="manager", effective_from="2026-01-01")
        plan = "ae-collection" if team == COLLECTION_TEAM else "ae-booking"
        for rep in members:
            add("ParticipantRegistered", participant_id=rep, name=f"Rep {rep[4:].title()}", team_id=team,
                manager_id=manager, start_date="2025-03-03")
            add("PlanAssigned", participant_id=rep, plan_id=plan, effective_from="2026-01-01")
            for month in MONTHS:
                add("TargetSet", participant_id=rep, period=month, amount=f"{rng.randrange(40, 90) * 1000}.00")
    reps = [(rep, team) for team, (_, people) in TEAMS.items() for rep in people]
    deals: list[tuple[str, date, str, str]] = []
    start = date(2026, 7, 1)
    for n in range(1, 151):
        rep, team = rng.choice(reps)
        booked = start + timedelta(days=rng.randrange(0, 92))
        amount = f"{rng.randrange(2_000, 30_000)}.{rng.randrange(0, 100):02d}"
        credits = [{"participant_id": rep, "share": "1"}]
        if rng.random() < 0.2:
            partner = rng.choice([r for r, t in reps if t == team and r != rep])
            credits = [{"participant_id": rep, "share": "0.6"}, {"participant_id": partner, "share": "0.4"}]
        product = rng.choice(["widget", "widget-pro", "service"])
        deal_id = f"D-{n:04d}"
        add("DealBooked", deal_id=deal_id, booked_on=booked.isoformat(), amount=amount, currency=currency,
            product=product, customer=f"Customer {rng.randrange(1, 60)}", credits=credits)
        deals.append((deal_id, booked, amount, team))
    add("TargetSet", participant_id="rep-alba", period="2026-08", amount="45000.00")
    add("DealAmended", deal_id="D-0005", amount="12500.00", amended_on="2026-08-20")
    add("DealCancelled", deal_id="D-0010", cancelled_on=(deals[9][1] + timedelta(days=20)).isoformat())
    for deal_id, booked, amount, team in deals:
        if team != COLLECTION_TEAM:
            continue
        first = (int(amount.split(".")[0]) // 2)
        add("PaymentReceived", payment_id=f"P-{deal_id}-1", deal_id=deal_id, amount=f"{first}.00",
            received_on=(booked + timedelta(days=15)).isoformat())
        if rng.random() < 0.6:
            rest = f"{int(amount.split('.')[0]) - first}.{amount.split('.')[1]}"
            add("PaymentReceived", payment_id=f"P-{deal_id}-2", deal_id=deal_id, amount=rest,
                received_on=(booked + timedelta(days=40)).isoformat())
    add("AdjustmentRecorded", adjustment_id="ADJ-1", participant_id="rep-gus", period="2026-08",
        amount="-150.00", reason="Recovered travel advance")
    add("PeriodClosed", period="2026-07")
    add("DisputeOpened", dispute_id="DSP-1", participant_id="rep-bea", period="2026-07",
        reason="Deal credited to the wrong rep")
    return out


def load_demo(log: LedgerLog) -> int:
    """The demo in the ledger's own currency (`LEDGER_CURRENCY`), which every deal must name."""
    events = demo_events(currency=log.currency)
    log.append(events)
    return len(events)
