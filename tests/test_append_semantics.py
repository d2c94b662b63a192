"""§3 append semantics through HTTP: idempotency, all-or-nothing batches, the order of period
closes, positions and recorded_at, and the log showing data exactly as sent."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from replay.bootstrap import Services
from tests.support import Api, rules
from tests.test_validation import envelope, names, problems, snapshot

RECORDED_AT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


def registered(participant_id: str, **over: Any) -> dict[str, Any]:
    return {"participant_id": participant_id, "name": participant_id.upper(), "team_id": "t1",
            "start_date": "2026-01-01", **over}


def deal(deal_id: str, participant_id: str = "r1", amount: str = "1000.00", **over: Any) -> dict[str, Any]:
    return {"deal_id": deal_id, "booked_on": "2026-03-10", "amount": amount, "currency": "USD",
            "credits": [{"participant_id": participant_id, "share": "1"}], **over}


def target(amount: str = "5000.00", participant_id: str = "r1", period: str = "2026-03") -> dict[str, Any]:
    return {"participant_id": participant_id, "period": period, "amount": amount}


def setup(api: Api) -> list[dict[str, Any]]:
    """r1 and a deal d1; returns the append results (one per event)."""
    response = api.batch([envelope("ParticipantRegistered", registered("r1"), "s-r1"),
                          envelope("PlanPublished", {"plan_id": "p1", "effective_from": "2020-01-01",
                                                     "rules": rules(clawback_days=1)}, "s-p1"),
                          envelope("DealBooked", deal("d1"), "s-d1")])
    assert response.status_code == 201, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def post(api: Api, body: Any) -> Any:
    return api.client.post("/v1/events", json=body, headers=api.headers)


def post_raw(api: Api, raw: str) -> Any:
    return api.client.post("/v1/events", content=raw.encode(), headers={**api.headers,
                                                                       "content-type": "application/json"})


def other_process_log(make_services: Callable[..., Services], then: dict[str, Any] | None = None) -> Any:
    """A second service on the same database, as after a restart or in another process: it appends
    `then` (if given) and returns (its answer, the log it lists)."""
    services = make_services()
    with TestClient(create_app(services)) as client:
        other = Api(client, services)
        answer = other.client.post("/v1/events", json=then, headers=other.headers) if then else None
        return answer, other.events()


# --- idempotency (§3) ---------------------------------------------------------------------------


def test_a_replay_answers_the_original_result_and_stores_nothing(api: Api) -> None:
    setup(api)
    first = post(api, envelope("TargetSet", target(), "t-1"))
    assert first.status_code == 201, first.text
    original = first.json()
    assert set(original) == {"event_id", "position", "recorded_at", "duplicate"}
    assert original["duplicate"] is False and original["event_id"] == "t-1"
    before = snapshot(api)
    again = post(api, envelope("TargetSet", target(), "t-1"))
    assert again.status_code == 200, again.text
    assert again.json() == {**original, "duplicate": True}
    assert snapshot(api) == before


def test_a_replay_of_an_event_appended_in_a_batch_answers_its_batch_result(api: Api) -> None:
    results = setup(api)
    before = snapshot(api)
    again = post(api, envelope("DealBooked", deal("d1"), "s-d1"))
    assert again.status_code == 200, again.text
    assert again.json() == {**results[2], "duplicate": True}
    assert snapshot(api) == before


SAME_CONTENT = [
    ("keys-in-another-order", '{"data": {"amount": "5000.00", "period": "2026-03", "participant_id": "r1"}, '
                              '"type": "TargetSet", "event_id": "t-1"}'),
    ("other-whitespace", '{\n  "event_id" : "t-1",\n\t"type":"TargetSet","data":{"participant_id":"r1",'
                         '"period":"2026-03","amount":"5000.00"}   }\n'),
    ("unicode-escapes", '{"event_id": "t\\u002d1", "type": "Target\\u0053et", "data": {"participant_id": '
                        '"\\u0072\\u0031", "period": "2026-03", "amount": "5000.00"}}'),
]


def test_a_replay_is_compared_as_json_values(api: Api) -> None:
    setup(api)
    original = post(api, envelope("TargetSet", target(), "t-1")).json()
    before = snapshot(api)
    for name, raw in SAME_CONTENT:
        again = post_raw(api, raw)
        assert again.status_code == 200, (name, again.text)
        assert again.json() == {**original, "duplicate": True}, name
    assert snapshot(api) == before


def test_a_replay_with_nested_keys_reordered_is_a_duplicate(api: Api) -> None:
    setup(api)
    data = {"plan_id": "p2", "effective_from": "2026-01-01",
            "rules": rules([("0", "0.05"), ("1.0", "0.1")], spiffs=[{"product": "w", "amount": "5"}])}
    original = post(api, envelope("PlanPublished", data, "plan-2")).json()
    reordered = {"rules": {k: data["rules"][k] for k in reversed(list(data["rules"]))}, "effective_from":
                 "2026-01-01", "plan_id": "p2"}
    reordered["rules"]["tiers"] = [{"rate": t["rate"], "from": t["from"]} for t in data["rules"]["tiers"]]
    reordered["rules"]["spiffs"] = [{"amount": "5", "product": "w"}]
    before = snapshot(api)
    again = post(api, {"data": reordered, "type": "PlanPublished", "event_id": "plan-2"})
    assert again.status_code == 200, again.text
    assert again.json() == {**original, "duplicate": True}
    assert snapshot(api) == before


OTHER_CONTENT: list[tuple[str, dict[str, Any]]] = [
    ("other-amount", envelope("TargetSet", target("5000.01"), "t-1")),
    ("same-amount-spelled-differently", envelope("TargetSet", target("5000.0"), "t-1")),
    ("amount-as-a-number", envelope("TargetSet", {**target(), "amount": 5000}, "t-1")),
    ("other-type-same-data", envelope("AdjustmentRecorded", target(), "t-1")),
    ("other-period", envelope("TargetSet", target(period="2026-04"), "t-1")),
    ("extra-key", envelope("TargetSet", {**target(), "note": "x"}, "t-1")),
    ("missing-key", envelope("TargetSet", {"participant_id": "r1", "period": "2026-03"}, "t-1")),
    ("null-added", envelope("TargetSet", {**target(), "comment": None}, "t-1")),
    ("unknown-type", envelope("Whatever", target(), "t-1")),
    ("data-not-an-object", envelope("TargetSet", "r1", "t-1")),
    ("no-data", {"event_id": "t-1", "type": "TargetSet"}),
    ("invalid-and-different", envelope("TargetSet", target("-5"), "t-1")),
    ("case-of-a-value", envelope("TargetSet", target(participant_id="R1"), "t-1")),
]


def test_the_same_event_id_with_other_content_is_409_and_stores_nothing(api: Api) -> None:
    setup(api)
    assert post(api, envelope("TargetSet", target(), "t-1")).status_code == 201
    before = snapshot(api)
    failures = []
    for name, body in OTHER_CONTENT:
        response = post(api, body)
        if response.status_code != 409 or not names(response.json().get("problems", []), ("event_id",)):
            failures.append(f"{name}: {response.status_code} {response.text[:300]}")
    assert not failures, "\n".join(failures)
    assert snapshot(api) == before


def test_true_is_not_1_when_comparing_a_replay(api: Api) -> None:
    setup(api)
    for i, (stored, replayed) in enumerate([(1, True), (0, False), (None, 0), (None, False)]):
        data = {"plan_id": f"p{i}", "effective_from": "2026-01-01", "rules": rules(clawback_days=stored)}
        assert post(api, envelope("PlanPublished", data, f"plan-{i}")).status_code == 201
        before = snapshot(api)
        other = {**data, "rules": {**data["rules"], "clawback_days": replayed}}
        response = post(api, envelope("PlanPublished", other, f"plan-{i}"))
        assert response.status_code == 409, (stored, replayed, response.text)
        assert snapshot(api) == before


def test_an_omitted_optional_field_is_not_the_same_as_null_in_a_replay(api: Api) -> None:
    setup(api)
    assert post(api, envelope("ParticipantRegistered", registered("r2"), "reg-2")).status_code == 201
    before = snapshot(api)
    response = post(api, envelope("ParticipantRegistered", registered("r2", manager_id=None), "reg-2"))
    assert response.status_code == 409, response.text
    assert snapshot(api) == before


def test_a_replay_is_never_422_even_when_the_event_would_now_be_rejected(api: Api) -> None:
    """Re-sending events whose ids are now taken, or a cancellation of a cancelled deal, is a replay."""
    results = setup(api)
    cancel = post(api, envelope("DealCancelled", {"deal_id": "d1", "cancelled_on": "2026-03-11"}, "cancel-d1"))
    assert cancel.status_code == 201
    closed = post(api, envelope("PeriodClosed", {"period": "2026-03"}, "close-mar"))
    assert closed.status_code == 201
    before = snapshot(api)
    for body, original in [
        (envelope("DealCancelled", {"deal_id": "d1", "cancelled_on": "2026-03-11"}, "cancel-d1"), cancel.json()),
        (envelope("PeriodClosed", {"period": "2026-03"}, "close-mar"), closed.json()),
        (envelope("ParticipantRegistered", registered("r1"), "s-r1"), results[0]),
    ]:
        response = post(api, body)
        assert response.status_code == 200, response.text
        assert response.json() == {**original, "duplicate": True}
    response = api.batch([envelope("DealBooked", deal("d1"), "s-d1"), envelope("PeriodClosed", {"period": "2026-03"},
                                                                            "close-mar")])
    assert response.status_code == 200, response.text
    assert snapshot(api) == before


def test_the_event_id_is_checked_before_anything_else(api: Api) -> None:
    """A reused event_id with content that is invalid in several ways is still 409, not 422."""
    setup(api)
    before = snapshot(api)
    response = post(api, {"event_id": "s-r1", "type": "Nope", "data": {"x": 1}, "extra": True})
    assert response.status_code == 409, response.text
    assert snapshot(api) == before


# --- batches ------------------------------------------------------------------------------------


def test_one_bad_event_rejects_the_whole_batch(api: Api) -> None:
    setup(api)
    before = snapshot(api)
    batch = [envelope("ParticipantRegistered", registered("r2"), "b-0"),
             envelope("DealBooked", deal("d2", "r2"), "b-1"),
             envelope("TargetSet", target("-1", "r2"), "b-2"),
             envelope("TargetSet", target("1", "r2"), "b-3")]
    found = problems(api.batch(batch))
    assert names(found, ("data.amount",), index=2, exact=False), found
    assert {p.get("index") for p in found} == {2}, found
    assert snapshot(api) == before
    # nothing of the batch exists: r2 and d2 are unknown, and the event ids are free
    assert post(api, envelope("TargetSet", target("1", "r2"), "x-1")).status_code == 422
    assert post(api, envelope("PaymentReceived", {"payment_id": "pp", "deal_id": "d2", "amount": "1",
                                                  "received_on": "2026-03-11"}, "x-2")).status_code == 422
    reused = post(api, envelope("TargetSet", target("7"), "b-0"))
    assert reused.status_code == 201, reused.text


def test_a_batch_event_that_is_not_an_object_is_named_by_its_index(api: Api) -> None:
    """The problem is the event as a whole: no field within it, so the message names none (it read
    ": an event must be..."), and the problem carries the event's index."""
    setup(api)
    before = snapshot(api)
    response = api.client.post("/v1/events/batch", headers=api.headers,
                               json={"events": [envelope("TargetSet", target("1"), "n-0"), "not an event"]})
    assert response.status_code == 422, response.text
    assert response.json()["problems"] == [
        {"index": 1, "field": "", "problem": "an event must be a JSON object with event_id, type and data"}]
    assert response.json()["message"] == "an event must be a JSON object with event_id, type and data"
    assert snapshot(api) == before


