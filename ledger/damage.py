"""The stored log read back as events, with damage named where it is found (decision 127).

Rows are changed behind the ledger's back only by hand (SQL, a restored backup): what reads the
log says where it stopped, in one line, rather than failing on the first missing key.
"""

from __future__ import annotations

from collections.abc import Iterator

from ledger.decode import decode_trusted
from ledger.events import EventData
from ledger.records import Record
from ledger.store import EventStore, record_from

#: What reading a changed row as an event can raise: its JSON, a key, a type, a value.
UNREADABLE = (ValueError, KeyError, TypeError, AttributeError, ArithmeticError)


class LogDamaged(Exception):
    """A stored row the log cannot take: missing, or unreadable as an event. Changed behind the
    ledger's back (`ledger verify` names the damage); nothing can be read past it."""

    def __init__(self, position: int, problem: str) -> None:
        super().__init__(f"the stored log is damaged at position {position}: {problem}")
        self.position = position


def unreadable(position: int, error: Exception) -> LogDamaged:
    return LogDamaged(position, f"the stored event cannot be read ({type(error).__name__})")


def stored_events(
    store: EventStore, after: int, upto: int | None = None, ahead: bool = False
) -> Iterator[tuple[Record, EventData]]:
    """Each stored record after `after` (up to `upto`) with its event; `LogDamaged` at a missing
    position (positions have no gaps: one writer at a time, by the table lock) or a row that
    cannot be read as an event."""
    expected = after + 1
    for position, _, state in store.read_rows(after, upto, ahead=ahead):
        if position != expected:
            raise LogDamaged(expected, "no event is stored there")
        try:
            record = record_from(position, state)
            event = decode_trusted(record.type, record.data)
        except UNREADABLE as error:
            raise unreadable(position, error) from error
        expected += 1
        yield record, event
