"""The rows of the materialized statement view: what the projection computes and the view stores."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


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
