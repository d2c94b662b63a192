"""Tamper evidence (§8): recompute the hash chain from what is stored."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ledger.records import GENESIS_HASH, Record, chain_hash
from ledger.store import EventStore, record_from


@dataclass(frozen=True)
class Verdict:
    ok: bool
    events_checked: int
    head_hash: str
    first_bad_position: int | None = None
    problem: str | None = None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok, "events_checked": self.events_checked, "head_hash": self.head_hash}
        if not self.ok:
            out["first_bad_position"] = self.first_bad_position
            out["problem"] = self.problem
        return out


def verify(store: EventStore) -> Verdict:
    previous = GENESIS_HASH
    checked = 0
    for position, _, state in store.read_rows(0, ahead=True):
        try:
            record: Record = record_from(position, state)
        except (ValueError, KeyError, TypeError, json.JSONDecodeError):
            return Verdict(False, checked, previous, position, "the stored event cannot be read")
        if position != checked + 1:
            return Verdict(False, checked, previous, position, f"expected position {checked + 1}")
        body = json.loads(state)
        if body.get("position") != position:
            return Verdict(False, checked, previous, position, "the stored position was changed")
        expected = chain_hash(previous, record.public())
        if record.hash != expected:
            return Verdict(False, checked, previous, position, "the stored event does not match its hash")
        previous = expected
        checked += 1
    stored = store.head()
    if stored != checked:  # rows missing at the very end, or a whole page of them
        return Verdict(False, checked, previous, checked + 1, f"expected position {checked + 1}")
    return Verdict(True, checked, previous)
