"""The position a read answers at (§6): now, as of a position or a time, at least a position.

Several processes may append to one store. A read answers from what this
process has, except when it names what another process may have stored:
`min_position` beyond this process's head (read-your-writes), a position
beyond it, or a time no earlier than its newest event's (`recorded_at` never
decreases along the log, so an earlier time cannot name an event it lacks).
Then it waits for the store first: a reader that found an append reading
the store would else answer from a stale head (decision 83).
"""

from __future__ import annotations

from datetime import datetime

from ledger.appender import LedgerLog
from replay.asof import Books


class PositionOutOfRange(Exception):
    """A requested position the store does not have (422, naming the parameter)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def read_position(
    log: LedgerLog, books: Books, as_of_position: int | None, as_of: datetime | None, min_position: int | None
) -> int:
    """`as_of`: an aware time (at most one of `as_of_position` and `as_of`)."""
    head, last = log.head, log.last
    log.catch_up(
        wait=(min_position or 0) > head
        or (as_of_position or 0) > head
        or (as_of is not None and (last is None or as_of >= datetime.fromisoformat(last.recorded_at)))
    )
    head = log.head
    if min_position is not None and min_position > head:
        raise PositionOutOfRange("min_position", f"is beyond the stored head position {head}")
    if as_of_position is not None:
        if not 0 <= as_of_position <= head:
            raise PositionOutOfRange("as_of_position", f"must be between 0 and the head position {head}")
        return as_of_position
    if as_of is not None:
        return books.position_at_time(as_of)
    return head
