"""The write side: idempotent, all-or-nothing appends (§3).

`LedgerLog` keeps in step with the store what appends need to decide (the
head, the reference index, event ids and their positions, the head record
for the chain) and hands each accepted event to the projections once; the
stored records themselves stay in the store (decision 42). Appends are
committed by one thread per process, which takes every batch waiting (group
commit); writers in other processes are serialised by the store's unique
position key, so a lost race means: read what the other writer stored, check
again, retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ledger.damage import checked_row
from ledger.decode import decode_trusted
from ledger.events import EventData
from ledger.heap import HEAP, no_cyclic_gc
from ledger.immutable import immutable
from ledger.records import Record, format_time, seal
from ledger.store import (
    AppendStream,
    EventStore,
    PositionTaken,
    StoreUnavailable,
    decode_record,
    parse_state,
    record_of,
)
from ledger.validation import (
    MAX_PROBLEMS,
    Problem,
    ReferenceIndex,
    check_references,
    parse_envelope,
    references_beside,
)

log = logging.getLogger("ledger.appender")

MAX_BATCH = 10_000
#: Parsed events held for the projections at most (about a kilobyte each): past it they are dropped
#: and read back from the store when folded (decision 52).
BACKLOG_MAX = 50_000
_RETRIES = 50
#: Events in a group commit from which its rows are sent while it is checked (decision 63).
STREAM_MIN = 256
#: ...and up to which: a larger group would hold the table lock for more than half a second.
STREAM_MAX = 50_000
#: Events one group commit takes from the queue at most (its first batch whatever its size); the
#: rest wait for the next group. So every group streams and a retry takes the lock first, and no
#: commit holds the lock for everything queued behind a burst of large batches (decision 126).
GROUP_MAX = STREAM_MAX


@immutable
class Logged:
    """An accepted event as the projections consume it: its position, id and parsed event."""

    position: int
    event_id: str
    event: EventData


@immutable
class Sealed:
    """A record made by an append (to be stored, or hypothetical) with its parsed event."""

    record: Record
    event: EventData

    @property
    def position(self) -> int:
        return self.record.position

    @property
    def event_id(self) -> str:
        return self.record.event_id

    def logged(self) -> Logged:
        return Logged(self.record.position, self.record.event_id, self.event)


def logged_from(position: int, state: bytes) -> tuple[Logged, dict[str, Any]]:
    """A stored row as the projections consume it, with its decoded body."""
    body = parse_state(state)
    return Logged(position, body["event_id"], decode_trusted(body["type"], body["data"])), body


@dataclass(unsafe_hash=True)  # not `immutable`'s slots: orjson writes a dataclass from its
class AppendResult:  # __dict__ 11 times as fast (a batch's 1,000 results: 0.06 ms against 0.7 ms)
    event_id: str
    position: int
    recorded_at: str
    duplicate: bool  # the fields, in this order, are the answer's JSON object (`api.responses`)


class Rejected(Exception):
    """Invalid input: nothing was stored. 409 when only period-order conflicts remain."""

    def __init__(self, problems: list[Problem]) -> None:
        # A problem of an event as a whole (not an object) names no field within it.
        super().__init__("; ".join(f"{p.field}: {p.problem}" if p.field else p.problem for p in problems))
        self.problems = problems
        self.status = 409 if all(p.conflict for p in problems) else 422


class EventIdReused(Exception):
    """The same event_id with other content: 409, nothing stored."""

    def __init__(self, index: int | None, event_id: str) -> None:
        super().__init__(f"event_id '{event_id}' was already used for another event")
        self.index = index
        self.event_id = event_id


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: unlike Python's ==, true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, str) or isinstance(b, str) or a is None or b is None:
        return type(a) is type(b) and a == b
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    return bool(a == b)


def _replays(type_: Any, data: Any, envelope: dict[str, Any]) -> bool:
    """Whether an envelope replays the event of this `type` and `data` (a stored one, or its event
    id's first envelope in the batch): the same `type` and `data`, compared as JSON values (§3);
    anything else in it is not looked at."""
    return json_equal(envelope.get("type"), type_) and json_equal(envelope.get("data"), data)


class LedgerLog:
    def __init__(
        self,
        store: EventStore,
        currency: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.currency = currency
        self.clock = clock
        self._head = 0
        #: The head record, without its stored form: the next one extends its hash.
        self.last: Record | None = None
        #: `recorded_at` of every position (index = position - 1); one shared string per batch.
        self.times: list[str] = []
        #: event id -> position
        self.by_event_id: dict[str, int] = {}
        #: Accepted events the projections have not taken yet (`take`), in position order: all of
        #: them, or none once there were too many (`_spilled`; decision 52).
        self.unfolded: deque[Logged] = deque()
        self._accepted = 0  # the last position accepted, under `_handover`
        self._taken = 0  # the last position the projections took
        self._handover = threading.Lock()
        self.refs = ReferenceIndex()
        self._lock = threading.RLock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._wake = threading.Event()
        self._committer: threading.Thread | None = None
        self._closing = False
        #: Set whenever the log grows: the projections follow it (`replay.asof.Books`).
        self.grew = threading.Event()

    @property
    def head(self) -> int:
        return self._head

    def catch_up(self, wait: bool = True, limit: int | None = None, read_ahead: bool = False) -> int:
        """Read what other processes appended since we last looked (at most `limit` events);
        returns how many were read.

        With `wait=False` (reads) a catch-up already under way in another
        thread is good enough: a reader never queues behind a long append.
        `read_ahead`: the caller will ask for the next `limit` events next (start-up), which the
        store reads meanwhile (`EventStore.read_rows`).
        """
        if not self._lock.acquire(blocking=wait):
            return 0
        try:
            with HEAP.folding() as tally:
                upto = None if limit is None else self.head + limit
                page: list[Logged] = []
                times: list[str] = []
                body: dict[str, Any] | None = None
                position = self.head
                rows = self.store.read_rows(self.head, upto, ahead=read_ahead)
                for expected, (position, _, state) in enumerate(rows, self.head + 1):
                    body, event = checked_row(expected, position, state)
                    page.append(Logged(position, body["event_id"], event))
                    times.append(body["recorded_at"])
                    if len(page) == _PAGE:
                        self._accept(page, times, record_of(position, body))
                        tally.count += len(page)
                        page, times = [], []
                if page:
                    assert body is not None
                    self._accept(page, times, record_of(position, body))
                    tally.count += len(page)
        finally:
            self._lock.release()
        return tally.count

    def _accept(
        self, fresh: Sequence[Logged], times: Sequence[str], last: Record, checked: ReferenceIndex | None = None
    ) -> None:
        """Take stored events into the log. `checked`: the overlay they were validated in, whose
        writes are exactly what applying them to the index would do (cheaper to merge).

        Reads look at the head, the last record and the times without the log's lock: the events
        are handed over to the projections first, so that a read naming a position it saw (or one
        a time it saw maps to) finds the books able to fold that far (decision 111)."""
        by_event_id = self.by_event_id
        head = self._head
        for entry in fresh:
            assert entry.position == head + 1, "the log must be contiguous"
            head = entry.position
            by_event_id[entry.event_id] = entry.position
            if checked is None:
                self.refs.apply(entry.event)
        if checked is not None:
            checked.merge_into_parent()
        if fresh:
            assert last.position == head
            with self._handover:
                if self._spilled() or len(self.unfolded) + len(fresh) > BACKLOG_MAX:
                    self.unfolded.clear()  # from now on the projections read back from the store
                else:
                    self.unfolded.extend(fresh)
                self._accepted = last.position
            self.times.extend(sys.intern(time) for time in times)
            self.last = last
            self._head = head
            self.grew.set()

    @property
    def backlog(self) -> int:
        """Accepted events not taken by the projections yet."""
        return self._accepted - self._taken

    def _spilled(self) -> bool:
        """The queue no longer holds every event not taken (under `_handover`)."""
        return len(self.unfolded) < self._accepted - self._taken

    def take(self, limit: int | None = None) -> list[Logged]:
        """The next accepted events (at most `limit`) for the one consumer that folds them (`Books`);
        they are not kept here after that. Past `BACKLOG_MAX` waiting (an import faster than the
        books fold, which wait for appends to pause), the log drops them and this reads them back
        from the store, a page at a time, until the consumer has caught up."""
        with self._handover:
            if not self._spilled():
                unfolded = self.unfolded
                count = len(unfolded) if limit is None else min(limit, len(unfolded))
                taken = [unfolded.popleft() for _ in range(count)]
                if taken:
                    self._taken = taken[-1].position
                return taken
            after = self._taken
            upto = min(self._accepted, after + (_PAGE if limit is None else min(limit, _PAGE)))
        # The books call this inside `HEAP.folding()`: the collector is paused while it decodes.
        taken = [logged_from(position, state)[0] for position, _, state in self.store.read_rows(after, upto)]
        assert len(taken) == upto - after, "the store holds every accepted position"
        with self._handover:
            self._taken = upto  # once it reaches `_accepted`, what is accepted next is queued again
        return taken

    def records(self, after: int, upto: int) -> list[Record]:
        """Stored records in positions (after, upto], as the log lists them."""
        return list(self.store.read(after, upto))

    def record_of(self, event_id: str) -> Record | None:
        position = self.by_event_id.get(event_id)
        if position is None:
            return None
        [record] = self.records(position - 1, position)
        return record

    def append(self, envelopes: Sequence[Any], indexed: bool | None = None) -> list[AppendResult]:
        """Append one batch, all or nothing, and wait for it. Raises `Rejected` or `EventIdReused`."""
        return self.submit(envelopes, indexed).result()

    def submit(self, envelopes: Sequence[Any], indexed: bool | None = None) -> Future[list[AppendResult]]:
        """Queue one batch for the next group commit; the future gives its results or its error.

        Problems name the index of their event when `indexed` (default: when
        there is more than one event); the batch endpoint always wants it.

        One committer thread takes every batch waiting, checks each on its own
        against the log plus the batches accepted before it, and stores all
        accepted ones in one transaction; each caller still gets its own
        answer. A single thread, rather than whichever caller comes first,
        keeps many waiting callers from contending for the interpreter lock.
        """
        future = self._enqueue(envelopes, indexed, None)
        assert isinstance(future, Future)
        return future

    def submit_async(self, envelopes: Sequence[Any], indexed: bool | None = None) -> asyncio.Future[list[AppendResult]]:
        """`submit` for a caller on the running event loop: the answers of a whole group commit reach
        the loop in one hand-over, rather than one thread-safe call per caller (decision 47)."""
        future = self._enqueue(envelopes, indexed, asyncio.get_running_loop())
        assert isinstance(future, asyncio.Future)
        return future

    def _enqueue(
        self, envelopes: Sequence[Any], indexed: bool | None, loop: asyncio.AbstractEventLoop | None
    ) -> Future[list[AppendResult]] | asyncio.Future[list[AppendResult]]:
        pending = _Pending(list(envelopes), len(envelopes) > 1 if indexed is None else indexed, loop)
        if not 1 <= len(envelopes) <= MAX_BATCH:
            pending.finish(None, Rejected([Problem("events", f"a batch holds 1 to {MAX_BATCH} events")]))
            _deliver([pending])
            return pending.future
        with self._queue_lock:
            if self._closing:
                raise RuntimeError("the ledger log is closed")
            self._queue.append(pending)
            self._wake.set()
            if self._committer is None:
                self._committer = threading.Thread(target=self._commit_loop, name="ledger-commit", daemon=True)
                self._committer.start()
        return pending.future

    def close(self) -> None:
        """Stop the committer thread once the batches already queued are committed."""
        with self._queue_lock:
            self._closing = True
            self._wake.set()
            committer = self._committer
        if committer is not None and committer is not threading.current_thread():
            committer.join()

    def _commit_loop(self) -> None:
        while True:
            with self._queue_lock:
                if not self._queue:
                    if self._closing:
                        return
                    self._wake.clear()
            self._wake.wait()
            try:
                # Without the cycle collector: a group's checked envelopes, parsed events and
                # records would be walked by its young collections while they are made, and most
                # of them are dropped when the group is answered (decision 77). A group makes no
                # reference cycle that could outlive the pause (a test holds it to that).
                with self._lock, no_cyclic_gc():
                    self._commit_queued()
            except BaseException:
                # The one committer must not die, or every later append would wait for ever: not even
                # of `SystemExit`, which would end only this thread. Its group was answered as
                # interrupted; nothing here is meant to stop the process (signals reach the main
                # thread only).
                log.exception("group commit failed")

    def _commit_queued(self) -> None:
        with self._queue_lock:
            taken, size = 0, 0
            for pending in self._queue:
                if taken and size + len(pending.envelopes) > GROUP_MAX:
                    break
                taken, size = taken + 1, size + len(pending.envelopes)
            queued, self._queue = self._queue[:taken], self._queue[taken:]
        # A caller that gave up (its future cancelled) is not stored; the others can no longer cancel.
        group = [pending for pending in queued if pending.wanted()]
        try:
            # No read of the store before a first attempt: if another process appended meanwhile,
            # our first position is taken and we read and try again; an acceptance is therefore
            # always checked against the complete log. A rejection may rest on what another
            # process added since our last read, so it stands only after such a read.
            read = False
            size = sum(len(pending.envelopes) for pending in group)
            for attempt in range(_RETRIES):
                # A retry means another process stored first. Checked again and then stored, the
                # group would lose to that process's next commit whenever it waited for the lock
                # meanwhile (with a steady writer elsewhere, every time): so a retry takes the
                # lock, then reads the rest of the log, which no one can extend until it commits.
                # What the others stored so far is read before the lock: after an import through
                # another process, reading its million events under the lock took longer than
                # the other writers wait for it (`POSTGRES_LOCK_TIMEOUT`), and they answered 503.
                streamed = (size >= STREAM_MIN or attempt > 0) and size <= STREAM_MAX
                stream = self.store.append_stream() if streamed else None
                outcomes: list[tuple[_Pending, list[AppendResult] | None, Exception | None]] = []
                try:
                    if attempt:
                        if stream is not None:
                            self.catch_up()
                            stream.lock()
                        self.catch_up()
                        read = True
                    draft = _Draft(self.refs.overlay())
                    # Read before any row is sent: the stream holds the table lock from its first
                    # rows (on a first attempt; a retry holds it already, and reads what it must).
                    stored = self._stored_records([pending.envelopes for pending in group])
                    for pending in group:
                        joined = len(draft.fresh)
                        try:
                            prepared = self._prepare(pending.envelopes, draft, pending.indexed, stream, stored)
                            outcomes.append((pending, prepared, None))
                        except (Rejected, EventIdReused) as rejected:
                            # Without its traceback: through this frame, which holds `outcomes`,
                            # it would be a reference cycle, left for the paused collector.
                            outcomes.append((pending, None, _bare(rejected)))
                        except (StoreUnavailable, PositionTaken):
                            raise  # the store's trouble: the whole group's
                        except Exception as error:  # a bug on this batch's input: its caller's 500 alone,
                            if len(draft.fresh) != joined:  # unless its events joined the group's already
                                raise
                            log.exception("checking a batch failed")
                            outcomes.append((pending, None, _bare(error)))
                    failed = any(failure is not None for _, _, failure in outcomes)
                    if stream is not None and failed:
                        # It holds what the rejected batch sent: the rest are sent anew, below, and
                        # the table lock (a retry's, taken before it read) is kept meanwhile.
                        stream.drop_rows()
                    if not read and failed:
                        head = self.head
                        self.catch_up()
                        read = True
                        if self.head != head:
                            continue
                    if draft.fresh:
                        try:
                            if stream is not None and failed:
                                for sealed in draft.fresh:
                                    stream.write(sealed.record)
                            if stream is None or not stream.commit():
                                self.store.append([sealed.record for sealed in draft.fresh])
                        except PositionTaken:
                            continue
                        self._accept(
                            [sealed.logged() for sealed in draft.fresh],
                            [sealed.record.recorded_at for sealed in draft.fresh],
                            _without_state(draft.fresh[-1].record),
                            draft.refs,
                        )
                        HEAP.added(len(draft.fresh))
                finally:
                    if stream is not None:
                        stream.abort()  # nothing to do once committed; else nothing of it is stored
                for pending, results, failure in outcomes:
                    pending.finish(results, failure)
                return
            raise PositionTaken("too many concurrent writers; try again")
        except BaseException as error:
            handed: Exception = PositionTaken("interrupted")
            if isinstance(error, Exception):
                if not isinstance(error, (StoreUnavailable, PositionTaken)):
                    log.exception("group commit failed")  # a bug: its stack is here, not in the answer
                # Without tracebacks, as a rejection: through this frame, which holds the group,
                # they would be a reference cycle holding every envelope of it (decision 77).
                handed = _bare(error)
            for pending in group:
                if not pending.finished:
                    pending.finish(None, handed)
            if not isinstance(error, Exception):
                raise
        finally:
            _deliver(group)

    def check(self, envelopes: Sequence[Any]) -> list[Sealed]:
        """Validate hypothetical events as if appended now; store nothing (what-if)."""
        if len(envelopes) > MAX_BATCH:
            raise Rejected([Problem("events", f"at most {MAX_BATCH} events")])
        with self._lock:
            self.catch_up()
            draft = _Draft(self.refs.overlay())
            self._prepare(envelopes, draft, indexed=True)
            return draft.fresh

    def _prepare(
        self,
        envelopes: Sequence[Any],
        draft: _Draft,
        indexed: bool,
        stream: AppendStream | None = None,
        stored: dict[str, Record] | None = None,
    ) -> list[AppendResult]:
        """Check one batch against the log plus the draft; on success add it to the draft.

        Each event is sealed as soon as it is checked, while nothing before it failed, and sent to
        `stream` if there is one: the database stores it while the rest are checked. A rejected
        batch's records go nowhere else (the caller abandons the stream)."""
        batch = indexed
        # Each envelope's event id, once (None where there is none to read): most batches are all
        # new events, each once, and then nothing below looks an event up again.
        ids: list[Any] = [envelope.get("event_id") if isinstance(envelope, dict) else None for envelope in envelopes]
        if stored is None:
            stored = self._stored_records([envelopes])
        known_records = self._known(ids, draft, stored) if stored or draft.staged else {}
        replays: dict[int, Record] = {}
        first_in_batch: dict[str, int] = {}
        repeated = False
        for i, event_id in enumerate(ids):
            if not isinstance(event_id, str):
                continue
            known = known_records.get(event_id) if known_records else None
            if known is not None:
                if not _replays(known.type, known.data, envelopes[i]):
                    raise EventIdReused(i if batch else None, event_id)
                replays[i] = known
            elif event_id in first_in_batch:
                first = envelopes[first_in_batch[event_id]]
                if not _replays(first.get("type"), first.get("data"), envelopes[i]):
                    raise EventIdReused(i, event_id)
                repeated = True
            else:
                first_in_batch[event_id] = i
        skipping = bool(replays) or repeated  # else every envelope is checked and sealed, in order

        refs = draft.refs.overlay()
        problems: list[Problem] = []
        now = format_time(self.clock())
        previous = draft.fresh[-1].record if draft.fresh else self.last
        position = self.head + len(draft.fresh)
        sealed: list[Sealed] = []
        for i, envelope in enumerate(envelopes):
            if skipping:
                event_id = ids[i]
                if i in replays or (isinstance(event_id, str) and first_in_batch.get(event_id, i) != i):
                    continue
            if len(problems) >= MAX_PROBLEMS:  # the request is rejected; its first problems are enough
                problems.append(Problem("", f"this event and those after it were not checked: a request "
                                            f"names its first {MAX_PROBLEMS:,} problems").at(i if batch else None))
                break
            checked = parse_envelope(envelope)
            if isinstance(checked, list):
                checked += references_beside(envelope, refs, self.currency)
                problems += [p.at(i if batch else None) for p in checked]
                continue
            found = check_references(checked.event, refs, self.currency)
            if found:
                problems += [p.at(i if batch else None) for p in found]
                continue
            refs.apply(checked.event)
            if problems:
                continue  # the batch is rejected: only its other problems are still wanted
            position += 1
            previous = seal(previous, position, checked.event_id, checked.type, checked.data, now)
            sealed.append(Sealed(previous, checked.event))
            if stream is not None:
                stream.write(previous)
        if problems:
            raise Rejected(problems)
        refs.merge_into_parent()
        draft.fresh += sealed
        staged = draft.staged
        for entry in sealed:
            staged[entry.record.event_id] = entry.record

        if not skipping:
            return [AppendResult(e.record.event_id, e.record.position, e.record.recorded_at, False) for e in sealed]
        results = []
        for i, event_id in enumerate(ids):
            if i in replays:
                rec, duplicate = replays[i], True
            else:
                rec = staged[event_id]
                duplicate = first_in_batch[event_id] != i
            results.append(AppendResult(rec.event_id, rec.position, rec.recorded_at, duplicate))
        return results

    def _known(self, ids: Sequence[Any], draft: _Draft, stored: dict[str, Record]) -> dict[str, Record]:
        """The records of these event ids that the draft or the log already holds (`stored`: the
        log's, from `_stored_records`)."""
        found: dict[str, Record] = {}
        for event_id in ids:
            if not isinstance(event_id, str):
                continue
            record = draft.staged.get(event_id) or stored.get(event_id)
            if record is not None:
                found[event_id] = record
        return found

    def _stored_records(self, batches: Iterable[Sequence[Any]]) -> dict[str, Record]:
        """The stored records of the event ids in these batches that the log already holds, read
        back in one query (a resent batch is the usual case)."""
        by_event_id = self.by_event_id
        positions = {
            position
            for envelopes in batches
            for envelope in envelopes
            if isinstance(envelope, dict)
            and isinstance(event_id := envelope.get("event_id"), str)
            and (position := by_event_id.get(event_id)) is not None
        }
        if not positions:
            return {}
        records = (decode_record(row) for row in self.store.read_positions(sorted(positions)))
        return {record.event_id: record for record in records}


_PAGE = 10_000  # stored events taken into the log at a time while catching up


@dataclass
class _Draft:
    """Events accepted into the group being committed, not yet stored."""

    refs: ReferenceIndex
    staged: dict[str, Record] = field(default_factory=dict)
    fresh: list[Sealed] = field(default_factory=list)


def _bare(error: Exception) -> Exception:
    """`error` without its traceback, nor those of the errors it was raised from or while handling
    (a store's error is raised from the driver's, whose traceback reaches the committer's frame)."""
    seen: set[int] = set()
    chain: list[BaseException] = [error]
    while chain:
        link = chain.pop()
        if id(link) not in seen:
            seen.add(id(link))
            link.__traceback__ = None
            chain += [linked for linked in (link.__cause__, link.__context__) if linked is not None]
    return error


def _without_state(record: Record) -> Record:
    """The head record as kept in memory (`dataclasses.replace` costs several times as much)."""
    return Record(record.position, record.event_id, record.type, record.data, record.recorded_at, record.hash)


class _Pending:
    """One caller's batch waiting for a group commit, and its outcome once committed.

    `future` is a `concurrent.futures.Future` for a thread that waits, or an
    `asyncio.Future` of `loop` for a caller on an event loop (set in that loop's
    thread by `_deliver`).
    """

    def __init__(self, envelopes: list[Any], indexed: bool, loop: asyncio.AbstractEventLoop | None) -> None:
        self.envelopes = envelopes
        self.indexed = indexed
        self.loop = loop
        self.future: Future[list[AppendResult]] | asyncio.Future[list[AppendResult]] = (
            Future() if loop is None else loop.create_future()
        )
        self.finished = False
        self._results: list[AppendResult] | None = None
        self._error: Exception | None = None

    def wanted(self) -> bool:
        """False if the caller gave up before the commit began: its events are not stored. (An
        event-loop caller that gives up later misses the answer; its events may be stored.)"""
        future = self.future
        if isinstance(future, Future):
            return future.set_running_or_notify_cancel()
        return not future.cancelled()

    def finish(self, results: list[AppendResult] | None, error: Exception | None) -> None:
        """Record the outcome; `_deliver` hands it to the caller."""
        assert error is not None or results is not None
        self._results, self._error, self.finished = results, error, True

    def resolve(self) -> None:
        """Set the future (in the loop's own thread for an `asyncio.Future`)."""
        future = self.future
        if not self.finished or future.done():
            return
        if self._error is not None:
            future.set_exception(self._error)
        else:
            assert self._results is not None
            future.set_result(self._results)


def _resolve_all(pendings: list[_Pending]) -> None:
    for pending in pendings:
        pending.resolve()


def _deliver(pendings: Sequence[_Pending]) -> None:
    """Resolve the finished callers' futures: waiting threads at once, and each event loop's callers
    in one thread-safe call (one wake-up of the loop per group commit, not one per caller)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Pending]] = {}
    for pending in pendings:
        if pending.loop is None:
            pending.resolve()
        else:
            by_loop.setdefault(pending.loop, []).append(pending)
    for loop, waiting in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: no one is left to answer
            loop.call_soon_threadsafe(_resolve_all, waiting)
