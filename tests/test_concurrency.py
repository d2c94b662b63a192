"""Concurrent writers: separate ledger instances (as separate processes would be) on one database."""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from ledger.appender import LedgerLog, Rejected
from ledger.settings import Database, Settings, parse_database_url
from ledger.store import EVENTS_TABLE, EventStore, StoreUnavailable
from replay.bootstrap import Services, build
from replay.chain import verify


def _registration() -> dict[str, Any]:
    return {"event_id": "reg-1", "type": "ParticipantRegistered",
            "data": {"participant_id": "r1", "name": "R1", "team_id": "t", "start_date": "2020-01-01"}}


def _register(services: Services) -> None:
    services.log.append([_registration()])


def _deal(event_id: str, deal_id: str) -> dict[str, Any]:
    return {"event_id": event_id, "type": "DealBooked",
            "data": {"deal_id": deal_id, "booked_on": "2026-01-05", "amount": "100.00", "currency": "USD",
                     "credits": [{"participant_id": "r1", "share": "1"}]}}


def _race(writers: list[Services], work: Callable[[int, Services], Any]) -> list[Any]:
    barrier = threading.Barrier(len(writers))
    results: list[Any] = [None] * len(writers)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i, writers[i])
        except Exception as error:  # the outcome is what the test asserts
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(writers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_the_same_event_id_from_many_writers_is_stored_once(make_services: Callable[..., Services]) -> None:
    writers = [make_services() for _ in range(8)]
    _register(writers[0])
    results = _race(writers, lambda i, s: s.log.append([_deal("crm-1", "k1")])[0])
    assert all(not isinstance(r, Exception) for r in results), results
    assert sorted(r.duplicate for r in results) == [False] + [True] * 7
    assert len({r.position for r in results}) == 1
    fresh = make_services()
    assert [r.event_id for r in fresh.store.read(0)] == ["reg-1", "crm-1"]


def test_the_same_new_deal_id_from_two_writers_is_accepted_once(make_services: Callable[..., Services]) -> None:
    writers = [make_services() for _ in range(6)]
    _register(writers[0])
    results = _race(writers, lambda i, s: s.log.append([_deal(f"crm-{i}", "k1")])[0])
    accepted = [r for r in results if not isinstance(r, Exception)]
    rejected = [r for r in results if isinstance(r, Rejected)]
    assert len(accepted) == 1 and len(rejected) == 5, results
    assert all(p.field == "data.deal_id" for r in rejected for p in r.problems)
    fresh = make_services()
    assert [r.type for r in fresh.store.read(0)] == ["ParticipantRegistered", "DealBooked"]


def _run_processes(target: Callable[..., None], arguments: list[tuple[Any, ...]]) -> None:
    """Run one spawned process per argument tuple, at once; each must exit 0."""
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=target, args=args) for args in arguments]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=240)
    assert [p.exitcode for p in processes] == [0] * len(processes)


def _process_writer(database_url: str, worker: int, count: int) -> None:
    services = build(Settings(database_url=database_url, admin_token="x"))
    for n in range(count):
        # Overlapping event ids: every worker sends the even-numbered ones too.
        event_id = f"shared-{n}" if n % 2 == 0 else f"w{worker}-{n}"
        services.log.append([_deal(event_id, f"deal-{event_id}")])
    services.close()


@pytest.mark.slow
def test_processes_appending_overlapping_events(make_services: Callable[..., Services], database_url: str) -> None:
    _register(make_services())
    workers, count = 4, 30
    _run_processes(_process_writer, [(database_url, w, count) for w in range(workers)])
    fresh = make_services()
    stored = list(fresh.store.read(0))
    ids = [r.event_id for r in stored]
    expected = {"reg-1"} | {f"shared-{n}" for n in range(0, count, 2)} | {
        f"w{w}-{n}" for w in range(workers) for n in range(1, count, 2)}
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == expected
    assert [r.position for r in stored] == list(range(1, len(ids) + 1))
    assert fresh.log.head == len(ids)
    assert verify(fresh.store).ok


def _mixed_writer(database_url: str, worker: int, rounds: int) -> None:
    """Deals, payments racing their deal's cancellation, and replays of shared events."""
    services = build(Settings(database_url=database_url, admin_token="x"))
    for n in range(rounds):
        deal = f"race-{n}"
        events = [
            _deal(f"book-{n}", deal),  # every worker books the same deal with the same event id
            {"event_id": f"pay-{worker}-{n}", "type": "PaymentReceived",
             "data": {"payment_id": f"pay-{worker}-{n}", "deal_id": deal, "amount": "10.00",
                      "received_on": "2026-01-20"}},
            {"event_id": f"cancel-{worker}-{n}", "type": "DealCancelled",  # only the first cancel can pass
             "data": {"deal_id": deal, "cancelled_on": "2026-01-25"}},
        ]
        for envelope in events:
            with contextlib.suppress(Rejected):  # only the first cancel of a deal can pass
                services.log.append([envelope])
    services.close()


