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
from projections.book import Book, BookView


class Foldable(Protocol):
    """An event with its position and id: `Logged`, or a `Sealed` record of an append."""

    @property
    def position(self) -> int: ...

    @property
    def event_id(self) -> str: ...

    @property
    def event(self) -> EventData: ...


def fold(entries: Iterable[Foldable]) -> Book:
    book = Book()
    for entry in entries:
        book.apply(entry.position, entry.event_id, entry.event)
    return book


_QUIET = 0.2  # seconds without appends before the follower folds
_CHUNK = 2_000  # events the follower folds at a time, checking for new appends in between
#: Accepted events the follower leaves unfolded while appends go on; past it, it folds anyway.
#: Each holds its parsed event (about a kilobyte), and a read folds whatever is left first.
_BACKLOG = 20_000
#: Events folded at a time while appends go on: the follower gives the interpreter lock back after
#: each slice (about 2 ms), where the interpreter would make appends wait up to 5 ms for it.
_SLICE = 200
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
            # A long burst (an import) is not waited out: past `_BACKLOG` unfolded events the
            # follower folds while appends go on (decision 52).
            while grew.is_set() and not self._closing.is_set() and self.log.backlog < _BACKLOG:
                grew.clear()
                self._closing.wait(_QUIET)
            # Fold in chunks, and stop once appends resume and the backlog is within bounds.
            # While they go on, fold in slices and let them run after each one.
            while not self._closing.is_set() and (not grew.is_set() or self.log.backlog >= _BACKLOG):
                busy = grew.is_set()
                if not self._fold(_SLICE if busy else _CHUNK):
                    break
                if busy:
                    time.sleep(0)  # gives the interpreter lock to a waiting append

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
    def folded(self) -> int:
        """The position folded so far, without folding (a read folds up to the log's head first)."""
        return self._head.position

    @property
    def head(self) -> Book:
        """The book at the newest position this process has read from the log."""
        self._fold(None)
        return self._head

    def _fold(self, limit: int | None) -> bool:
        """Fold up to `limit` (None: all) of the log's unfolded entries; True if some remain."""
        with self._lock:
            entries = self.log.take(limit)
            with HEAP.folding() as tally:
                head = self._head
                for entry in entries:
                    assert entry.position == head.position + 1, "the book must follow the log in order"
                    head.apply(entry.position, entry.event_id, entry.event)
                tally.count = len(entries)
                del entries  # freed before the heap is settled (they are not kept)
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
