"""The rows of the materialized statement view: what the projection computes and the view stores."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

#: A closed statement's status: what the engine shows (`projections.book.BookView.statement`) and
#: what the view writes when it turns a closed period's rows closed in SQL (decision 130).
CLOSED = "closed"


@dataclass(frozen=True)
class ViewRow:
    participant_id: str
    period: str
    status: str
    target: Decimal | None
    credited: Decimal
    attainment: Decimal | None
    total: Decimal
    line_count: int


def row_to_json(row: ViewRow) -> list[Any]:
    """The row as JSON values (a forked worker's answer, `replay.projector`): figures as exact strings."""
    def text(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return [row.participant_id, row.period, row.status, text(row.target), str(row.credited),
            text(row.attainment), str(row.total), row.line_count]


def row_from_json(values: list[Any]) -> ViewRow:
    def number(value: str | None) -> Decimal | None:
        return None if value is None else Decimal(value)

    return ViewRow(values[0], values[1], values[2], number(values[3]), Decimal(values[4]), number(values[5]),
                   Decimal(values[6]), values[7])


@dataclass(frozen=True)
class ViewChanges:
    """What a batch changes in the view: rows to write, (participant, period) rows to delete, and
    the periods closed in the batch. A closed period's row that is not rewritten keeps its figures
    and only turns `closed` (its statement is frozen as it stood before the close, decision 130)."""

    upserts: list[ViewRow]
    deletes: list[tuple[str, str]]
    closed: list[str]


@dataclass(frozen=True)
class Batch:
    first_position: int
    last_position: int
    worker: str