def test_a_batch_is_checked_in_order_against_its_earlier_events(api: Api) -> None:
    setup(api)
    head, _ = snapshot(api)
    batch = [envelope("ParticipantRegistered", registered("m2"), "o-0"),
             envelope("ParticipantRegistered", registered("r2", manager_id="m2"), "o-1"),
             envelope("PlanPublished", {"plan_id": "p2", "effective_from": "2026-01-01", "rules": rules()}, "o-2"),
             envelope("PlanAssigned", {"participant_id": "r2", "plan_id": "p2", "effective_from": "2026-01-01"},
                      "o-3"),
             envelope("DealBooked", deal("d2", "r2"), "o-4"),
             envelope("PaymentReceived", {"payment_id": "pp2", "deal_id": "d2", "amount": "10",
                                          "received_on": "2026-03-12"}, "o-5"),
             envelope("PaymentReversed", {"payment_id": "pp2", "reversed_on": "2026-03-13"}, "o-6"),
             envelope("DealCancelled", {"deal_id": "d2", "cancelled_on": "2026-03-14"}, "o-7"),
             envelope("DisputeOpened", {"dispute_id": "q2", "participant_id": "r2", "period": "2026-03",
                                        "deal_id": "d2", "reason": "r"}, "o-8"),
             envelope("DisputeResolved", {"dispute_id": "q2", "resolution": "upheld", "note": "n"}, "o-9")]
    response = api.batch(batch)
    assert response.status_code == 201, response.text
    results = response.json()["results"]
    assert [r["event_id"] for r in results] == [e["event_id"] for e in batch]
    assert all(r["duplicate"] is False for r in results)
    positions = [r["position"] for r in results]
    assert positions == sorted(set(positions)) and positions[0] > head
    _, log = snapshot(api)
    assert [(e["event_id"], e["data"]) for e in log[-len(batch):]] == [(e["event_id"], e["data"]) for e in batch]


