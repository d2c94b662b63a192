"""Period closes and prior-period adjustments (§5.10), checked by hand."""

from __future__ import annotations

from tests.support import Api


def _lines(statement: dict) -> list[tuple[str, str | None, str]]:  # type: ignore[type-arg]
    return [(line["kind"], line.get("for_period"), line["amount"]) for line in statement["lines"]]


def test_chain_of_closes_with_late_deals_cancellations_amendments_and_plan_versions(api: Api) -> None:
    api.participant("r1")
    api.plan("p", tiers=[("0", "0.05")], clawback_days=30)
    api.assign("r1", "p")
    api.deal("a", "2026-01-10", "10000", "r1")  # Jan: 500
    api.close("2026-01")
    api.deal("b", "2026-01-20", "2000", "r1")  # late: +100 for Jan, paid in Feb
    api.deal("c", "2026-02-05", "4000", "r1")  # Feb: 200
    feb = api.statement("r1", "2026-02")
    assert _lines(feb) == [("commission", None, "200.00"), ("adjustment", "2026-01", "100.00")]
    assert feb["total"] == "300.00"
    api.close("2026-02")
    # Inside the 30-day window: deal a is taken back. 22 days after booking.
    api.add("DealCancelled", deal_id="a", cancelled_on="2026-02-01")
    # Jan's own total is now 100 (b), it was 600 at Feb's close: -500 in March.
    assert _lines(api.statement("r1", "2026-03")) == [("adjustment", "2026-01", "-500.00")]
    api.add("DealAmended", deal_id="c", amount="6000", amended_on="2026-03-02")  # Feb own: 300 (+100)
    api.deal("d", "2026-01-05", "1000", "r1")  # late again: Jan +50
    api.add("DealCancelled", deal_id="d", cancelled_on="2026-03-01")  # 55 days: outside the window, stays live
    march = api.statement("r1", "2026-03")
    assert _lines(march) == [("adjustment", "2026-01", "-450.00"), ("adjustment", "2026-02", "100.00")]
    # A retroactive plan version: 6% from Jan 1. Jan own = (2000 + 1000) x 6% = 180; Feb = 6000 x 6% = 360.
    api.add("PlanPublished", plan_id="p", effective_from="2026-01-01",
            rules={**_flat("0.06"), "clawback_days": 30})
    march = api.statement("r1", "2026-03")
    assert _lines(march) == [("adjustment", "2026-01", "-420.00"), ("adjustment", "2026-02", "160.00")]
    assert march["total"] == "-260.00"
    jan = api.statement("r1", "2026-01")
    assert (jan["status"], jan["total"], jan["frozen_total"], jan["recomputed_total"]) == (
        "closed", "500.00", "500.00", "180.00")
    feb = api.statement("r1", "2026-02")
    assert (feb["total"], feb["frozen_total"], feb["recomputed_total"]) == ("300.00", "300.00", "460.00")
    assert _lines(feb) == [("commission", None, "200.00"), ("adjustment", "2026-01", "100.00")]
    # Nothing is paid twice, nothing lost: 500 + 300 - 260 = 540 = 180 + 360.
    api.close("2026-03")
    april = api.statement("r1", "2026-04")
    assert april["lines"] == []
    assert api.statement("r1", "2026-03")["frozen_total"] == "-260.00"


def _flat(rate: str) -> dict:  # type: ignore[type-arg]
    return {"period": "month", "basis": "booking", "tier_method": "marginal",
            "tiers": [{"from": "0", "rate": rate}], "cap": None, "spiffs": [], "clawback_days": None,
            "override_rate": "0"}


def test_target_change_in_a_closed_period_becomes_an_adjustment(api: Api) -> None:
    api.participant("r1")
    api.plan("p", tiers=[("0", "0.05"), ("1.0", "0.10")])
    api.assign("r1", "p")
    api.target("r1", "2026-04", "10000")
    api.deal("a", "2026-04-03", "12000", "r1")  # 10,000 x 5% + 2,000 x 10% = 700
    api.close("2026-04")
    api.target("r1", "2026-04", "20000")  # now 12,000 x 5% = 600
    april = api.statement("r1", "2026-04")
    assert (april["target"], april["attainment"], april["total"], april["recomputed_total"]) == (
        "10000.00", "1.2000", "700.00", "600.00")
    assert _lines(api.statement("r1", "2026-05")) == [("adjustment", "2026-04", "-100.00")]
    rows = api.get("/v1/attainment", period="2026-04").json()["rows"]
    assert rows == [{"participant_id": "r1", "team_id": "t1", "target": "10000.00", "credited": "12000.00",
                     "attainment": "1.2000"}]


