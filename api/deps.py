"""FastAPI dependencies: the services, the caller, and the ledger position a read is at."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from api.errors import BadRequest, Unauthorized
from ledger.tokens import Principal
from ledger.values import parse_period
from replay.bootstrap import Services
from replay.positions import PositionOutOfRange, read_position


async def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


ServicesDep = Annotated[Services, Depends(services)]


async def principal(request: Request, svc: ServicesDep) -> Principal:
    """Who calls. Async: the configured admin costs no thread hop; issued tokens read the database
    in the thread pool."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <token>")
    found = svc.tokens.configured_admin(token.strip()) or await run_in_threadpool(
        svc.tokens.authenticate, token.strip(), datetime.now(UTC)
    )
    if found is None:
        raise Unauthorized("the token is unknown, revoked or expired")
    return found


PrincipalDep = Annotated[Principal, Depends(principal)]


def checked_period(period: str, field: str = "period") -> str:
    try:
        parse_period(period)
    except ValueError as error:
        raise BadRequest(field, str(error)) from None
    return period


AsOfPosition = Annotated[int | None, Query(description="read as the ledger stood at this position")]
AsOf = Annotated[str | None, Query(description="read as of an RFC 3339 time with offset")]
MinPosition = Annotated[
    int | None,
    Query(ge=0, description="read your writes: answer only once this position (from an append) is included"),
]


@dataclass(frozen=True)
class ReadAt:
    """Where a read stands in the log: now, or as of a position or a time (§6)."""

    as_of_position: int | None
    as_of: str | None
    min_position: int | None


def read_at(as_of_position: AsOfPosition = None, as_of: AsOf = None, min_position: MinPosition = None) -> ReadAt:
    return ReadAt(as_of_position, as_of, min_position)


ReadAtDep = Annotated[ReadAt, Depends(read_at)]


_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)


def parse_rfc3339(text: str, field: str = "as_of") -> datetime:
    """An RFC 3339 date-time with an offset (`T`/`Z` in either case, any fraction digits). A leap
    second (`:60`, which RFC 3339 allows) is the last microsecond of its minute: times are recorded
    to the microsecond and never in a leap second, so the positions at or before it are the same."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise BadRequest(field, "must be an RFC 3339 time with an offset, e.g. 2026-11-22T15:04:05Z")
    day, clock, fraction, offset = match.groups()
    micro = (fraction or ".0")[1:7].ljust(6, "0")
    if clock.endswith(":60"):
        clock, micro = clock[:-2] + "59", "999999"
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        return datetime.fromisoformat(f"{day}T{clock}.{micro}{offset}")
    except ValueError:
        raise BadRequest(field, "is not a real date and time") from None


def resolve_position(svc: Services, at: ReadAt) -> int:
    """Resolve `as_of_position` / `as_of` / `min_position` (§6) to a position
    (`replay.positions`). Call after the permission checks."""
    as_of_position, as_of = at.as_of_position, at.as_of
    if as_of_position is not None and as_of is not None:
        raise BadRequest("as_of", "give as_of_position or as_of, not both")
    moment = None
    if as_of is not None:
        moment = parse_rfc3339(as_of)
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:  # before 0001-01-01 or after 9999-12-31 in UTC (was a 500)
            moment = (datetime.min if moment.year == 1 else datetime.max).replace(tzinfo=UTC)
    try:
        return read_position(svc.log, svc.books, as_of_position, moment, at.min_position)
    except PositionOutOfRange as exc:
        raise BadRequest(exc.field, exc.problem) from None
