"""Concurrent appends in one process share commits, and each caller still gets its own answer."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError

import ledger.appender
from ledger.appender import EventIdReused, PositionTaken, Rejected
from ledger.store import StoreUnavailable
from replay.bootstrap import Services
from replay.chain import verify


def _deal(event_id: str, deal_id: str, participant: str = "r1") -> dict[str, Any]:
    return {"event_id": event_id, "type": "DealBooked",
            "data": {"deal_id": deal_id, "booked_on": "2026-01-05", "amount": "10.00", "currency": "USD",
                     "credits": [{"participant_id": participant, "share": "1"}]}}


def test_concurrent_callers_get_their_own_results(make_services: Callable[..., Services]) -> None:
    services = make_services()
    services.log.append([{"event_id": "reg", "type": "ParticipantRegistered",
                          "data": {"participant_id": "r1", "name": "R", "team_id": "t", "start_date": "2020-01-01"}}])
    outcomes: dict[int, Any] = {}
    barrier = threading.Barrier(24)

    def call(i: int) -> None:
        if i % 6 == 0:
            envelope = _deal(f"bad-{i}", f"deal-{i}", participant="nobody")  # rejected alone
        elif i % 6 == 1:
            envelope = _deal("same", "deal-same")  # the same event from several callers
        elif i % 6 == 2:
            envelope = _deal(f"clash-{i}", "deal-clash")  # the same new deal id under other event ids
        else:
            envelope = _deal(f"ok-{i}", f"deal-{i}")
        barrier.wait()
        try:
            outcomes[i] = services.log.append([envelope])[0]
        except (Rejected, EventIdReused) as error:
            outcomes[i] = error

    threads = [threading.Thread(target=call, args=(i,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(isinstance(outcomes[i], Rejected) for i in range(0, 24, 6))
    same = [outcomes[i] for i in range(1, 24, 6)]
    assert sorted(r.duplicate for r in same) == [False, True, True, True]
    assert len({r.position for r in same}) == 1
    clash = [outcomes[i] for i in range(2, 24, 6)]
    assert sum(not isinstance(r, Exception) for r in clash) == 1
    assert all(p.field == "data.deal_id" for r in clash if isinstance(r, Rejected) for p in r.problems)
    ok = [outcomes[i] for i in range(24) if i % 6 >= 3]
    assert all(not r.duplicate for r in ok)
    stored = list(make_services().store.read(0))
    assert [r.position for r in stored] == list(range(1, len(stored) + 1))
    assert len(stored) == 1 + 1 + 1 + len(ok)
    assert verify(services.store).ok


def test_a_caller_that_gives_up_is_not_stored_and_does_not_disturb_the_others(
    make_services: Callable[..., Services],
) -> None:
    """An HTTP client that disconnects cancels its append; the batches grouped with it are unaffected."""
    services = make_services()
    services.log.append([{"event_id": "reg", "type": "ParticipantRegistered",
                          "data": {"participant_id": "r1", "name": "R", "team_id": "t", "start_date": "2020-01-01"}}])
    with services.log._lock:  # the committer waits here: all three are queued for one group
        first, gone, last = (services.log.submit([_deal(f"e-{i}", f"d-{i}")]) for i in range(3))
        assert gone.cancel()
    assert [r.position for r in first.result(timeout=30)] == [2]
    assert [r.position for r in last.result(timeout=30)] == [3]
    assert gone.cancelled()
    assert [r.event_id for r in services.store.read(0)] == ["reg", "e-0", "e-2"]
    assert services.log.head == 3
    assert services.store.head() == 3
    assert [r.position for r in services.log.append([_deal("e-3", "d-3")])] == [4]  # the committer lives on


def test_event_loop_callers_of_one_group_each_get_their_own_answer(make_services: Callable[..., Services]) -> None:
    """`submit_async` (the HTTP routes): one group's answers reach the loop together, each its own;
    a caller cancelled before the commit is not stored."""
    services = make_services()
    services.log.append([{"event_id": "reg", "type": "ParticipantRegistered",
                          "data": {"participant_id": "r1", "name": "R", "team_id": "t", "start_date": "2020-01-01"}}])

    async def run() -> list[Any]:
        with services.log._lock:  # the committer waits here: everything below is queued for one group
            futures = [services.log.submit_async([_deal(f"a-{i}", f"d-{i}")]) for i in range(5)]
            futures.append(services.log.submit_async([_deal("bad", "d-bad", participant="nobody")]))
            futures.append(services.log.submit_async([_deal("a-0", "d-0")]))  # resent: a duplicate
            gone = services.log.submit_async([_deal("gone", "d-gone")])
            gone.cancel()
            too_many = services.log.submit_async([])
        return await asyncio.gather(*futures, too_many, return_exceptions=True)

    *accepted, bad, resent, empty = asyncio.run(run())
    assert [(r[0].event_id, r[0].position, r[0].duplicate) for r in accepted] == [
        (f"a-{i}", i + 2, False) for i in range(5)]
    assert isinstance(bad, Rejected) and bad.problems[0].field == "data.credits.0.participant_id"
    assert [(r.event_id, r.position, r.duplicate) for r in resent] == [("a-0", 2, True)]
    assert isinstance(empty, Rejected) and empty.problems[0].field == "events"
    assert [r.event_id for r in services.store.read(0)] == ["reg", *(f"a-{i}" for i in range(5))]


def test_an_interrupted_group_commit_leaves_the_committer_alive(make_services: Callable[..., Services]) -> None:
    """Something that is not an `Exception` (here `SystemExit`) raised while a group is checked:
    that group is answered as interrupted and stores nothing; appends queued then or later commit."""
    services = make_services()
    log = services.log
    services.log.append([{"event_id": "reg", "type": "ParticipantRegistered",
                          "data": {"participant_id": "r1", "name": "R", "team_id": "t", "start_date": "2020-01-01"}}])
    prepare = log._prepare
    queued: list[Any] = []

    def interrupted_once(*args: Any, **kwargs: Any) -> Any:
        if not queued:  # the first group is being checked: queue another behind it, then stop
            queued.append(log.submit([_deal("e-2", "d-2")]))
            raise SystemExit("stop")
        return prepare(*args, **kwargs)

    log._prepare = interrupted_once  # type: ignore[method-assign]
    first = log._committer
    doomed = log.submit([_deal("e-1", "d-1")])
    with pytest.raises(PositionTaken):
        doomed.result(timeout=30)
    assert [r.position for r in queued[0].result(timeout=30)] == [2]
    assert [r.position for r in log.append([_deal("e-3", "d-3")])] == [3]
    assert log._committer is first
    assert [r.event_id for r in services.store.read(0)] == ["reg", "e-2", "e-3"]


def _unreachable_store(records: Any) -> None:
    """As `EventStore.append` answers a lost connection: from the driver's error, whose traceback
    reaches back to the committer's frame."""
    try:
        raise OperationalError("connection refused")
    except OperationalError as error:
        raise StoreUnavailable("the database is unreachable (OperationalError)") from error


