"""Large appends on PostgreSQL send their rows while the batch is still being checked (decision 63).

Each test runs on both stores: on SQLite the usual append does the same work, and the answers,
what is stored and what is refused must be the same. On PostgreSQL the tests also check that the
stream was the path taken (`_Spy`), so that they test it rather than the fallback.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import orjson
import pytest

import ledger.appender
from ledger.appender import STREAM_MIN, Rejected
from ledger.records import Record, seal
from ledger.store import EVENTS_TABLE, AppendStream, EventStore
from replay.bootstrap import Services

_ODD_TEXT = 'back\\slash "quoted" \\t \\n ünïcødé € 😀 \\x41 \\\\ \\N end'
#: The same without Unicode: rows of ASCII alone go to COPY in bytea's escape form, others in its hex form.
_ODD_ASCII = '\\x41 starts like hex; back\\slash "quoted" \\t \\n \\\\ \\N \\. \\\\x41 \\001 end\\'


def _register(person: str) -> dict[str, Any]:
    return {"event_id": f"reg-{person}", "type": "ParticipantRegistered",
            "data": {"participant_id": person, "name": person.upper(), "team_id": "t", "start_date": "2020-01-01"}}


def _deal(n: int, customer: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"deal_id": f"d-{n}", "booked_on": "2026-01-05", "amount": f"{n}.25", "currency": "USD",
                            "credits": [{"participant_id": "r1", "share": "1"}]}
    if customer is not None:
        data["customer"] = customer
    return {"event_id": f"e-{n}", "type": "DealBooked", "data": data}


class _Spy:
    """Counts the streams opened (the table locked), committed and abandoned."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.opened = self.committed = self.abandoned = 0
        open_, commit, abort = AppendStream._open, AppendStream.commit, AppendStream.abort

        def counting_open(stream: AppendStream) -> None:
            open_(stream)
            self.opened += 1

        def counting_commit(stream: AppendStream) -> bool:
            stored = commit(stream)
            self.committed += stored
            return stored

        def counting_abort(stream: AppendStream) -> None:
            self.abandoned += stream._copy is not None and not stream._done
            abort(stream)

        monkeypatch.setattr(AppendStream, "_open", counting_open)
        monkeypatch.setattr(AppendStream, "commit", counting_commit)
        monkeypatch.setattr(AppendStream, "abort", counting_abort)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> _Spy:
    return _Spy(monkeypatch)


@pytest.fixture
def services(make_services: Callable[..., Services]) -> Iterator[Services]:
    built = make_services()
    built.log.append([_register("r1")])
    yield built


def _postgres(services: Services) -> bool:
    return services.store.kind == "postgres"


def _stored(services: Services) -> list[tuple[int, str, bytes]]:
    return list(services.store.read_rows(0))


def test_a_large_batch_is_stored_exactly_as_sealed(services: Services, spy: _Spy) -> None:
    """Text that needs escaping in COPY's text format (backslashes, tabs, newlines, quotes, any
    Unicode; with and without Unicode, as each goes its own way) comes back byte for byte, and the
    hash chain over the stored records holds."""
    batch = [_deal(n, (None, _ODD_TEXT, _ODD_ASCII)[n % 3]) for n in range(1, STREAM_MIN + 45)]
    results = services.log.append(batch)
    assert [r.position for r in results] == list(range(2, STREAM_MIN + 46))
    stored = _stored(services)
    assert len(stored) == STREAM_MIN + 45
    for (position, topic, state), envelope in zip(stored[1:], batch, strict=True):
        body = orjson.loads(state)
        assert (position, topic) == (body["position"], "ledger.v1:DealBooked")
        assert body["data"] == envelope["data"]
    previous: Record | None = None
    for _, _, state in stored:  # each as sealed, byte for byte, its hash extending the one before
        body = orjson.loads(state)
        previous = seal(previous, body["position"], body["event_id"], body["type"], body["data"], body["recorded_at"])
        assert previous.state == state
    expected = sum((Decimal(f"{n}.25") for n in range(1, STREAM_MIN + 45)), Decimal(0))
    assert services.books.head.statement("r1", "2026-01").credited == expected
    if _postgres(services):
        assert (spy.opened, spy.committed, spy.abandoned) == (1, 1, 0)


def test_a_rejected_large_batch_stores_nothing_and_releases_the_table(services: Services, spy: _Spy) -> None:
    """The last event refers to a participant nobody registered: the whole batch is refused, what
    was already sent is rolled back, and the next append (which needs the table lock) goes in."""
    batch = [_deal(n) for n in range(1, STREAM_MIN + 10)]
    batch[-1]["data"]["credits"] = [{"participant_id": "nobody", "share": "1"}]
    with pytest.raises(Rejected) as refused:
        services.log.append(batch)
    assert [(p.index, p.field) for p in refused.value.problems] == [
        (STREAM_MIN + 8, "data.credits.0.participant_id")
    ]
    assert len(_stored(services)) == 1 and services.log.head == 1
    [result] = services.log.append([_deal(1)])
    assert result.position == 2 and len(_stored(services)) == 2
    if _postgres(services):
        assert (spy.opened, spy.committed, spy.abandoned) == (1, 0, 1)


