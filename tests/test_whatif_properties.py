"""What-if works on a copy of the books that shares what its events do not change; it must agree with a
full fold, and leave the real books as folding the log gives."""

from __future__ import annotations

import gc
import json
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any
from unittest.mock import patch

import orjson
import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ledger.appender import LedgerLog, Sealed
from ledger.decode import decode_trusted
from ledger.records import Record
from ledger.store import LEDGER_STREAM, TOPIC_PREFIX, StoredRow, decode_record
from ledger.values import next_period
from projections.lines import Line
from replay import forked, whatif
from replay.asof import Books, BooksBroken, fold
from replay.whatif import FORK_MEMO_LINES, _changed, what_if
from tests.support import eager_forks, memo_held, rules
from tests.test_close_properties import MONTHS, PEOPLE, _logged, ledgers


class MemoryStore:
    """A fake store holding sealed records; the test adds to it as another writer would."""

    def __init__(self, sealed: Sequence[Sealed]) -> None:
        self.stored: list[StoredEvent] = []
        self.add(sealed)

    def add(self, sealed: Sequence[Sealed]) -> None:
        for item in sealed[len(self.stored):]:
            assert item.record.state is not None
            self.stored.append(StoredEvent(LEDGER_STREAM, item.position, TOPIC_PREFIX + item.record.type,
                                           item.record.state))

    def read_stored(self, after: int, upto: int | None = None, ahead: bool = False) -> Iterator[StoredEvent]:
        return iter(self.stored[after:upto])

    def read_rows(self, after: int, upto: int | None = None, ahead: bool = False) -> Iterator[StoredRow]:
        return ((s.originator_version, s.topic, s.state) for s in self.read_stored(after, upto))

    def read_positions(self, positions: Sequence[int]) -> Iterator[StoredEvent]:
        return (self.stored[p - 1] for p in positions)

    def read(self, after: int, upto: int | None = None) -> Iterator[Record]:
        return (decode_record(s) for s in self.read_stored(after, upto))


def _log(envelopes: list[dict[str, Any]]) -> LedgerLog:
    log = LedgerLog(MemoryStore(_logged(envelopes)), "USD")  # type: ignore[arg-type]
    log.catch_up()
    return log


def _stored(log: LedgerLog) -> list[Sealed]:
    """Everything the log's store holds, read back as the log reads it."""
    return [Sealed(record, decode_trusted(record.type, record.data)) for record in log.store.read(0)]


def _key(line: dict[str, Any]) -> str:
    """A line as the API shows it, without the what-if's `change` mark."""
    return json.dumps({k: v for k, v in line.items() if k != "change"}, sort_keys=True)


HYPOTHETICAL = st.sampled_from([
    [],
    [{"event_id": "h1", "type": "PlanPublished",
      "data": {"plan_id": "p", "effective_from": "2026-02-01", "rules": rules([("0", "0.2")])}}],
    [{"event_id": "h2", "type": "TargetSet", "data": {"participant_id": "r1", "period": "2026-03",
                                                      "amount": "1000.00"}}],
    [{"event_id": "h3", "type": "DealBooked",
      "data": {"deal_id": "hx", "booked_on": "2026-04-02", "amount": "2500.00", "currency": "USD",
               "credits": [{"participant_id": "r2", "share": "1"}]}}],
    [{"event_id": "h4", "type": "ParticipantTransferred",
      "data": {"participant_id": "r1", "team_id": "t", "effective_date": "2026-01-01"}}],
    [{"event_id": "h5", "type": "PlanAssigned",
      "data": {"participant_id": "r2", "plan_id": "p", "effective_from": "2026-03-01"}},
     {"event_id": "h6", "type": "PlanPublished",
      "data": {"plan_id": "p", "effective_from": "2026-01-01", "rules": rules([("0", "0.01")], cap="50.00")}},
     {"event_id": "h7", "type": "TargetSet", "data": {"participant_id": "r2", "period": "2026-04",
                                                      "amount": "2000.00"}}],
    # new deals fork the state (decision 93): one split with the manager into a month the random
    # ledger may have closed, and two with a target among them
    [{"event_id": "h9", "type": "DealBooked",
      "data": {"deal_id": "hy", "booked_on": "2026-02-14", "amount": "900.00", "currency": "USD",
               "credits": [{"participant_id": "r1", "share": "0.5"}, {"participant_id": "m1", "share": "0.5"}]}}],
    [{"event_id": "h10", "type": "DealBooked",
      "data": {"deal_id": "hz1", "booked_on": "2026-05-30", "amount": "4000.00", "currency": "USD",
               "credits": [{"participant_id": "r1", "share": "1"}]}},
     {"event_id": "h11", "type": "TargetSet", "data": {"participant_id": "r1", "period": "2026-05",
                                                       "amount": "3000.00"}},
     {"event_id": "h12", "type": "DealBooked",
      "data": {"deal_id": "hz2", "booked_on": "2026-01-03", "amount": "150.00", "currency": "USD",
               "credits": [{"participant_id": "r2", "share": "1"}]}}],
    # the manager's own plan: every override line changes from March
    [{"event_id": "h8", "type": "PlanPublished",
      "data": {"plan_id": "m", "effective_from": "2026-03-01", "rules": rules([("0", "0")], override_rate="0.05")}}],
    # a new hire under the manager, with a deal; and a dispute opened and resolved (decision 96)
    [{"event_id": "h13", "type": "ParticipantRegistered",
      "data": {"participant_id": "r9", "name": "R9", "team_id": "t", "manager_id": "m1", "start_date": "2026-02-01"}},
     {"event_id": "h14", "type": "PlanAssigned", "data": {"participant_id": "r9", "plan_id": "p",
                                                          "effective_from": "2026-02-01"}},
     {"event_id": "h15", "type": "DealBooked",
      "data": {"deal_id": "h9d", "booked_on": "2026-07-03", "amount": "3000.00", "currency": "USD",
               "credits": [{"participant_id": "r9", "share": "1"}]}}],
    [{"event_id": "h16", "type": "DisputeOpened", "data": {"dispute_id": "hq", "participant_id": "r1",
                                                           "period": "2026-03", "reason": "split"}},
     {"event_id": "h17", "type": "DisputeResolved", "data": {"dispute_id": "hq", "resolution": "rejected",
                                                             "note": "as booked"}}],
])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ledgers(), HYPOTHETICAL, st.sampled_from(PEOPLE))
def test_what_if_agrees_with_a_full_fold(envelopes: list[dict[str, Any]], hypothetical: list[dict[str, Any]],
                                         person: str) -> None:
    _agrees_with_a_full_fold(envelopes, hypothetical, person)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ledgers(), HYPOTHETICAL)