SEEN_IN_ORDER: list[tuple[str, list[Any], int, str]] = [
    ("new-id-twice-in-one-batch",
     [envelope("DealBooked", deal("d2"), "k-0"), envelope("DealBooked", deal("d2", amount="5"), "k-1")],
     1, "data.deal_id"),
    ("amend-after-cancel-in-one-batch",
     [envelope("DealCancelled", {"deal_id": "d1", "cancelled_on": "2026-03-11"}, "k-0"),
      envelope("DealAmended", {"deal_id": "d1", "amount": "5", "amended_on": "2026-03-12"}, "k-1")],
     1, "data.deal_id"),
    ("adjustment-after-close-in-one-batch",
     [envelope("PeriodClosed", {"period": "2026-03"}, "k-0"),
      envelope("AdjustmentRecorded", {"adjustment_id": "a", "participant_id": "r1", "period": "2026-03",
                                      "amount": "5", "reason": "r"}, "k-1")],
     1, "data.period"),
    ("manager-registered-later-in-the-batch",
     [envelope("TargetSet", target(), "k-0"),
      envelope("ParticipantRegistered", registered("r9", manager_id="r8"), "k-1"),
      envelope("ParticipantRegistered", registered("r8"), "k-2")],
     1, "data.manager_id"),
    ("reversal-twice-in-one-batch",
     [envelope("PaymentReceived", {"payment_id": "pp", "deal_id": "d1", "amount": "5", "received_on": "2026-03-12"},
               "k-0"),
      envelope("PaymentReversed", {"payment_id": "pp", "reversed_on": "2026-03-13"}, "k-1"),
      envelope("PaymentReversed", {"payment_id": "pp", "reversed_on": "2026-03-14"}, "k-2")],
     2, "data.payment_id"),
]


