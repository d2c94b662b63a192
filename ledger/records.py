"""The stored form of one ledger event, and the hash chain over them (§8).

A `Record` is what `GET /v1/events` shows. Its hash covers the previous hash
and the canonical JSON of the public fields, so anyone holding the listing can
recompute the chain without access to the database.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import field
from datetime import UTC, datetime
from typing import Any

import orjson

from ledger.immutable import immutable

GENESIS_HASH = "0" * 64
_TIME_FORMAT = "-%m-%dT%H:%M:%S.%fZ"  # after the year, which `format_time` pads itself


def canonical_json(obj: Any) -> str:
    """The documented canonical form: sorted keys, no spaces, UTF-8 text as is."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_bytes(obj: Any) -> bytes:
    """`canonical_json(obj)` in UTF-8, made by orjson, which gives the same bytes for anything
    the ledger accepts (a property test holds it to that) at a fraction of the cost; the
    standard library for anything orjson refuses."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError included: integers beyond 64 bits, lone surrogates
        return canonical_json(obj).encode("utf-8")


def format_time(moment: datetime) -> str:
    """Four digits of year, always: `%Y` gives years before 1000 unpadded here, and times are
    compared as text (an `as_of` in year 500 sorted after every recorded time)."""
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}{utc.strftime(_TIME_FORMAT)}"


@immutable
class Record:
    position: int
    event_id: str
    type: str
    data: dict[str, Any]
    recorded_at: str
    hash: str
    #: The stored form (JSON of the listing), when made at sealing: the canonical JSON is reused.
    state: bytes | None = field(default=None, compare=False, repr=False)

    def public(self) -> dict[str, Any]:
        """The fields the hash covers, exactly as the event listing shows them."""
        return {
            "position": self.position,
            "event_id": self.event_id,
            "type": self.type,
            "data": self.data,
            "recorded_at": self.recorded_at,
        }

    def listing(self) -> dict[str, Any]:
        return {**self.public(), "hash": self.hash}


def chain_hash(previous_hash: str, public: dict[str, Any]) -> str:
    return _hash(previous_hash, canonical_bytes(public))


def _hash(previous_hash: str, canonical: bytes) -> str:
    return hashlib.sha256(previous_hash.encode("ascii") + canonical).hexdigest()


def seal(
    previous: Record | None,
    position: int,
    event_id: str,
    type_: str,
    data: dict[str, Any],
    now: datetime | str,
) -> Record:
    """Make the next record: `recorded_at` never decreases, the hash extends the chain.

    `now` may come formatted already (one batch, one time).
    """
    recorded_at = now if isinstance(now, str) else format_time(now)
    if previous is not None and recorded_at < previous.recorded_at:
        recorded_at = previous.recorded_at
    previous_hash = previous.hash if previous is not None else GENESIS_HASH
    public = {
        "position": position,
        "event_id": event_id,
        "type": type_,
        "data": data,
        "recorded_at": recorded_at,
    }
    canonical = canonical_bytes(public)
    digest = _hash(previous_hash, canonical)
    state = canonical[:-1] + b',"hash":"' + digest.encode("ascii") + b'"}'
    return Record(position, event_id, type_, data, recorded_at, digest, state)