def test_a_what_if_shared_with_a_forked_worker_gives_the_same_answer(envelopes: list[dict[str, Any]],
                                                                     hypothetical: list[dict[str, Any]]) -> None:
    """Rows computed in a forked worker come back as JSON: they must be the rows this process
    would have computed, in the order asked for (a manager's first, as the costliest)."""
    log = _log(envelopes)
    books = Books(log)
    periods = [*MONTHS, "2026-07"]
    people = ["r2", "m1", "r1"]
    serial = what_if(log, books, hypothetical, periods, people)
    with eager_forks() as fork:
        shared = what_if(log, books, hypothetical, periods, people, workers=2)
    assert fork.called
    assert shared == serial
    assert [row["participant_id"] for row in shared["rows"]] == [p for p in people for _ in periods]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ledgers(), HYPOTHETICAL)
def test_the_hypothetical_books_memo_is_bounded_and_answers_the_same_with_none(
        envelopes: list[dict[str, Any]], hypothetical: list[dict[str, Any]]) -> None:
    """Decision 99: the hypothetical book keeps at most `FORK_MEMO_LINES` lines of its own (never
    more than the real one may); what it drops is computed again when asked, to the same rows."""
    log = _log(envelopes)
    books = Books(log)
    periods = [*MONTHS, "2026-07"]
    people = ["m1", "r1", "r2"]
    kept: list[Any] = []
    bounded = what_if(log, books, hypothetical, periods, people, keep=kept)
    assert kept[0].book.engine.memo_lines == min(FORK_MEMO_LINES, books.head.engine.memo_lines) == FORK_MEMO_LINES
    with patch("replay.whatif.FORK_MEMO_LINES", 0):
        kept.clear()
        none = what_if(log, books, hypothetical, periods, people, keep=kept)
    assert memo_held(kept[0].book.engine) == 0
    assert none == bounded
    other = _log(envelopes)
    small = Books(other, memo_lines=3)  # a real memo smaller than the bound bounds the copy's too
    kept.clear()
    assert what_if(other, small, hypothetical, periods, people, keep=kept) == bounded
    assert kept[0].book.engine.memo_lines == 3
    assert memo_held(kept[0].book.engine) <= 3


def _change(change: str, envelopes: list[dict[str, Any]], pick: int, person: str) -> list[dict[str, Any]] | None:
    """Hypothetical events that change a deal of the ledger (or one booked among them), pay a
    manual adjustment or close the next period; None where the ledger has no deal (or payment)
    they can be about."""
    state = fold(_logged(envelopes)).state
    live = sorted(deal_id for deal_id, deal in state.deals.items() if deal.cancellation is None)
    reversed_ = {move.payment_id for deal in state.deals.values() for move in deal.cash if move.amount < 0}
    payments = sorted(payment_id for payment_id in state.payments if payment_id not in reversed_)
    deal = live[pick % len(live)] if live else None

    def event(n: int, type_: str, **data: Any) -> dict[str, Any]:
        return {"event_id": f"hd{n}", "type": type_, "data": data}

    amend = event(1, "DealAmended", deal_id=deal, amount=f"{1 + pick * 37}.25", amended_on="2026-04-09")
    pay = event(2, "PaymentReceived", payment_id="hp", deal_id=deal, amount="640.00", received_on="2026-03-15")
    cancel = event(3, "DealCancelled", deal_id=deal, cancelled_on="2026-06-28")
    match change:
        case "amend" | "pay" | "cancel" | "amend, pay and cancel" if deal is None:
            return None
        case "amend":
            return [amend]
        case "pay":
            return [pay]
        case "cancel":
            return [cancel]
        case "amend, pay and cancel":
            return [amend, pay, cancel]
        case "reverse":
            if not payments:
                return None
            return [event(4, "PaymentReversed", payment_id=payments[pick % len(payments)], reversed_on="2026-05-02")]
        case "book, pay and cancel":
            book = event(5, "DealBooked", deal_id="hk", booked_on="2026-02-10", amount="1800.00", currency="USD",
                         credits=[{"participant_id": "r1", "share": "0.5"}, {"participant_id": "r2", "share": "0.5"}])
            return [book, {**pay, "data": {**pay["data"], "deal_id": "hk"}}, {**cancel, "data": {**cancel["data"],
                                                                                               "deal_id": "hk"}}]
        case "close":
            last = state.closes[-1].period if state.closes else None
            return [event(7, "PeriodClosed", period=next_period(last) if last else "2026-01")]
        case _:
            return [event(6, "AdjustmentRecorded", adjustment_id="h-adj", participant_id=person, period="2026-07",
                          amount="25.00", reason="bonus")]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ledgers(), st.sampled_from(["amend", "pay", "cancel", "amend, pay and cancel", "reverse",
                                   "book, pay and cancel", "adjust", "close"]),
       st.integers(0, 1000), st.sampled_from(PEOPLE))
