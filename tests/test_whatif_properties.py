"""What-if folds only the events that concern the requested participants; it must agree with a full fold."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.appender import LedgerLog
from ledger.records import Record
from replay.asof import Books, fold
from replay.whatif import what_if
from tests.support import rules
from tests.test_close_properties import MONTHS, PEOPLE, _logged, ledgers


class MemoryStore:
    """A fake store: the log is already in memory, nothing more arrives, nothing is written."""

    def read(self, after: int) -> Iterator[Record]:
        return iter(())


def _log(envelopes: list[dict[str, Any]]) -> LedgerLog:
    log = LedgerLog(MemoryStore(), "USD")  # type: ignore[arg-type]
    log._accept(_logged(envelopes))
    return log


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
])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ledgers(), HYPOTHETICAL, st.sampled_from(PEOPLE))
def test_what_if_agrees_with_a_full_fold(envelopes: list[dict[str, Any]], hypothetical: list[dict[str, Any]],
                                         person: str) -> None:
    log = _log(envelopes)
    books = Books(log)
    periods = [*MONTHS, "2026-07"]
    answer = what_if(log, books, hypothetical, periods, [person])
    full = fold([*log.entries, *log.check(hypothetical)]).view()
    for row in answer["rows"]:
        assert row["total_with"] == full.book.statement(person, row["period"]).body(0)["total"]
        if not hypothetical:
            assert row["difference"] == "0.00"
            assert row["lines"] == []
