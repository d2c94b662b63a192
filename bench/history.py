"""`python -m bench.history [--participants N] [--events-per-year E] [--years 1 5]`: what history costs.

A ledger keeps every year it has recorded, so what a read of this month costs should not grow with
the years before it. For each number of years, builds the benchmark's kind of ledger over that many
years (`bench.generate.events`: every month closed but the last, a dispute about one deal in 100),
folds it into a book in this process (no database, no service), and measures at its end:

- statements of the last month of every participant but the managers, cold (from a book folded
  afresh, as after a restart) and warm (mean and p99, ms);
- the projector's step after the last close (`projections.views.view_changes` over the batch
  holding only that close, from a view and memo current just before it): rows recomputed, seconds;
- the same after an ordinary batch: the ledger's last 1,000 events (`BATCH`), bookings and
  payments of the last month;
- after a new hire under the first team's manager, that manager's statement of the last month,
  read before the hire too (ms);
- with the view current again, the projector's step after a new version of the reps' plan from
  the last month on (rows, seconds);
- with `--what-if`: the ledger appended to a SQLite store in a temporary directory and read back
  as the service reads it, a what-if of one hypothetical deal of the last month for a rep, and
  one of the cancellation of the rep's last deal of that month, each asked by the rep and by the
  team's manager; and the manager's what-if of the rep leaving the team on the month's first
  day (ms, the best of three).

Prints a table and one JSON line. In-process figures of the pure statement engine, for comparing
two versions of it on one machine; not the HTTP targets of `python -m bench`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from typing import Any

from bench.generate import events
from ledger.appender import LedgerLog
from ledger.heap import HEAP, settle
from ledger.settings import parse_database_url
from ledger.store import EventStore
from ledger.validation import Envelope, parse_envelope
from ledger.values import next_period
from projections.book import Book
from projections.views import periods_of, view_changes
from replay.asof import Books
from replay.whatif import what_if

#: The last events of the ledger, folded as one batch of the projector (a day's bookings and payments)
BATCH = 1_000

def _parsed(envelopes: list[dict[str, Any]]) -> list[Envelope]:
    out = []
    for envelope in envelopes:
        parsed = parse_envelope(envelope)
        assert isinstance(parsed, Envelope), parsed
        out.append(parsed)
    return out


def _ms(seconds: list[float]) -> tuple[float, float]:
    ordered = sorted(seconds)
    return statistics.fmean(ordered) * 1000, ordered[int(len(ordered) * 0.99)] * 1000


def _fold(book: Book, envelopes: list[Envelope], periods: set[str]) -> None:
    """As the service and the projector fold: without the cyclic collector, the heap settled after
    (`ledger.heap`), so that no full collection of what was folded lands in a timed read."""
    with HEAP.folding() as tally:
        for envelope in envelopes:
            book.apply(book.position + 1, envelope.event_id, envelope.event)
            periods |= periods_of(envelope.event)
        tally.count = len(envelopes)
    settle()


def what_if_of_a_deal(envelopes: list[dict[str, Any]], month: str, rep: str, manager: str) -> dict[str, float]:
    """The what-ifs a rep asks most ("and if this deal closes?", "and if that one is cancelled?"),
    and a manager's "and if this rep leaves?", on a store as the service has it."""
    figures = {}
    last_deal = next(e["data"] for e in reversed(envelopes) if e["type"] == "DealBooked"
                     and e["data"]["booked_on"].startswith(month)
                     and any(c["participant_id"] == rep for c in e["data"]["credits"]))
    with tempfile.TemporaryDirectory() as folder:
        store = EventStore(parse_database_url(f"sqlite:///{folder}/ledger.db"))
        log = LedgerLog(store, "USD")
        try:
            for start in range(0, len(envelopes), 1_000):
                log.append(envelopes[start : start + 1_000])
            # No ranking is read here: warming them after the fold (decision 108) would only add to
            # the set-up, and to the memory of what the what-ifs share.
            books = Books(log, warm_after=sys.maxsize)
            books.at(None)  # folded before the clock starts, as the service's follower does
            deal = {"event_id": "what-if-deal", "type": "DealBooked", "data": {
                "deal_id": "what-if-deal", "booked_on": f"{month}-15", "amount": "12000.00",
                "currency": "USD", "credits": [{"participant_id": rep, "share": "1"}]}}
            cancel = {"event_id": "what-if-cancel", "type": "DealCancelled", "data": {
                "deal_id": last_deal["deal_id"], "cancelled_on": last_deal["booked_on"]}}
            leave = {"event_id": "what-if-leave", "type": "ParticipantTransferred", "data": {
                "participant_id": rep, "team_id": "elsewhere", "effective_date": f"{month}-01"}}
            questions = [("", deal, rep), ("", deal, manager), ("cancel_", cancel, rep), ("cancel_", cancel, manager),
                         ("transfer_", leave, manager)]
            for name, event, asker in questions:
                times = []
                for _ in range(3):
                    started = time.perf_counter()
                    answer = what_if(log, books, [event], [month], [asker])
                    times.append(time.perf_counter() - started)
                    assert answer["rows"][0]["difference"] != "0.00", answer["rows"][0]
                figures[f"what_if_{name}{'rep' if asker == rep else 'manager'}_ms"] = min(times) * 1000
            books.close()
        finally:
            log.close()
            store.close()
    return figures


