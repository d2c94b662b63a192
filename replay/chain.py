"""Tamper evidence (§8): recompute the hash chain from what is stored."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ledger.records import GENESIS_HASH, Record, chain_hash
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


def verify(store: EventStore, known: Record | None = None) -> Verdict:
    """Each stored row's JSON is parsed once (orjson, as the log reads it), and the public fields
    the hash covers are taken from it as stored: a second parse with the standard library, for
    the stored position alone, was more than half of a million-event check (decision 109). Appends
    that go on meanwhile are checked too, not taken for missing rows (decision 114).

    `known`: the last event the caller knows was stored (the running log's head). The store's own
    head only says where its rows end: rows deleted at the end, or the end rewritten with a chain
    of its own, would pass without it (decision 127)."""
    previous = GENESIS_HASH
    checked = 0
    while True:
        read = False
        for position, _, state in store.read_rows(checked, ahead=True):
            read = True
            problem, link = _link(previous, checked + 1, position, state)
            if problem is not None:
                return Verdict(False, checked, previous, position, problem)
            if known is not None and position == known.position and link != known.hash:
                return Verdict(False, checked, previous, position,
                               "the chain does not lead to the hash this service stored here")
            previous, checked = link, checked + 1
        stored = store.head()
        if known is not None and checked < known.position:
            return Verdict(False, checked, previous, checked + 1,
                           f"expected position {checked + 1}: this service stored {known.position} events")
        if stored == checked:
            return Verdict(True, checked, previous)
        if stored < checked or not read:  # rows missing at the very end, or a whole page of them
            return Verdict(False, checked, previous, checked + 1, f"expected position {checked + 1}")
        # The log grew while it was read (appends go on): what was added is checked too.


def _link(previous: str, expected_position: int, position: int, state: bytes) -> tuple[str | None, str]:
    """(what is wrong with a stored row, or None; its hash chained to `previous`)."""
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
        return "the stored event cannot be read", previous
    if position != expected_position:
        return f"expected position {expected_position}", previous
    if stored_position != position:
        return "the stored position was changed", previous
    link = chain_hash(previous, public)
    if stored_hash != link:
        return "the stored event does not match its hash", previous
    return None, link
