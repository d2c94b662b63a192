"""What-if (§6): statements with hypothetical events applied to a copy of the books' state."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import partial
from typing import Any

import orjson

from ledger.appender import LedgerLog
from ledger.heap import no_cyclic_gc
from ledger.values import money_str
from projections.book import Book, BookView
from projections.lines import Line, same_lines
from replay.asof import Books
from replay.forked import Detached, map_detached

_log = logging.getLogger("ledger.whatif")

#: The hypothetical book's own memo, in lines: what one participant's rows need at a time (a
#: manager's period holds a line per report's deal). Each participant's rows are asked once, so a
#: larger memo only keeps lines nobody reads again, in memory the process must first be given
#: (decision 99).
FORK_MEMO_LINES = 50_000
#: A participant's rows cost about what a rep's do, and a fifth of that more for each report (a
#: manager's override lines). At the benchmark's ledger (decision 139) a manager of 499 reports
#: cost 128-145 reps' worth in its what-if (June and December), about 80 over twelve months.
REPORT_COST = 0.2


class UnknownParticipants(Exception):
    """Rows asked for participants that do not exist, even with the hypothetical events."""

    def __init__(self, participant_ids: tuple[str, ...]) -> None:
        super().__init__(", ".join(participant_ids))
        self.participant_ids = participant_ids


def _total_and_lines(book: BookView, participant_id: str, period: str) -> tuple[Any, tuple[Line, ...]]:
    if not book.has_participant(participant_id):
        return None, ()
    statement = book.statement(participant_id, period)
    return statement.total, statement.lines


def _changed(now: tuple[Line, ...], with_: tuple[Line, ...]) -> list[orjson.Fragment]:
    """The lines removed and added by the hypothetical events, as the API shows them: each line's
    JSON, made once, compared, and written into the answer as it is (decision 147)."""
    if same_lines(now, with_):
        return []  # the same lines, memoised once for both books (a closed period's frozen lines)
    # A line object on both sides is unchanged (memoised once for both books: a manager's override
    # lines of every report the events do not concern): only the others are compared, as JSON.
    both = Counter(map(id, now)) & Counter(map(id, with_))
    if both:
        now, with_ = _less(now, both), _less(with_, both)
    bodies_now = [orjson.dumps(line.body()) for line in now]
    bodies_with = [orjson.dumps(line.body()) for line in with_]
    return [orjson.Fragment(_REMOVED + body[1:]) for body in _minus(bodies_now, bodies_with)] + [
        orjson.Fragment(_ADDED + body[1:]) for body in _minus(bodies_with, bodies_now)
    ]


#: The start of a changed line's JSON object, its body's fields following (`{"change": ..., **body}`:
#: no body has a key `change`, which the dict would overwrite and the fragment would repeat).
_REMOVED = b'{"change":"removed",'
_ADDED = b'{"change":"added",'


def _less(lines: tuple[Line, ...], objects: Counter[int]) -> tuple[Line, ...]:
    """`lines` without as many of each of these objects (by `id`) as counted."""
    left = Counter(objects)
    out = []
    for line in lines:
        if left[id(line)]:
            left[id(line)] -= 1
        else:
            out.append(line)
    return tuple(out)


def _minus(a: list[bytes], b: list[bytes]) -> list[bytes]:
    """Lines of `a` not in `b`, counting repeats (a multiset difference). Lines are compared by
    their JSON (orjson: a tenth of the cost of `repr`, and equally exact for JSON values)."""
    remaining = Counter(b)
    out = []
    for line in a:
        if remaining[line]:
            remaining[line] -= 1
        else:
            out.append(line)
    return out


#: One what-if at a time, as when every what-if held the books throughout: each forks its own
#: workers, and each of those may copy up to the service's size (decision 138). A what-if waiting
#: here holds nothing that reads need.
_ONE_AT_A_TIME = threading.Lock()


def what_if(
    log: LedgerLog,
    books: Books,
    envelopes: Sequence[Any],
    periods: Sequence[str],
    participant_ids: Sequence[str],
    workers: int = 1,
    keep: list[object] | None = None,
    check: Callable[[BookView], None] | None = None,
    raw: bool = False,
) -> dict[str, Any]:
    """Compare statements now and with the hypothetical events; nothing is stored. `workers`:
    processes computing the rows (`replay.forked`). `keep`: gets the hypothetical book, for the
    caller to drop once it has answered: freeing its lines takes 0.15-0.2 s at a million events,
    which otherwise the answer waits for. `check`: called first, with the books held, on the
    book as it stands (the caller's access to the rows asked for). `raw`: the rows as fragments
    of JSON (`orjson.Fragment`, each one participant's), for an answer to be encoded by orjson:
    each participant's rows are encoded once, where they are computed (decision 141).

    The books are held until the rows are computed or handed to forked workers: the copy is made
    of the state folded to exactly the position the events were checked at, and shares its
    tables, which a fold of later events would change. Forked workers compute on the books as
    they were when forked, so the books are let go meanwhile: reads and folds go on while a large
    what-if is computed (decision 138). A worker that fails takes its share of the copy with it:
    the what-if is then asked again here, holding the books throughout. The caller must not hold
    the books itself: it would keep them held meanwhile, and wait for them against another
    what-if waiting for its turn here with them.
    """
    kept = len(keep) if keep is not None else 0
    with _ONE_AT_A_TIME:
        position, order, computed = _held(log, books, envelopes, periods, participant_ids, workers, keep, check)
        answers = computed.collect() if isinstance(computed, Detached) else computed
    if answers is not None:
        return _answer(position, order, answers, raw)
    _log.warning("a what-if's forked worker failed; asking it again in this process")
    if keep is not None:
        del keep[kept:]  # the failed attempt's copy
    return what_if(log, books, envelopes, periods, participant_ids, 1, keep, check, raw)


def _held(
    log: LedgerLog,
    books: Books,
    envelopes: Sequence[Any],
    periods: Sequence[str],
    participant_ids: Sequence[str],
    workers: int,
    keep: list[object] | None,
    check: Callable[[BookView], None] | None,
) -> tuple[int, list[int], list[bytes] | Detached]:
    """What `_answer` needs: the position, the order the rows were computed in, and each
    participant's rows as JSON, or where the forked workers computing them are. With
    the books held, without the cyclic collector: a what-if makes hundreds of thousands of lines,
    and the state's copy (`LedgerState.fork`) holds copies of the tables its events write (the
    targets, say); every full collection while they live would walk them all (2 of 5 s at a
    million events, when the copy held every table). The copy is freed by reference counting
    when it goes. Paused only while the books are held: other threads' reads go on while forked
    workers compute, and their garbage cycles must not be frozen by the settling."""
    with books.reading(), no_cyclic_gc(settling=True):
        if check is not None:
            check(books.at(None))
        fresh = log.check(envelopes)
        position = fresh[0].record.position - 1 if fresh else log.head
        now = books.through(position)  # never past it: the copy must not hold later events (decision 96)
        # A copy of the state with the hypothetical events, sharing everything they do not change.
        forked = now.state.fork([(e.position, e.event_id, e.event) for e in fresh])
        with_ = Book(forked, forked_from=now.book, memo_lines=FORK_MEMO_LINES).view()
        unknown = tuple(p for p in participant_ids if not with_.has_participant(p))
        if unknown:
            raise UnknownParticipants(unknown)
        # Costly people first (a manager's statements hold every report's override lines), so that
        # the workers finish together; the rows go back in the order asked for. Reports counted
        # with the hypothetical events (a new hire's manager has one more).
        last = fresh[-1].position if fresh else position
        reports = [len(forked.reports_of(p, last)) for p in participant_ids]
        order = sorted(range(len(participant_ids)), key=lambda i: -reports[i])
        rows_of = partial(_rows_of, now, with_, periods)
        costs = [1 + REPORT_COST * reports[i] for i in order]
        answers = map_detached([participant_ids[i] for i in order], rows_of, workers, costs, raw=True)
        if keep is not None:
            keep.append(with_)
        return position, order, answers


def _answer(position: int, order: list[int], answers: list[bytes], raw: bool) -> dict[str, Any]:
    """The rows in the order asked for, from each participant's in `order`'s (`_rows_of`): as
    fragments of the answer's JSON (`raw`), which a list of them joins into one list of rows, or
    decoded."""
    by_index = dict(zip(order, answers, strict=True))
    items = [part for part in (by_index[i] for i in range(len(order))) if part]  # none: no periods
    rows = [orjson.Fragment(part) for part in items] if raw else orjson.loads(b"[" + b",".join(items) + b"]")
    return {"as_of_position": position, "rows": rows}


def _rows_of(now: BookView, with_: BookView, periods: Sequence[str], participant_id: str) -> bytes:
    """One participant's rows, encoded as JSON where they are computed (a forked worker's go back
    as they are, decision 141): the items of a JSON list, without its brackets."""
    rows = []
    for period in periods:
        total_now, lines_now = _total_and_lines(now, participant_id, period)
        total_with, lines_with = _total_and_lines(with_, participant_id, period)
        total_now = total_now if total_now is not None else Decimal(0)
        rows.append(
            {
                "participant_id": participant_id,
                "period": period,
                "total_now": money_str(total_now),
                "total_with": money_str(total_with),
                "difference": money_str(total_with - total_now),
                "lines": _changed(lines_now, lines_with),
            }
        )
    return orjson.dumps(rows)[1:-1]