def test_a_group_with_a_rejected_batch_stores_the_others(services: Services, spy: _Spy) -> None:
    """Two batches committed together, the first refused: the stream held rows of both, so it is
    abandoned and the second batch is stored the usual way, at the positions after the head."""
    bad = [_deal(n) for n in range(1, 200)]
    bad[5]["type"] = "NoSuchEvent"
    good = [_deal(n) for n in range(200, 400)]
    with services.log._lock:  # the committer waits for this lock: both batches go in one group
        first, second = services.log.submit(bad), services.log.submit(good)
    with pytest.raises(Rejected):
        first.result(timeout=60)
    results = second.result(timeout=60)
    assert [r.position for r in results] == list(range(2, 202))
    stored = _stored(services)
    assert [orjson.loads(s)["event_id"] for _, _, s in stored[1:]] == [f"e-{n}" for n in range(200, 400)]
    if _postgres(services):
        assert (spy.opened, spy.committed, spy.abandoned) == (1, 0, 1)


def test_a_broken_stream_falls_back_to_the_usual_append(
    services: Services, spy: _Spy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream whose connection failed part way (here: its second send) is rolled back, and the
    records are stored by `EventStore.append` instead: once each, in order."""
    send = AppendStream._send
    sends = [0]

    def failing_send(stream: AppendStream) -> None:
        sends[0] += 1
        if sends[0] == 2:
            stream.broken = True
        send(stream)

    monkeypatch.setattr(AppendStream, "_send", failing_send)
    results = services.log.append([_deal(n) for n in range(1, STREAM_MIN + 100)])
    assert [r.position for r in results] == list(range(2, STREAM_MIN + 101))
    stored = _stored(services)
    assert [p for p, _, _ in stored] == list(range(1, STREAM_MIN + 101))
    assert [orjson.loads(s)["event_id"] for _, _, s in stored[1:]] == [f"e-{n}" for n in range(1, STREAM_MIN + 100)]
    if _postgres(services):
        assert (spy.opened, spy.committed, spy.abandoned) == (1, 0, 1)


def test_a_position_taken_by_another_process_is_retried(
    make_services: Callable[..., Services], spy: _Spy
) -> None:
    """Another process appends after this one last read the log: the streamed batch finds its
    first position taken, nothing of it is stored, and the retry stores it after the other's."""
    here, there = make_services(), make_services()
    here.log.append([_register("r1")])
    there.log.catch_up()
    there.log.append([_deal(0)])
    results = here.log.append([_deal(n) for n in range(1, STREAM_MIN + 1)])
    assert [r.position for r in results] == list(range(3, STREAM_MIN + 3))
    stored = [orjson.loads(s)["event_id"] for _, _, s in _stored(here)]
    assert stored == ["reg-r1", "e-0", *(f"e-{n}" for n in range(1, STREAM_MIN + 1))]
    if _postgres(here):
        assert spy.opened == 2 and spy.committed == 1


def _table_locks(services: Services) -> int:
    """Exclusive locks on the events table held by any session (PostgreSQL)."""
    with services.store.datastore.get_connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = %s AND n.nspname = %s AND l.mode = 'ExclusiveLock'",
            (EVENTS_TABLE, services.store.datastore.schema),
        ).fetchone()
    return int(row["count"])


def test_a_batch_sent_again_takes_no_lock(services: Services, spy: _Spy) -> None:
    """A large batch resent as it was (a client retrying after a lost answer) is answered from
    the log: every event a duplicate at its first position, nothing stored, no stream opened."""
    batch = [_deal(n) for n in range(1, STREAM_MIN + 20)]
    first = services.log.append(batch)
    again = services.log.append(batch)
    assert [(r.position, r.duplicate) for r in again] == [(r.position, True) for r in first]
    assert len(_stored(services)) == STREAM_MIN + 20
    if _postgres(services):
        assert (spy.opened, spy.committed) == (1, 1)
        assert _table_locks(services) == 0


