"""Replay audit: recompute every closed statement from the stored log and compare.

The frozen statements of the running service were computed incrementally when
each close arrived. This recomputes each from the stored events alone, folding
the prefix that stood just before the close, and lists every difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.appender import Logged
from ledger.store import EventStore
from ledger.validation import parse_stored
from projections.book import Book
from replay.asof import fold


@dataclass(frozen=True)
class Difference:
    participant_id: str
    period: str
    frozen: dict[str, Any]
    recomputed: dict[str, Any]


def replay_closes(store: EventStore, head: Book) -> tuple[int, list[Difference]]:
    """(statements checked, differences). On a healthy ledger the list is empty."""
    entries = [Logged(r, parse_stored(r.type, r.data)) for r in store.read(0)]
    checked = 0
    differences = []
    for period, close_position in sorted(head.state.closed.items(), key=lambda item: item[1]):
        before = fold(entries[: close_position - 1])
        for participant_id in sorted(head.frozen.get(period, {})):
            frozen = head.statement(participant_id, period).body(close_position)
            recomputed = before.statement(participant_id, period).body(close_position)
            for key in ("status", "frozen_total", "recomputed_total", "disputes"):
                frozen.pop(key, None)
                recomputed.pop(key, None)
            checked += 1
            if frozen != recomputed:
                differences.append(Difference(participant_id, period, frozen, recomputed))
    return checked, differences
