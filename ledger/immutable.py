"""Immutable value classes that cost no more to make than plain slotted ones (decision 48).

A frozen dataclass sets each field through `object.__setattr__`: making a
seven-field `Record` took 1.1 µs against 0.3 µs for the same class unfrozen,
and an append makes five such values per event. `immutable` makes a slotted,
hashable dataclass that type checkers treat as frozen (an assignment to a
field is a mypy error), without the runtime guard.
"""

from __future__ import annotations

from dataclasses import Field, dataclass, field
from typing import TypeVar

from typing_extensions import dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True, field_specifiers=(field, Field))
def immutable(cls: type[T]) -> type[T]:
    return dataclass(slots=True, unsafe_hash=True)(cls)
