"""The FastAPI application: routers, error mapping, and security headers. No business rules."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from api import errors
from api.routes import audit, events, health, statements, tokens, views, whatif
from replay.bootstrap import Services

log = logging.getLogger("ledger.http")


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="Performance Ledger",
        version="1.0.0",
        description="An event-sourced ledger for sales performance and incentive compensation.",
    )
    app.state.services = services
    errors.install(app)
    for module in (events, statements, views, whatif, tokens, audit, health):
        app.include_router(module.router)

    @app.middleware("http")
    async def request_context(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        started = time.perf_counter()
        response = await call_next(request)
        response.headers["X-Request-ID"] = request_id[:64]
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        log.info(
            "request",
            extra={
                "request_id": request_id[:64],
                "method": request.method,
                "path": request.url.path,  # never the query string: it may name participants
                "status": response.status_code,
                "ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        return response

    return app
