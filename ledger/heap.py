"""The interpreter's cyclic garbage collector and a large, long-lived heap.

The ledger keeps every event and every fact in memory: millions of objects
that form no reference cycles and live as long as the process. Each full
collection walks all of them (about a second per 200,000 events here), and
while the heap grows a full collection comes every 25 % of growth, which
doubled the time of a rebuild. So bulk folds run without it, and what they
built is moved out of its sight with `gc.freeze()` (decision 30). The price:
reference cycles that are garbage but not yet collected at a freeze (made by
request handling, or while a fold paused the collector) are never freed. They
are few; a freeze comes once per 10,000 events.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: Settle the heap once this many events have been added since the last time.
SETTLE_EVERY = 10_000


class _Pauses:
    """The pauses under way in any thread. The collector's switch is one per process: a pause that
    read it and then set it in two steps could read "off" during another thread's pause, have that
    pause end and turn it on, turn it off, and leave it off for good (decision 80)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._resume = False  # whether the collector was on when the first of them began

    def begin(self) -> None:
        with self._lock:
            if self._count == 0:
                self._resume = gc.isenabled()
                gc.disable()
            self._count += 1

    def end(self) -> None:
        with self._lock:
            self._count -= 1
            if self._count == 0 and self._resume:
                gc.enable()


_PAUSES = _Pauses()


@contextmanager
def no_cyclic_gc(settling: bool = False) -> Iterator[None]:
    """Pause the cyclic collector around a fold (reference counting still frees everything else);
    it resumes when the last pause under way in any thread ends.

    `settling`: settle the heap before the collector resumes, for work that leaves many objects
    alive (memoised lines, a large answer): the collector's first young collection after it
    resumes would walk them all (0.2 s after a what-if over 1,000 participants)."""
    _PAUSES.begin()
    try:
        yield
    finally:
        if settling:
            settle()
        _PAUSES.end()


def settle() -> None:
    """Exempt everything alive now from later collections (a constant-time move).

    No collection first: after a fold without the collector, every object is
    still in the youngest generation, and collecting it would walk them all.
    """
    gc.freeze()


class Tally:
    """What one fold added to the heap, in events."""

    def __init__(self) -> None:
        self.count = 0


class Settler:
    """Counts events added to the heap and settles it every `SETTLE_EVERY`."""

    def __init__(self) -> None:
        self._pending = 0
        self._lock = threading.Lock()

    def added(self, count: int) -> None:
        with self._lock:
            self._pending += count
            if self._pending < SETTLE_EVERY:
                return
            self._pending = 0
        settle()

    @contextmanager
    def folding(self) -> Iterator[Tally]:
        """Pause the collector around a fold that counts its events in the tally, and count them
        here before the collector resumes: a settle due then spares the collector everything the
        fold made. (Counted after it resumed, the collector's first young collection walked all
        of it: about 2 µs an event, twice per event at start-up.)"""
        tally = Tally()
        with no_cyclic_gc():
            try:
                yield tally
            finally:
                self.added(tally.count)


#: One per process, like the collector it manages.
HEAP = Settler()
