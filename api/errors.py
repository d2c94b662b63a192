"""Mapping domain errors to HTTP answers. Every error body names the problem."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.body import BodyError
from ledger.appender import EventIdReused, Rejected
from ledger.store import PositionTaken, StoreUnavailable
from replay.access import Forbidden
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
    """A query or path value the contract rejects (422)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class Unauthorized(Exception):
    pass


def install(app: FastAPI) -> None:
    @app.exception_handler(Rejected)
    async def rejected(_: Request, exc: Rejected) -> JSONResponse:
        code = "conflict" if exc.status == 409 else "validation_failed"
        return error(exc.status, code, str(exc), [p.body() for p in exc.problems])

    @app.exception_handler(EventIdReused)
    async def reused(_: Request, exc: EventIdReused) -> JSONResponse:
        problem: dict[str, Any] = {"field": "event_id", "problem": str(exc)}
        if exc.index is not None:
            problem = {"index": exc.index, **problem}
        return error(409, "event_id_reused", str(exc), [problem])

    @app.exception_handler(BodyError)
    async def body_error(_: Request, exc: BodyError) -> JSONResponse:
        return error(exc.status, "bad_body", exc.message, [{"field": "body", "problem": exc.message}])

    @app.exception_handler(BadRequest)
    async def bad_request(_: Request, exc: BadRequest) -> JSONResponse:
        return error(422, "validation_failed", str(exc), [{"field": exc.field, "problem": exc.problem}])

    @app.exception_handler(RequestValidationError)
    async def request_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]), "problem": e["msg"]}
            for e in exc.errors()
        ]
        return error(422, "validation_failed", "invalid request", problems)

    @app.exception_handler(UnknownParticipants)
    async def unknown(_: Request, exc: UnknownParticipants) -> JSONResponse:
        problems = [{"field": "participant_ids", "problem": f"unknown participant '{p}'"} for p in exc.participant_ids]
        return error(422, "validation_failed", "unknown participants", problems)

    @app.exception_handler(Forbidden)
    async def forbidden(_: Request, exc: Forbidden) -> JSONResponse:
        return error(403, "forbidden", str(exc))

    @app.exception_handler(Unauthorized)
    async def unauthorized(_: Request, exc: Unauthorized) -> JSONResponse:
        response = error(401, "unauthorized", str(exc))
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return error(404, "not_found", str(exc))

    @app.exception_handler(PeriodNotClosed)
    async def not_closed(_: Request, exc: PeriodNotClosed) -> JSONResponse:
        return error(409, "period_open", f"period {exc} is not closed; payouts are only for closed periods")

    @app.exception_handler(StoreUnavailable)
    async def unavailable(_: Request, exc: StoreUnavailable) -> JSONResponse:
        return error(503, "unavailable", str(exc))

    @app.exception_handler(PositionTaken)
    async def busy(_: Request, exc: PositionTaken) -> JSONResponse:
        return error(503, "busy", str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, "http_error", str(exc.detail))
