"""Mapping domain errors to HTTP answers. Every error body names the problem."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.body import BodyError
from ledger.appender import EventIdReused, Rejected
from ledger.damage import LogDamaged
from ledger.store import PositionTaken, StoreUnavailable
from ledger.validation import unexpected_fields
from replay.access import Forbidden
from replay.asof import BooksBroken
from replay.audit import AuditRunning
from replay.payouts import PeriodNotClosed
from replay.whatif import UnknownParticipants


def error(status: int, code: str, message: str, problems: list[dict[str, Any]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": code, "message": message}
    if problems is not None:
        body["problems"] = problems
    return JSONResponse(body, status_code=status)


class NotFound(Exception):
    pass


class BadRequest(Exception):
    """A query, path or body value the contract rejects (422); each problem is named."""

    def __init__(self, field: str, problem: str, *more: tuple[str, str]) -> None:
        self.problems = [(field, problem), *more]
        super().__init__("; ".join(f"{f}: {p}" for f, p in self.problems))


def reject_unexpected(body: dict[str, Any], fields: set[str]) -> None:
    """422 naming every key of a request body that is not one of `fields`, not only the first."""
    problems = unexpected_fields(sorted(set(body) - fields))
    if problems:
        first, *more = problems
        raise BadRequest(first.field, first.problem, *((p.field, p.problem) for p in more))


class Unauthorized(Exception):
    pass


def _rejected(exc: Rejected) -> JSONResponse:
    code = "conflict" if exc.status == 409 else "validation_failed"
    return error(exc.status, code, str(exc), [p.body() for p in exc.problems])


def _reused(exc: EventIdReused) -> JSONResponse:
    problem: dict[str, Any] = {"field": "event_id", "problem": str(exc)}
    if exc.index is not None:
        problem = {"index": exc.index, **problem}
    return error(409, "event_id_reused", str(exc), [problem])


def _request_validation(exc: RequestValidationError) -> JSONResponse:
    problems = [
        {"field": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]), "problem": e["msg"]}
        for e in exc.errors()
    ]
    return error(422, "validation_failed", "invalid request", problems)


def _unknown(exc: UnknownParticipants) -> JSONResponse:
    problems = [{"field": "participant_ids", "problem": f"unknown participant '{p}'"} for p in exc.participant_ids]
    return error(422, "validation_failed", "unknown participants", problems)


def _http_error(exc: StarletteHTTPException) -> JSONResponse:
    """The framework's own answers (404, 405) with their headers: a 405 must say what is `Allow`ed."""
    response = error(exc.status_code, "http_error", str(exc.detail))
    response.headers.update(exc.headers or {})
    return response


def _unauthorized(exc: Unauthorized) -> JSONResponse:
    response = error(401, "unauthorized", str(exc))
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


_HANDLERS: dict[type[Exception], Callable[[Any], JSONResponse]] = {
    Rejected: _rejected,
    EventIdReused: _reused,
    BodyError: lambda exc: error(exc.status, "bad_body", exc.message, [{"field": "body", "problem": exc.message}]),
    BadRequest: lambda exc: error(
        422, "validation_failed", str(exc), [{"field": f, "problem": p} for f, p in exc.problems]
    ),
    RequestValidationError: _request_validation,
    UnknownParticipants: _unknown,
    Forbidden: lambda exc: error(403, "forbidden", str(exc)),
    Unauthorized: _unauthorized,
    NotFound: lambda exc: error(404, "not_found", str(exc)),
    PeriodNotClosed: lambda exc: error(
        409, "period_open", f"period {exc} is not closed; payouts are only for closed periods"
    ),
    StoreUnavailable: lambda exc: error(503, "unavailable", str(exc)),
    BooksBroken: lambda exc: error(500, "books_failed", str(exc)),  # a bug: retrying will not help
    LogDamaged: lambda exc: error(500, "log_damaged", str(exc)),  # changed behind the ledger's back
    PositionTaken: lambda exc: error(503, "busy", str(exc)),
    AuditRunning: lambda exc: error(429, "audit_running", str(exc)),
    StarletteHTTPException: _http_error,
}


def response_for(exc: Exception) -> JSONResponse | None:
    """The answer to a domain error (the most specific mapping wins), or None if it is not one."""
    for kind in type(exc).__mro__:
        handler = _HANDLERS.get(kind)
        if handler is not None:
            return handler(exc)
    return None


def install(app: FastAPI) -> None:
    for kind, handler in _HANDLERS.items():

        async def handle(_: Request, exc: Exception, handler: Callable[[Any], JSONResponse] = handler) -> JSONResponse:
            return handler(exc)

        app.add_exception_handler(kind, handle)
