"""Reading the log back without re-validation gives exactly the events validation gave."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings

from ledger.decode import decode_trusted
from ledger.validation import Envelope, parse_envelope
from replay.demo import demo_events
from tests.support import rules
from tests.test_close_properties import ledgers


def _same(envelope: dict[str, Any]) -> None:
    parsed = parse_envelope(envelope)
    assert isinstance(parsed, Envelope), parsed
    trusted = decode_trusted(envelope["type"], envelope["data"])
    assert trusted == parsed.event
    assert trusted.model_dump() == parsed.event.model_dump()
    assert trusted.model_fields_set == parsed.event.model_fields_set


def test_the_demo_ledger_decodes_identically() -> None:
    for envelope in demo_events():
        _same(envelope)


def test_optional_and_nested_fields_decode_identically() -> None:
    _same({"event_id": "x", "type": "PlanPublished", "data": {
        "plan_id": "q", "effective_from": "2026-01-31",
        "rules": rules([("0", "0.1"), ("1.5", "0.25")], cap="100.50", spiffs=[{"product": "a", "amount": "2.50"}],
                       clawback_days=0, override_rate="0.000001")}})
    _same({"event_id": "y", "type": "DealBooked", "data": {
        "deal_id": "d", "booked_on": "2024-02-29", "amount": "0.01", "currency": "USD", "product": None,
        "customer": None, "credits": [{"participant_id": "a", "share": "0.333333"}]}})
    _same({"event_id": "t", "type": "ParticipantTransferred", "data": {
        "participant_id": "a", "team_id": "t2", "manager_id": None, "effective_date": "2026-03-01"}})
    _same({"event_id": "r", "type": "DisputeResolved", "data": {"dispute_id": "d", "resolution": "upheld",
                                                              "note": "ok"}})
    _same({"event_id": "p", "type": "PaymentReversed", "data": {"payment_id": "p", "reversed_on": "2026-03-01"}})
    _same({"event_id": "z", "type": "PlanAssigned", "data": {"participant_id": "a", "plan_id": "q",
                                                           "effective_from": "2026-01-01"}})


@settings(max_examples=30, deadline=None)
@given(ledgers())
def test_random_ledgers_decode_identically(envelopes: list[dict[str, Any]]) -> None:
    for envelope in envelopes:
        _same(envelope)