def test_a_what_if_of_a_change_to_a_deal_or_a_close_agrees_with_a_full_fold(
    envelopes: list[dict[str, Any]], change: str, pick: int, person: str
) -> None:
    """Amendments, cancellations, payments and reversals give the copy its own copy of the deal
    they change (decision 95), a close its own closes (decision 96): the real deal, its month's
    lists and sums, its cash tables and the closes stay what folding the log gives
    (`_agrees_with_a_full_fold` compares every table), and the rows are those of folding the
    events for real."""
    hypothetical = _change(change, envelopes, pick, person)
    assume(hypothetical is not None)
    assert hypothetical is not None
    _agrees_with_a_full_fold(envelopes, hypothetical, person)


def _override_ledger(clawback_days: int | None) -> list[dict[str, Any]]:
    """A manager with an override plan, a report with a deal in each of three months, the second
    cancelled 30 days after booking."""
    def event(n: int, type_: str, **data: Any) -> dict[str, Any]:
        return {"event_id": f"o{n}", "type": type_, "data": data}

    deals = [event(10 + m, "DealBooked", deal_id=f"d{m}", booked_on=f"2026-0{m}-05", amount="1000.00",
                   currency="USD", credits=[{"participant_id": "r1", "share": "1"}]) for m in (1, 2, 3)]
    return [
        event(1, "ParticipantRegistered", participant_id="m1", name="M", team_id="t", start_date="2020-01-01"),
        event(2, "ParticipantRegistered", participant_id="r1", name="R", team_id="t", manager_id="m1",
              start_date="2020-01-01"),
        event(3, "PlanPublished", plan_id="m", effective_from="2020-01-01",
              rules=rules([("0", "0")], override_rate="0.02")),
        event(4, "PlanPublished", plan_id="p", effective_from="2020-01-01",
              rules=rules([("0", "0.05")], clawback_days=clawback_days)),
        event(5, "PlanAssigned", participant_id="m1", plan_id="m", effective_from="2020-01-01"),
        event(6, "PlanAssigned", participant_id="r1", plan_id="p", effective_from="2020-01-01"),
        *deals,
        event(20, "DealCancelled", deal_id="d2", cancelled_on="2026-03-07"),
    ]


def test_a_what_if_reuses_override_lines_only_when_nothing_they_depend_on_changed() -> None:
    """Override lines are memoised on the positions they depend on and shared with the real book
    (decision 56): a new version of the manager's plan changes them, a new version of the report's
    plan changes them only through a cancelled deal's clawback window, and any other plan leaves
    them as they are. Each what-if must agree with folding the hypothetical events for real."""
    def publish(plan_id: str, **changes: Any) -> list[dict[str, Any]]:
        return [{"event_id": "h", "type": "PlanPublished",
                 "data": {"plan_id": plan_id, "effective_from": "2026-01-01", "rules": rules(**changes)}}]

    cases = [
        (None, publish("m", tiers=[("0", "0")], override_rate="0.05"), ["2026-01", "2026-03"]),  # d2 not live
        (None, publish("p", tiers=[("0", "0.05")], clawback_days=20), ["2026-02"]),  # cancelled after 20 days: live
        (20, publish("p", tiers=[("0", "0.05")], clawback_days=None), ["2026-02"]),  # no longer live
        (None, publish("p", tiers=[("0", "0.07")]), []),  # commission changes; overrides do not
    ]
    for clawback_days, hypothetical, changed in cases:
        answer = _agrees_with_a_full_fold(_override_ledger(clawback_days), hypothetical, "m1")
        assert [row["period"] for row in answer["rows"] if row["difference"] != "0.00"] == changed, hypothetical


def test_a_real_plan_version_where_a_hypothetical_one_was_reads_its_own_override_lines() -> None:
    """Override lines that name a hypothetical version of the manager's plan stay in the what-if's
    copy: the real book, given another version at that position, computes them afresh."""
    def version(event_id: str, rate: str) -> dict[str, Any]:
        return {"event_id": event_id, "type": "PlanPublished",
                "data": {"plan_id": "m", "effective_from": "2026-01-01",
                         "rules": rules([("0", "0")], override_rate=rate)}}

    answer = _agrees_with_a_full_fold(_override_ledger(None), [version("h", "0.05")], "m1",
                                      real=version("real-next", "0.03"))
    assert [(row["period"], row["total_with"]) for row in answer["rows"] if row["difference"] != "0.00"] == [
        ("2026-01", "50.00"), ("2026-03", "50.00")
    ]


def test_a_reports_plan_reaches_the_managers_lines_through_a_cancelled_deal_in_either_order() -> None:
    """A report's plan changes the manager's override lines only through a cancelled deal's
    clawback window (decision 59): whether the plan changes before or after the cancellation, the
    manager's statements read at every position, one after another from one memo, are those of
    a fresh fold of the events up to it."""
    ledger = _override_ledger(20)  # d2 cancelled 30 days after booking: live under a 20-day window
    cancel, setup = ledger[-1], ledger[:-1]
    no_window = {"event_id": "v2", "type": "PlanPublished",
                 "data": {"plan_id": "p", "effective_from": "2026-01-01", "rules": rules([("0", "0.05")])}}
    for envelopes in ([*setup, no_window, cancel], [*setup, cancel, no_window]):
        log = _log(envelopes)
        books = Books(log)
        stored = _stored(log)
        for position in range(len(setup) - 1, len(envelopes) + 1):
            expected = fold(stored[:position]).view()
            for period in ["2026-01", "2026-02", "2026-03"]:
                assert books.at(position).statement("m1", period).body(0) == expected.statement("m1", period).body(0)
        assert books.at(None).statement("m1", "2026-02").total == 0  # d2 no longer live: no override


