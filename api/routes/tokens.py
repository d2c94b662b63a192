"""Tokens (§7): admins issue, list and revoke them."""

from __future__ import annotations

from typing import Any, cast, get_args

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.body import read_json_object
from api.deps import PrincipalDep, ServicesDep, parse_rfc3339
from api.errors import BadRequest, NotFound, reject_unexpected
from ledger.tokens import ROLES, Role
from ledger.values import parse_id
from replay.access import require, token_subject_problem

router = APIRouter(prefix="/v1/tokens", tags=["tokens"])

_SCHEMA = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"type": "string", "enum": list(ROLES)},
        "participant_id": {"type": ["string", "null"]},
        "expires_at": {"type": ["string", "null"]},
    },
}


@router.post(
    "",
    status_code=201,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _SCHEMA}}}},
)
async def issue(request: Request, svc: ServicesDep, who: PrincipalDep) -> JSONResponse:
    require(who.role == "admin", "only an admin issues tokens")
    body = await read_json_object(request)
    reject_unexpected(body, {"role", "participant_id", "expires_at"})
    role = body.get("role")
    if role not in get_args(Role):
        raise BadRequest("role", f"must be one of {', '.join(ROLES)}")
    participant_id = body.get("participant_id")
    if participant_id is not None:
        try:
            parse_id(participant_id)
        except ValueError as error:
            raise BadRequest("participant_id", str(error)) from None
    problem = await run_in_threadpool(_subject_problem, svc, str(role), participant_id)
    if problem is not None:
        raise BadRequest("participant_id", problem)
    expires_at = None
    raw_expiry = body.get("expires_at")
    if raw_expiry is not None:
        if not isinstance(raw_expiry, str):
            raise BadRequest("expires_at", "must be an RFC 3339 time with an offset")
        expires_at = parse_rfc3339(raw_expiry, "expires_at")  # a past time gives a token that is already expired
    # In the thread pool: it writes to the database and waits for the registry's lock, which would
    # stop every other request of this process meanwhile (the event loop's thread).
    token_id, token = await run_in_threadpool(svc.tokens.issue, cast(Role, role), participant_id, expires_at)
    body_out = {"token_id": token_id, "token": token, "role": role, "participant_id": participant_id}
    if expires_at is not None:
        body_out["expires_at"] = expires_at.isoformat()
    return JSONResponse(body_out, status_code=201)


def _subject_problem(svc: ServicesDep, role: str, participant_id: str | None) -> str | None:
    svc.log.catch_up()
    with svc.books.reading():
        return token_subject_problem(svc.books.at(None), role, participant_id)


@router.get("")
def list_tokens(svc: ServicesDep, who: PrincipalDep) -> dict[str, Any]:
    require(who.role == "admin", "only an admin lists tokens")
    return {"tokens": [p.body() for p in svc.tokens.list()]}


@router.delete("/{token_id}", status_code=204)
def revoke(token_id: str, svc: ServicesDep, who: PrincipalDep) -> Response:
    require(who.role == "admin", "only an admin revokes tokens")
    if not svc.tokens.revoke(token_id):
        raise NotFound(f"no token '{token_id}'")
    return Response(status_code=204)