def measure(participants: int, per_year: int, years: int, ask_what_if: bool = False) -> dict[str, float]:
    envelopes = list(events(participants, per_year * years, years=years, disputes=0.01))
    parsed = _parsed(envelopes)
    last_close = max(i for i, e in enumerate(parsed) if e.type == "PeriodClosed")
    book, periods = Book(), set[str]()
    started = time.perf_counter()
    _fold(book, parsed[:last_close], periods)
    folded = time.perf_counter() - started
    upserts = view_changes(book.view(), 0, periods, set()).upserts  # the view (and memo) before the close
    written = {(row.participant_id, row.period) for row in upserts}
    _fold(book, [parsed[last_close]], periods)
    started = time.perf_counter()
    upserts = view_changes(book.view(), last_close, periods, written).upserts
    step = time.perf_counter() - started
    figures: dict[str, float] = {"years": years, "events": len(parsed), "fold_s": folded}
    figures["close_step_rows"] = len(upserts)
    figures["close_step_s"] = step
    written |= {(row.participant_id, row.period) for row in upserts}
    _fold(book, parsed[last_close + 1 : -BATCH], periods)
    before = book.position
    upserts = view_changes(book.view(), last_close + 1, periods, written).upserts  # the view current again
    written |= {(row.participant_id, row.period) for row in upserts}
    _fold(book, parsed[-BATCH:], periods)
    started = time.perf_counter()
    upserts = view_changes(book.view(), before, periods, written).upserts
    figures["batch_step_s"] = time.perf_counter() - started
    figures["batch_step_rows"] = len(upserts)
    written |= {(row.participant_id, row.period) for row in upserts}
    people = sorted(book.state.participants)
    month = next_period(parsed[last_close].data["period"])  # the last month, open (payments go on)
    book.view().statement(people[0], month)  # the manager's statement as read before a hire
    hire = parse_envelope({"event_id": "history-hire", "type": "ParticipantRegistered", "data": {
        "participant_id": "new-hire", "name": "New", "team_id": "team-0", "manager_id": people[0],
        "start_date": f"{month}-01"}})
    assert isinstance(hire, Envelope)
    current = book.position  # the view's
    _fold(book, [hire], periods)
    started = time.perf_counter()
    book.view().statement(people[0], month)
    figures["hire_manager_ms"] = (time.perf_counter() - started) * 1000
    reader = Book()  # a book folded afresh and read only here: nothing in its memo (as after a restart)
    _fold(reader, parsed, set())
    reps = [person for person in people if person not in reader.state.reports]  # a manager's is costlier
    for kind in ("cold", "warm"):
        times = []
        for person in reps:
            view = reader.view()
            began = time.perf_counter()
            view.statement(person, month)
            times.append(time.perf_counter() - began)
        figures[f"{kind}_mean_ms"], figures[f"{kind}_p99_ms"] = _ms(times)
    del reader
    upserts = view_changes(book.view(), current, periods, written).upserts  # the hire
    written |= {(row.participant_id, row.period) for row in upserts}
    version = parse_envelope({"event_id": "history-v2", "type": "PlanPublished", "data": {
        "plan_id": "ae", "effective_from": f"{month}-01", "rules": {
            "period": "month", "basis": "booking", "tier_method": "marginal", "tiers": [{"from": "0", "rate": "0.05"}],
            "cap": None, "spiffs": [], "clawback_days": None, "override_rate": "0"}}})
    assert isinstance(version, Envelope)
    before = book.position
    _fold(book, [version], periods)
    started = time.perf_counter()
    upserts = view_changes(book.view(), before, periods, written).upserts
    figures["plan_step_s"] = time.perf_counter() - started
    figures["plan_step_rows"] = len(upserts)
    if ask_what_if:
        del book  # the store's books hold the ledger again
        figures.update(what_if_of_a_deal(envelopes, month, reps[0], people[0]))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.history")
    parser.add_argument("--participants", type=int, default=500)
    parser.add_argument("--events-per-year", type=int, default=200_000)
    parser.add_argument("--years", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--what-if", action="store_true", help="also a what-if of a deal, on a SQLite store")
    args = parser.parse_args()
    rows = [measure(args.participants, args.events_per_year, years, args.what_if) for years in args.years]
    keys = list(rows[0])
    print(" ".join(f"{key:>16}" for key in keys))
    for row in rows:
        print(" ".join(f"{row[key]:>16,.2f}" for key in keys), flush=True)
    print(json.dumps({"participants": args.participants, "events_per_year": args.events_per_year, "runs": [
        {key: round(value, 3) for key, value in row.items()} for row in rows]}))


if __name__ == "__main__":
    main()
