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
class Batch:
    first_position: int
    last_position: int
    worker: str
