"""Replay audit: recompute every closed statement from the stored log alone and compare.

The service answers a closed statement from its running book. This check
reads the stored events again, folds only the prefix that stood just before
each close into a fresh book, and lists every difference from what the
service shows as frozen. On a healthy ledger there is none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.appender import Logged
from ledger.decode import decode_trusted
from ledger.store import EventStore
from projections.book import Book
from replay.asof import fold

_IGNORED = ("as_of_position", "status", "frozen_total", "recomputed_total", "disputes")


@dataclass(frozen=True)
class Difference:
    participant_id: str
    period: str
    frozen: dict[str, Any]
    recomputed: dict[str, Any]


def replay_closes(store: EventStore, head: Book) -> tuple[int, list[Difference]]:
    """(statements checked, differences)."""
    entries = [Logged(r.position, r.event_id, decode_trusted(r.type, r.data)) for r in store.read(0)]
    current = head.view()
    checked = 0
    differences = []
    for close in head.state.closes:
        before = fold(entries[: close.position - 1], head.engine.memo_lines).view()
        for participant_id in sorted(before.state.participants_at(before.position)):
            frozen = current.statement(participant_id, close.period).body(0)
            recomputed = before.statement(participant_id, close.period).body(0)
            for key in _IGNORED:
                frozen.pop(key, None)
                recomputed.pop(key, None)
            checked += 1
            if frozen != recomputed:
                differences.append(Difference(participant_id, close.period, frozen, recomputed))
    return checked, differences
