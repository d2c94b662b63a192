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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Protocol

from ledger.appender import LedgerLog
from ledger.events import EventData
from ledger.heap import HEAP, settle
from ledger.records import format_time
from ledger.store import StoreUnavailable
from projections.book import Book, BookView

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


def fold(entries: Iterable[Foldable]) -> Book:
    book = Book()
    for entry in entries:
        book.apply(entry.position, entry.event_id, entry.event)
    return book


_QUIET = 0.2  # seconds without appends before the follower folds
_CHUNK = 2_000  # events the follower folds at a time, checking for new appends in between
#: Under a steady stream of appends the follower folds at least this often (seconds), if folding
#: the stream takes at most `_DUTY` of the time at the rate the books measured, and if what is
#: waiting takes at most `_LAG` to fold: an import's backlog waits for a pause, as it did, rather
#: than take the CPU from the appends that follow it (decision 62).
_LAG = 0.5
_DUTY = 0.25
_FOLD_RATE = 20_000.0  # events folded per second of folding, assumed until one is measured


def can_follow(append_rate: float, backlog: int, fold_rate: float) -> bool:
    """Whether folding appends as they arrive at `append_rate` (events/s) would take at most
    `_DUTY` of the time, and the `backlog` waiting at most `_LAG`, folding at `fold_rate`
    (events/s): a stream of single appends, not an import or what one left."""
    return append_rate <= _DUTY * fold_rate and backlog <= _LAG * fold_rate
_SETTLE_READS = 2_000  # memoised results between heap settles (decision 37)
_PAGE = 10_000  # events read and folded at a time at start-up


class Books:
    def __init__(self, log: LedgerLog) -> None:
        self.log = log
        self._head = Book()
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._follower: threading.Thread | None = None
        self._settled_at = 0
        #: Set once a fold fails (`BooksBroken`): every later read fails the same way.
        self._broken: tuple[int, str] | None = None
        #: Events folded, and seconds spent folding them (the books held), since start-up.
        self._folded = 0
        self._folding_s = 0.0

    @property
    def folded(self) -> int:
        """The position the books have folded to, without folding more (how far behind they are)."""
        return self._head.position

    @property
    def fold_rate(self) -> float:
        """Events folded per second of folding so far (start-up's included: it reads the store too,
        so this errs on the slow side); `_FOLD_RATE` until a tenth of a second was measured."""
        return self._folded / self._folding_s if self._folding_s >= 0.1 else _FOLD_RATE

    def follow(self) -> None:
        """Fold what the log accepts as it arrives, in a thread of its own, so that a read after a
        large import does not pay for folding it (a read still folds whatever is left)."""
        if self._follower is None:
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
            # A stream that does not pause but that the books can follow cheaply (single appends,
            # not an import) is folded every `_LAG` seconds as it goes.
            since, head = time.monotonic(), self.log.head
            streaming = False
            while grew.is_set() and not self._closing.is_set():
                grew.clear()
                self._closing.wait(_QUIET)
                elapsed = time.monotonic() - since
                if grew.is_set() and elapsed >= _LAG:
                    if can_follow((self.log.head - head) / elapsed, self.log.backlog, self.fold_rate):
                        streaming = True
                        break
                    since, head = time.monotonic(), self.log.head
            # Fold in chunks, and stop as soon as appends resume: a million-event backlog takes
            # half a minute to fold, and appends arriving meanwhile would share the CPU with it.
            # Following a stream, fold what had arrived when it was decided, then look again.
            try:
                goal = self.log.head
                while (
                    not self._closing.is_set()
                    and (streaming or not grew.is_set())
                    and self._head.position < goal
                    and self._fold(min(_CHUNK, goal - self._head.position))
                ):
                    pass
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
        """The book at the newest position this process has read from the log."""
        self._fold(None)
        return self._head

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
                        self._broken = (position, f"{type(error).__name__}: {error}")
                        if not isinstance(error, Exception):
                            raise  # an interrupt or exit goes on its way; the books stay marked
                        log.exception("the books could not fold the event at position %d", position)
                        raise BooksBroken(*self._broken) from error
                    tally.count = len(entries)
                    del entries  # freed before the heap is settled (they are not kept)
                if not tally.count:
                    break
            if head.position > first:
                self._folded += head.position - first
                self._folding_s += time.monotonic() - started
            return self.log.backlog > 0

    def catch_up(self) -> None:
        """Read the whole stored log and fold it page by page (start-up): each page's parsed events
        are folded and dropped before the next is read, so they are never all in memory at once."""
        while self.log.catch_up(limit=_PAGE):
            self._fold(None)

    def at(self, position: int | None) -> BookView:
        """The book as it stood at a position (None: now). The caller checked 0 <= position <= head."""
        return self.head.view(position)

    def position_at_time(self, moment: datetime) -> int:
        """The last position recorded at or before a moment; 0 if none."""
        return bisect.bisect_right(self.log.times, format_time(moment))
