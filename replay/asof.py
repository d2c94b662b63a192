"""Reading the ledger as it stood at any position (§6).

The head book follows the log: before each read it folds in whatever the log
accepted since. Books are read and advanced only inside `reading()`, one
thread at a time, so a read never sees a half-applied event; the API runs
reads in its thread pool, so a long read never stalls the event loop. Its state is
versioned by position, so a read at any past position is a view of the same
book, with no re-fold of the log.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Protocol

from ledger.appender import LedgerLog
from ledger.events import EventData
from ledger.heap import HEAP, no_cyclic_gc, settle
from ledger.records import format_time
from ledger.settings import MEMO_LINES
from ledger.store import StoreUnavailable
from projections.book import Book, BookView, recent_periods

log = logging.getLogger("ledger.books")


class Foldable(Protocol):
    """An event with its position and id: `Logged`, or a `Sealed` record of an append."""

    @property
    def position(self) -> int: ...

    @property
    def event_id(self) -> str: ...

    @property
    def event(self) -> EventData: ...


class BooksBroken(Exception):
    """Folding an event failed (a bug): the book may hold part of it, so no read may trust it. The
    event is stored (appends go on); a restart folds the log again from the store. Reads answer
    500 `books_failed` with this message rather than figures that may be wrong."""

    def __init__(self, position: int, cause: str) -> None:
        super().__init__(
            f"the books could not fold the event at position {position} ({cause}); it is stored, and "
            "reads answer this until the service is restarted (a fault that recurs will stop it at start-up)"
        )
        self.position = position
        self.cause = cause


def fold(entries: Iterable[Foldable], memo_lines: int = MEMO_LINES) -> Book:
    book = Book(memo_lines=memo_lines)
    for entry in entries:
        book.apply(entry.position, entry.event_id, entry.event)
    return book


_QUIET = 0.2  # seconds without appends before the follower folds
_CHUNK = 2_000  # events the follower folds at a time, checking for new appends in between
#: While appends go on without a pause, the follower looks again once `_LAG` seconds have passed
#: (in steps of `_QUIET`). It folds a stream that takes at most `_DUTY` of the time at the rate the
#: books have folded, and whatever waits with it within that share of the time, so a backlog an
#: import left drains at that pace; an import itself, a faster stream, waits for a pause or a
#: read (decision 62).
_LAG = 0.3
_DUTY = 0.1
_STREAM_CHUNK = 250  # events folded at a time while appends go on...
_STREAM_PAUSE = 0.02  # ...and seconds between two such folds
#: Seconds of folding measured before `Books.fold_rate` is trusted.
_MEASURED_S = 0.02


def stream_budget(append_rate: float, elapsed: float, fold_rate: float | None) -> int:
    """Events the follower may fold now, `elapsed` seconds after it last looked, while appends
    arrive at `append_rate` events/s: `_DUTY` of that time at `fold_rate` (events/s); none if the
    stream alone would take more (an import); one chunk, to measure the rate, if none was yet."""
    if fold_rate is None:
        return _CHUNK
    if append_rate > _DUTY * fold_rate:
        return 0
    return max(int(_DUTY * fold_rate * elapsed), 1)


_SETTLE_READS = 2_000  # memoised results between heap settles (decision 37)
#: An import, after which `Books.warm` runs: this many events folded by one read, or by the
#: follower since it last warmed.
WARM_AFTER = 10_000
_PAGE = 10_000  # events read and folded at a time at start-up


class Books:
    def __init__(self, log: LedgerLog, memo_lines: int = MEMO_LINES, warm_after: int = WARM_AFTER) -> None:
        self.log = log
        self.warm_after = warm_after
        #: The position the recent periods' rows were last warmed at (or the follower started at):
        #: the follower warms once it has folded `warm_after` events past it, in as many steps as
        #: appends pausing and resuming cut an import into.
        self._warmed_at = 0
        self._head = Book(memo_lines=memo_lines)
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._follower: threading.Thread | None = None
        self._settled_at = 0
        #: Set once a fold fails (`BooksBroken`): every later read fails the same way.
        self._broken: tuple[int, str] | None = None
        #: Events folded, and seconds spent folding them with the books held, since start-up.
        self._fold_events = 0
        self._fold_seconds = 0.0

    @property
    def folded(self) -> int:
        """The position the books have folded to, without folding more (how far behind they are)."""
        return self._head.position

    @property
    def fold_rate(self) -> float | None:
        """Events folded per second spent folding so far, start-up's included (whose store reads
        are not counted; a backlog the log read back from the store is, decision 52); None until
        `_MEASURED_S` of folding was measured."""
        return self._fold_events / self._fold_seconds if self._fold_seconds >= _MEASURED_S else None

    def follow(self) -> None:
        """Fold what the log accepts as it arrives, in a thread of its own, so that a read after a
        large import does not pay for folding it (a read still folds whatever is left)."""
        if self._follower is None:
            self._warmed_at = self._head.position  # start-up's fold is not an import to warm after
            self._follower = threading.Thread(target=self._follow, name="ledger-follow", daemon=True)
            self._follower.start()

    def _follow(self) -> None:
        grew = self.log.grew
        while not self._closing.is_set():
            if not grew.wait(timeout=1.0):
                continue
            # Let a burst of appends finish first (folding competes with them for the CPU):
            # fold once the log has been quiet for a moment. Look every `_QUIET` seconds rather
            # than wake at each group commit: a wake takes the interpreter lock from the appends.
            # Appends that do not pause get a share of the time if they are a stream the books
            # can follow (single appends, not an import): `stream_budget`.
            since, head = time.monotonic(), self.log.head
            budget: int | None = None
            while grew.is_set() and not self._closing.is_set():
                grew.clear()
                self._closing.wait(_QUIET)
                elapsed = time.monotonic() - since
                if grew.is_set() and elapsed >= _LAG:
                    budget = stream_budget((self.log.head - head) / elapsed, elapsed, self.fold_rate)
                    if budget:
                        break
                    budget, since, head = None, time.monotonic(), self.log.head
            try:
                if budget is None:
                    # Fold in chunks, and stop as soon as appends resume: a million-event backlog
                    # takes half a minute to fold, and appends arriving meanwhile would share the
                    # CPU with it. The same for warming the rankings after it.
                    while not self._closing.is_set() and not grew.is_set() and self._fold(_CHUNK):
                        pass
                    if self._head.position - self._warmed_at >= self.warm_after and not self.log.backlog:
                        self.warm(stop=lambda: grew.is_set() or self._closing.is_set() or self._broken is not None)
                else:
                    # A little at a time, with pauses: folding in bursts doubled the appends' p99.
                    goal = min(self.log.head, self._head.position + budget)
                    while (
                        not self._closing.is_set()
                        and self._head.position < goal
                        and self._fold(min(_STREAM_CHUNK, goal - self._head.position))
                    ):
                        self._closing.wait(_STREAM_PAUSE)
            except StoreUnavailable:  # events dropped by the log are read back (decision 52)
                log.warning("the books could not read the store; the next read or pause folds again")
                self._closing.wait(_QUIET)
            except BooksBroken:
                return  # logged where it happened; reads answer it from now on
            except Exception:  # the thread must not end unnoticed: reads would pay for every fold
                log.exception("the follower failed; the next read or pause folds again")
                self._closing.wait(_QUIET)

    def close(self) -> None:
        self._closing.set()
        self.log.grew.set()
        if self._follower is not None and self._follower is not threading.current_thread():
            self._follower.join()

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Hold the books for one read (or a whole CLI command): no one advances them meanwhile."""
        with self._lock:
            yield
            # Memoised read results live long too: settle the heap after every so many, or full
            # collections of its young part grow with the memo (pauses of 100 ms and more).
            computed = self._head.engine.computed
            if computed - self._settled_at >= _SETTLE_READS:
                self._settled_at = computed
                settle()

    @property
    def broken(self) -> BooksBroken | None:
        """The failure that stops every read, once a fold failed (health checks report it)."""
        return None if self._broken is None else BooksBroken(*self._broken)

    @property
    def head(self) -> Book:
        """The book at the newest position this process has read from the log. A read that folds
        an import (`warm_after` events or more at once) warms the rankings before it answers, the
        books held throughout (other reads wait for it as for the fold); a read that folds less
        never does, lest a read under a stream of appends pay for it."""
        with self._lock:
            first = self._head.position
            self._fold(None)
            if self._head.position - first >= self.warm_after:
                self.warm()
            return self._head

    def warm(self, stop: Callable[[], bool] = lambda: False) -> int:
        """Compute everyone's attainment rows of the recent periods (`recent_periods`, newest
        first), one period at a time with the books held, until `stop()` (asked before each
        period); the rows computed.

        A ranking of a team reads its rows from the memo where they are (decision 108): after an
        import, every row of every period it reached has to be computed again, 500 at the first
        ranking of each team and period. Rows of people nothing changed are found, not computed.
        Only as many periods as fill half the memo: the rows must not push each other out."""
        computed = 0
        with self._lock:
            head = self._head
            engine, at = head.engine, head.position
            people = max(len(head.state.participants), 1)
            periods = recent_periods(head.state, at)[: engine.memo_lines // 2 // people]
        for period in periods:
            if stop():
                return computed
            # Tens of thousands of rows, kept: settled, not walked by the collector. Paused only
            # while the books are held, or other threads' garbage cycles would be frozen too.
            with self._lock, no_cyclic_gc(settling=True):
                before = engine.computed
                head.view().rows(period)
                computed += engine.computed - before
                self._settled_at = engine.computed
        self._warmed_at = max(self._warmed_at, at)
        return computed

    def _fold(self, limit: int | None) -> bool:
        """Fold up to `limit` (None: all there are now) of the log's unfolded entries; True if
        some remain. The log hands them over a page at a time when it had dropped them."""
        with self._lock:
            if self._broken is not None:
                raise BooksBroken(*self._broken)
            head = self._head
            goal = self.log.head if limit is None else head.position + limit
            started, first = time.monotonic(), head.position
            while head.position < goal:
                with HEAP.folding() as tally:
                    entries = self.log.take(goal - head.position)
                    position = head.position + 1
                    try:
                        for entry in entries:
                            position = entry.position
                            assert position == head.position + 1, "the book must follow the log in order"
                            head.apply(position, entry.event_id, entry.event)
                    except BaseException as error:  # the log has handed these over: they cannot be taken again
                        # Its kind only: every caller sees it, the health checks without a token, and
                        # the message may name anything the event holds; the log keeps all of it.
                        self._broken = (position, f"{type(error).__name__}; its message is in the service's log")
                        log.exception("the books could not fold the event at position %d", position)
                        if not isinstance(error, Exception):
                            raise  # an interrupt or exit goes on its way; the books stay marked
                        raise BooksBroken(*self._broken) from error
                    tally.count = len(entries)
                    del entries  # freed before the heap is settled (they are not kept)
                if not tally.count:
                    break
            if head.position > first:
                self._fold_events += head.position - first
                self._fold_seconds += time.monotonic() - started
            return self.log.backlog > 0

    def catch_up(self) -> None:
        """Read the whole stored log and fold it page by page (start-up): each page's parsed events
        are folded and dropped before the next is parsed, so they are never all in memory at once
        (the next page's raw rows are read meanwhile, decision 69)."""
        while self.log.catch_up(limit=_PAGE, read_ahead=True):
            self._fold(None)

    def at(self, position: int | None) -> BookView:
        """The book as it stood at a position (None: now). The caller checked 0 <= position <= head;
        a position the log's times gave may be one the log accepted since the fold began."""
        with self._lock:
            book = self.head
            if position is not None and position > book.position:
                self._fold(position - book.position)
            return book.view(position)

    def through(self, position: int) -> BookView:
        """The book folded to exactly `position`, not past it, for a what-if to copy its state there
        (decision 96). The caller holds `reading()`, so that nothing folds past it meanwhile."""
        with self._lock:
            head = self._head
            self._fold(max(position - head.position, 0))  # raises `BooksBroken` after a failed fold, as reads do
            if head.position != position:
                raise AssertionError(f"the books are at {head.position}, not {position}")
            return head.view()

    def position_at_time(self, moment: datetime) -> int:
        """The last position recorded at or before a moment; 0 if none."""
        return bisect.bisect_right(self.log.times, format_time(moment))
