"""What-if (§6): hypothetical events against a copy; nothing is stored."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.background import BackgroundTask

from api.body import read_json_object
from api.deps import PrincipalDep, ServicesDep, checked_period
from api.errors import BadRequest, reject_unexpected
from api.responses import answer
from ledger.values import parse_id
from projections.book import BookView
from replay.access import check_reader, check_what_if
from replay.whatif import what_if

router = APIRouter(prefix="/v1", tags=["what-if"])

_SCHEMA = {
    "type": "object",
    "required": ["events", "periods", "participant_ids"],
    "properties": {
        "events": {"type": "array", "items": {"type": "object"}},
        "periods": {"type": "array", "items": {"type": "string"}},
        "participant_ids": {"type": "array", "items": {"type": "string"}},
    },
}


#: The most rows a what-if answers (participants × periods): everyone of a 10,000-person ledger over
#: a year of months and quarters, and more. The contract names no bound, and each list alone had one
#: of 1,000 entries; but a 16 MiB body of ids and periods could ask for billions of statements.
MAX_ROWS = 200_000


def _string_list(body: dict[str, Any], field: str) -> list[str]:
    """Any list of strings, empty included (the answer then has no rows), each string once, where
    first named: the answer has one row per participant and period (§6), and a list naming one
    period 200,000 times must not cost 200,000 statements."""
    value = body.get(field)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(field, "must be a list of strings")
    return list(dict.fromkeys(value))


@router.post(
    "/what-if",
    response_model=dict[str, Any],
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _SCHEMA}}}},
)
async def post_what_if(request: Request, svc: ServicesDep, who: PrincipalDep) -> Response:
    check_reader(who)
    body = await read_json_object(request)
    reject_unexpected(body, {"events", "periods", "participant_ids"})
    events = body.get("events")
    if not isinstance(events, list):
        raise BadRequest("events", "must be a list of events")
    periods, participant_ids = _string_list(body, "periods"), _string_list(body, "participant_ids")
    rows = len(periods) * len(participant_ids)
    if rows > MAX_ROWS:
        raise BadRequest("participant_ids", f"a what-if answers at most {MAX_ROWS:,} rows, one per participant "
                                            f"and period; this one would have {rows:,}: ask in parts")
    periods = [checked_period(p, "periods") for p in periods]
    for participant_id in participant_ids:
        try:
            parse_id(participant_id)
        except ValueError as error:
            raise BadRequest("participant_ids", str(error)) from None
    # The hypothetical book is dropped after the answer is sent, in the thread pool (decision 66).
    kept: list[object] = []
    async with _turn():
        if await request.is_disconnected():  # the client gave up waiting (and may have asked again)
            return Response(status_code=CLIENT_GONE)
        body = await run_in_threadpool(_what_if, svc, who, events, periods, participant_ids, kept)
    return answer(body, background=BackgroundTask(kept.clear))


#: The status logged for a what-if skipped because its client had gone (nginx's "client closed
#: request"): nobody receives it.
CLIENT_GONE = 499
_TURNS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.Lock] = weakref.WeakKeyDictionary()


def _turn() -> anyio.Lock:
    """What-ifs are computed one at a time (`replay.whatif`), each for seconds, or minutes for a
    large one: one asked meanwhile waits for its turn here, in the event loop, and takes a thread
    of the pool only then. Waiting in the pool's threads, forty of them left none for the reads
    that run there (decision 140). One lock per event loop: it serves the loop it was first used
    in (a test may start several)."""
    loop = asyncio.get_running_loop()
    turn = _TURNS.get(loop)
    if turn is None:
        turn = _TURNS[loop] = anyio.Lock()
    return turn


def _what_if(
    svc: ServicesDep,
    who: PrincipalDep,
    events: list[Any],
    periods: list[str],
    participant_ids: list[str],
    kept: list[object],
) -> dict[str, Any]:
    svc.log.catch_up()

    def check(book: BookView) -> None:
        check_what_if(book, who, participant_ids, periods, events)

    workers = svc.settings.what_if_workers
    return what_if(svc.log, svc.books, events, periods, participant_ids, workers, kept, check=check, raw=True)