def test_an_unexpected_failure_while_checking_releases_the_table(
    make_services: Callable[..., Services], spy: _Spy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault in the checks (a bug: not a refusal) after rows were sent fails that append, rolls
    back what was sent and gives the lock back: another process's append goes in at once."""
    here, there = make_services(), make_services()
    here.log.append([_register("r1")])
    check = ledger.appender.check_references

    def failing_check(event: Any, refs: Any, currency: str) -> Any:
        if getattr(event, "deal_id", None) == "d-200":
            raise RuntimeError("a bug")
        return check(event, refs, currency)

    monkeypatch.setattr(ledger.appender, "check_references", failing_check)
    with pytest.raises(RuntimeError, match="a bug"):
        here.log.append([_deal(n) for n in range(1, STREAM_MIN + 1)])
    assert len(_stored(here)) == 1
    if _postgres(here):
        assert (spy.opened, spy.committed, spy.abandoned) == (1, 0, 1)
        assert _table_locks(here) == 0
    there.log.catch_up()
    [result] = there.log.append([_deal(1)])
    assert result.position == 2


def test_small_batches_do_not_stream(services: Services, spy: _Spy) -> None:
    """Below `STREAM_MIN` events a group commit holds the table lock only while it stores."""
    done: list[int] = []

    def append(n: int) -> None:
        done.append(services.log.append([_deal(n)])[0].position)

    threads = [threading.Thread(target=append, args=(n,)) for n in range(1, 21)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(done) == list(range(2, 22))
    assert spy.opened == 0


def test_groups_past_the_cap_do_not_stream(
    services: Services, spy: _Spy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past `STREAM_MAX` events (here lowered to 300) a group appends the usual way, so that the
    table lock is never held while more than that is checked; what it stores is the same."""
    monkeypatch.setattr(ledger.appender, "STREAM_MAX", 300)
    results = services.log.append([_deal(n) for n in range(1, 302)])
    assert [r.position for r in results] == list(range(2, 303))
    assert len(_stored(services)) == 302
    assert spy.opened == 0


def _beaten_by_a_steady_writer(
    make_services: Callable[..., Services], monkeypatch: pytest.MonkeyPatch, most: int
) -> tuple[Services, list[int]]:
    """This process, `here`, with r1 registered, and another that stores a position just before
    each of `here`'s stores and each time `here` takes the lock: a steady writer elsewhere that wins
    every wait for the lock, `most` times at most. Returns `here` and a count of the other's stores."""
    here, there = make_services(), make_services()
    if not _postgres(here):
        pytest.skip("SQLite's writers take turns by the file lock: the race is PostgreSQL's")
    here.log.append([_register("r1")])
    there.log.catch_up()
    competitor = [0]
    append, open_ = EventStore.append, AppendStream._open

    def rival() -> None:
        if competitor[0] < most:
            competitor[0] += 1
            there.log.append([_deal(10_000 + competitor[0])])

    def beaten(store: EventStore, records: Any) -> None:
        if store is here.store:
            rival()
        append(store, records)

    def beaten_to_the_lock(stream: AppendStream) -> None:
        if stream._store is here.store:
            rival()
        open_(stream)

    monkeypatch.setattr(EventStore, "append", beaten)
    monkeypatch.setattr(AppendStream, "_open", beaten_to_the_lock)
    return here, competitor


def test_a_retry_is_not_beaten_by_a_steady_writer_elsewhere(
    make_services: Callable[..., Services], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A single append still goes in at its second attempt: the retry takes the lock before it
    reads the log, so nothing can come between (without that, it gives up after 50 attempts)."""
    here, competitor = _beaten_by_a_steady_writer(make_services, monkeypatch, 60)
    [result] = here.log.append([_deal(1)])
    assert (competitor[0], result.position) == (2, 4)  # one store beaten, then one wait for the lock
    stored = [orjson.loads(s)["event_id"] for _, _, s in _stored(here)]
    assert stored == ["reg-r1", "e-10001", "e-10002", "e-1"]


def test_a_retry_with_a_rejected_batch_keeps_the_lock_from_a_steady_writer_elsewhere(
    make_services: Callable[..., Services], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group of a good batch and a rejected one: the retry drops the rejected batch's rows but
    keeps the lock, so the good batch goes in at the second attempt. Giving the lock up to store
    the rest anew lost to the writer elsewhere on every retry, and after 50 the good batch was
    answered 503 "busy" with the rejected one (decision 125)."""
    here, competitor = _beaten_by_a_steady_writer(make_services, monkeypatch, 200)
    rejected = {**_deal(2), "data": {**_deal(2)["data"], "credits": [{"participant_id": "nobody", "share": "1"}]}}
    with here.log._lock:  # the committer waits here: both are queued for one group
        good, bad = here.log.submit([_deal(1)]), here.log.submit([rejected])
    [result] = good.result(timeout=60)
    with pytest.raises(Rejected):
        bad.result(timeout=60)
    assert (competitor[0], result.position) == (2, 4)  # one store beaten, then one wait for the lock
    stored = [orjson.loads(s)["event_id"] for _, _, s in _stored(here)]
    assert stored == ["reg-r1", "e-10001", "e-10002", "e-1"]