def _agrees_with_a_full_fold(envelopes: list[dict[str, Any]], hypothetical: list[dict[str, Any]],
                             person: str, real: dict[str, Any] | None = None) -> dict[str, Any]:
    log = _log(envelopes)
    books = Books(log)
    periods = [*MONTHS, "2026-07"]
    answer = what_if(log, books, hypothetical, periods, [person])
    # The hypothetical copy shares the real state's tables: the real state must be exactly what
    # folding the log gives, table by table (reads at the head alone would not show a leaked
    # hypothetical entry: its position is beyond the head until the next real append).
    assert vars(books.head.state) == vars(fold(_stored(log)).state)
    full = fold([*_stored(log), *log.check(hypothetical)]).view()
    for row in answer["rows"]:
        assert row["total_with"] == full.book.statement(person, row["period"]).body(0)["total"]
        # The lines shown now, less those removed, plus those added, are the lines with the events.
        shown = [_key(line.body()) for line in books.head.statement(person, row["period"]).lines]
        for line in row["lines"]:
            if line["change"] == "removed":
                shown.remove(_key(line))
        shown += [_key(line) for line in row["lines"] if line["change"] == "added"]
        assert sorted(shown) == sorted(_key(line.body()) for line in full.book.statement(person, row["period"]).lines)
        if not hypothetical:
            assert row["difference"] == "0.00"
            assert row["lines"] == []
    _real_append_reads_nothing_hypothetical(envelopes, log, books, person, periods, real)
    return answer


def _real_append_reads_nothing_hypothetical(
    envelopes: list[dict[str, Any]], log: LedgerLog, books: Books, person: str, periods: list[str],
    real: dict[str, Any] | None = None,
) -> None:
    """The copy shares the real book's memo for positions up to the real head only: a real event
    at the position the hypothetical ones took must not read anything they computed."""
    real = real or {"event_id": "real-next", "type": "TargetSet",
                    "data": {"participant_id": person, "period": "2026-03", "amount": "777.00"}}
    log.store.add(_logged([*envelopes, real]))  # type: ignore[attr-defined]
    log.catch_up()
    expected = fold(_stored(log)).view()
    for period in periods:
        assert books.at(None).statement(person, period).body(0) == expected.statement(person, period).body(0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ledgers(), st.sampled_from(PEOPLE))
def test_a_real_event_after_a_forked_what_if_reads_its_own_figures(envelopes: list[dict[str, Any]],
                                                                   person: str) -> None:
    """A retroactive plan version (it touches every member) and then a real event touching the
    same person at the same position: with the memo shared past the real head, this fails."""
    log = _log(envelopes)
    books = Books(log)
    periods = [*MONTHS, "2026-07"]
    plan = {"event_id": "h", "type": "PlanPublished",
            "data": {"plan_id": "p", "effective_from": "2026-01-01", "rules": rules([("0", "0.2")])}}
    what_if(log, books, [plan], periods, [person])
    _real_append_reads_nothing_hypothetical(envelopes, log, books, person, periods)


