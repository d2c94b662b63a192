"""Replay audit: recompute every closed statement from the stored log alone and compare.

The service answers a closed statement from its running book. This check
reads the stored events again into a fresh book and, each time that book
has folded exactly the prefix that stood just before a close, recomputes
the closing period's statements there; it lists every difference from what
the service shows as frozen. On a healthy ledger there is none.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from ledger.decode import decode_trusted
from ledger.store import EventStore, record_from
from projections.book import Book, Statement
from replay.asof import Books

log = logging.getLogger("ledger.audit")

_IGNORED = ("as_of_position", "status", "frozen_total", "recomputed_total", "disputes")
#: Frozen statements read per hold of the books: a few milliseconds of reads at a time, so that
#: other reads, and the books' follower, wait no longer than that for the audit (decision 116).
HELD_STATEMENTS = 20
#: The most lines the audit's own book keeps of what it computed (never more than the service's
#: memo): a close's statements reuse little of the last close's, and at a million events a memo
#: the size of the service's (1,000,000 lines) took 400 MB more at the audit's peak (2.1 GB against
#: 1.7 GB) for the same time (137.5 s against 139.0 s; decision 116).
AUDIT_MEMO_LINES = 100_000
#: One audit at a time in a process: each folds a book of its own from the whole log (the service's
#: books again in memory, a minute and more at a million events), and a client that gave up on one
#: and asked again would have had two running (decision 116).
_RUNNING = threading.Lock()


class AuditRunning(Exception):
    """A replay audit is already running in this process."""

    def __init__(self) -> None:
        super().__init__("a replay audit is already running; ask again once it has answered")


@dataclass(frozen=True)
class Difference:
    participant_id: str
    period: str
    frozen: dict[str, Any]
    recomputed: dict[str, Any]


@dataclass(frozen=True)
class Audit:
    """What a replay audit found. `first_bad_position`: a stored event the fresh book could not
    fold (a row deleted behind the ledger's back that a later event refers to, a type edited); the
    audit stops there, with what it compared before it."""

    position: int
    checked: int
    differences: list[Difference]
    first_bad_position: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return not self.differences and self.first_bad_position is None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok, "as_of_position": self.position, "statements_checked": self.checked,
                               "differences": [difference.__dict__ for difference in self.differences]}
        if self.first_bad_position is not None:
            out["first_bad_position"] = self.first_bad_position
            out["problem"] = self.problem
        return out


def replay_closes(store: EventStore, books: Books) -> Audit:
    """What the audit found, as of the books' head when it begins.

    One fresh book folds the stored log once, in order, and stops before each close to recompute
    its period: the book is then exactly one folded from the prefix alone, as the check asks. (A
    fresh book per close folded the prefix again each time, eleven times the log's first half for a
    year of monthly closes, with every decoded event held in memory: decision 115.)

    The fresh book is the audit's own, so only the frozen statements are read with the running
    books held, `HELD_STATEMENTS` at a time: held for the whole audit (a minute and more at a
    million events), they kept every other read waiting as long (decision 116). The frozen
    statements are all read as of one position, whatever the books fold meanwhile (the first hold
    folds them to the log's head, as any read does). `AuditRunning` if another audit is under way."""
    if not _RUNNING.acquire(blocking=False):
        raise AuditRunning
    try:
        return _replay(store, books)
    finally:
        _RUNNING.release()


def _replay(store: EventStore, books: Books) -> Audit:
    with books.reading():
        current = books.head.view()  # folded to the log's head, as every read
        closes = list(current.state.closes)  # a copy: the books' follower appends the closes it folds
        memo_lines = current.engine.memo_lines
    checked = 0
    differences: list[Difference] = []
    fresh = Book(memo_lines=min(memo_lines, AUDIT_MEMO_LINES))
    rows = store.read_rows(0, current.position, ahead=True)
    following = next(rows, None)
    for close in closes:
        # Every stored event before the close, by position: rows deleted behind the ledger's back
        # make the statements they concern differ, which is what the audit is for.
        while following is not None and following[0] < close.position:
            position, _, state = following
            try:
                record = record_from(position, state)
                fresh.apply(position, record.event_id, decode_trusted(record.type, record.data))
            except Exception as error:  # the stored log's damage, which `verify` names: the audit's answer
                log.exception("the replay audit cannot fold the stored event at position %d", position)
                problem = f"the stored event cannot be replayed ({type(error).__name__}: {error})"
                return Audit(current.position, checked, differences, position, problem)
            following = next(rows, None)
        before = fresh.view(close.position - 1)
        participants = sorted(before.state.participants_at(before.position))
        for start in range(0, len(participants), HELD_STATEMENTS):
            held = participants[start : start + HELD_STATEMENTS]
            with books.reading():
                frozen = [_compared(current.statement(participant_id, close.period)) for participant_id in held]
            for participant_id, frozen_body in zip(held, frozen, strict=True):
                recomputed = _compared(before.statement(participant_id, close.period))
                checked += 1
                if frozen_body != recomputed:
                    differences.append(Difference(participant_id, close.period, frozen_body, recomputed))
    return Audit(current.position, checked, differences)


def _compared(statement: Statement) -> dict[str, Any]:
    """What the audit compares of a statement: its body without the fields that tell a frozen one
    from a recomputed one."""
    body = statement.body(0)
    for key in _IGNORED:
        body.pop(key, None)
    return body
