"""The FastAPI application: routers, error mapping, and security headers. No business rules."""

from __future__ import annotations

from fastapi import FastAPI

from api import errors
from api.fast_path import SingleAppendFastPath
from api.middleware import RequestContext
from api.routes import audit, events, health, statements, tokens, views, whatif
from replay.bootstrap import Services


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

    app.add_middleware(SingleAppendFastPath)
    app.add_middleware(RequestContext)  # outermost: request ids, headers and logs for every request
    return app