def test_group_commits_make_no_garbage_cycles(
    make_services: Callable[..., Services], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The committer pauses the cycle collector while it works on a group, and the heap is frozen
    every 10,000 events (`ledger.heap`): a reference cycle made by an append could be frozen
    before it is collected, and never freed. Accepted, resent and rejected batches make none, nor
    does a group the database could not store."""
    services = make_services()
    log = services.log
    log.append([{"event_id": "reg", "type": "ParticipantRegistered",
                 "data": {"participant_id": "r1", "name": "R", "team_id": "t", "start_date": "2020-01-01"}}])
    log.append([_deal("warm", "d-warm")])  # the first group's one-off set-up (statements, pool) done
    services.books.close()  # no fold meanwhile: only what appends leave behind is counted
    gc.collect()
    gc.disable()
    try:
        accepted = log.append([_deal(f"e-{i}", f"d-{i}") for i in range(300)])
        resent = log.append([_deal(f"e-{i}", f"d-{i}") for i in range(300)])
        with pytest.raises(Rejected):
            log.append([_deal("x-1", "d-x1"), _deal("x-2", "d-x2", participant="nobody")])
        with pytest.raises(EventIdReused):
            log.append([_deal("e-1", "d-other")])
        with monkeypatch.context() as patch:
            patch.setattr(services.store, "append", _unreachable_store)  # a small group is not streamed
            with pytest.raises(StoreUnavailable):
                log.append([_deal("f-1", "d-f1")])
        unreachable = gc.collect()
    finally:
        gc.enable()
    assert [r.position for r in accepted] == list(range(3, 303))
    assert all(r.duplicate for r in resent)
    assert unreachable == 0


def test_a_batch_that_fails_unexpectedly_fails_alone(
    make_services: Callable[..., Services], caplog: pytest.LogCaptureFixture
) -> None:
    """A bug on one batch's input answers its caller with the error (a 500) and is logged; the
    batches grouped with it are stored, where all of them failed."""
    services = make_services()
    log = services.log
    log.append([{"event_id": "reg", "type": "ParticipantRegistered",
                 "data": {"participant_id": "r1", "name": "R", "team_id": "t", "start_date": "2020-01-01"}}])
    prepare = log._prepare

    def broken_on_boom(envelopes: Any, *args: Any, **kwargs: Any) -> Any:
        if envelopes[0]["event_id"] == "boom":
            raise RuntimeError("a bug in checking")
        return prepare(envelopes, *args, **kwargs)

    log._prepare = broken_on_boom  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="ledger.appender"):
        with log._lock:  # the committer waits here: all three are queued for one group
            first, boom, last = (log.submit([_deal(name, f"d-{name}")]) for name in ("e-1", "boom", "e-2"))
        assert [r.position for r in first.result(timeout=30)] == [2]
        assert [r.position for r in last.result(timeout=30)] == [3]
        with pytest.raises(RuntimeError, match="a bug in checking"):
            boom.result(timeout=30)
    assert [r.event_id for r in services.store.read(0)] == ["reg", "e-1", "e-2"]
    assert any(r.getMessage() == "checking a batch failed" for r in caplog.records)


def test_a_group_that_fails_unexpectedly_is_logged_with_the_committers_stack(
    make_services: Callable[..., Services], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Its callers get the error without the committer's traceback (decision 77), so the log keeps it."""
    services = make_services()
    services.log.append([{"event_id": "reg", "type": "ParticipantRegistered",
                          "data": {"participant_id": "r1", "name": "R", "team_id": "t", "start_date": "2020-01-01"}}])

    def broken(records: Any) -> None:
        raise RuntimeError("a bug in the store")

    monkeypatch.setattr(services.store, "append", broken)
    with caplog.at_level(logging.ERROR, logger="ledger.appender"), pytest.raises(RuntimeError, match="a bug"):
        services.log.append([_deal("e-1", "d-1")])
    [logged] = [r for r in caplog.records if r.name == "ledger.appender"]
    assert logged.exc_info is not None and str(logged.exc_info[1]) == "a bug in the store"
    frames = [frame.name for frame in traceback.extract_tb(logged.exc_info[2])]
    assert frames[0] == "_commit_queued" and frames[-1] == "broken"


def test_a_group_takes_at_most_its_bound_from_the_queue(
    make_services: Callable[..., Services], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches queued behind a burst wait for the next group once `GROUP_MAX` events (here 4) are
    taken, in their order; a batch larger than the bound is a group of its own."""
    services = make_services()
    log = services.log
    log.append([{"event_id": "reg", "type": "ParticipantRegistered",
                 "data": {"participant_id": "r1", "name": "R", "team_id": "t", "start_date": "2020-01-01"}}])
    monkeypatch.setattr(ledger.appender, "GROUP_MAX", 4)
    groups: list[list[str]] = []
    accept = log._accept

    def counted(logged: Any, *args: Any) -> None:
        groups.append([entry.event_id for entry in logged])
        accept(logged, *args)

    monkeypatch.setattr(log, "_accept", counted)
    sizes = [2, 2, 1, 5, 1, 1]
    with log._lock:  # the committer waits here: all of them are queued before the first group
        futures = [log.submit([_deal(f"e-{i}-{j}", f"d-{i}-{j}") for j in range(size)])
                   for i, size in enumerate(sizes)]
    answers = [[r.position for r in future.result(timeout=30)] for future in futures]
    assert answers == [[2, 3], [4, 5], [6], [7, 8, 9, 10, 11], [12], [13]]
    assert [len(group) for group in groups] == [4, 1, 5, 2]
    assert [r.event_id for r in services.store.read(0)][1:] == [
        f"e-{i}-{j}" for i, size in enumerate(sizes) for j in range(size)]
    assert verify(services.store).ok
