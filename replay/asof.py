"""Reading the ledger as it stood at any position (§6).

The head book follows the log: before each read it folds in whatever the log
accepted since. Books are read and advanced only by one thread at a time (the
API's event loop), so a read never sees a half-applied event. A past position
is rebuilt by folding the log's prefix into a fresh book; the few most recent
are kept, since auditors tend to read many statements at the same position.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime

from ledger.appender import LedgerLog, Logged
from ledger.records import format_time
from projections.book import Book

_KEEP = 8


def fold(entries: Sequence[Logged]) -> Book:
    book = Book()
    for entry in entries:
        book.apply(entry.record.position, entry.record.event_id, entry.event)
    return book


class Books:
    def __init__(self, log: LedgerLog) -> None:
        self.log = log
        self._head = Book()
        self._past: OrderedDict[int, Book] = OrderedDict()
        self._lock = threading.RLock()

    @property
    def head(self) -> Book:
        """The book at the newest position this process has read from the log."""
        with self._lock:
            entries = self.log.entries
            for entry in entries[self._head.position : len(entries)]:
                self._head.apply(entry.record.position, entry.record.event_id, entry.event)
            return self._head

    def at(self, position: int | None) -> Book:
        """The book at a position (None: now). The caller has checked 0 <= position <= head."""
        with self._lock:
            head = self.head
            if position is None or position == head.position:
                return head
            book = self._past.get(position)
            if book is None:
                book = fold(self.log.entries[:position])
                self._past[position] = book
                while len(self._past) > _KEEP:
                    self._past.popitem(last=False)
            self._past.move_to_end(position)
            return book

    def position_at_time(self, moment: datetime) -> int:
        """The last position recorded at or before a moment; 0 if none."""
        stamp = format_time(moment)
        times = [entry.record.recorded_at for entry in self.log.entries]
        return bisect.bisect_right(times, stamp)