def test_a_batch_sees_its_earlier_events_when_rejecting(api: Api) -> None:
    setup(api)
    before = snapshot(api)
    for name, events, index, field in SEEN_IN_ORDER:
        found = problems(api.batch(events))
        assert names(found, (field,), index=index), (name, found)
    assert snapshot(api) == before


def test_a_batch_of_only_replays_is_200_and_stores_nothing(api: Api) -> None:
    results = setup(api)
    before = snapshot(api)
    response = api.batch([envelope("DealBooked", deal("d1"), "s-d1"),
                          envelope("ParticipantRegistered", registered("r1"), "s-r1")])
    assert response.status_code == 200, response.text
    assert response.json()["results"] == [{**results[2], "duplicate": True}, {**results[0], "duplicate": True}]
    assert snapshot(api) == before


def test_a_batch_mixing_new_events_and_replays_is_201(api: Api) -> None:
    results = setup(api)
    head, log = snapshot(api)
    response = api.batch([envelope("TargetSet", target(), "n-0"),
                          envelope("DealBooked", deal("d1"), "s-d1"),
                          envelope("DealBooked", deal("d2"), "n-2")])
    assert response.status_code == 201, response.text
    got = response.json()["results"]
    assert got[1] == {**results[2], "duplicate": True}
    assert [r["duplicate"] for r in got] == [False, True, False]
    assert head < got[0]["position"] < got[2]["position"]
    _, after = snapshot(api)
    assert after[:len(log)] == log
    assert [e["event_id"] for e in after[len(log):]] == ["n-0", "n-2"]
    assert [e["position"] for e in after[len(log):]] == [got[0]["position"], got[2]["position"]]