@pytest.mark.slow
def test_payments_racing_cancellations_leave_a_consistent_ledger(
    make_services: Callable[..., Services], database_url: str
) -> None:
    first = make_services()
    _register(first)
    first.log.append([{"event_id": "plan", "type": "PlanPublished", "data": {
        "plan_id": "c", "effective_from": "2020-01-01", "rules": {
            "period": "month", "basis": "collection", "tier_method": "marginal",
            "tiers": [{"from": "0", "rate": "0.1"}], "cap": None, "spiffs": [], "clawback_days": None,
            "override_rate": "0"}}},
        {"event_id": "assign", "type": "PlanAssigned",
         "data": {"participant_id": "r1", "plan_id": "c", "effective_from": "2020-01-01"}}])
    workers, rounds = 4, 12
    _run_processes(_mixed_writer, [(database_url, w, rounds) for w in range(workers)])

    fresh = make_services()
    records = list(fresh.store.read(0))
    ids = [r.event_id for r in records]
    assert len(ids) == len(set(ids))
    assert [r.position for r in records] == list(range(1, len(records) + 1))
    assert verify(fresh.store).ok
    cancels: dict[str, int] = {}
    for record in records:
        data = record.data
        if record.type == "DealCancelled":
            cancels[data["deal_id"]] = cancels.get(data["deal_id"], 0) + 1
    assert cancels == {f"race-{n}": 1 for n in range(rounds)}  # each deal cancelled exactly once
    assert sum(1 for r in records if r.type == "DealBooked") == rounds
    # Every reference is valid in log order: re-checking the stored log from scratch accepts all of it.
    from ledger.appender import Logged
    from ledger.decode import decode_trusted
    from ledger.validation import ReferenceIndex, check_references

    entries = [Logged(r.position, r.event_id, decode_trusted(r.type, r.data)) for r in records]
    refs = ReferenceIndex()
    for entry in entries:
        assert check_references(entry.event, refs, "USD") == [], entry
        refs.apply(entry.event)
    # Statements equal a replay from the log: the writer-side book and a fresh fold agree.
    from replay.asof import fold

    replayed = fold(entries).view()
    for period in ("2026-01", "2026-02"):
        assert first.books.at(None).statement("r1", period).body(0) == replayed.statement("r1", period).body(0)


def test_a_process_behind_the_store_judges_appends_by_the_whole_log(make_services: Callable[..., Services]) -> None:
    """Writers B, C, D have not read what A stored: their answers still rest on all of it."""
    a, b, c, d = (make_services() for _ in range(4))
    _register(a)
    assert (b.log.head, c.log.head, d.log.head) == (0, 0, 0)
    [deal] = b.log.append([_deal("e-1", "d-1")])  # r1 is unknown to B's memory: accepted all the same
    assert (deal.position, deal.duplicate) == (2, False)
    [again] = c.log.append([{"event_id": "reg-1", "type": "ParticipantRegistered",
                             "data": {"participant_id": "r1", "name": "R1", "team_id": "t",
                                      "start_date": "2020-01-01"}}])
    assert (again.position, again.duplicate) == (1, True)  # A's registration, resent: idempotent
    with pytest.raises(Rejected) as rejected:  # the deal id B stored, under a new event id
        d.log.append([_deal("e-2", "d-1")])
    assert "d-1" in str(rejected.value) and "r1" not in str(rejected.value)
    assert a.store.head() == 2


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_writer_behind_reads_the_others_events_before_it_locks_the_table(database_url: str) -> None:
    """A writer whose position was taken reads what the others stored before it takes the table
    lock. Read under the lock, a long backlog (an import through another process) held the
    other writers past their lock timeout, and their appends were answered 503."""
    importer = LedgerLog(EventStore(parse_database_url(database_url)), "USD")
    behind = LedgerLog(EventStore(parse_database_url(database_url)), "USD")
    watcher = EventStore(parse_database_url(database_url))
    try:
        importer.append([_registration()])
        behind.catch_up()
        importer.append([_deal(f"imp-{n}", f"k{n}") for n in range(1_000)])
        read_under_lock: list[bool] = []
        catch_up = behind.catch_up

        def watched(*args: Any, **kwargs: Any) -> int:
            if behind.store.head() > behind.head:  # a backlog to read: is the table locked meanwhile?
                read_under_lock.append(_table_locked(watcher))
            return catch_up(*args, **kwargs)

        behind.catch_up = watched  # type: ignore[method-assign]
        [result] = behind.append([_deal("late-1", "k-late")])
        assert (result.position, result.duplicate) == (1_002, False)
        assert read_under_lock == [False]  # the whole backlog, read before the lock
        assert [r.event_id for r in watcher.read(1_000)] == ["imp-999", "late-1"]
    finally:
        for log in (importer, behind):
            log.close()
            log.store.close()
        watcher.close()


