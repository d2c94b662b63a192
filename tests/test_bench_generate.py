"""The benchmark's generated ledger (`bench.generate`): its default is the ledger every earlier run
measured, and with `churn` it adds a CRM's corrections that the ledger accepts whole, and whose
rankings agree with adding up each credit (decision 144)."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.generate import events
from ledger.appender import LedgerLog
from ledger.settings import parse_database_url
from ledger.store import EventStore
from replay.asof import Books

CORRECTIONS = {"DealAmended", "DealCancelled", "PaymentReversed", "ParticipantTransferred", "AdjustmentRecorded"}


def test_the_default_ledger_is_the_one_earlier_runs_measured() -> None:
    """Benchmark runs are compared across sessions: the corrections draw from a generator of their
    own, so adding them left the default ledger byte for byte as it was (its fingerprint then)."""
    digest = hashlib.sha256()
    types: Counter[str] = Counter()
    for envelope in events(1_000, 100_000):
        digest.update(orjson.dumps(envelope))
        types[envelope["type"]] += 1
    assert not CORRECTIONS & set(types)
    assert digest.hexdigest() == "8b6bfdb5513f6db67a3b8e773f3ef72768d1f33df0aeb0d4a9eb3d4836b10346"


@pytest.fixture(scope="module")
def churned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[dict[str, Any]], Books]]:
    envelopes = list(events(1_000, 40_000, churn=1.0))
    folder: Path = tmp_path_factory.mktemp("churn")
    store = EventStore(parse_database_url(f"sqlite:///{folder}/ledger.db"))
    log = LedgerLog(store, "USD")
    for start in range(0, len(envelopes), 1_000):
        log.append(envelopes[start : start + 1_000])  # raises if any event is rejected
    books = Books(log)
    try:
        yield envelopes, books
    finally:
        books.close()
        log.close()
        store.close()


def test_a_churned_ledger_is_accepted_whole_with_every_kind_of_correction(
    churned: tuple[list[dict[str, Any]], Books],
) -> None:
    envelopes, books = churned
    assert books.at(None).position == len(envelopes)
    types = Counter(envelope["type"] for envelope in envelopes)
    assert all(types[kind] > 0 for kind in CORRECTIONS), types
    assert types["DealAmended"] > 2 * types["DealCancelled"] > 0
    closes = {e["data"]["period"]: i for i, e in enumerate(envelopes) if e["type"] == "PeriodClosed"}
    booked = {e["data"]["deal_id"]: e["data"]["booked_on"][:7] for e in envelopes if e["type"] == "DealBooked"}
    late = [i for i, e in enumerate(envelopes) if e["type"] == "DealCancelled"
            and booked[e["data"]["deal_id"]] in closes and i > closes[booked[e["data"]["deal_id"]]]]
    assert late, "some cancellations come after their deal's month closed (clawbacks on later statements)"


def test_a_churned_ledgers_rows_agree_with_adding_up_each_credit(churned: tuple[list[dict[str, Any]], Books]) -> None:
    """Rankings read running sums, which amendments now move instead of dropping (decision 144):
    each row of every month equals the sum of the participant's live credits, read the long way."""
    _, books = churned
    with books.reading():
        view = books.at(None)
        state, engine = view.state, view.engine
        amended_rows = 0
        for month in range(1, 13):
            period = f"2026-{month:02d}"
            close = state.closed_at.get(period)
            at = view.position if close is None else close - 1
            for row in view.rows(period):
                effective = state.effective(row.participant_id, at)
                credits = engine.credits_in(row.participant_id, period, effective)
                assert row.credited == sum((c.amount for c in credits if c.live), Decimal(0)), (period, row)
                if any(c.deal.amendments for c in credits) and not any(c.deal.cancellation for c in credits):
                    assert state.summed_credit(row.participant_id, period, effective) is not None
                    amended_rows += 1
    assert amended_rows > 1_000