def test_a_replay_with_other_content_anywhere_in_a_batch_is_409(api: Api) -> None:
    setup(api)
    before = snapshot(api)
    for where in range(3):
        batch = [envelope("TargetSet", target(), "n-0"), envelope("DealBooked", deal("d2"), "n-1"),
                 envelope("TargetSet", target("1", period="2026-04"), "n-2")]
        batch[where] = envelope("DealBooked", deal("d1", amount="999.00"), "s-d1")
        response = api.batch(batch)
        assert response.status_code == 409, (where, response.text)
        assert names(response.json()["problems"], ("event_id",), index=where), response.text
    assert snapshot(api) == before


def test_a_conflicting_replay_wins_over_an_invalid_event(api: Api) -> None:
    """A replay is recognised before any other check: the batch is 409, not 422."""
    setup(api)
    before = snapshot(api)
    response = api.batch([envelope("TargetSet", target("-1"), "n-0"),
                          envelope("DealBooked", deal("d1", amount="999.00"), "s-d1")])
    assert response.status_code == 409, response.text
    assert snapshot(api) == before


def test_an_invalid_event_beside_a_faithful_replay_is_422(api: Api) -> None:
    setup(api)
    before = snapshot(api)
    found = problems(api.batch([envelope("DealBooked", deal("d1"), "s-d1"), envelope("TargetSet", target("x"), "n-1")]))
    assert names(found, ("data.amount",), index=1), found
    assert snapshot(api) == before


def test_the_same_event_twice_in_one_batch_is_stored_once(api: Api) -> None:
    setup(api)
    _, log = snapshot(api)
    twice = envelope("DealBooked", deal("d2"), "tw-1")
    reordered = {"data": {k: twice["data"][k] for k in reversed(list(twice["data"]))}, "type": "DealBooked",
                 "event_id": "tw-1"}
    response = api.batch([twice, envelope("TargetSet", target(), "tw-2"), reordered])
    assert response.status_code == 201, response.text
    first, _, second = response.json()["results"]
    assert first["duplicate"] is False and second["duplicate"] is True
    assert (second["event_id"], second["position"], second["recorded_at"]) == (
        first["event_id"], first["position"], first["recorded_at"])
    _, after = snapshot(api)
    assert [e["event_id"] for e in after[len(log):]] == ["tw-1", "tw-2"]
    replay = post(api, twice)
    assert replay.status_code == 200 and replay.json() == {**first, "duplicate": True}


def test_an_event_again_in_its_batch_is_judged_by_type_and_data_alone(api: Api) -> None:
    """§3: the same `event_id` with the same `type` and `data` is a replay, whatever else its
    envelope holds, as a resend of a stored event is: inside one batch too (its second envelope
    was compared whole, and an extra key made the batch 409)."""
    setup(api)
    _, log = snapshot(api)
    first = envelope("DealBooked", deal("d2"), "tw-1")
    response = api.batch([first, envelope("TargetSet", target(), "tw-2"), {**first, "note": "resent"}])
    assert response.status_code == 201, response.text
    new, _, again = response.json()["results"]
    assert (new["duplicate"], again["duplicate"], again["position"]) == (False, True, new["position"])
    _, after = snapshot(api)
    assert [e["event_id"] for e in after[len(log):]] == ["tw-1", "tw-2"]
    resent = post(api, {**first, "note": "resent"})  # as a resend of the stored event is answered
    assert resent.status_code == 200 and resent.json() == {**new, "duplicate": True}


def test_the_same_event_id_twice_in_one_batch_with_other_content_is_409(api: Api) -> None:
    setup(api)
    before = snapshot(api)
    response = api.batch([envelope("DealBooked", deal("d2"), "tw-1"), envelope("TargetSet", target(), "tw-2"),
                          envelope("DealBooked", deal("d2", amount="1.00"), "tw-1")])
    assert response.status_code == 409, response.text
    assert names(response.json()["problems"], ("event_id",), index=2), response.text
    assert snapshot(api) == before


