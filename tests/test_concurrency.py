"""Concurrent writers: separate ledger instances (as separate processes would be) on one database."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from typing import Any

import pytest

from ledger.appender import Rejected
from ledger.settings import Settings
from replay.bootstrap import Services, build
from replay.chain import verify


def _register(services: Services) -> None:
    services.log.append([
        {"event_id": "reg-1", "type": "ParticipantRegistered",
         "data": {"participant_id": "r1", "name": "R1", "team_id": "t", "start_date": "2020-01-01"}},
    ])


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
    assert [e.record.event_id for e in fresh.log.entries] == ["reg-1", "crm-1"]


def test_the_same_new_deal_id_from_two_writers_is_accepted_once(make_services: Callable[..., Services]) -> None:
    writers = [make_services() for _ in range(6)]
    _register(writers[0])
    results = _race(writers, lambda i, s: s.log.append([_deal(f"crm-{i}", "k1")])[0])
    accepted = [r for r in results if not isinstance(r, Exception)]
    rejected = [r for r in results if isinstance(r, Rejected)]
    assert len(accepted) == 1 and len(rejected) == 5, results
    assert all(p.field == "data.deal_id" for r in rejected for p in r.problems)
    fresh = make_services()
    assert [e.record.type for e in fresh.log.entries] == ["ParticipantRegistered", "DealBooked"]


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
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_process_writer, args=(database_url, w, count)) for w in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=240)
    assert [p.exitcode for p in processes] == [0] * workers
    fresh = make_services()
    ids = [e.record.event_id for e in fresh.log.entries]
    expected = {"reg-1"} | {f"shared-{n}" for n in range(0, count, 2)} | {
        f"w{w}-{n}" for w in range(workers) for n in range(1, count, 2)}
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == expected
    assert [e.record.position for e in fresh.log.entries] == list(range(1, len(ids) + 1))
    assert verify(fresh.store).ok
