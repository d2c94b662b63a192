"""The stored log read back as events, with damage named where it is found (decision 127).

Rows are changed behind the ledger's back only by hand (SQL, a restored backup): what reads the
log says where it stopped, in one line, rather than failing on the first missing key. The log's
catch-up (`LedgerLog.catch_up`), `ledger rebuild` and `ledger project` read through `checked_row`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ledger.decode import decode_trusted
from ledger.events import EventData
from ledger.records import Record
from ledger.store import EventStore, parse_state, record_of

#: What reading a changed row as an event can raise: its JSON, a key, a type, a value.
_UNREADABLE = (ValueError, KeyError, TypeError, AttributeError, ArithmeticError)


class LogDamaged(Exception):
    """A stored row the log cannot take: missing, or unreadable as an event. Changed behind the
    ledger's back (`ledger verify` names the damage); nothing can be read past it."""

    def __init__(self, position: int, problem: str) -> None:
        super().__init__(f"the stored log is damaged at position {position}: {problem}")
        self.position = position


def checked_row(expected: int, position: int, state: bytes) -> tuple[dict[str, Any], EventData]:
    """A stored row's JSON and its event, where the log expects `expected` (positions have no gaps:
    one writer at a time, by the table lock); `LogDamaged` for a missing position, a row that
    cannot be read as an event (or whose text fields are not text), or a stored position that is
    not the row's."""
    if position != expected:
        raise LogDamaged(expected, "no event is stored there")
    try:
        body = parse_state(state)
        event = decode_trusted(body["type"], body["data"])
        if type(body["event_id"]) is not str or type(body["recorded_at"]) is not str or type(body["hash"]) is not str:
            raise TypeError("not text")
        stored_position = body["position"]
    except _UNREADABLE as error:
        raise LogDamaged(position, f"the stored event cannot be read ({type(error).__name__})") from error
    if stored_position != position:
        raise LogDamaged(position, "the stored position was changed")
    return body, event


def stored_events(
    store: EventStore, after: int, upto: int | None = None, ahead: bool = False
) -> Iterator[tuple[Record, EventData]]:
    """Each stored record after `after` (up to `upto`) with its event, each row checked."""
    for expected, (position, _, state) in enumerate(store.read_rows(after, upto, ahead=ahead), after + 1):
        body, event = checked_row(expected, position, state)
        yield record_of(position, body), event