def test_a_batch_of_10000_events_is_accepted(api: Api, database_url: str) -> None:
    if database_url.startswith("postgresql"):
        pytest.skip("the batch limit is checked before the store; SQLite is enough (and quicker)")
    setup(api)
    head, _ = snapshot(api)
    response = api.batch([envelope("TargetSet", target(str(i)), f"many-{i}") for i in range(10_000)])
    assert response.status_code == 201, response.text
    assert len(response.json()["results"]) == 10_000
    assert snapshot(api)[0] == head + 10_000


# --- the order of period closes (§3 PeriodClosed) -----------------------------------------------


_closes = itertools.count()


def close(api: Api, period: str) -> Any:
    return post(api, envelope("PeriodClosed", {"period": period}, f"close-{next(_closes)}"))


@pytest.mark.parametrize(("month", "quarter"), [("2031-07", "1999-Q2"), ("9999-12", "0000-Q1")])
def test_the_first_close_of_a_length_may_name_any_period(api: Api, month: str, quarter: str) -> None:
    assert close(api, month).status_code == 201
    assert close(api, quarter).status_code == 201


def test_periods_of_one_length_close_in_calendar_order(api: Api) -> None:
    assert close(api, "2026-11").status_code == 201
    before = snapshot(api)
    for period in ("2027-01", "2026-10", "2026-11", "2025-12", "2027-12"):
        response = close(api, period)
        assert response.status_code == 409, (period, response.text)
        assert names(response.json()["problems"], ("data.period",)), response.text
    assert snapshot(api) == before
    assert close(api, "2026-12").status_code == 201
    assert close(api, "2027-01").status_code == 201
    assert close(api, "2027-01").status_code == 409  # the same period twice


def test_quarter_and_month_closes_are_independent(api: Api) -> None:
    assert close(api, "2026-03").status_code == 201
    assert close(api, "2025-Q3").status_code == 201  # the first quarter close: any quarter
    assert close(api, "2025-Q4").status_code == 201
    assert close(api, "2026-Q1").status_code == 201
    assert close(api, "2026-04").status_code == 201  # months go on where they were
    assert close(api, "2026-Q3").status_code == 409
    assert close(api, "2026-06").status_code == 409
    assert close(api, "2026-Q2").status_code == 201
    assert close(api, "2026-05").status_code == 201
    assert close(api, "2026-Q4").status_code == 409


def test_a_quarter_after_q4_is_the_next_years_q1(api: Api) -> None:
    assert close(api, "2026-Q4").status_code == 201
    assert close(api, "2026-Q1").status_code == 409
    assert close(api, "2027-Q2").status_code == 409
    assert close(api, "2027-Q1").status_code == 201


def test_period_order_in_a_batch(api: Api) -> None:
    assert close(api, "2026-01").status_code == 201
    before = snapshot(api)
    response = api.batch([envelope("PeriodClosed", {"period": "2026-02"}, "pc-0"),
                          envelope("PeriodClosed", {"period": "2026-04"}, "pc-1")])
    assert response.status_code == 409, response.text
    assert names(response.json()["problems"], ("data.period",), index=1), response.text
    response = api.batch([envelope("PeriodClosed", {"period": "2026-02"}, "pc-0"),
                          envelope("PeriodClosed", {"period": "2026-02"}, "pc-1")])
    assert response.status_code == 409, response.text
    assert snapshot(api) == before
    response = api.batch([envelope("PeriodClosed", {"period": "2026-02"}, "pc-0"),
                          envelope("PeriodClosed", {"period": "2026-03"}, "pc-1"),
                          envelope("PeriodClosed", {"period": "2026-Q3"}, "pc-2")])
    assert response.status_code == 201, response.text


# --- positions, recorded_at and the log ---------------------------------------------------------


