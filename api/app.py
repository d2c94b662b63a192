"""The FastAPI application: routers, error mapping, and security headers. No business rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from api import errors
from api.fast_path import SingleAppendFastPath
from api.middleware import RequestContext
from api.responses import FastJSONResponse
from api.routes import audit, events, health, statements, tokens, views, whatif
from replay.bootstrap import Services


class LedgerApp(FastAPI):
    """FastAPI behind the request context, with `POST /v1/events` taken before the framework's own
    middleware (error pages, telemetry, body limits: the fast path has its own; decision 46)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._front = RequestContext(SingleAppendFastPath(super().__call__))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        await self._front(scope, receive, send)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run one no-op in the thread pool before the first request: anyio imports its event loop's
    backend, and starts the pool's first thread, on its first use, and the first request through a
    sync route (statements, rankings) paid for both, 30-40 ms (decision 143)."""
    await anyio.to_thread.run_sync(_nothing)
    yield


def _nothing() -> None:
    pass


def create_app(services: Services) -> FastAPI:
    app = LedgerApp(
        title="Performance Ledger",
        version="1.0.0",
        description="An event-sourced ledger for sales performance and incentive compensation.",
        default_response_class=FastJSONResponse,
        lifespan=_lifespan,
    )
    app.state.services = services
    errors.install(app)
    for module in (events, statements, views, whatif, tokens, audit, health):
        app.include_router(module.router)
    return app