def test_a_forked_what_if_leaves_every_table_of_the_real_state_alone() -> None:
    """Each kind of event the copy takes, on keys that already hold entries in the real state."""
    def plan(event_id: str, since: str, rate: str) -> dict[str, Any]:
        return {"event_id": event_id, "type": "PlanPublished",
                "data": {"plan_id": "p", "effective_from": since, "rules": rules([("0", rate)])}}

    def assign(event_id: str, since: str) -> dict[str, Any]:
        return {"event_id": event_id, "type": "PlanAssigned",
                "data": {"participant_id": "r1", "plan_id": "p", "effective_from": since}}

    def target(event_id: str, amount: str) -> dict[str, Any]:
        return {"event_id": event_id, "type": "TargetSet",
                "data": {"participant_id": "r1", "period": "2026-03", "amount": amount}}

    envelopes = [
        {"event_id": "m", "type": "ParticipantRegistered",
         "data": {"participant_id": "m0", "name": "M", "team_id": "t", "start_date": "2020-01-01"}},
        {"event_id": "r", "type": "ParticipantRegistered",
         "data": {"participant_id": "r1", "name": "R", "team_id": "t", "manager_id": "m0", "start_date": "2020-01-01"}},
        plan("p", "2020-01-01", "0.05"),
        {"event_id": "pq", "type": "PlanPublished",  # a quarterly plan no one is assigned
         "data": {"plan_id": "pq", "effective_from": "2020-01-01", "rules": rules([("0", "0.2")], period="quarter")}},
        assign("a", "2020-01-01"),
        target("t", "1000.00"),
        {"event_id": "d", "type": "DealBooked",
         "data": {"deal_id": "d", "booked_on": "2026-03-02", "amount": "800.00", "currency": "USD",
                  "credits": [{"participant_id": "r1", "share": "1"}]}},
        {"event_id": "pay0", "type": "PaymentReceived",
         "data": {"payment_id": "pay0", "deal_id": "d", "amount": "300.00", "received_on": "2026-03-05"}},
        {"event_id": "adj0", "type": "AdjustmentRecorded", "data": {
            "adjustment_id": "adj0", "participant_id": "r1", "period": "2026-03", "amount": "10.00", "reason": "r"}},
        {"event_id": "dq", "type": "DisputeOpened", "data": {
            "dispute_id": "dq", "participant_id": "r1", "period": "2026-03", "reason": "r"}},
        {"event_id": "feb", "type": "PeriodClosed", "data": {"period": "2026-02"}},
    ]
    hypothetical = [plan("h1", "2026-01-01", "0.2"), assign("h2", "2026-02-01"), target("h3", "400.00")]
    log = _log(envelopes)
    books = Books(log)
    answer = what_if(log, books, hypothetical, ["2026-03"], ["r1"])
    assert (answer["rows"][0]["total_now"], answer["rows"][0]["total_with"]) == ("50.00", "170.00")
    assert vars(books.head.state) == vars(fold(_stored(log)).state)
    # A changed deal is the copy's own copy (decision 95): amended, paid in a month without cash
    # and before its first cash day, its payment reversed, then cancelled; a manual adjustment.
    changes = [
        {"event_id": "h5", "type": "DealAmended", "data": {"deal_id": "d", "amount": "1000.00",
                                                           "amended_on": "2026-03-20"}},
        {"event_id": "h6", "type": "PaymentReceived", "data": {"payment_id": "pay1", "deal_id": "d",
                                                               "amount": "500.00", "received_on": "2026-04-02"}},
        {"event_id": "h15", "type": "PaymentReceived", "data": {"payment_id": "pay2", "deal_id": "d",
                                                                "amount": "100.00", "received_on": "2026-03-01"}},
        {"event_id": "h7", "type": "PaymentReversed", "data": {"payment_id": "pay0", "reversed_on": "2026-03-22"}},
        {"event_id": "h8", "type": "AdjustmentRecorded", "data": {
            "adjustment_id": "adj1", "participant_id": "r1", "period": "2026-03", "amount": "25.00", "reason": "r"}},
    ]
    cancel = {"event_id": "h9", "type": "DealCancelled", "data": {"deal_id": "d", "cancelled_on": "2026-03-25"}}
    for events, total_with in ((changes, "85.00"), ([*changes, cancel], "35.00")):
        answer = what_if(log, books, events, ["2026-03"], ["r1"])
        assert (answer["rows"][0]["total_now"], answer["rows"][0]["total_with"]) == ("50.00", total_with)
        assert vars(books.head.state) == vars(fold(_stored(log)).state)
        assert books.head.state.deals["d"].amendments == () and len(books.head.state.deals["d"].cash) == 1
    # People, disputes and closes (decision 96): a hire into a team and under a manager who have
    # members and reports already, a transfer to them, a dispute opened on a statement that has
    # one and that one resolved, the month closed after February; and a dispute opened alone.
    others = [
        {"event_id": "h10", "type": "ParticipantRegistered", "data": {
            "participant_id": "m2", "name": "M2", "team_id": "t", "manager_id": "m0", "start_date": "2020-01-01"}},
        {"event_id": "h11", "type": "ParticipantTransferred", "data": {
            "participant_id": "r1", "team_id": "u", "manager_id": "m2", "effective_date": "2026-03-01"}},
        {"event_id": "h14", "type": "DisputeOpened", "data": {
            "dispute_id": "dq2", "participant_id": "r1", "period": "2026-03", "reason": "r"}},
        {"event_id": "h12", "type": "DisputeResolved", "data": {"dispute_id": "dq", "resolution": "upheld",
                                                                "note": "n"}},
        {"event_id": "h13", "type": "PeriodClosed", "data": {"period": "2026-03"}},
    ]
    answer = what_if(log, books, others, ["2026-03"], ["r1", "m2"])
    assert [(row["total_now"], row["total_with"]) for row in answer["rows"]] == [("50.00", "50.00"), ("0.00", "0.00")]
    assert vars(books.head.state) == vars(fold(_stored(log)).state)
    real = books.head.state
    assert (real.participants["r1"].transfers, real.disputes["dq"].resolution) == ([], None)
    assert [close.period for close in real.closes_of["month"]] == ["2026-02"]
    what_if(log, books, others[2:3], ["2026-03"], ["r1"])
    assert vars(books.head.state) == vars(fold(_stored(log)).state)
    assert list(real.disputes) == ["dq"]
    # A collection-basis version makes its members collection members (a table of its own).
    collection = {**plan("h4", "2026-01-01", "0.2"), "data": {
        "plan_id": "p", "effective_from": "2026-01-01", "rules": rules([("0", "0.2")], basis="collection")}}
    answer = what_if(log, books, [collection], ["2026-03"], ["r1"])  # 300 of 800 paid: 60.00 of 160.00 earned
    assert (answer["rows"][0]["total_now"], answer["rows"][0]["total_with"]) == ("50.00", "70.00")
    assert not books.head.state.collection_members
    assert vars(books.head.state) == vars(fold(_stored(log)).state)
    # So does a quarterly version, or an assignment of a quarterly plan, quarterly members (decision 135).
    quarterly = {"event_id": "h5", "type": "PlanPublished", "data": {
        "plan_id": "p", "effective_from": "2026-01-01", "rules": rules([("0", "0.2")], period="quarter")}}
    assigned = {"event_id": "h6", "type": "PlanAssigned", "data": {
        "participant_id": "r1", "plan_id": "pq", "effective_from": "2026-01-01"}}
    for hypothetical in ([quarterly], [assigned]):
        what_if(log, books, hypothetical, ["2026-Q1"], ["r1"])
        assert not books.head.state.quarterly_members
        assert vars(books.head.state) == vars(fold(_stored(log)).state)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ledgers(), st.integers(1, 7))
def test_the_follower_folds_in_chunks_to_the_same_book(envelopes: list[dict[str, Any]], chunk: int) -> None:
    """The follower folds a few events at a time (to yield to appends); chunks end where a full
    fold ends, and say whether anything is left."""
    log = _log(envelopes)
    books = Books(log)
    while books._fold(chunk):
        assert 0 < books._head.position < log.head
    assert books._head.position == log.head == len(log.store.stored)  # type: ignore[attr-defined]
    assert not log.unfolded  # folded events are not kept by the log
    assert vars(books._head.state) == vars(fold(_stored(log)).state)


def test_changed_lines_skip_the_objects_both_books_share_and_compare_the_rest_as_shown() -> None:
    """A manager's statement holds thousands of override lines, most of them the same objects in
    both books (decision 93): those are unchanged without being rendered. Distinct objects are
    compared as the API shows them, so a share written otherwise ("0.50" for "0.5", equal as
    numbers) is a change, and a line equal to one on the other side is not."""
    def line(deal_id: str, amount: str, share: str = "0.5") -> Line:
        return Line("override", Decimal(amount), "2026-12", (deal_id,), (f"e-{deal_id}",), deal_id=deal_id,
                    share=Decimal(share))

    shared = [line(f"d{n}", "10.00") for n in range(5)]
    now = (*shared, line("x", "1.00"), line("y", "2.00"), line("z", "3.00", "0.5"))
    with_ = (line("y", "2.00"), *shared, line("w", "4.00"), line("z", "3.00", "0.50"))
    rows = orjson.loads(orjson.dumps(_changed(now, with_)))
    changed = [(line["change"], line["deal_id"], line["share"]) for line in rows]
    assert changed == [("removed", "x", "0.5"), ("removed", "z", "0.5"), ("added", "w", "0.5"),
                       ("added", "z", "0.50")]
    # Written into the answer as the bytes a dict of each would give (decision 147).
    assert orjson.dumps(_changed(now, with_)) == orjson.dumps([
        {"change": "removed", **now[5].body()}, {"change": "removed", **now[7].body()},
        {"change": "added", **with_[6].body()}, {"change": "added", **with_[7].body()}])
    assert _changed(now, now) == []