def test_positions_increase_and_recorded_at_never_decreases(api: Api, make_services: Callable[..., Services]) -> None:
    answers: list[dict[str, Any]] = list(setup(api))
    answers.append(post(api, envelope("TargetSet", target(), "pr-1")).json())
    assert post(api, envelope("TargetSet", target("-1"), "pr-bad")).status_code == 422
    assert api.batch([envelope("TargetSet", target(), "pr-2"), envelope("Nope", {}, "pr-3")]).status_code == 422
    answers += api.batch([envelope("TargetSet", target("1"), "pr-2"), envelope("TargetSet", target("2"), "pr-3")]
                         ).json()["results"]
    assert post(api, envelope("TargetSet", target(), "pr-1")).status_code == 200
    answers.append(post(api, envelope("TargetSet", target("3"), "pr-4")).json())
    # another process on the same database goes on from the same head
    response, other_log = other_process_log(make_services, envelope("TargetSet", target("4"), "pr-5"))
    assert response.status_code == 201, response.text
    answers.append(response.json())
    answers.append(post(api, envelope("TargetSet", target("5"), "pr-6")).json())
    log = api.events()
    assert [e["event_id"] for e in log] == [a["event_id"] for a in answers]
    assert [(e["position"], e["recorded_at"]) for e in log] == [(a["position"], a["recorded_at"]) for a in answers]
    positions = [e["position"] for e in log]
    assert all(isinstance(p, int) and not isinstance(p, bool) for p in positions)
    assert all(a < b for a, b in itertools.pairwise(positions))
    stamps = [e["recorded_at"] for e in log]
    assert all(RECORDED_AT.fullmatch(s) for s in stamps), stamps
    assert stamps == sorted(stamps)
    assert other_log == log[:-1]


DATA_AS_SENT: list[tuple[str, dict[str, Any]]] = [
    ("ParticipantRegistered", {"start_date": "2026-01-01", "team_id": "t1", "name": "Zo\u00eb \u6771\u4eac \U0001f600",
                               "participant_id": "r2"}),
    ("ParticipantRegistered", {"participant_id": "r3", "name": "R3", "team_id": "t1", "manager_id": None,
                               "start_date": "2026-01-01"}),
    ("ParticipantTransferred", {"participant_id": "r3", "team_id": "t2", "effective_date": "2026-02-01"}),
    ("PlanPublished", {"rules": {"override_rate": "0.0", "clawback_days": 0, "spiffs": [], "cap": None,
                                 "tiers": [{"rate": "0.050", "from": "0"}, {"from": "1.0", "rate": "0.1"}],
                                 "tier_method": "marginal", "basis": "booking", "period": "month"},
                       "effective_from": "2026-01-01", "plan_id": "p2"}),
    ("TargetSet", {"participant_id": "r1", "period": "2026-Q1", "amount": "0"}),
    ("DealBooked", {"deal_id": "d2", "booked_on": "2026-03-10", "amount": "1234.5", "currency": "USD",
                    "product": None, "credits": [{"share": "1.000000", "participant_id": "r1"},
                                                 {"participant_id": "r2", "share": "0.5"}]}),
    ("DealAmended", {"deal_id": "d2", "amount": "0001.50", "amended_on": "2026-03-11"}),
    ("PaymentReceived", {"payment_id": "py", "deal_id": "d2", "amount": "10", "received_on": "2026-03-12"}),
    ("AdjustmentRecorded", {"adjustment_id": "aj", "participant_id": "r1", "period": "2026-03", "amount": "-0.5",
                            "reason": "tab-free reason with \"quotes\" and \\ backslash"}),
    ("DisputeOpened", {"dispute_id": "dq", "participant_id": "r1", "period": "2026-03", "deal_id": None,
                       "reason": "r"}),
]


def test_the_log_lists_data_exactly_as_sent(api: Api, make_services: Callable[..., Services]) -> None:
    setup(api)
    sent = [envelope(t, d, f"as-sent-{i}") for i, (t, d) in enumerate(DATA_AS_SENT)]
    half = len(sent) // 2
    for body in sent[:half]:
        assert post(api, body).status_code == 201
    assert api.batch(sent[half:]).status_code == 201
    log = api.events()[-len(sent):]
    assert [(e["event_id"], e["type"], e["data"]) for e in log] == [(s["event_id"], s["type"], s["data"])
                                                                     for s in sent]
    # values keep their spelling: never a number, never normalised
    listed = json.dumps([e["data"] for e in log])
    for spelling in ('"1234.5"', '"0001.50"', '"1.000000"', '"0.050"', '"0.0"', '"-0.5"', '"0"'):
        assert spelling in listed, spelling
    assert "manager_id" not in log[2]["data"] and log[1]["data"]["manager_id"] is None
    # the database holds the same: a second service reading it from scratch lists the same
    assert other_process_log(make_services)[1] == api.events()
