"""Liveness and readiness for orchestrators (no token needed, no data shown)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from api.errors import error

router = APIRouter(tags=["health"])


def _failed(svc: ServicesDep) -> JSONResponse | None:
    """503 once the books failed to fold an event (decision 55): only a restart clears that, so
    liveness fails too, and an orchestrator restarts the process."""
    broken = svc.books.broken
    return None if broken is None else error(503, "books_failed", str(broken))


@router.get("/healthz", response_model=None)
async def healthz(svc: ServicesDep) -> dict[str, Any] | JSONResponse:
    return _failed(svc) or {"ok": True}


@router.get("/readyz", response_model=None)
def readyz(svc: ServicesDep) -> dict[str, Any] | JSONResponse:
    """Ready when the database answers and the books fold; says how far this process has read the log.

    A plain `def`: it waits on the database in the thread pool, never on the event loop.
    `projected_head` may trail `stored_head` for a moment while a commit is under way; `folded_head`
    (the books) trails it until appends pause, a read needs them, or they follow a stream (decision 62).
    """
    failed = _failed(svc)
    if failed is not None:
        return failed
    stored = svc.store.head()
    svc.log.catch_up(wait=False)  # never queue behind a commit: during an outage one takes seconds
    return {"ok": True, "stored_head": stored, "projected_head": svc.log.head, "folded_head": svc.books.folded}