def test_release_recomputed_in_a_closed_period(api: Api) -> None:
    api.participant("r1")
    api.plan("c", tiers=[("0", "0.10")], basis="collection")
    api.assign("r1", "c")
    api.deal("k", "2026-06-01", "1000", "r1")
    api.payment("p1", "k", "1000", "2026-06-10")
    assert _lines(api.statement("r1", "2026-06")) == [("earned", None, "100.00"), ("release", None, "100.00")]
    api.close("2026-06")
    api.add("DealAmended", deal_id="k", amount="2000", amended_on="2026-07-01")  # K 200, half paid: still 100
    assert api.statement("r1", "2026-07")["lines"] == []
    api.add("PlanPublished", plan_id="c", effective_from="2026-06-01",
            rules={**_flat("0.20"), "basis": "collection"})  # K 400, half paid: 200
    assert _lines(api.statement("r1", "2026-07")) == [("adjustment", "2026-06", "100.00")]
    june = api.statement("r1", "2026-06")
    assert (june["frozen_total"], june["recomputed_total"]) == ("100.00", "200.00")


def test_as_of_close_position_reproduces_the_frozen_statement(api: Api) -> None:
    api.participant("r1")
    api.plan("p", tiers=[("0", "0.05")])
    api.assign("r1", "p")
    api.deal("a", "2026-01-10", "1000", "r1")
    closed_at = api.close("2026-01")
    frozen = api.statement("r1", "2026-01", as_of_position=closed_at)
    api.deal("b", "2026-01-11", "1000", "r1")
    api.add("AdjustmentRecorded", adjustment_id="x", participant_id="r1", period="2026-02", amount="5", reason="r")
    now = api.statement("r1", "2026-01")
    for key in ("status", "target", "credited", "attainment", "lines", "total", "frozen_total", "warnings"):
        assert now[key] == frozen[key], key
    assert now["recomputed_total"] == "100.00"
    before = api.statement("r1", "2026-01", as_of_position=closed_at - 1)
    assert before["status"] == "open"
    assert (before["lines"], before["total"]) == (frozen["lines"], frozen["total"])


def test_closes_of_each_length_are_independent_and_ordered(api: Api) -> None:
    api.close("2026-05")
    assert api.post("PeriodClosed", period="2026-07").status_code == 409
    assert api.post("PeriodClosed", period="2026-05").status_code == 409
    assert api.post("PeriodClosed", period="2026-04").status_code == 409
    api.close("2025-Q4")
    api.close("2026-06")
    api.close("2026-Q1")
    response = api.post("PeriodClosed", period="2026-Q3")
    assert response.status_code == 409
    assert response.json()["problems"][0]["field"] == "data.period"


def test_manual_adjustment_into_a_closed_period_is_rejected(api: Api) -> None:
    api.participant("r1")
    api.close("2026-01")
    before = api.head()
    response = api.post("AdjustmentRecorded", adjustment_id="x", participant_id="r1", period="2026-01",
                        amount="10.00", reason="late bonus")
    assert response.status_code == 422
    assert api.head() == before
    api.add("AdjustmentRecorded", adjustment_id="x", participant_id="r1", period="2026-02", amount="10.00",
            reason="late bonus")
    assert _lines(api.statement("r1", "2026-02")) == [("manual", None, "10.00")]


def test_quarter_close_puts_adjustments_in_the_next_quarter(api: Api) -> None:
    api.participant("r1")
    api.plan("q", tiers=[("0", "0.10")], period="quarter")
    api.assign("r1", "q")
    api.deal("a", "2026-02-01", "1000", "r1")
    assert api.total("r1", "2026-Q1") == "100.00"
    api.close("2026-Q1")
    api.close("2026-01")  # a month close changes nothing for quarter statements
    api.deal("b", "2026-03-31", "500", "r1")
    assert _lines(api.statement("r1", "2026-Q2")) == [("adjustment", "2026-Q1", "50.00")]
    assert api.statement("r1", "2026-02")["lines"] == []
