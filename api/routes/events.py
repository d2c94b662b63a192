"""Appending events and reading the log (§3, §6)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from api.body import read_json_object
from api.deps import PrincipalDep, ReadAtDep, ServicesDep, resolve_position
from api.errors import BadRequest, NotFound, reject_unexpected
from api.responses import FastJSONResponse
from ledger.appender import MAX_BATCH
from replay.access import AUDITORS, check_append, check_may_append, require

router = APIRouter(prefix="/v1/events", tags=["events"])

_ENVELOPE = {
    "type": "object",
    "required": ["event_id", "type", "data"],
    "properties": {"event_id": {"type": "string"}, "type": {"type": "string"}, "data": {"type": "object"}},
}


@router.post(
    "",
    status_code=201,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _ENVELOPE}}}},
)
async def append_one(request: Request, svc: ServicesDep, who: PrincipalDep) -> JSONResponse:
    check_may_append(who)
    envelope = await read_json_object(request)
    check_append(who, [envelope])
    [result] = await svc.log.submit_async([envelope], False)
    return FastJSONResponse(result, status_code=200 if result.duplicate else 201)


@router.post(
    "/batch",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["events"],
                        "properties": {"events": {"type": "array", "items": _ENVELOPE}},
                    }
                }
            },
        }
    },
)
async def append_batch(request: Request, svc: ServicesDep, who: PrincipalDep) -> JSONResponse:
    check_may_append(who)
    body = await read_json_object(request)
    reject_unexpected(body, {"events"})
    events = body.get("events")
    if not isinstance(events, list):
        raise BadRequest("events", "must be a list of 1 to 10,000 events")
    if not 1 <= len(events) <= MAX_BATCH:
        raise BadRequest("events", f"a batch holds 1 to {MAX_BATCH} events, not {len(events)}")
    check_append(who, events)
    results = await svc.log.submit_async(events, True)
    status = 201 if any(not r.duplicate for r in results) else 200
    return FastJSONResponse({"results": results}, status_code=status)


@router.get("/{event_id}")
def get_event(event_id: str, svc: ServicesDep, who: PrincipalDep) -> dict[str, Any]:
    """One event by its id, as the log lists it: for following a line's `event_ids`."""
    require(who.role in AUDITORS, "only admin and finance read the event log")
    svc.log.catch_up(wait=False)
    record = svc.log.record_of(event_id)
    if record is None:  # stored by another process while this one's committer held the log?
        svc.log.catch_up(wait=True)
        record = svc.log.record_of(event_id)
    if record is None:
        raise NotFound(f"no event '{event_id}'")
    return record.listing()


@router.get("")
def list_events(
    svc: ServicesDep,
    who: PrincipalDep,
    at: ReadAtDep,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> dict[str, Any]:
    require(who.role in AUDITORS, "only admin and finance read the event log")
    position = resolve_position(svc, at)
    upto = min(position, after + limit)
    records = [record.listing() for record in svc.log.records(after, upto)] if upto > after else []
    return {
        "events": records,
        "next_after": records[-1]["position"] if records else after,
    }
