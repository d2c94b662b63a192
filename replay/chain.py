"""Tamper evidence (§8): recompute the hash chain from what is stored."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ledger.records import GENESIS_HASH, chain_hash
from ledger.store import EventStore, parse_state


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


def _text(value: Any) -> str:
    """A stored field the log reads as text (`record_from` interns it): anything else is a row
    the log cannot read, whatever its hash says."""
    if type(value) is not str:
        raise TypeError("not text")
    return value


def verify(store: EventStore) -> Verdict:
    """Each stored row's JSON is parsed once (orjson, as the log reads it), and the public fields
    the hash covers are taken from it as stored: a second parse with the standard library, for
    the stored position alone, was more than half of a million-event check (decision 109). Appends
    that go on meanwhile are checked too, not taken for missing rows (decision 114)."""
    previous = GENESIS_HASH
    checked = 0
    while True:
        verdict = _verify_from(store, previous, checked)
        if isinstance(verdict, Verdict):
            return verdict
        read, previous, checked = verdict
        stored = store.head()
        if stored == checked:
            return Verdict(True, checked, previous)
        if stored < checked or not read:  # rows missing at the very end, or a whole page of them
            return Verdict(False, checked, previous, checked + 1, f"expected position {checked + 1}")
        # The log grew while it was read (appends go on): what was added is checked too.


def _verify_from(store: EventStore, previous: str, checked: int) -> Verdict | tuple[bool, str, int]:
    """The rows after `checked`, chained to `previous`: a failed verdict, or whether any row was
    read, the last hash and the rows checked so far."""
    read = False
    for position, _, state in store.read_rows(checked, ahead=True):
        read = True
        try:
            body = parse_state(state)
            public = {  # `Record.public()`'s fields, the row's position among them
                "position": position,
                "event_id": body["event_id"],
                "type": _text(body["type"]),
                "data": body["data"],
                "recorded_at": _text(body["recorded_at"]),
            }
            stored_hash, stored_position = body["hash"], body.get("position")
        except (ValueError, KeyError, TypeError, json.JSONDecodeError):
            return Verdict(False, checked, previous, position, "the stored event cannot be read")
        if position != checked + 1:
            return Verdict(False, checked, previous, position, f"expected position {checked + 1}")
        if stored_position != position:
            return Verdict(False, checked, previous, position, "the stored position was changed")
        expected = chain_hash(previous, public)
        if stored_hash != expected:
            return Verdict(False, checked, previous, position, "the stored event does not match its hash")
        previous = expected
        checked += 1
    return read, previous, checked
