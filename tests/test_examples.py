"""The worked examples of the contract, through HTTP, on every backend."""

from __future__ import annotations

import pytest

from tests.support import Api


@pytest.mark.parametrize(("method", "k1", "k2", "total"), [
    ("marginal", "1200.00", "2600.00", "3800.00"),
    ("retroactive", "3600.00", "4200.00", "7800.00"),
])
def test_example_1_tiers_across_a_threshold(api: Api, method: str, k1: str, k2: str, total: str) -> None:
    api.plan("p", tiers=[("0", "0.04"), ("0.8", "0.08"), ("1.2", "0.12")], tier_method=method)
    api.participant("r1")
    api.assign("r1", "p")
    api.target("r1", "2026-03", "50000")
    api.deal("k1", "2026-03-02", "30000", "r1")
    api.deal("k2", "2026-03-17", "35000", "r1")
    statement = api.statement("r1", "2026-03")
    assert statement["credited"] == "65000.00"
    assert statement["attainment"] == "1.3000"
    assert statement["target"] == "50000.00"
    assert [(line["deal_id"], line["amount"]) for line in statement["lines"]] == [("k1", k1), ("k2", k2)]
    assert statement["total"] == total


def test_example_2_split_credit_and_override(api: Api) -> None:
    api.plan("flat6", tiers=[("0", "0.06")])
    api.plan("mgr", tiers=[("0", "0")], override_rate="0.015")
    api.participant("m1")
    api.participant("r1", manager_id="m1")
    api.participant("r2", manager_id="m1")
    api.assign("m1", "mgr")
    api.assign("r1", "flat6")
    api.assign("r2", "flat6")
    api.deal("k3", "2026-04-09", "20000", {"r1": "0.75", "r2": "0.25"})
    r1 = api.statement("r1", "2026-04")
    assert r1["lines"][0]["credit"] == "15000.00"
    assert r1["total"] == "900.00"
    assert api.total("r2", "2026-04") == "300.00"
    m1 = api.statement("m1", "2026-04")
    assert m1["credited"] == "0.00"
    assert m1["attainment"] is None
    assert [(line["kind"], line["participant_id"], line["amount"]) for line in m1["lines"]] == [
        ("override", "r1", "225.00"), ("override", "r2", "75.00")
    ]
    assert m1["total"] == "300.00"


def test_example_3_collection_with_cumulative_rounding(api: Api) -> None:
    api.plan("coll", tiers=[("0", "0.07")], basis="collection")
    api.participant("r1")
    api.assign("r1", "coll")
    api.deal("k4", "2026-05-05", "999.99", "r1")
    api.payment("p1", "k4", "400.00", "2026-05-20")
    api.payment("p2", "k4", "400.00", "2026-06-02")
    api.payment("p3", "k4", "199.99", "2026-07-01")
    may = api.statement("r1", "2026-05")
    assert [(line["kind"], line["amount"]) for line in may["lines"]] == [("earned", "70.00"), ("release", "28.00")]
    assert may["total"] == "28.00"
    assert api.total("r1", "2026-06") == "28.00"
    assert api.total("r1", "2026-07") == "14.00"


def test_example_4_late_deal_after_close(api: Api) -> None:
    api.plan("flat5", tiers=[("0", "0.05")])
    api.participant("r1")
    api.assign("r1", "flat5")
    k5 = api.deal("k5", "2026-08-10", "10000", "r1")
    api.close("2026-08")
    api.deal("k6", "2026-08-30", "4000", "r1")
    august = api.statement("r1", "2026-08")
    assert august["status"] == "closed"
    assert (august["total"], august["frozen_total"], august["recomputed_total"]) == ("500.00", "500.00", "700.00")
    september = api.statement("r1", "2026-09")
    assert september["status"] == "open"
    assert [(line["kind"], line["for_period"], line["amount"]) for line in september["lines"]] == [
        ("adjustment", "2026-08", "200.00")
    ]
    assert september["total"] == "200.00"
    then = api.statement("r1", "2026-08", as_of_position=k5)
    assert (then["status"], then["total"], then["as_of_position"]) == ("open", "500.00", k5)