def _table_locked(store: EventStore) -> bool:
    """Whether a writer holds the events table's lock now (as `LOCK TABLE` takes it to append)."""
    with store.datastore.get_connection() as conn:
        try:
            with conn.transaction():  # committed at once: the lock is released as soon as it is had
                conn.execute(f'LOCK TABLE "{store.datastore.schema}".{EVENTS_TABLE} IN EXCLUSIVE MODE NOWAIT')
        except psycopg.errors.LockNotAvailable:
            return True
    return False


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_an_append_that_waits_past_the_lock_timeout_is_answered_busy_and_stores_nothing(database_url: str) -> None:
    """A writer holding the events table past the lock timeout is not an unreachable database: the
    answer says the ledger is busy and that nothing was stored, and the same append goes through
    once the table is free."""
    database = parse_database_url(database_url)
    quick = Database(database.kind, {**database.env, "POSTGRES_LOCK_TIMEOUT": "1"}, database.schema)
    log = LedgerLog(EventStore(quick), "USD")
    holder = EventStore(database)
    try:
        log.append([_registration()])
        with holder.datastore.get_connection() as conn, conn.transaction():
            conn.execute(f'LOCK TABLE "{database.schema}".{EVENTS_TABLE} IN EXCLUSIVE MODE')
            with pytest.raises(StoreUnavailable) as busy:
                log.append([_deal("d-1", "k1")])
        assert str(busy.value) == (
            "the ledger is busy: another writer held the table past the lock timeout; nothing was stored: try again")
        assert holder.head() == 1
        [result] = log.append([_deal("d-1", "k1")])
        assert (result.position, result.duplicate) == (2, False)
    finally:
        log.close()
        log.store.close()
        holder.close()


def test_rows_stored_while_a_reader_works_through_a_short_page_are_not_skipped(
    make_services: Callable[..., Services],
) -> None:
    """A page shorter than asked for is the log's end only if the head has not moved past it: rows
    another process stores while the reader works through the page are read next, none skipped.
    (The reader read on from the page's end: positions 6 to 10 were never returned, and a catch-up
    that hit this failed on a log no longer contiguous.)"""
    writer, reader = make_services(), make_services()
    _register(writer)
    writer.log.append([_deal(f"e{n}", f"k{n}") for n in range(2, 6)])  # positions 1-5
    seen = []
    for position, _, _ in reader.store.read_rows(0, page=10):
        seen.append(position)
        if position == 5:  # the page (0, 10] gave five rows; another process stores ten more
            writer.log.append([_deal(f"e{n}", f"k{n}") for n in range(6, 16)])
    assert seen == list(range(1, 16))
    reader.log.catch_up()
    assert reader.log.head == 15 and list(reader.log.by_event_id.values()) == list(range(1, 16))


def test_an_empty_page_ends_a_read_without_asking_for_the_head(make_services: Callable[..., Services]) -> None:
    """Most reads find nothing new: an empty page is the end of this read, with no second query,
    even if another process stores rows meanwhile; the next read returns them, none skipped."""
    writer, reader = make_services(), make_services()
    _register(writer)
    store = reader.store
    real_page, real_head = store._page, store.head
    pages: list[int] = []
    head_reads: list[int] = []

    def page_then_store(gt: int, lte: int, ahead: bool) -> Any:
        batch = real_page(gt, lte, ahead)
        if not pages:  # read empty; then another process stores twelve rows
            writer.log.append([_deal(f"e{n}", f"k{n}") for n in range(2, 14)])
        pages.append(len(batch))
        return batch

    def counted_head() -> int:
        head_reads.append(real_head())
        return head_reads[-1]

    store._page = page_then_store  # type: ignore[method-assign]
    store.head = counted_head  # type: ignore[method-assign]
    assert list(store.read_rows(1, page=10)) == []
    assert (pages, head_reads) == ([0], [])  # one query, and no head read after the empty page
    assert [position for position, _, _ in store.read_rows(1, page=10)] == list(range(2, 14))
