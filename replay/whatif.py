"""What-if (§6): statements with hypothetical events appended to a copy of the log."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ledger.appender import LedgerLog
from ledger.values import money_str
from projections.book import BookView
from replay.asof import Books, fold


@dataclass(frozen=True)
class UnknownParticipants(Exception):
    participant_ids: tuple[str, ...]


def _total_and_lines(book: BookView, participant_id: str, period: str) -> tuple[Any, list[dict[str, Any]]]:
    if not book.has_participant(participant_id):
        return None, []
    statement = book.statement(participant_id, period)
    return statement.total, [line.body() for line in statement.lines]


def _minus(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lines of `a` not in `b`, counting repeats (a multiset difference)."""
    remaining = Counter(repr(line) for line in b)
    out = []
    for line in a:
        key = repr(line)
        if remaining[key]:
            remaining[key] -= 1
        else:
            out.append(line)
    return out


def what_if(
    log: LedgerLog,
    books: Books,
    envelopes: Sequence[Any],
    periods: Sequence[str],
    participant_ids: Sequence[str],
) -> dict[str, Any]:
    """Compare statements now and with the hypothetical events; nothing is stored."""
    fresh = log.check(envelopes)
    position = fresh[0].record.position - 1 if fresh else log.head
    now = books.at(position)
    with_ = fold([*log.entries[:position], *fresh]).view()
    unknown = tuple(p for p in participant_ids if not with_.has_participant(p))
    if unknown:
        raise UnknownParticipants(unknown)
    rows = []
    for participant_id in participant_ids:
        for period in periods:
            total_now, lines_now = _total_and_lines(now, participant_id, period)
            total_with, lines_with = _total_and_lines(with_, participant_id, period)
            total_now = total_now if total_now is not None else Decimal(0)
            changed = [{"change": "removed", **line} for line in _minus(lines_now, lines_with)] + [
                {"change": "added", **line} for line in _minus(lines_with, lines_now)
            ]
            rows.append(
                {
                    "participant_id": participant_id,
                    "period": period,
                    "total_now": money_str(total_now),
                    "total_with": money_str(total_with),
                    "difference": money_str(total_with - total_now),
                    "lines": changed,
                }
            )
    return {"as_of_position": position, "rows": rows}