def test_a_what_if_about_a_manager_whose_report_once_managed_someone_agrees_with_a_full_fold() -> None:
    """Asked about m1, whose report m2 once managed r1: a review found a `KeyError`, a 500, when
    such a what-if folded the events again (before decision 96, when a transfer reached every
    manager the person ever had); on the copy it answers as a full fold does."""
    def event(n: int, type_: str, **data: Any) -> dict[str, Any]:
        return {"event_id": f"k{n}", "type": type_, "data": data}

    envelopes = [
        event(1, "ParticipantRegistered", participant_id="m1", name="M1", team_id="t", start_date="2020-01-01"),
        event(2, "ParticipantRegistered", participant_id="m2", name="M2", team_id="t", manager_id="m1",
              start_date="2020-01-01"),
        event(3, "ParticipantRegistered", participant_id="r1", name="R1", team_id="t", start_date="2020-01-01"),
        event(4, "ParticipantTransferred", participant_id="r1", team_id="t", manager_id="m2",
              effective_date="2026-01-01"),
    ]
    hypothetical = [{"event_id": "h", "type": "AdjustmentRecorded", "data": {
        "adjustment_id": "adj", "participant_id": "m1", "period": "2026-03", "amount": "50.00", "reason": "bonus"}}]
    answer = _agrees_with_a_full_fold(envelopes, hypothetical, "m1")
    assert [(row["period"], row["difference"]) for row in answer["rows"]] == [
        (period, "50.00" if period == "2026-03" else "0.00") for period in [*MONTHS, "2026-07"]]


def _rep_on_a_plan(prefix: str) -> tuple[Callable[..., dict[str, Any]], list[dict[str, Any]]]:
    """A maker of events with ids `prefix` + number, and a rep r1 on a 10 % plan (events 1-3)."""
    def event(n: int, type_: str, **data: Any) -> dict[str, Any]:
        return {"event_id": f"{prefix}{n}", "type": type_, "data": data}

    return event, [
        event(1, "ParticipantRegistered", participant_id="r1", name="R1", team_id="t", start_date="2020-01-01"),
        event(2, "PlanPublished", plan_id="p", effective_from="2020-01-01", rules=rules([("0", "0.1")])),
        event(3, "PlanAssigned", participant_id="r1", plan_id="p", effective_from="2020-01-01"),
    ]


def test_a_what_if_of_a_deal_into_a_closed_month_keeps_the_real_closes_sums() -> None:
    """A deal booked into a closed month changes the month's sums, which the close's kept sums
    (rankings of the closed period, decision 89) must keep as they were: in the what-if's copy
    only (decision 93). The real state stays what folding the log gives, table by table."""
    event, rep = _rep_on_a_plan("c")
    envelopes = [
        *rep,
        event(4, "DealBooked", deal_id="k1", booked_on="2026-01-10", amount="1000.00", currency="USD",
              credits=[{"participant_id": "r1", "share": "1"}]),
        event(5, "PeriodClosed", period="2026-01"),
    ]
    hypothetical = [{"event_id": "h", "type": "DealBooked", "data": {
        "deal_id": "late", "booked_on": "2026-01-20", "amount": "500.00", "currency": "USD",
        "credits": [{"participant_id": "r1", "share": "1"}]}}]
    answer = _agrees_with_a_full_fold(envelopes, hypothetical, "r1")
    # January is closed: its statement stays frozen; the late deal's 50.00 lands in February.
    assert [(row["period"], row["difference"]) for row in answer["rows"]][:2] == [
        ("2026-01", "0.00"), ("2026-02", "50.00")]


def test_a_what_if_copies_the_books_at_the_position_checked_when_the_log_is_ahead_of_them() -> None:
    """Appends the books have not folded yet (the follower waits for a pause), and one more by
    another writer just after the what-if's events were checked: the what-if folds the books to
    exactly the position it checked at, not past it, and copies the state there (decision 96);
    its answer is as of that position."""
    event, envelopes = _rep_on_a_plan("w")
    log = _log(envelopes)
    books = Books(log)
    assert books.head.position == 3
    later = event(4, "DealBooked", deal_id="k1", booked_on="2026-03-10", amount="1000.00", currency="USD",
                  credits=[{"participant_id": "r1", "share": "1"}])
    log.store.add(_logged([*envelopes, later]))  # type: ignore[attr-defined]
    log.catch_up()
    assert (log.head, books.folded) == (4, 3)
    another = event(5, "DealBooked", deal_id="k2", booked_on="2026-03-12", amount="500.00", currency="USD",
                    credits=[{"participant_id": "r1", "share": "1"}])
    check = log.check

    def check_then_another_append(hypothetical: Sequence[Any]) -> list[Sealed]:
        checked = check(hypothetical)
        log.store.add(_logged([*envelopes, later, another]))  # type: ignore[attr-defined]
        log.catch_up()
        return checked

    cancel = {"event_id": "h", "type": "DealCancelled", "data": {"deal_id": "k1", "cancelled_on": "2026-03-11"}}
    with patch.object(log, "check", side_effect=check_then_another_append):
        answer = what_if(log, books, [cancel], ["2026-03"], ["r1"])
    assert (answer["as_of_position"], books.folded, log.head) == (4, 4, 5)
    assert [(row["total_now"], row["total_with"]) for row in answer["rows"]] == [("100.00", "0.00")]
    assert books.head.position == 5  # the next read folds the rest
    assert vars(books.head.state) == vars(fold(_stored(log)).state)


