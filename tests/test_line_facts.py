"""Every fact a statement line shows, for each kind the engine builds positionally (decision 67):
a fact in the wrong place would go unnoticed by tests that compare amounts only."""

from __future__ import annotations

from typing import Any

from tests.support import Api

_TIERS = [("0", "0.04"), ("0.8", "0.08"), ("1.2", "0.12")]


def _ledger(api: Api) -> None:
    api.plan("marg", tiers=_TIERS, tier_method="marginal")
    api.plan("retro", tiers=_TIERS, tier_method="retroactive")
    api.plan("mgr", tiers=[("0", "0")], override_rate="0.015")
    api.participant("m1")
    api.participant("r1", manager_id="m1")
    api.participant("r2", manager_id="m1")
    api.assign("m1", "mgr")
    api.assign("r1", "marg")
    api.assign("r2", "retro")
    api.target("r1", "2026-03", "50000")
    api.target("r2", "2026-03", "50000")
    api.deal("k1", "2026-03-02", "30000", "r1")
    api.deal("k2", "2026-03-17", "35000", {"r1": "0.6", "r2": "0.4"})


def _ids(api: Api) -> dict[str, str]:
    """The event id of each plan, deal and target (by participant) of the ledger."""
    keys = {"PlanPublished": "plan_id", "DealBooked": "deal_id", "TargetSet": "participant_id"}
    return {event["data"][keys[event["type"]]]: event["event_id"] for event in api.events() if event["type"] in keys}


def _tier(number: int, from_: str, rate: str, low: str, high: str, portion: str, amount: str) -> dict[str, Any]:
    return {"tier": number, "from": from_, "rate": rate, "range_from": low, "range_to": high, "portion": portion,
            "amount": amount}


def test_a_marginal_commission_line_shows_its_tiers_target_and_credits_before(api: Api) -> None:
    _ledger(api)
    ids = _ids(api)
    common = {"kind": "commission", "plan_id": "marg", "plan_version": 1, "tier_method": "marginal",
              "target": "50000.00"}
    first, second = api.statement("r1", "2026-03")["lines"]
    # k1: 30,000 within tier 1 (up to 0.8 x 50,000 = 40,000) at 4 %.
    assert first == {**common, "amount": "1200.00", "deal_id": "k1", "credit": "30000", "share": "1",
                     "tiers": [_tier(1, "0", "0.04", "0.00", "40000.00", "30000.00", "1200.00")],
                     "credited_before": "0.00", "event_ids": [ids["k1"], ids["marg"], ids["r1"]]}
    # k2: r1's 60 % (21,000) spans 30,000-51,000: 10,000 at 4 %, 11,000 at 8 %.
    assert second == {**common, "amount": "1280.00", "deal_id": "k2", "credit": "21000.0", "share": "0.6",
                      "tiers": [_tier(1, "0", "0.04", "0.00", "40000.00", "10000.00", "400.00"),
                                _tier(2, "0.8", "0.08", "40000.00", "60000.00", "11000.00", "880.00")],
                      "credited_before": "30000.00", "event_ids": [ids["k2"], ids["marg"], ids["r1"]]}


def test_a_retroactive_commission_line_shows_the_tier_its_period_reached(api: Api) -> None:
    _ledger(api)
    ids = _ids(api)
    [line] = api.statement("r2", "2026-03")["lines"]
    # r2's 40 % of k2 (14,000) is 0.28 of the target: tier 1's 4 % on all of it.
    assert line == {"kind": "commission", "amount": "560.00", "deal_id": "k2", "credit": "14000.0", "share": "0.4",
                    "plan_id": "retro", "plan_version": 1, "tier_method": "retroactive", "rate": "0.04",
                    "target": "50000.00", "credited_before": "0.00", "tier": "1", "attainment": "0.2800",
                    "event_ids": [ids["k2"], ids["retro"], ids["r2"]]}


def test_an_override_line_shows_the_report_its_credit_and_the_rate(api: Api) -> None:
    _ledger(api)
    ids = _ids(api)
    lines = api.statement("m1", "2026-03")["lines"]
    common = {"kind": "override", "plan_id": "mgr", "plan_version": 1, "rate": "0.015"}
    assert lines == [
        {**common, "amount": "450.00", "deal_id": "k1", "participant_id": "r1", "credit": "30000",
         "event_ids": [ids["k1"], ids["mgr"]]},
        {**common, "amount": "315.00", "deal_id": "k2", "participant_id": "r1", "credit": "21000.0",
         "event_ids": [ids["k2"], ids["mgr"]]},
        {**common, "amount": "210.00", "deal_id": "k2", "participant_id": "r2", "credit": "14000.0",
         "event_ids": [ids["k2"], ids["mgr"]]},
    ]
