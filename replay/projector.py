"""`ledger project`: keep the materialized statement view current, as the leader or a standby.

The leader folds the log into a book from the view's tracked position on,
and after each batch writes the rows of the statements the batch may have
changed, with the new tracked position, in one transaction. A standby only
tries to win the election every `poll` seconds; when it wins, it rebuilds its
book up to the tracked position and goes on from there, so no event is
skipped or applied twice whoever stopped where.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ledger.damage import stored_events
from ledger.election import Election, election_for
from ledger.heap import HEAP
from ledger.settings import MEMO_LINES, Database
from ledger.store import EventStore
from ledger.view_rows import ViewRow, row_from_json, row_to_json
from ledger.views import StatementView, open_view
from projections.book import Book
from projections.views import Wanted, computed_here, periods_of, view_changes
from replay.forked import map_forked

log = logging.getLogger("ledger.projector")

#: Seconds a worker waits at most before it tries again after its projection failed.
RETRY_MAX_WAIT = 30.0
#: Events folded between looks at the stop signal while a worker folds the log to take the lead.
STOP_CHECK_EVERY = 1_000


class Stopped(Exception):
    """Asked to stop while folding the log to take the lead: nothing was written."""


class Projector:
    def __init__(
        self,
        store: EventStore,
        view: StatementView,
        election: Election,
        worker: str,
        batch: int = 10_000,
        memo_lines: int = MEMO_LINES,
        workers: int = 1,
    ) -> None:
        self.store = store
        self.view = view
        self.election = election
        self.worker = worker
        self.batch = batch
        self.memo_lines = memo_lines
        #: Processes that share a large batch's statements, this one included (`replay.forked`).
        self.workers = workers
        self.book = Book(memo_lines=memo_lines)
        self.periods: set[str] = set()
        self.written: set[tuple[str, str]] = set()

    def _fold(self, after: int, upto: int | None, stop: threading.Event | None = None) -> int:
        with HEAP.folding() as tally:
            for record, event in stored_events(self.store, after, upto, ahead=True):
                self.book.apply(record.position, record.event_id, event)
                self.periods |= periods_of(event)
                tally.count += 1
                if stop is not None and tally.count % STOP_CHECK_EVERY == 0 and stop.is_set():
                    raise Stopped(record.position)
        return tally.count

    def activate(self, stop: threading.Event | None = None) -> int:
        """Rebuild the book up to the view's tracked position; returns that position. Raises
        `Stopped` if `stop` is set meanwhile: a million events take about 25 s to fold, longer
        than a container's grace before it is killed."""
        tracked = self.view.position()
        self.book, self.periods = Book(memo_lines=self.memo_lines), set()
        self._fold(0, tracked, stop)
        self.written = {(row.participant_id, row.period) for row in self.view.rows()}
        return tracked

    def step(self) -> int:
        """Apply the next batch of events to the view; returns how many events it applied."""
        before = self.book.position
        if not self._fold(before, before + self.batch):
            return 0
        changes = view_changes(self.book.view(), before, self.periods, self.written, self._map_rows)
        self.view.record(changes, before + 1, self.book.position, self.worker)
        self.written |= {(row.participant_id, row.period) for row in changes.upserts}
        self.written -= set(changes.deletes)
        log.info(
            "projected",
            extra={"first": before + 1, "last": self.book.position, "rows": len(changes.upserts),
                   "closed": changes.closed, "worker": self.worker},
        )
        return self.book.position - before

    def _map_rows(
        self, items: Sequence[Wanted], work: Callable[[Wanted], list[ViewRow | None]]
    ) -> list[list[ViewRow | None]]:
        """The statements of a batch, shared with forked workers once they look worth it (decision
        131): rows travel back as JSON, their figures as exact decimal strings."""
        if self.workers <= 1:
            return computed_here(items, work)

        def encoded(item: Wanted) -> list[list[Any] | None]:
            return [None if row is None else row_to_json(row) for row in work(item)]

        answers = map_forked(items, encoded, self.workers)
        return [[None if row is None else row_from_json(row) for row in answer] for answer in answers]

    def catch_up(self) -> int:
        """Apply batches until the view reaches the log's head; returns the position reached."""
        while self.step():
            pass
        return self.book.position

    def run(self, stop: threading.Event, poll: float = 0.2) -> None:
        """Lead when possible, stand by otherwise, until `stop` is set."""
        standing_by = False
        failures = 0  # in a row: each waits twice as long as the one before, up to `RETRY_MAX_WAIT`
        try:
            while not stop.is_set():
                if not self.election.try_lead():
                    if not standing_by:
                        log.info("standby", extra={"worker": self.worker})
                        standing_by = True
                    stop.wait(poll)
                    continue
                standing_by = False
                try:
                    log.info("leading", extra={"worker": self.worker, "position": self.activate(stop)})
                    while not stop.is_set() and self.election.leading():
                        applied = self.step()
                        failures = 0  # the view took a step (or had none to take): the fault passed
                        if not applied:
                            stop.wait(poll)
                except Stopped as stopped:
                    where = {"worker": self.worker, "position": stopped.args[0]}
                    log.info("stopped while taking the lead", extra=where)
                    break
                except Exception:  # a lost database or a rival's write: start over from the tracked position
                    # A fault that recurs (a write the database keeps refusing) would otherwise fold
                    # the whole log again every `poll` seconds, for ever (decision 128). The lead is
                    # given up first: a standby may fare better meanwhile.
                    log.exception("projection interrupted", extra={"worker": self.worker})
                    self.election.resign()
                    stop.wait(min(poll * 2**failures, RETRY_MAX_WAIT))
                    failures = min(failures + 1, 30)
                finally:
                    self.election.resign()
        finally:
            self.election.resign()  # a standby's session too


def projector_for(
    store: EventStore, database: Database, batch: int = 10_000, memo_lines: int = MEMO_LINES, workers: int = 1
) -> Projector:
    """A projector on the store's database, with its election, named after this host and process."""
    pool = getattr(store.datastore, "pool", None)  # PostgreSQL: the election connects like the pool
    election = election_for(database, getattr(pool, "kwargs", None))
    worker = f"{socket.gethostname()}:{os.getpid()}"
    return Projector(store, open_view(store), election, worker, batch, memo_lines, workers)