def test_a_what_if_after_a_failed_fold_answers_the_failure_as_every_read_does() -> None:
    """A fold that failed half-way leaves the books unreadable (`BooksBroken`): a what-if, whose
    books are already at the position it checks at, must say so too, not answer from them."""
    event, envelopes = _rep_on_a_plan("b")
    log = _log(envelopes)
    books = Books(log)
    books.at(None)
    deal = event(4, "DealBooked", deal_id="k1", booked_on="2026-03-10", amount="1000.00", currency="USD",
                 credits=[{"participant_id": "r1", "share": "1"}])
    log.store.add(_logged([*envelopes, deal]))  # type: ignore[attr-defined]
    log.catch_up()
    state = books._head.state  # not `head`, which would fold the deal now
    folding = state._fold

    def half(position: int, event_id: str, event: Any) -> Any:
        folding(position, event_id, event)
        raise RuntimeError("a fault after half the fold")

    with patch.object(state, "_fold", side_effect=half), pytest.raises(BooksBroken):
        books.at(None)
    with pytest.raises(BooksBroken):
        what_if(log, books, [], ["2026-03"], ["r1"])


def _three_reps() -> tuple[Callable[..., dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """r1-r3 on a 10 % plan with a March deal each; and a 20 % version of the plan from 2020."""
    event, envelopes = _rep_on_a_plan("f")
    for n, rep in ((4, "r2"), (6, "r3")):
        envelopes += [
            event(n, "ParticipantRegistered", participant_id=rep, name=rep, team_id="t", start_date="2020-01-01"),
            event(n + 1, "PlanAssigned", participant_id=rep, plan_id="p", effective_from="2020-01-01"),
        ]
    for n, rep in enumerate(("r1", "r2", "r3"), 8):
        envelopes.append(event(n, "DealBooked", deal_id=f"d{n}", booked_on="2026-03-02", amount="1000.00",
                               currency="USD", credits=[{"participant_id": rep, "share": "1"}]))
    version = [{"event_id": "h", "type": "PlanPublished",
                "data": {"plan_id": "p", "effective_from": "2020-01-01", "rules": rules([("0", "0.2")])}}]
    return event, envelopes, version


@contextmanager
def _detached_workers(release: Any, after_fork: Callable[[], object],
                      then: Callable[[], object] | None = None) -> Iterator[None]:
    """Every forked what-if detached (decision 138), its workers waiting for `release` before each
    row (and then calling `then`); `after_fork` called here after the workers are forked."""
    parent, rows_of, fork_all = os.getpid(), whatif._rows_of, forked._fork_all

    def waiting(*args: Any) -> Any:
        if os.getpid() != parent:
            assert release.wait(60)
            if then is not None:
                then()
        return rows_of(*args)

    def spied(*args: Any) -> None:
        fork_all(*args)
        after_fork()

    with patch.object(whatif, "_rows_of", waiting), patch.object(forked, "_fork_all", spied), \
            patch.multiple(forked, FORK_AFTER_S=0.0, FORK_WORTH_S=0.0, DETACH_WORTH_S=0.0, usable_cpus=lambda: 2):
        yield


@pytest.mark.skipif(not forked.can_fork(), reason="workers are forked on Linux only")
def test_a_forked_what_if_lets_go_of_the_books_while_its_workers_compute() -> None:
    """Decision 138: once its rows are handed to forked workers, a what-if lets go of the books, so
    reads and the fold of new real events go on meanwhile (before, each waited for the whole
    what-if: seconds at a million events). The workers compute on the books as they were when
    forked: the answer is as of the position its events were checked at, as computed here."""
    event, envelopes, version = _three_reps()
    log = _log(envelopes)
    books = Books(log)
    people, periods = ["r1", "r2", "r3"], ["2026-03", "2026-04"]
    serial = what_if(log, books, version, periods, people)
    assert [row["difference"] for row in serial["rows"]] == ["100.00", "0.00"] * 3
    release, forking = multiprocessing.get_context("fork").Event(), threading.Event()
    answers: list[dict[str, Any]] = []
    asking = threading.Thread(target=lambda: answers.append(what_if(log, books, version, periods, people, 2)))
    with _detached_workers(release, forking.set):  # the workers wait until this test has read and folded
        asking.start()
        try:
            assert forking.wait(30)
            assert books._lock.acquire(timeout=10), "the books are still held while the workers compute"
            books._lock.release()
            deal = event(11, "DealBooked", deal_id="d11", booked_on="2026-03-20", amount="500.00", currency="USD",
                         credits=[{"participant_id": "r1", "share": "1"}])
            log.store.add(_logged([*envelopes, deal]))  # type: ignore[attr-defined]
            log.catch_up()
            with books.reading():
                assert books.at(None).statement("r1", "2026-03").body(0)["total"] == "150.00"
            assert answers == []  # the workers are still waiting
            # ...and the collector runs: paused, it would freeze these reads' garbage cycles for good
            assert gc.isenabled()
        finally:
            release.set()
            asking.join(60)
    assert answers == [serial]
    assert serial["as_of_position"] == 10 and books.folded == 11
    assert not multiprocessing.active_children()


@pytest.mark.skipif(not forked.can_fork(), reason="workers are forked on Linux only")
def test_a_what_if_whose_forked_worker_dies_is_asked_again_here(caplog: pytest.LogCaptureFixture) -> None:
    """The copy of the books a dead worker computed on is gone from this process (decision 138): the
    what-if is computed again here, holding the books, as of the position the books reached
    meanwhile (a real deal was folded while the workers computed); the caller keeps one
    hypothetical book, the one answered from."""
    event, envelopes, version = _three_reps()
    log = _log(envelopes)
    books = Books(log)
    people, periods = ["r1", "r2", "r3"], ["2026-03"]
    release, forking = multiprocessing.get_context("fork").Event(), threading.Event()
    kept: list[object] = []
    answers: list[dict[str, Any]] = []
    asking = threading.Thread(target=lambda: answers.append(what_if(log, books, version, periods, people, 2, kept)))
    with _detached_workers(release, forking.set, then=lambda: os._exit(7)), caplog.at_level(logging.WARNING):
        asking.start()
        try:
            assert forking.wait(30)
            assert books._lock.acquire(timeout=10)  # once the workers are forked
            deal = event(11, "DealBooked", deal_id="d11", booked_on="2026-03-20", amount="500.00", currency="USD",
                         credits=[{"participant_id": "r1", "share": "1"}])
            log.store.add(_logged([*envelopes, deal]))  # type: ignore[attr-defined]
            log.catch_up()
            books.at(None)
            books._lock.release()
        finally:
            release.set()
            asking.join(60)
    assert "a what-if's forked worker failed; asking it again in this process" in caplog.text
    assert answers[0]["as_of_position"] == 11
    assert answers == [what_if(log, books, version, periods, people)]
    assert [row["difference"] for row in answers[0]["rows"]] == ["150.00", "100.00", "100.00"]
    assert len(kept) == 1
    assert not multiprocessing.active_children()


@pytest.mark.skipif(not forked.can_fork(), reason="workers are forked on Linux only")
def test_a_second_what_if_waits_for_the_first_ones_workers_without_holding_the_books() -> None:
    """One what-if at a time, as when each held the books throughout (decision 138's review): every
    forked what-if forks workers of its own, and each may copy up to the service's size."""
    _, envelopes, version = _three_reps()
    log = _log(envelopes)
    books = Books(log)
    people, periods = ["r1", "r2", "r3"], ["2026-03"]
    serial = what_if(log, books, version, periods, people)
    release, forks = multiprocessing.get_context("fork").Event(), threading.Semaphore(0)
    answers: list[dict[str, Any]] = []
    askers = [threading.Thread(target=lambda: answers.append(what_if(log, books, version, periods, people, 2)))
              for _ in range(2)]
    with _detached_workers(release, forks.release):
        for asker in askers:
            asker.start()
        try:
            assert forks.acquire(timeout=30)  # the first what-if's workers
            assert not forks.acquire(timeout=1.0), "a second what-if forked while the first one's workers computed"
            assert books._lock.acquire(timeout=10)
            books._lock.release()
        finally:
            release.set()
            for asker in askers:
                asker.join(60)
    assert answers == [serial, serial]
    assert not multiprocessing.active_children()


def test_a_what_if_costs_each_manager_by_their_reports() -> None:
    """Decision 139: a manager's rows hold every report's override lines, so the forked map judges
    what is left from the reports each participant has with the hypothetical events (`REPORT_COST`
    a report), not from the count of participants alone; the costliest come first, the rows in
    the order asked for."""
    event, envelopes = _rep_on_a_plan("c")
    envelopes.append(event(4, "ParticipantRegistered", participant_id="m1", name="M", team_id="t",
                           start_date="2020-01-01"))
    for n in range(5, 13):
        envelopes.append(event(n, "ParticipantRegistered", participant_id=f"q{n}", name="Q", team_id="t",
                               manager_id="m1", start_date="2020-01-01"))
    log = _log(envelopes)
    books = Books(log)
    mapped: list[tuple[list[str], list[float]]] = []
    map_detached = forked.map_detached

    def spied(items: list[str], work: Any, workers: int, costs: list[float], raw: bool) -> Any:
        mapped.append((items, costs))
        return map_detached(items, work, workers, costs, raw)

    hire = [{"event_id": "h", "type": "ParticipantRegistered", "data": {
        "participant_id": "q99", "name": "Q", "team_id": "t", "manager_id": "m1", "start_date": "2026-03-01"}}]
    with patch.object(whatif, "map_detached", spied):
        answer = what_if(log, books, [], ["2026-03"], ["r1", "m1", "q5"], 2)
        hired = what_if(log, books, hire, ["2026-03"], ["r1", "m1", "q5"], 2)
    assert mapped == [(["m1", "r1", "q5"], [1 + 8 * whatif.REPORT_COST, 1.0, 1.0]),
                      (["m1", "r1", "q5"], [1 + 9 * whatif.REPORT_COST, 1.0, 1.0])]  # with the new hire
    assert [row["participant_id"] for row in answer["rows"]] == [row["participant_id"] for row in hired["rows"]] == [
        "r1", "m1", "q5"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ledgers(), HYPOTHETICAL, st.sampled_from([[], ["2026-03"], MONTHS[:3]]), st.sampled_from([1, 2]))
def test_a_raw_what_if_encodes_to_the_answer_decoded(envelopes: list[dict[str, Any]],
                                                     hypothetical: list[dict[str, Any]], periods: list[str],
                                                     workers: int) -> None:
    """Decision 141: the route's answer is made of each participant's rows as encoded where they
    were computed (`raw`); encoded, it is the answer `what_if` gives decoded, empty periods too
    (a participant with no rows adds no fragment)."""
    log = _log(envelopes)
    books = Books(log)
    people = [p for p in PEOPLE if books.at(None).has_participant(p)]
    with eager_forks() as fork:
        raw = what_if(log, books, hypothetical, periods, people, workers, raw=True)
    assert fork.called == (workers == 2 and len(people) >= 2)  # eager: forked even for no periods
    decoded = what_if(log, books, hypothetical, periods, people)
    assert all(isinstance(row, orjson.Fragment) for row in raw["rows"])
    assert orjson.loads(orjson.dumps(raw)) == decoded
    assert len(decoded["rows"]) == len(people) * len(periods)
